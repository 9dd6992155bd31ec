"""Complex tensors in ops/linalg.py and ops/decompositions.py, and ``np.linalg.eig``/``eigvals`` (real and
complex): numpy's values and dtypes, gradients in PyTorch's convention against Wirtinger finite differences
(``tape.gradcheck``, complex128 and complex64, hypothesis-drawn sizes and batch axes), second derivatives
(``tape.gradgradcheck``), PyTorch's own gradients, and the errors: a loss that depends on the phases of
complex eigenvectors or singular vectors has no gradient.

Inputs are kept where the gradient is defined: invertible matrices are diagonally dominant; Hermitian
matrices, the matrices given to svd and those given to eig are built from random unitary (or
well-conditioned) eigenvectors and chosen values at least 0.3 apart. Functions of eigen- and singular
vectors go through quantities that do not depend on their phases (``|v|³``, ``V diag(f(w)) Vᴴ``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tape

COMPLEX_DTYPES = [np.complex128, np.complex64]
#: Leading batch axes: none or one of up to two matrices (gradcheck differentiates every element).
batch_shapes = st.sampled_from([(), (1,), (2,)])
sizes = st.integers(1, 3)


def _mH(x: Any) -> Any:
    return np.swapaxes(np.conj(x), -1, -2)


def complex_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def unitary(rng: np.random.Generator, batch: tuple[int, ...], n: int) -> np.ndarray:
    return np.linalg.qr(complex_normal(rng, (*batch, n, n)))[0]


def spread(rng: np.random.Generator, batch: tuple[int, ...], k: int, low: float) -> np.ndarray:
    """k real values per batch entry, from ``low`` upwards, at least 0.3 apart, in random order."""
    steps = np.argsort(rng.random((*batch, k)), axis=-1)
    return low + 0.5 * steps + rng.uniform(-0.1, 0.1, (*batch, k))


def invertible(rng: np.random.Generator, batch: tuple[int, ...], n: int) -> np.ndarray:
    """Diagonally dominant, each row turned by a random phase."""
    phases = np.exp(2j * np.pi * rng.random((*batch, n, 1)))
    return phases * (
        rng.uniform(-1, 1, (*batch, n, n)) + 1j * rng.uniform(-1, 1, (*batch, n, n)) + 2 * n * np.eye(n)
    )


def hermitian_with_gaps(rng: np.random.Generator, batch: tuple[int, ...], n: int) -> np.ndarray:
    q = unitary(rng, batch, n)
    return (q * np.expand_dims(spread(rng, batch, n, low=-0.25 * n), -2)) @ _mH(q)


def positive_definite(rng: np.random.Generator, batch: tuple[int, ...], n: int) -> np.ndarray:
    b = complex_normal(rng, (*batch, n, n))
    return b @ _mH(b) + n * np.eye(n)


def with_singular_values(rng: np.random.Generator, batch: tuple[int, ...], m: int, n: int) -> np.ndarray:
    k = min(m, n)
    u, v = unitary(rng, batch, m)[..., :k], unitary(rng, batch, n)[..., :k]
    return (u * np.expand_dims(spread(rng, batch, k, low=1.0), -2)) @ _mH(v)


def diagonalizable(rng: np.random.Generator, batch: tuple[int, ...], n: int) -> np.ndarray:
    """V diag(l) V^-1: V a unitary matrix times I + a small perturbation (condition number below 5), the
    eigenvalues at distinct radii at least 0.3 apart, at random angles."""
    noise = rng.uniform(-1, 1, (*batch, n, n)) + 1j * rng.uniform(-1, 1, (*batch, n, n))
    vectors = unitary(rng, batch, n) @ (np.eye(n) + 0.15 * noise)
    values = spread(rng, batch, n, low=0.5) * np.exp(2j * np.pi * rng.random((*batch, n)))
    return (vectors * np.expand_dims(values, -2)) @ np.linalg.inv(vectors)


def real_with_complex_pair(rng: np.random.Generator, batch: tuple[int, ...]) -> np.ndarray:
    """Real 3 x 3 matrices with eigenvalues a ± ib (b >= 0.5) and a real c at least 1 from a."""
    a, b = rng.uniform(-1, 1, batch), rng.uniform(0.5, 1.5, batch)
    c = a + rng.choice([-1.0, 1.0], batch) * rng.uniform(1.0, 2.0, batch)
    blocks = np.zeros((*batch, 3, 3))
    blocks[..., 0, 0] = blocks[..., 1, 1] = a
    blocks[..., 0, 1], blocks[..., 1, 0], blocks[..., 2, 2] = -b, b, c
    vectors = np.eye(3) + 0.15 * rng.uniform(-1, 1, (*batch, 3, 3))
    return vectors @ blocks @ np.linalg.inv(vectors)


# -- gradients against Wirtinger finite differences ---------------------------------------------------------
class Case(NamedTuple):
    """``function`` of the arrays ``build(rng, batch, m, n, k)`` makes (complex128; cast per test)."""

    function: Callable[..., Any]
    build: Callable[..., tuple[np.ndarray, ...]]


def _vectors_cubed(v: Any) -> Any:
    """|v|³: a function of eigen- or singular vectors that does not depend on their phases."""
    return np.abs(v) ** 3


def _eig_parts(w: Any, v: Any) -> tuple[Any, Any, Any]:
    """The eigenvalues, |V|³ and V diag(w) V^-1 (= a): functions of eig that do not depend on V's phases."""
    return w, _vectors_cubed(v), (v * np.expand_dims(w, -2)) @ np.linalg.inv(v)


