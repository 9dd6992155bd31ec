"""Complex tensors through the ops of the elementwise, shape, rearranging, joining, indexing, selection,
reduction, statistics, signal and range families: gradients in PyTorch's convention checked against
Wirtinger finite differences (``tape.gradcheck``, complex64 and complex128, shapes drawn by hypothesis),
second derivatives (``tape.gradgradcheck``), PyTorch's own gradients, and the ops that still refuse complex
values (numpy orders complex numbers lexicographically, which no gradient convention follows)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tape
from tape.tensor import plain
from tests.strategies import nonempty_shapes

COMPLEX_DTYPES = [np.complex128, np.complex64]


def _shapes(min_dims: int, max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> Any:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


ANY = nonempty_shapes
VECTORS = _shapes(1, 1)
AT_LEAST_1D = _shapes(1)
AT_LEAST_2D = _shapes(2)
MATRICES = _shapes(2, 2)
BOXES = _shapes(3, 3, max_side=3)
#: Two rows of a length from 2 on: the two arguments of a binary op on sequences (convolve, polyval, ...).
PAIRS = _shapes(1, 1, min_side=2, max_side=5).map(lambda shape: (2, *shape))
#: Three or more values along the last axis (np.gradient with edge_order=2).
LONG_ROWS = _shapes(1, 2, min_side=3, max_side=5)


def complex_arrays(
    shape: tuple[int, ...], dtype: Any, off_axes: bool = False
) -> st.SearchStrategy[np.ndarray]:
    """Complex arrays of ``shape`` with real and imaginary parts in [-2, 2]; with ``off_axes``, both parts at
    least 0.2 from 0, away from the branch cuts (and the zeros) of sqrt, log and the inverse functions."""

    def build(seed: int) -> np.ndarray:
        parts = np.random.default_rng(seed).uniform(-2.0, 2.0, size=(2, *shape))
        if off_axes:
            parts = np.sign(parts) * (0.2 + 0.9 * np.abs(parts))
        return np.asarray(parts[0] + 1j * parts[1]).astype(dtype)

    return st.integers(0, 2**32 - 1).map(build)


class Case(NamedTuple):
    """``function`` of one complex tensor ``z``, run at arrays of ``shapes``; ``off_axes`` as above."""

    function: Callable[[Any], Any]
    shapes: st.SearchStrategy[tuple[int, ...]] = ANY
    off_axes: bool = False


def _written_row(z: Any) -> Any:
    y = z * 1.0
    y[..., 0] = z[..., -1] ** 2  # t[idx] = v with complex v
    return y * z


def _written_mask(z: Any) -> Any:
    y = z * (1 + 1j)
    y[plain(z).real > 0] = 2.0 * z[plain(z).real > 0]
    return y


def _copied(z: Any) -> Any:
    y = z * 1.0
    np.copyto(y, np.sin(z), where=plain(z).imag > 0)
    return y * z


def _put(z: Any) -> Any:
    y = z * 1.0
    np.put_along_axis(y, np.zeros((*z.shape[:-1], 1), dtype=np.intp), z[..., -1:] ** 2, axis=-1)
    return y * z


def _cubed_in_place(z: Any) -> Any:
    y = z * 1.0
    y **= 3
    return y


def _mask(z: Any) -> np.ndarray:
    """A condition drawn from z's data (a constant, as conditions are)."""
    return plain(z).real > 0


