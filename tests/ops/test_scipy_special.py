"""ops/scipy_special.py and tape/scipy/special.py: scipy.special on tensors, to second order.

Every op is checked against scipy's own values and dtypes on arrays, by ``tape.gradcheck`` and
``tape.gradgradcheck`` in float64 and float32 inside its domain and away from its singularities, and, where
PyTorch has the function, against ``torch.special``'s first and second derivatives. ``import tape`` must
not import scipy: the ops register when a scipy ufunc first meets a tensor.
"""

from __future__ import annotations

import doctest
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

sc = pytest.importorskip("scipy.special")

import tape  # noqa: E402
import tape.scipy.special as tsc  # noqa: E402
from tape.ops import scipy_special  # noqa: E402
from tests.ops.opcheck import check_op  # noqa: E402
from tests.strategies import FLOAT_DTYPES, arrays, broadcastable_shapes, nonempty_shapes  # noqa: E402


class Domain(NamedTuple):
    low: float
    high: float
    away_from: float | None = None


class Case(NamedTuple):
    """``make(*drawn)`` gives the function to check and its inputs, from arrays drawn in ``domains``;
    ``differentiated`` tells which of the drawn arrays are differentiated (the others are parameters)."""

    name: str
    make: Callable[..., tuple[Callable[..., Any], tuple[np.ndarray, ...]]]
    domains: tuple[Domain, ...]
    keeps_dtype: bool = True


def ufunc_case(name: str, *domains: Domain) -> Case:
    ufunc = getattr(sc, name)
    return Case(name, lambda *drawn: (ufunc, drawn), domains)


def in_x_only(name: str, a: Domain, x: Domain) -> Case:
    """gammainc(a, x) and gammaincc(a, x): a is a parameter, not differentiated."""
    ufunc = getattr(sc, name)
    return Case(name, lambda a_values, x_values: (partial(ufunc, a_values), (x_values,)), (a, x))


def polygamma_case(n: int) -> Case:
    return Case(
        f"polygamma_{n}",
        lambda x: (partial(tsc.polygamma, n), (x,)),
        (Domain(0.5, 3.0),),
        keeps_dtype=False,  # scipy's polygamma gives float64, whatever x's dtype
    )


CASES = [
    ufunc_case("gammaln", Domain(0.5, 4.0)),
    ufunc_case("digamma", Domain(0.5, 4.0)),
    polygamma_case(0),
    polygamma_case(1),
    polygamma_case(2),
    ufunc_case("betaln", Domain(0.5, 3.0), Domain(0.5, 3.0)),
    in_x_only("gammainc", Domain(0.5, 3.0), Domain(0.3, 3.0)),
    in_x_only("gammaincc", Domain(0.5, 3.0), Domain(0.3, 3.0)),
    ufunc_case("expit", Domain(-3.0, 3.0)),
    ufunc_case("logit", Domain(0.1, 0.9)),
    ufunc_case("log_expit", Domain(-3.0, 3.0)),
    ufunc_case("xlogy", Domain(-2.0, 2.0, away_from=0.0), Domain(0.5, 2.0)),
    ufunc_case("xlog1py", Domain(-2.0, 2.0, away_from=0.0), Domain(-0.5, 2.0)),
    ufunc_case("entr", Domain(0.2, 2.0)),
    ufunc_case("rel_entr", Domain(0.2, 2.0), Domain(0.2, 2.0)),
    ufunc_case("kl_div", Domain(0.2, 2.0), Domain(0.2, 2.0)),
    ufunc_case("erf", Domain(-2.0, 2.0)),
    ufunc_case("erfc", Domain(-2.0, 2.0)),
    ufunc_case("erfinv", Domain(-0.8, 0.8)),
    ufunc_case("erfcinv", Domain(0.2, 1.8)),
    ufunc_case("erfcx", Domain(-1.5, 3.0)),
    ufunc_case("ndtr", Domain(-3.0, 3.0)),
    ufunc_case("log_ndtr", Domain(-5.0, 3.0)),
    ufunc_case("ndtri", Domain(0.1, 0.9)),
    ufunc_case("i0", Domain(-3.0, 3.0)),
    ufunc_case("i0e", Domain(-3.0, 3.0, away_from=0.0)),  # |x| has a kink at 0
    ufunc_case("i1", Domain(-3.0, 3.0)),
    ufunc_case("i1e", Domain(-3.0, 3.0, away_from=0.0)),
]
IDS = [case.name for case in CASES]