def _rect(rng: Any, batch: Any, *shape: int) -> np.ndarray:
    return complex_normal(rng, (*batch, *shape))


CASES = {
    # ops/linalg.py: products
    "matmul": Case(
        lambda a, b: a @ b, lambda rng, batch, m, n, k: (_rect(rng, batch, m, n), _rect(rng, (), n, k))
    ),
    "dot": Case(np.dot, lambda rng, batch, m, n, k: (_rect(rng, (), m, n), _rect(rng, (), n, k))),
    "dot, 3-d": Case(np.dot, lambda rng, batch, m, n, k: (_rect(rng, (2,), m, n), _rect(rng, (k,), n, 2))),
    "vdot": Case(np.vdot, lambda rng, batch, m, n, k: (_rect(rng, batch, m, n), _rect(rng, batch, n, m))),
    "inner": Case(np.inner, lambda rng, batch, m, n, k: (_rect(rng, batch, m, n), _rect(rng, (), k, n))),
    "outer": Case(np.outer, lambda rng, batch, m, n, k: (_rect(rng, batch, m), _rect(rng, (), n, k))),
    "linalg.outer": Case(np.linalg.outer, lambda rng, batch, m, n, k: (_rect(rng, (), m), _rect(rng, (), n))),
    "tensordot": Case(
        lambda a, b: np.tensordot(a, b, axes=([0, 1], [1, 0])),
        lambda rng, batch, m, n, k: (_rect(rng, (), m, n, k), _rect(rng, (), n, m)),
    ),
    "kron": Case(np.kron, lambda rng, batch, m, n, k: (_rect(rng, batch, m, n), _rect(rng, (), n, k))),
    "einsum": Case(
        lambda a, b: np.einsum("...ij,jk,...ij->...jk", a, b, a),
        lambda rng, batch, m, n, k: (_rect(rng, batch, m, n), _rect(rng, (), n, m)),
    ),
    "einsum, trace": Case(lambda a: np.einsum("ii", a), lambda rng, batch, m, n, k: (_rect(rng, (), n, n),)),
    "multi_dot": Case(
        lambda a, b, c: np.linalg.multi_dot([a, b, c]),
        lambda rng, batch, m, n, k: (_rect(rng, (), m), _rect(rng, (), m, n), _rect(rng, (), n, k)),
    ),
    "matrix_power": Case(
        lambda a: np.linalg.matrix_power(a, 3), lambda rng, batch, m, n, k: (_rect(rng, batch, n, n) / n,)
    ),
    "matrix_power, negative": Case(
        lambda a: np.linalg.matrix_power(a, -2), lambda rng, batch, m, n, k: (invertible(rng, batch, n),)
    ),
    "cross": Case(np.cross, lambda rng, batch, m, n, k: (_rect(rng, batch, 3), _rect(rng, (), 3))),
    "vecdot": Case(
        lambda a, b: np.linalg.vecdot(a, b),
        lambda rng, batch, m, n, k: (_rect(rng, batch, m, n), _rect(rng, (), n)),
    ),
    "vecdot, axis 0": Case(
        lambda a, b: np.linalg.vecdot(a, b, axis=0),
        lambda rng, batch, m, n, k: (_rect(rng, (), m, n), _rect(rng, (), m, 1)),
    ),
    "matvec": Case(np.matvec, lambda rng, batch, m, n, k: (_rect(rng, batch, m, n), _rect(rng, (), n))),
    "vecmat": Case(np.vecmat, lambda rng, batch, m, n, k: (_rect(rng, batch, m), _rect(rng, (), m, n))),
    # ops/decompositions.py
    "inv": Case(np.linalg.inv, lambda rng, batch, m, n, k: (invertible(rng, batch, n),)),
    "solve": Case(
        np.linalg.solve, lambda rng, batch, m, n, k: (invertible(rng, batch, n), _rect(rng, batch, n, k))
    ),
    "solve, vector": Case(
        np.linalg.solve, lambda rng, batch, m, n, k: (invertible(rng, (), n), _rect(rng, (), n))
    ),
    "det": Case(np.linalg.det, lambda rng, batch, m, n, k: (invertible(rng, batch, n),)),
    "slogdet": Case(
        lambda a: tuple(np.linalg.slogdet(a)), lambda rng, batch, m, n, k: (invertible(rng, batch, n),)
    ),
    "cholesky": Case(np.linalg.cholesky, lambda rng, batch, m, n, k: (positive_definite(rng, batch, n),)),
    "cholesky, upper": Case(
        lambda a: np.linalg.cholesky(a, upper=True),
        lambda rng, batch, m, n, k: (positive_definite(rng, batch, n),),
    ),
    "eigh": Case(
        lambda a: (np.linalg.eigh(a).eigenvalues, _vectors_cubed(np.linalg.eigh(a).eigenvectors)),
        lambda rng, batch, m, n, k: (hermitian_with_gaps(rng, batch, n),),
    ),
    "eigh U, V diag(w^3) V^H": Case(
        lambda a: (lambda w, v: (v * np.expand_dims(w, -2) ** 3) @ _mH(v))(*np.linalg.eigh(a, UPLO="U")),
        lambda rng, batch, m, n, k: (hermitian_with_gaps(rng, batch, n),),
    ),
    "eigvalsh": Case(np.linalg.eigvalsh, lambda rng, batch, m, n, k: (hermitian_with_gaps(rng, batch, n),)),
    "qr": Case(
        lambda a: tuple(np.linalg.qr(a)),
        lambda rng, batch, m, n, k: (with_singular_values(rng, batch, m, n),),
    ),
    "qr, r": Case(
        lambda a: np.linalg.qr(a, mode="r"),
        lambda rng, batch, m, n, k: (with_singular_values(rng, batch, m, n),),
    ),
    "svd": Case(
        lambda a: (lambda u, s, vh: (_vectors_cubed(u), s, _vectors_cubed(vh), u @ vh))(
            *np.linalg.svd(a, full_matrices=False)
        ),
        lambda rng, batch, m, n, k: (with_singular_values(rng, batch, m, n),),
    ),
    "svdvals": Case(np.linalg.svdvals, lambda rng, batch, m, n, k: (with_singular_values(rng, batch, m, n),)),
    "pinv": Case(np.linalg.pinv, lambda rng, batch, m, n, k: (with_singular_values(rng, batch, m, n),)),
    "lstsq": Case(
        lambda a, b: tuple(np.linalg.lstsq(a, b)[i] for i in (0, 1, 3)),
        lambda rng, batch, m, n, k: (with_singular_values(rng, (), n + 1, n), _rect(rng, (), n + 1, k)),
    ),
    "norm": Case(np.linalg.norm, lambda rng, batch, m, n, k: (_rect(rng, batch, m, n),)),
    "norm, nuc": Case(
        lambda a: np.linalg.norm(a, "nuc"), lambda rng, batch, m, n, k: (with_singular_values(rng, (), m, n),)
    ),
    "norm, 2": Case(
        lambda a: np.linalg.norm(a, 2), lambda rng, batch, m, n, k: (with_singular_values(rng, (), m, n),)
    ),
    "norm, 1": Case(
        lambda a: np.linalg.norm(a, 1, axis=(-2, -1)), lambda rng, batch, m, n, k: (_rect(rng, batch, m, n),)
    ),
    "vector_norm, 3": Case(
        lambda a: np.linalg.vector_norm(a, ord=3, axis=-1),
        lambda rng, batch, m, n, k: (_rect(rng, batch, m, n),),
    ),
    "matrix_norm, fro": Case(np.linalg.matrix_norm, lambda rng, batch, m, n, k: (_rect(rng, batch, m, n),)),
    "cond": Case(np.linalg.cond, lambda rng, batch, m, n, k: (with_singular_values(rng, batch, n, n),)),
    # eig, eigvals (new)
    "eig": Case(
        lambda a: _eig_parts(*np.linalg.eig(a)),
        lambda rng, batch, m, n, k: (diagonalizable(rng, batch, n),),
    ),
    "eigvals": Case(np.linalg.eigvals, lambda rng, batch, m, n, k: (diagonalizable(rng, batch, n),)),
}