CASES: dict[str, Case] = {
    # elementwise
    "power z**2": Case(lambda z: z**2),
    "power z**3 in place": Case(_cubed_in_place),
    "power z**0.5": Case(lambda z: z**0.5, off_axes=True),
    "power z**-1.5": Case(lambda z: np.power(z, -1.5), off_axes=True),
    "power 2**z": Case(lambda z: 2.0**z),
    "power z**w": Case(lambda z: z[0] ** z[1], PAIRS, off_axes=True),
    "arcsin": Case(np.arcsin, off_axes=True),
    "arccos": Case(np.arccos, off_axes=True),
    "arctan": Case(np.arctan, off_axes=True),
    "arcsinh": Case(np.arcsinh, off_axes=True),
    "arccosh": Case(np.arccosh, off_axes=True),
    "arctanh": Case(np.arctanh, off_axes=True),
    "sinc": Case(np.sinc),
    "sinc near 0": Case(lambda z: np.sinc(z * 0.01)),
    "copy": Case(lambda z: np.copy(z) * z),
    "sign": Case(lambda z: np.sign(z) * z**2, off_axes=True),
    "round": Case(lambda z: np.round(z, 1) * z),
    "around": Case(lambda z: np.around(z) * z),
    "rint": Case(lambda z: np.rint(z) * z),
    "nan_to_num": Case(lambda z: np.nan_to_num(z) ** 2),
    # shape
    "swapaxes": Case(lambda z: np.swapaxes(z, 0, -1) * 1j, AT_LEAST_1D),
    "broadcast_to": Case(
        lambda z: np.broadcast_to(z, (2, *z.shape)) * np.arange(1.0, 3.0).reshape(2, *(1,) * z.ndim)
    ),
    "where": Case(lambda z: np.where(_mask(z), z * z, np.conj(z))),
    "meshgrid": Case(lambda z: np.meshgrid(z[0], z[1] ** 2)[0] * z[1, 0], PAIRS),
    # joining and splitting
    "concatenate": Case(lambda z: np.concatenate([z, z * z], axis=-1), AT_LEAST_1D),
    "concatenate flat": Case(lambda z: np.concatenate([z, np.ones(2)], axis=None)),
    "stack": Case(lambda z: np.stack([z, 2 * z], axis=-1) ** 2),
    "hstack": Case(lambda z: np.hstack([z, z**2])),
    "vstack": Case(lambda z: np.vstack([z, z**2])),
    "dstack": Case(lambda z: np.dstack([z, z**2])),
    "column_stack": Case(lambda z: np.column_stack([z, z**2]), _shapes(1, 2)),
    "append": Case(lambda z: np.append(z, z**2)),
    "block": Case(lambda z: np.block([[z, z**2], [np.conj(z), 1j * z]]), MATRICES),
    "split": Case(lambda z: np.split(z, [1], axis=-1)[1] * np.sum(np.split(z, [1], axis=-1)[0]), AT_LEAST_1D),
    "array_split": Case(lambda z: np.array_split(z, 2, axis=0)[0] ** 2, AT_LEAST_1D),
    "hsplit": Case(lambda z: np.hsplit(z, [1])[0] ** 2 * 1j, AT_LEAST_1D),
    "vsplit": Case(lambda z: np.vsplit(z, [1])[1] ** 2, AT_LEAST_2D),
    "dsplit": Case(lambda z: np.dsplit(z, [1])[0] ** 2, BOXES),
    "unstack": Case(lambda z: np.unstack(z)[-1] ** 2, AT_LEAST_1D),
    # rearranging
    "flip": Case(lambda z: np.flip(z) * z),
    "fliplr": Case(lambda z: np.fliplr(z) * z, AT_LEAST_2D),
    "flipud": Case(lambda z: np.flipud(z) * z, AT_LEAST_1D),
    "roll": Case(lambda z: np.roll(z, 1) * z),
    "rot90": Case(lambda z: np.rot90(z) ** 2, AT_LEAST_2D),
    "rollaxis": Case(lambda z: np.rollaxis(z, -1) ** 2, AT_LEAST_1D),
    "tile": Case(lambda z: np.tile(z, (2, 1)) ** 2),
    "repeat": Case(lambda z: np.repeat(z, 2, axis=-1) ** 2, AT_LEAST_1D),
    "repeat counts": Case(lambda z: np.repeat(z, np.arange(z.size) % 3) ** 2),
    "pad constant": Case(lambda z: np.pad(z, 1, constant_values=1j) ** 2),
    "pad edge": Case(lambda z: np.pad(z, (1, 2), mode="edge") ** 2, AT_LEAST_1D),
    "pad reflect odd": Case(lambda z: np.pad(z, 2, mode="reflect", reflect_type="odd") ** 2, AT_LEAST_1D),
    "pad symmetric": Case(lambda z: np.pad(z, 2, mode="symmetric") ** 2, AT_LEAST_1D),
    "pad wrap": Case(lambda z: np.pad(z, 3, mode="wrap") ** 2, AT_LEAST_1D),
    "diagonal": Case(lambda z: np.diagonal(z, axis1=-2, axis2=-1) ** 2, AT_LEAST_2D),
    "trace": Case(lambda z: np.trace(z * z), AT_LEAST_2D),
    "diag": Case(lambda z: np.diag(z) ** 2, _shapes(1, 2)),
    "diagflat": Case(lambda z: np.diagflat(z, 1) * np.diagflat(z, 1)),
    "triu": Case(lambda z: np.triu(z) ** 2, AT_LEAST_1D),
    "tril": Case(lambda z: np.tril(z, -1) * z, AT_LEAST_2D),
    "atleast_3d": Case(lambda z: np.atleast_3d(z) ** 2),
    # indexing
    "getitem basic": Case(lambda z: z[..., :1] ** 2, AT_LEAST_1D),
    "getitem advanced": Case(lambda z: np.reshape(z, -1)[[0, 0, -1]] ** 2),
    "getitem mask": Case(lambda z: z[_mask(z)] ** 2),
    "setitem": Case(_written_row, AT_LEAST_1D),
    "setitem mask": Case(_written_mask, AT_LEAST_1D),
    "copyto": Case(_copied, AT_LEAST_1D),
    # selection
    "take": Case(lambda z: np.take(z, [0, -1, 0]) ** 2),
    "take_along_axis": Case(
        lambda z: np.take_along_axis(z, np.zeros((*z.shape[:-1], 3), dtype=np.intp), axis=-1) * 1j,
        AT_LEAST_1D,
    ),
    "put_along_axis": Case(_put, AT_LEAST_1D),
    "choose": Case(lambda z: np.choose(_mask(z).astype(int), [z**2, np.conj(z)])),
    "select": Case(lambda z: np.select([_mask(z)], [z**2], default=z)),
    "compress": Case(lambda z: np.compress(np.arange(z.shape[-1]) % 2 == 0, z, axis=-1) ** 2, AT_LEAST_1D),
    "extract": Case(lambda z: np.extract(_mask(z), z) ** 2),
    # reductions and statistics
    "sum": Case(lambda z: np.sum(z * z, axis=-1), AT_LEAST_1D),
    "mean": Case(lambda z: np.mean(z**2, axis=0, keepdims=True), AT_LEAST_1D),
    "prod": Case(lambda z: np.prod(z, axis=-1), AT_LEAST_1D),
    "nansum": Case(lambda z: np.nansum(z**2, axis=0), AT_LEAST_1D),
    "nanmean": Case(lambda z: np.nanmean(z**2)),
    "var": Case(lambda z: np.var(z, axis=-1), AT_LEAST_1D),
    "var ddof": Case(lambda z: np.var(z**2, ddof=1), _shapes(1, min_side=2)),
    "std": Case(lambda z: np.std(z, axis=0, keepdims=True), _shapes(1, min_side=2)),
    "nanvar": Case(lambda z: np.nanvar(z, axis=-1), AT_LEAST_1D),
    "nanstd": Case(lambda z: np.nanstd(z**2, ddof=1), _shapes(1, min_side=2)),
    "average": Case(lambda z: np.average(z, axis=-1, weights=z[(0,) * (z.ndim - 1)] + 5.0), AT_LEAST_1D),
    "cumsum": Case(lambda z: np.cumsum(z * z, axis=-1), AT_LEAST_1D),
    "cumprod": Case(lambda z: np.cumprod(z, axis=-1), AT_LEAST_1D),
    "cumulative_sum": Case(lambda z: np.cumulative_sum(z, axis=0, include_initial=True) ** 2, AT_LEAST_1D),
    "cumulative_prod": Case(lambda z: np.cumulative_prod(z, axis=-1), AT_LEAST_1D),
    "diff": Case(lambda z: np.diff(z**2, axis=-1), AT_LEAST_1D),
    "diff n=2 prepend": Case(lambda z: np.diff(z, n=2, prepend=z[..., :1] ** 2), AT_LEAST_1D),
    # signals, polynomials and ranges
    "convolve": Case(lambda z: np.convolve(z[0], z[1] ** 2), PAIRS),
    "convolve same": Case(lambda z: np.convolve(z[0, :2], z[1], "same"), PAIRS),
    "convolve valid": Case(lambda z: np.convolve(z[0], z[1, :2], "valid"), PAIRS),
    "correlate": Case(lambda z: np.correlate(z[0], z[1, :2] ** 2), PAIRS),
    "correlate full": Case(lambda z: np.correlate(z[0, :2], z[1], "full"), PAIRS),
    "correlate same": Case(lambda z: np.correlate(z[0], z[1], "same"), PAIRS),
    "polyval": Case(lambda z: np.polyval(z[0], z[1]), PAIRS),
    "interp": Case(lambda z: np.interp(np.array([-0.5, 0.2, 1.5, 9.0]), np.arange(z.size), z), VECTORS),
    "interp periodic": Case(
        lambda z: np.interp(np.array([-0.5, 0.2, 1.5]), np.arange(z.size) * 0.7, z, period=2.0), VECTORS
    ),
    "interp left right": Case(
        lambda z: np.interp(
            [-1.0, 0.5, 9.0], [0.0, 1.0], z[0, :2], left=np.real(z[1, 0]) ** 2, right=np.imag(z[1, -1])
        ),
        PAIRS,
    ),
    "gradient": Case(lambda z: np.gradient(z * z, axis=-1), _shapes(1, min_side=2)),
    "gradient edge_order 2": Case(
        lambda z: np.gradient(z, np.cumsum(np.arange(1.0, z.shape[-1] + 1)), axis=-1, edge_order=2), LONG_ROWS
    ),
    "linspace": Case(lambda z: np.linspace(z[0], z[1] ** 2, 5, axis=-1), PAIRS),
    "logspace": Case(lambda z: np.logspace(z[0] * 0.5, z[1] * 0.5, 4), PAIRS),
}


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("name", CASES)
@settings(max_examples=3)
@given(data=st.data())
def test_gradients_are_wirtinger_derivatives(name, dtype, data):
    case = CASES[name]
    z = data.draw(complex_arrays(data.draw(case.shapes), dtype, case.off_axes))
    expected = np.asarray(case.function(z.copy()))
    result = case.function(tape.tensor(z, requires_grad=True))
    assert result.requires_grad and result.dtype == expected.dtype
    np.testing.assert_allclose(result.data, expected, rtol=1e-6, atol=1e-6)
    assert tape.gradcheck(case.function, z)