def draw_inputs(data: st.DataObject, case: Case, dtype: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    if len(case.domains) == 1:
        shapes: tuple[tuple[int, ...], ...] = (data.draw(nonempty_shapes),)
    else:
        shapes = data.draw(broadcastable_shapes(len(case.domains), min_side=1))
    drawn = [
        data.draw(arrays(shape, dtype, domain.low, domain.high, away_from=domain.away_from))
        for shape, domain in zip(shapes, case.domains, strict=True)
    ]
    return case.make(*drawn)


def test_every_registered_ufunc_has_a_case():
    checked = {getattr(sc, case.name) for case in CASES if hasattr(sc, case.name)}
    assert set(scipy_special.REGISTERED) == checked
    assert all(ufunc in tape.registry.UFUNCS for ufunc in scipy_special.REGISTERED)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
@given(data=st.data())
def test_values_dtypes_and_first_derivatives(case: Case, dtype: Any, data: st.DataObject):
    function, inputs = draw_inputs(data, case, dtype)
    check_op(function, *inputs, keeps_dtype=case.keeps_dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
@given(data=st.data())
def test_second_derivatives(case: Case, dtype: Any, data: st.DataObject):
    function, inputs = draw_inputs(data, case, dtype)
    assert tape.gradgradcheck(function, *inputs)


@pytest.mark.parametrize("name", ["gammaln", "erf", "i1", "xlogy"])
def test_integer_inputs_give_scipys_dtype(name: str):
    ufunc = getattr(sc, name)
    inputs = (np.array([1, 2, 3]),) * ufunc.nin
    result = ufunc(*(tape.tensor(x) for x in inputs))
    expected = ufunc(*inputs)
    assert result.dtype == expected.dtype == np.float64
    np.testing.assert_array_equal(result.data, expected)


def test_bessel_derivatives_at_zero_are_their_limits():
    x = tape.tensor([0.0, -0.0], requires_grad=True)
    (sc.i1(x) + sc.i1e(x)).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    derivative = tape.grad(lambda t: sc.i1(t).sum() + sc.i1e(t).sum())
    second = tape.grad(lambda t: derivative(t).sum())(np.array([0.0, 1.0]))
    assert np.isfinite(second).all()


def test_log_ndtr_gradient_is_finite_far_in_the_tail():
    for dtype in FLOAT_DTYPES:
        x = tape.tensor(np.array([-40.0, -10.0, 10.0, 40.0], dtype=dtype), requires_grad=True)
        sc.log_ndtr(x).sum().backward()
        assert x.grad.dtype == dtype
        # The inverse Mills ratio phi(x) / Phi(x) tends to -x as x -> -inf, and to 0 as x -> inf.
        np.testing.assert_allclose(x.grad[:2], [40.025, 10.098], rtol=1e-3)
        assert 0.0 <= x.grad[2] < 1e-20 and x.grad[3] == 0.0


# -- refusals and names --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gammainc", "gammaincc"])
def test_first_argument_of_gammainc_is_refused_if_it_requires_grad(name: str):
    a = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(
        TypeError, match=rf"scipy\.special\.{name}: .* differentiable in its second argument x"
    ):
        getattr(sc, name)(a, np.array([0.5, 1.5]))
    with tape.no_grad():
        np.testing.assert_array_equal(getattr(sc, name)(a, 0.5).data, getattr(sc, name)([1.0, 2.0], 0.5))
    x = tape.tensor([0.5, 1.5], requires_grad=True)
    getattr(sc, name)(a.detach(), x).sum().backward()
    assert x.grad is not None


def test_polygamma_order_is_refused_if_it_requires_grad():
    with pytest.raises(TypeError, match=r"scipy\.special\.polygamma: .* differentiable in x only"):
        tsc.polygamma(tape.tensor(1.0, requires_grad=True), np.array([1.0]))


def test_an_unsupported_scipy_ufunc_is_named_as_scipys():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"^scipy\.special\.jv is not supported on tape tensors"):
        sc.jv(1.0, x)
    with pytest.raises(TypeError, match=r"^scipy\.special\.xlogy\.outer is not supported"):
        sc.xlogy.outer(x, x)
    with pytest.raises(TypeError, match=r"^numpy\.spacing is not supported on tape tensors"):
        np.spacing(x)


def test_import_tape_does_not_import_scipy_and_registration_is_lazy():
    code = (
        "import sys, numpy as np, tape\n"
        "assert 'scipy' not in sys.modules\n"
        "import scipy.special as sc\n"
        "assert sc.gammaln not in tape.registry.UFUNCS\n"
        "x = tape.tensor([1.5], requires_grad=True)\n"
        "sc.gammaln(x).sum().backward()\n"
        "assert np.allclose(x.grad, sc.digamma(1.5)), x.grad\n"
        "assert 'tape.ops.scipy_special' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- tape.scipy.special's twins of scipy's plain functions ---------------------------------------------
def test_scipys_own_logsumexp_refuses_a_tensor_and_points_to_tape_scipy_special():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(
        TypeError, match=r"converted to a plain numpy array while recording.*tape\.scipy\.special"
    ):
        sc.logsumexp(x)
    with pytest.raises(TypeError, match=r"tape\.scipy\.special"):
        sc.polygamma(1, x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)])