def _cast(arrays: tuple[np.ndarray, ...], dtype: Any) -> tuple[np.ndarray, ...]:
    return tuple(x.astype(dtype) for x in arrays)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("name", CASES)
@settings(max_examples=6)
@given(batch=batch_shapes, m=sizes, n=sizes, k=sizes, seed=st.integers(0, 2**32 - 1))
def test_complex_gradients_match_finite_differences(name, dtype, batch, m, n, k, seed):
    function, build = CASES[name]
    arrays = _cast(build(np.random.default_rng(seed), batch, m, n, k), dtype)
    assert tape.gradcheck(function, *arrays)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("name", CASES)
def test_complex_values_and_dtypes_are_numpys(name, dtype):
    function, build = CASES[name]
    arrays = _cast(build(np.random.default_rng(3), (2,), 3, 2, 2), dtype)
    expected = function(*arrays)
    leaves = [tape.tensor(x, requires_grad=True) for x in arrays]
    result = function(*leaves)
    pairs = list(zip(result, expected, strict=True)) if isinstance(expected, tuple) else [(result, expected)]
    for ours, theirs in pairs:
        assert ours.dtype == np.asarray(theirs).dtype
        np.testing.assert_array_equal(ours.data, theirs)
    sum(np.sum(np.abs(ours) ** 2) for ours, _ in pairs).backward()
    for leaf in leaves:
        assert leaf.grad.dtype == leaf.dtype and leaf.grad.shape == leaf.shape