@pytest.mark.parametrize("name", CASES)
@settings(max_examples=2)
@given(data=st.data())
def test_second_derivatives(name, data):
    case = CASES[name]
    z = data.draw(complex_arrays(data.draw(case.shapes), np.complex128, case.off_axes))
    assert tape.gradgradcheck(case.function, z)


# -- real and complex inputs together: a real input's gradient is the real part ---------------------------
X = np.array([-1.5, -0.4, 0.3, 1.2])
W = np.array([0.5 + 0.7j, -1.1 + 0.3j, 0.8 - 0.6j, -0.2 - 1.3j])
MIXED = {
    "real base, complex exponent": lambda x, w: x**w,
    "complex base, real exponent": lambda x, w: w**x,
    "where, a real branch": lambda x, w: np.where(X > 0, x, w) ** 2,
    "concatenate": lambda x, w: np.concatenate([x, w]) ** 2,
    "setitem of a complex value into a real-fed tensor": lambda x, w: _written(x * (1 + 0j), w),
    "convolve": lambda x, w: np.convolve(x, w),
    "correlate": lambda x, w: np.correlate(w, x, "full") * np.correlate(x, w, "full"),
    "interp at real points of complex values": lambda x, w: np.interp(x, [-2.0, 0.0, 1.0, 2.0], w),
    "linspace from a real start to a complex stop": lambda x, w: np.linspace(x, w, 3),
    "polyval of complex coefficients at real points": lambda x, w: np.polyval(w, x),
}