@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
def test_twins_agree_with_scipy_and_pass_gradchecks(name: str, axis: Any, dtype: Any):
    x = np.random.default_rng(3).uniform(-2.0, 2.0, (3, 4)).astype(dtype)
    ours, theirs = getattr(tsc, name), getattr(sc, name)
    result = ours(tape.tensor(x), axis=axis)
    expected = np.asarray(theirs(x, axis=axis))
    assert result.dtype == expected.dtype == dtype
    assert result.shape == expected.shape
    np.testing.assert_allclose(result.data, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)
    function = partial(ours, axis=axis)
    assert tape.gradcheck(function, x)
    assert tape.gradgradcheck(function, x)


@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_with_weights_agrees_with_scipy(keepdims: bool):
    rng = np.random.default_rng(4)
    x, b = rng.uniform(-2.0, 2.0, (3, 4)), rng.uniform(0.5, 2.0, (4,))
    result = tsc.logsumexp(tape.tensor(x), axis=1, b=tape.tensor(b), keepdims=keepdims)
    np.testing.assert_allclose(result.data, sc.logsumexp(x, axis=1, b=b, keepdims=keepdims), rtol=1e-14)
    function = partial(tsc.logsumexp, axis=1, keepdims=keepdims)
    assert tape.gradcheck(lambda x, b: function(x, b=b), x, b)
    assert tape.gradgradcheck(lambda x, b: function(x, b=b), x, b)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_with_sign_is_scipys_and_differentiable(axis, keepdims):
    sc = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(3)
    x, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))  # weights of both signs
    log_magnitude, sign = tsc.logsumexp(tape.tensor(x), axis=axis, b=b, keepdims=keepdims, return_sign=True)
    expected = sc.logsumexp(x, axis=axis, b=b, keepdims=keepdims, return_sign=True)
    np.testing.assert_allclose(log_magnitude.data, expected[0], rtol=1e-13)
    np.testing.assert_array_equal(sign, expected[1])
    function = partial(tsc.logsumexp, axis=axis, keepdims=keepdims, return_sign=True)
    assert tape.gradcheck(lambda x, b: function(x, b=b)[0], x, b)
    assert tape.gradgradcheck(lambda x, b: function(x, b=b)[0], x, b)