# A real operand of a complex product or solve gets a real gradient: the real part of the complex one.
MIXED = {
    "vdot, real first": (np.vdot, lambda rng: (rng.standard_normal(4), complex_normal(rng, (4,)))),
    "vecdot, real second": (np.vecdot, lambda rng: (complex_normal(rng, (2, 3)), rng.standard_normal(3))),
    "matmul": (np.matmul, lambda rng: (rng.standard_normal((2, 3)), complex_normal(rng, (3, 2)))),
    "solve, real a": (
        np.linalg.solve,
        lambda rng: (invertible(rng, (), 3).real, complex_normal(rng, (3, 2))),
    ),
    "eig of a real matrix": (
        lambda a: (lambda w, v: (w, _vectors_cubed(v)))(*np.linalg.eig(a)),
        lambda rng: (real_with_complex_pair(rng, (2,)),),
    ),
    "eigvals of a real matrix": (np.linalg.eigvals, lambda rng: (real_with_complex_pair(rng, ()),)),
}


@pytest.mark.parametrize("name", MIXED)
def test_real_operands_of_complex_results_get_real_gradients(name):
    function, build = MIXED[name]
    arrays = build(np.random.default_rng(5))
    assert tape.gradcheck(function, *arrays)


# -- second derivatives -----------------------------------------------------------------------------------
SECOND_ORDER = [
    "matmul",
    "vdot",
    "vecdot",
    "vecmat",
    "matvec",
    "tensordot",
    "kron",
    "einsum",
    "multi_dot",
    "matrix_power",
    "cross",
    "inv",
    "solve",
    "det",
    "slogdet",
    "cholesky",
    "eigh",
    "eigvalsh",
    "qr",
    "svd",
    "svdvals",
    "pinv",
    "lstsq",
    "norm, nuc",
    "vector_norm, 3",
    "eig",
    "eigvals",
]