def _written(y: Any, value: Any) -> Any:
    y[1:3] = value[:2] ** 2
    return y * value


@pytest.mark.parametrize("name", MIXED)
def test_real_and_complex_inputs_together(name):
    assert tape.gradcheck(MIXED[name], X, W)
    assert tape.gradgradcheck(MIXED[name], X, W)
    x = tape.tensor(X, requires_grad=True)
    value = MIXED[name](x, tape.tensor(W))
    np.sum(np.abs(value) ** 2).backward()
    assert x.grad.dtype == np.float64


def test_arccosh_takes_the_principal_branchs_derivative_where_re_z_is_negative():
    # sqrt(z * z - 1) is -sqrt(z - 1) sqrt(z + 1) here: the real formula would give the gradient's negative.
    z = np.array([-1.7 + 0.4j, -0.3 - 1.2j, 0.6 + 0.2j])
    assert tape.gradcheck(np.arccosh, z)
    w = tape.tensor(z, requires_grad=True)
    np.arccosh(w).backward(np.ones(3, dtype=complex))
    np.testing.assert_allclose(w.grad, np.conj(1 / (np.sqrt(z - 1) * np.sqrt(z + 1))), rtol=1e-12)


def test_nan_to_num_of_complex_values_keeps_the_finite_part_of_each_element():
    z = tape.tensor(np.array([complex(np.inf, 2.0), complex(1.0, np.nan), 3 - 1j]), requires_grad=True)
    np.nan_to_num(z, posinf=5.0).backward(np.array([1 + 1j, 1 + 1j, 1 + 1j]))
    np.testing.assert_array_equal(z.grad, [1j, 1, 1 + 1j])