def test_the_ufuncs_are_scipys_own_objects():
    for name in ("gammaln", "digamma", "psi", "erf", "xlogy", "i1e", "kl_div"):
        assert getattr(tsc, name) is getattr(sc, name)


def test_docstring_examples_of_tape_scipy_special():
    assert doctest.testmod(tsc, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


# -- PyTorch's torch.special ---------------------------------------------------------------------------
TORCH_UNARY = {
    "gammaln": (0.5, 4.0),
    "digamma": (0.5, 4.0),
    "expit": (-3.0, 3.0),
    "logit": (0.1, 0.9),
    "erf": (-2.0, 2.0),
    "erfc": (-2.0, 2.0),
    "erfinv": (-0.8, 0.8),
    "erfcx": (-1.5, 3.0),
    "ndtr": (-3.0, 3.0),
    "log_ndtr": (-6.0, 3.0),
    "ndtri": (0.1, 0.9),
    "i0": (-3.0, 3.0),
    "i0e": (0.2, 3.0),
    "i1": (-3.0, 3.0),
    "i1e": (0.2, 3.0),
    "entr": (0.2, 2.0),
}


def _first_and_second(function: Callable[..., Any], *inputs: np.ndarray) -> list[np.ndarray]:
    """The gradient of ``sum(f)`` in each input, and the gradient of the sum of those gradients."""
    leaves = [tape.tensor(x, requires_grad=True) for x in inputs]
    firsts = tape.gradients(function(*leaves).sum(), leaves, create_graph=True)
    seconds = tape.gradients(sum(first.sum() for first in firsts), leaves)
    return [g.numpy() if isinstance(g, tape.Tensor) else g for g in (*firsts, *seconds)]


def _torch_first_and_second(function: Callable[..., Any], *inputs: np.ndarray) -> list[np.ndarray]:
    import torch

    leaves = [torch.tensor(x, requires_grad=True) for x in inputs]
    firsts = torch.autograd.grad(function(*leaves).sum(), leaves, create_graph=True)
    seconds = torch.autograd.grad(sum(first.sum() for first in firsts), leaves)
    return [g.detach().numpy() for g in (*firsts, *seconds)]


TORCH_CASES = [
    *((name, getattr(sc, name), name, (bounds,)) for name, bounds in TORCH_UNARY.items()),
    ("polygamma_2", partial(tsc.polygamma, 2), "polygamma", ((0.5, 3.0),)),
    ("xlogy", sc.xlogy, "xlogy", ((-2.0, 2.0), (0.5, 2.0))),
    ("xlog1py", sc.xlog1py, "xlog1py", ((-2.0, 2.0), (-0.5, 2.0))),
]


@pytest.mark.parametrize(
    ("name", "ours", "torch_name", "bounds"), TORCH_CASES, ids=[c[0] for c in TORCH_CASES]
)
def test_values_and_derivatives_agree_with_torch_special(name, ours, torch_name, bounds):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.special, torch_name)
    if torch_name == "polygamma":
        theirs = partial(theirs, 2)
    rng = np.random.default_rng(5)
    inputs = [rng.uniform(low, high, (7,)) for low, high in bounds]
    np.testing.assert_allclose(
        ours(*inputs), theirs(*(torch.tensor(x) for x in inputs)).numpy(), rtol=1e-12, atol=1e-14
    )
    # rtol 1e-8: PyTorch's trigamma (gammaln's second derivative) is off by a few 1e-10; scipy's is not.
    for mine, torchs in zip(
        _first_and_second(ours, *inputs), _torch_first_and_second(theirs, *inputs), strict=True
    ):
        np.testing.assert_allclose(mine, torchs, rtol=1e-8, atol=1e-12)