def _as_one_output(function: Callable[..., Any]) -> Callable[..., Any]:
    """gradgradcheck takes one output: several are summed as Re(w · sum(results)) with fixed weights."""

    def one(*args: Any) -> Any:
        result = function(*args)
        if not isinstance(result, tuple):
            return result
        total = 0.0
        for k, item in enumerate(result):
            total = total + np.sum(item * (0.7 - 0.3j) ** k).real
        return total

    return one


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_complex_second_derivatives_match_finite_differences(name):
    function, build = CASES[name]
    arrays = build(np.random.default_rng(11), (), 3, 2, 2)
    assert tape.gradgradcheck(_as_one_output(function), *arrays)


def test_second_derivatives_of_eig_of_a_real_matrix():
    a = real_with_complex_pair(np.random.default_rng(2), ())
    assert tape.gradgradcheck(
        lambda x: np.sum(np.abs(np.linalg.eig(x)[1]) ** 3 + np.linalg.eig(x)[0] ** 2).real, a
    )
    assert tape.gradgradcheck(lambda x: np.linalg.eigvals(x), a)


# -- against PyTorch --------------------------------------------------------------------------------------
# name: (tape's real loss, PyTorch's, the inputs)
RNG = np.random.default_rng(17)
A = invertible(RNG, (2,), 3)
H = hermitian_with_gaps(RNG, (2,), 3)
P = positive_definite(RNG, (), 3)
G = diagonalizable(RNG, (2,), 3)
R = real_with_complex_pair(RNG, ())
TALL = with_singular_values(RNG, (), 4, 3)
B = complex_normal(RNG, (2, 3, 2))


SINGULAR_VALUE_WEIGHTS = np.array([1.0, -0.5, 2.0])


def _weighted(x: Any) -> Any:
    return x * SINGULAR_VALUE_WEIGHTS[: x.shape[-1]]