def test_correlate_conjugates_its_second_argument_as_numpy_does():
    a, v = W[:3], W[1:] * 1j
    value = np.correlate(tape.tensor(a), tape.tensor(v), "full")
    np.testing.assert_allclose(value.data, np.correlate(a, v, "full"), rtol=1e-15)
    assert tape.gradcheck(lambda a, v: np.correlate(a, v, "full"), a, v)


def test_sign_of_complex_values_is_z_over_abs_z_with_a_zero_gradient_at_zero():
    z = tape.tensor(np.array([3 + 4j, 0j]), requires_grad=True)
    np.real(np.sign(z)).backward(np.ones(2))
    np.testing.assert_allclose(z.grad, [0.128 - 0.096j, 0], rtol=1e-12)
    x = tape.tensor(np.array([2.0, -1.0]), requires_grad=True)
    np.sum(np.sign(x) * x).backward()  # real values: flat, as before
    np.testing.assert_array_equal(x.grad, [1.0, -1.0])


# -- PyTorch's gradients -----------------------------------------------------------------------------------
Z = np.array([[0.7 + 0.3j, -1.2 + 0.5j, 0.4 - 0.9j], [-0.3 - 0.6j, 1.1 + 0.2j, 0.5 + 1.3j]])
TORCH: dict[str, tuple[Callable[[Any], Any], Callable[[Any, Any], Any]]] = {
    "power": (lambda z: z**2.5 + z ** z[::-1] + 2.0**z, lambda t, z: z**2.5 + z ** z.flip(0) + 2.0**z),
    "inverse trigonometric": (
        lambda z: np.arcsin(z) + np.arccos(z) * np.arctan(z),
        lambda t, z: t.asin(z) + t.acos(z) * t.atan(z),
    ),
    "inverse hyperbolic": (
        lambda z: np.arcsinh(z) + np.arccosh(z) * np.arctanh(z),
        lambda t, z: t.asinh(z) + t.acosh(z) * t.atanh(z),
    ),
    "sign": (lambda z: np.sign(z) * z, lambda t, z: t.sgn(z) * z),
    "var and std": (
        lambda z: np.var(z, axis=1) * np.std(z) + np.var(z, ddof=1),
        lambda t, z: t.var(z, dim=1, correction=0) * t.std(z, correction=0) + t.var(z),
    ),
    "cumulative": (
        lambda z: np.cumsum(z, axis=1) * np.cumprod(z, axis=0) + np.prod(z, axis=1, keepdims=True),
        lambda t, z: t.cumsum(z, 1) * t.cumprod(z, 0) + t.prod(z, 1, keepdim=True),
    ),
    "rearranging": (
        lambda z: np.flip(z, 1) * np.roll(z, 1) + np.tile(z, (1, 1)) - np.repeat(z, 1, axis=0),
        lambda t, z: t.flip(z, (1,)) * t.roll(z, 1) + z.tile((1, 1)) - t.repeat_interleave(z, 1, dim=0),
    ),
    "joining and diff": (
        lambda z: np.diff(np.concatenate([z, np.stack([z[0], z[1] ** 2])], axis=1), axis=1),
        lambda t, z: t.diff(t.cat([z, t.stack([z[0], z[1] ** 2])], dim=1), dim=1),
    ),
    "indexing": (
        lambda z: np.take_along_axis(z, np.array([[2, 0], [1, 1]]), axis=1) * z[:, [0, 2]],
        lambda t, z: t.take_along_dim(z, t.tensor([[2, 0], [1, 1]]), dim=1) * z[:, [0, 2]],
    ),
    "where and sums": (
        lambda z: np.where(Z.real > 0, z**2, z) * np.mean(z) + np.sum(z, axis=0),
        lambda t, z: t.where(t.tensor(Z.real > 0), z**2, z) * z.mean() + z.sum(0),
    ),
}