TORCH = {
    "vdot": (
        lambda a, b: np.abs(np.vdot(a, b)) ** 2,
        lambda t, a, b: t.vdot(a.flatten(), b.flatten()).abs() ** 2,
        (A[0], B[0, :, :1].repeat(3, axis=1)),
    ),
    "vecdot, matvec, vecmat": (
        lambda a, b: np.sum(
            np.abs(
                np.vecdot(a, np.expand_dims(b[..., 0], -2))
                + np.matvec(a, b[..., 1])
                + np.vecmat(b[..., 0], a)
            )
            ** 2
        ),
        lambda t, a, b: (
            (
                t.linalg.vecdot(a, b[..., 0].unsqueeze(-2))
                + (a @ b[..., 1:]).squeeze(-1)
                + (b[..., 0:1].conj().mT @ a).squeeze(-2)
            )
            .abs()
            .pow(2)
            .sum()
        ),
        (A, B),
    ),
    "einsum, kron": (
        lambda a, b: (
            np.sum(np.real(np.einsum("bij,bjk->bik", a, b) ** 2)) + np.sum(np.abs(np.kron(a[0], b[0])))
        ),
        lambda t, a, b: (t.einsum("bij,bjk->bik", a, b) ** 2).real.sum() + t.kron(a[0], b[0]).abs().sum(),
        (A, B),
    ),
    "inv, solve, det": (
        lambda a, b: (
            np.sum(np.abs(np.linalg.inv(a)) ** 2)
            + np.sum(np.real(np.linalg.solve(a, b)))
            + np.sum(np.imag(np.linalg.det(a)))
        ),
        lambda t, a, b: (
            t.linalg.inv(a).abs().pow(2).sum() + t.linalg.solve(a, b).real.sum() + t.linalg.det(a).imag.sum()
        ),
        (A, B),
    ),
    "slogdet": (
        lambda a: (
            np.sum(np.real(np.linalg.slogdet(a)[0]) - 2 * np.imag(np.linalg.slogdet(a)[0]))
            + np.sum(np.linalg.slogdet(a)[1] ** 2)
        ),
        lambda t, a: (
            (t.linalg.slogdet(a)[0].real - 2 * t.linalg.slogdet(a)[0].imag).sum()
            + (t.linalg.slogdet(a)[1] ** 2).sum()
        ),
        (A,),
    ),
    "svd": (
        lambda a: (
            np.sum(_vectors_cubed(np.linalg.svd(a, full_matrices=False)[0]))
            + np.sum(_weighted(np.linalg.svd(a, full_matrices=False)[1]))
            + np.sum(_vectors_cubed(np.linalg.svd(a)[2]))
        ),
        lambda t, a: (
            t.linalg.svd(a, full_matrices=False)[0].abs().pow(3).sum()
            + (t.linalg.svd(a, full_matrices=False)[1] * t.tensor([1.0, -0.5, 2.0], dtype=t.float64)).sum()
            + t.linalg.svd(a)[2].abs().pow(3).sum()
        ),
        (A,),
    ),
    "svd, tall": (
        lambda a: np.sum(_vectors_cubed(np.linalg.svd(a, full_matrices=False)[0])),
        lambda t, a: t.linalg.svd(a, full_matrices=False)[0].abs().pow(3).sum(),
        (TALL,),
    ),
    "pinv, norms": (
        lambda a: (
            np.sum(np.abs(np.linalg.pinv(a)) ** 2)
            + np.linalg.norm(a, "nuc")
            + np.linalg.norm(a, 2)
            + np.linalg.norm(a, 1)
            + np.linalg.vector_norm(a, ord=3)
        ),
        lambda t, a: (
            t.linalg.pinv(a).abs().pow(2).sum()
            + t.linalg.matrix_norm(a, "nuc")
            + t.linalg.matrix_norm(a, 2)
            + t.linalg.matrix_norm(a, 1)
            + t.linalg.vector_norm(a, ord=3)
        ),
        (TALL,),
    ),
    "qr": (
        lambda a: (
            np.sum(np.abs(np.linalg.qr(a)[0] + 1) ** 2) + np.sum(np.real(np.linalg.qr(a)[1] * (1 - 2j)))
        ),
        lambda t, a: (t.linalg.qr(a)[0] + 1).abs().pow(2).sum() + (t.linalg.qr(a)[1] * (1 - 2j)).real.sum(),
        (TALL,),
    ),
    "eig": (
        lambda a: (
            np.sum(_vectors_cubed(np.linalg.eig(a)[1]))
            + np.sum(np.real(np.linalg.eig(a)[0]) * np.imag(np.linalg.eig(a)[0]))
        ),
        lambda t, a: (
            t.linalg.eig(a)[1].abs().pow(3).sum() + (t.linalg.eig(a)[0].real * t.linalg.eig(a)[0].imag).sum()
        ),
        (G,),
    ),
    "eig of a real matrix": (
        lambda a: np.sum(_vectors_cubed(np.linalg.eig(a)[1])) + np.sum(np.abs(np.linalg.eig(a)[0] - 1j)),
        lambda t, a: t.linalg.eig(a)[1].abs().pow(3).sum() + (t.linalg.eig(a)[0] - 1j).abs().sum(),
        (R,),
    ),
    "eigvals": (
        lambda a: np.sum(np.abs(np.linalg.eigvals(a) - 0.5) ** 3),
        lambda t, a: (t.linalg.eigvals(a) - 0.5).abs().pow(3).sum(),
        (G,),
    ),
}


@pytest.mark.parametrize("name", TORCH)
def test_complex_gradients_match_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs, arrays = TORCH[name]
    leaves = [tape.tensor(x, requires_grad=True) for x in arrays]
    ours(*leaves).backward()
    torch_leaves = [torch.tensor(x, requires_grad=True) for x in arrays]
    theirs(torch, *torch_leaves).backward()
    for leaf, torch_leaf in zip(leaves, torch_leaves, strict=True):
        np.testing.assert_allclose(leaf.grad, torch_leaf.grad.numpy(), rtol=1e-9, atol=1e-10)


def _hermitian_part(g: np.ndarray) -> np.ndarray:
    return (g + _mH(g)) / 2


# tape's gradient of cholesky/eigh/eigvalsh is that of numpy's function of one triangle; PyTorch's is
# Hermitian. They agree on every Hermitian direction, i.e. their Hermitian parts are equal.
TORCH_HERMITIAN = {
    "cholesky": (
        lambda linalg, a: np.abs(linalg.cholesky(a)) ** 2 * np.arange(3.0),
        lambda t, a: t.linalg.cholesky(a).abs() ** 2 * t.arange(3.0, dtype=t.float64),
        P,
    ),
    "cholesky, upper": (
        lambda linalg, a: np.abs(linalg.cholesky(a, upper=True)) ** 3,
        lambda t, a: t.linalg.cholesky(a, upper=True).abs() ** 3,
        P,
    ),
    "eigh": (
        lambda linalg, a: _vectors_cubed(linalg.eigh(a)[1]) + np.expand_dims(linalg.eigh(a)[0], -2) ** 3,
        lambda t, a: t.linalg.eigh(a)[1].abs() ** 3 + t.linalg.eigh(a)[0].unsqueeze(-2) ** 3,
        H,
    ),
    "eigvalsh, U": (
        lambda linalg, a: linalg.eigvalsh(a, UPLO="U") ** 2,
        lambda t, a: t.linalg.eigvalsh(a, UPLO="U") ** 2,
        H,
    ),
}


@pytest.mark.parametrize("name", TORCH_HERMITIAN)
def test_hermitian_decompositions_agree_with_torch_on_hermitian_directions(name):
    torch = pytest.importorskip("torch")
    ours, theirs, array = TORCH_HERMITIAN[name]
    leaf = tape.tensor(array, requires_grad=True)
    np.sum(ours(np.linalg, leaf)).backward()
    torch_leaf = torch.tensor(array, requires_grad=True)
    theirs(torch, torch_leaf).sum().backward()
    np.testing.assert_allclose(
        _hermitian_part(leaf.grad), _hermitian_part(torch_leaf.grad.numpy()), rtol=1e-9, atol=1e-10
    )


# -- eig: numpy's results, the documented conventions -------------------------------------------------------
def test_eig_of_a_real_matrix_with_real_eigenvalues_is_real_as_numpys():
    a = np.array([[2.0, 1.0], [0.5, -1.0]])
    values, vectors = np.linalg.eig(tape.tensor(a, requires_grad=True))
    expected = np.linalg.eig(a)
    assert values.dtype == np.float64 and vectors.dtype == np.float64
    np.testing.assert_array_equal(values.data, expected.eigenvalues)
    np.testing.assert_array_equal(vectors.data, expected.eigenvectors)
    assert tape.gradcheck(lambda x: (np.linalg.eig(x)[0], np.linalg.eig(x)[1] ** 2), a)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, *COMPLEX_DTYPES])