@pytest.mark.parametrize("name", TORCH)
def test_gradients_match_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = TORCH[name]
    z = tape.tensor(Z, requires_grad=True)
    value = ours(z)
    np.sum(np.abs(value) ** 2 + np.real(value)).backward()
    zt = torch.tensor(Z, requires_grad=True)
    value_t = theirs(torch, zt)
    np.testing.assert_allclose(value.data, value_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    (value_t.abs() ** 2 + value_t.real).sum().backward()
    np.testing.assert_allclose(z.grad, zt.grad.numpy(), rtol=1e-10, atol=1e-12)


# -- what stays refused ------------------------------------------------------------------------------------
REFUSED = {
    "maximum": lambda z: np.maximum(z, 0),
    "minimum": lambda z: np.minimum(z, z),
    "fmax": lambda z: np.fmax(z, 0),
    "fmin": lambda z: np.fmin(z, 0),
    "clip": lambda z: np.clip(z, -1, 1),
    "sort": lambda z: np.sort(z),
    "partition": lambda z: np.partition(z, 1),
    "max": lambda z: np.max(z),
    "min": lambda z: np.min(z, axis=0),
    "amax": lambda z: np.amax(z),
    "ptp": lambda z: np.ptp(z),
    "median": lambda z: np.median(z),
    "nanmedian": lambda z: np.nanmedian(z, axis=1),
}


@pytest.mark.parametrize("name", REFUSED)
def test_ops_that_order_values_refuse_complex_tensors(name):
    call = REFUSED[name]
    with pytest.raises(
        TypeError, match=r"^\w+: complex tensors that require grad are not supported by \w+ yet"
    ):
        call(tape.tensor(Z, requires_grad=True))
    with tape.no_grad():
        result = call(tape.tensor(Z, requires_grad=True))
    np.testing.assert_array_equal(plain(result), call(Z))  # without a gradient, numpy's own result