def test_eig_keeps_numpys_precision_and_the_gradient_keeps_the_inputs(dtype):
    a = real_with_complex_pair(np.random.default_rng(4), ()).astype(dtype)
    x = tape.tensor(a, requires_grad=True)
    values, vectors = np.linalg.eig(x)
    expected = np.linalg.eig(a)
    assert values.dtype == expected.eigenvalues.dtype and vectors.dtype == expected.eigenvectors.dtype
    np.sum(np.abs(values) + np.abs(vectors) ** 2).backward()
    assert x.grad.dtype == np.dtype(dtype)


def test_the_eigenvalues_gradient_is_the_same_through_eig_and_eigvals():
    a = diagonalizable(np.random.default_rng(8), (2,), 3)
    weights = np.array([1 - 1j, 0.5j, 2.0])
    grads = [
        tape.grad(lambda x, f=f: np.sum(np.real(weights * f(x))))(a)
        for f in (np.linalg.eigvals, lambda x: np.linalg.eig(x)[0])
    ]
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)


# -- errors -------------------------------------------------------------------------------------------------
# Losses that depend on the phases of complex vectors (numpy's LAPACK makes each vector's largest entry
# real; other entries' real and imaginary parts turn with the phase): no gradient, as in PyTorch.
@pytest.mark.parametrize("name", ["eig", "eigh", "svd"])
def test_a_loss_that_depends_on_the_vectors_phases_is_refused_naming_the_op(name):
    calls = {
        "eig": lambda a: np.real(np.linalg.eig(a)[1]),
        "eigh": lambda a: np.imag(np.linalg.eigh(a + _mH(a))[1]),
        "svd": lambda a: np.imag(np.linalg.svd(a)[0]),
    }
    z = tape.tensor(diagonalizable(np.random.default_rng(6), (), 3), requires_grad=True)
    loss = np.sum(calls[name](z) * np.arange(9.0).reshape(3, 3))
    with pytest.raises(ValueError, match=rf"^{name}: the loss depends on the phases of the complex"):
        loss.backward()


def test_a_loss_that_ignores_the_phases_has_a_gradient_even_when_vectors_are_complex():
    z = diagonalizable(np.random.default_rng(6), (), 3)
    assert tape.gradcheck(lambda a: (lambda u, s, vh: np.abs(u @ vh))(*np.linalg.svd(a)), z)
    assert tape.gradcheck(
        lambda a: (lambda v: v @ np.diag(np.arange(3.0)) @ _mH(v))(np.linalg.eigh(a + _mH(a))[1]), z
    )


@pytest.mark.parametrize("call", [np.linalg.eig, np.linalg.eigvals])
def test_eig_of_a_non_square_matrix_is_refused_naming_the_op(call):
    x = tape.tensor(np.ones((2, 3), dtype=complex), requires_grad=True)
    with pytest.raises(np.linalg.LinAlgError, match=re.escape(f"{call.__name__}: expected a square matrix")):
        call(x)


def test_eig_of_a_defective_matrix_has_no_finite_gradient():
    """Repeated eigenvalues: the gradient is undefined (as the docstring says); it is not silently finite."""
    x = tape.tensor(np.array([[1.0, 1.0], [0.0, 1.0]]), requires_grad=True)
    values, vectors = np.linalg.eig(x)
    with np.errstate(all="ignore"):
        try:
            np.sum(np.abs(vectors) ** 2 + values).backward()
        except np.linalg.LinAlgError as error:
            assert "eig" in str(error)
            return
    assert not np.all(np.isfinite(x.grad)) or np.max(np.abs(x.grad)) > 1e6
