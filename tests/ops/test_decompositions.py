"""ops/decompositions.py: inv, solve, det, slogdet, cholesky, eigh, eigvalsh, qr, svd, svdvals, pinv, lstsq,
norm, vector_norm, matrix_norm, cond and matrix_rank on single matrices and stacks of them (up to two batch
axes, size-0 included), checked against numpy's forward and against finite differences in float64 and
float32; second derivatives against finite differences of the gradient and by tape.gradgradcheck (float64
for every op, norm order and output; float32 for a few); the documented conventions (the gradient of
cholesky/eigh/eigvalsh on the triangle numpy reads, zero on the other, compared with PyTorch's symmetric
one; zero subgradients; tied extremes); and the errors.

Inputs are kept where the gradient is defined: invertible matrices are diagonally dominant, symmetric
matrices and the matrices given to svd are built from random orthonormal vectors and chosen values with
gaps between them (at least 0.3 apart, singular values at least 0.9 from zero)."""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tape
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES

#: Leading batch axes: none, one or two, some of length zero.
batch_shapes = hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)
#: Matrix sides, with the empty matrix that numpy's linalg accepts.
sides = st.integers(0, 4)


def _mT(x: Any) -> Any:
    return np.swapaxes(x, -1, -2)


def symmetrized(a: Any) -> Any:
    """(a + aᵀ) / 2: makes a function of one triangle a function of the whole matrix (see the module
    docstring of ops/decompositions.py), so finite differences in any entry agree with the gradient."""
    return (a + _mT(a)) / 2


def seeded(build: Any) -> st.SearchStrategy[np.ndarray]:
    return st.integers(0, 2**32 - 1).map(lambda seed: build(np.random.default_rng(seed)))


def orthonormal_columns(rng: np.random.Generator, batch: tuple[int, ...], m: int, k: int) -> np.ndarray:
    """A (..., m, k) array with orthonormal columns (k <= m), random."""
    return np.linalg.qr(rng.standard_normal((*batch, m, k)))[0]


def spread_values(rng: np.random.Generator, batch: tuple[int, ...], k: int, low: float) -> np.ndarray:
    """k values per batch entry, from ``low`` upwards, at least 0.3 apart, in random order."""
    steps = np.argsort(rng.random((*batch, k)), axis=-1)
    return low + 0.5 * steps + rng.uniform(-0.1, 0.1, (*batch, k))


def invertible_matrices(rng: np.random.Generator, batch: tuple[int, ...], n: int, dtype: Any) -> np.ndarray:
    """Strictly diagonally dominant matrices (nonsingular, modest condition number), rows of either sign,
    so determinants of both signs occur."""
    a = rng.uniform(-1, 1, (*batch, n, n)) + n * np.eye(n)
    signs = rng.choice([-1.0, 1.0], size=(*batch, n, 1))
    return (signs * a).astype(dtype)


def positive_definite_matrices(
    rng: np.random.Generator, batch: tuple[int, ...], n: int, dtype: Any
) -> np.ndarray:
    """B Bᵀ + n I: symmetric positive definite."""
    b = rng.uniform(-1, 1, (*batch, n, n))
    return symmetrized(b @ _mT(b) + n * np.eye(n)).astype(dtype)


def symmetric_matrices_with_gaps(
    rng: np.random.Generator, batch: tuple[int, ...], n: int, dtype: Any
) -> np.ndarray:
    """Q diag(w) Qᵀ with Q random orthogonal and eigenvalues w of both signs at least 0.3 apart."""
    q = orthonormal_columns(rng, batch, n, n)
    values = spread_values(rng, batch, n, low=-0.25 * n)
    return symmetrized((q * np.expand_dims(values, -2)) @ _mT(q)).astype(dtype)


def matrices_with_singular_values(
    rng: np.random.Generator, batch: tuple[int, ...], m: int, n: int, dtype: Any
) -> np.ndarray:
    """U diag(s) Vᵀ with random orthonormal U, V and singular values at least 0.9, at least 0.3 apart."""
    k = min(m, n)
    u, v = orthonormal_columns(rng, batch, m, k), orthonormal_columns(rng, batch, n, k)
    values = spread_values(rng, batch, k, low=1.0)
    return ((u * np.expand_dims(values, -2)) @ _mT(v)).astype(dtype)


def leading_block_invertible_matrices(
    rng: np.random.Generator, batch: tuple[int, ...], m: int, n: int, dtype: Any
) -> np.ndarray:
    """(..., m, n) matrices whose leading min(m, n) square block is diagonally dominant (full rank)."""
    k = min(m, n)
    return (rng.uniform(-1, 1, (*batch, m, n)) + (k + 1) * np.eye(m, n)).astype(dtype)


def distinct_magnitude_values(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Values of either sign whose magnitudes are all distinct (0.05 apart) and at least 0.15: no ties
    for the inf norms and no zero where |x| has a kink."""
    size = int(np.prod(shape))
    magnitudes = 0.2 + 0.1 * rng.permutation(size) + rng.uniform(-0.02, 0.02, size)
    return (rng.choice([-1.0, 1.0], size) * magnitudes).reshape(shape).astype(dtype)


def with_ignored_triangle_scrambled(rng: np.random.Generator, a: np.ndarray, upper_read: bool) -> np.ndarray:
    """``a`` with random values in the triangle that eigh/eigvalsh/cholesky do not read (the strictly upper
    one when they read the lower): a non-symmetric input on which numpy computes the same as on ``a``."""
    noise = rng.uniform(-3, 3, a.shape).astype(a.dtype)
    return a + (np.tril(noise, -1) if upper_read else np.triu(noise, 1))


def invertible(batch: tuple[int, ...], n: int, dtype: Any) -> st.SearchStrategy[np.ndarray]:
    return seeded(lambda rng: invertible_matrices(rng, batch, n, dtype))


def positive_definite(batch: tuple[int, ...], n: int, dtype: Any) -> st.SearchStrategy[np.ndarray]:
    return seeded(lambda rng: positive_definite_matrices(rng, batch, n, dtype))


def symmetric_with_gaps(batch: tuple[int, ...], n: int, dtype: Any) -> st.SearchStrategy[np.ndarray]:
    return seeded(lambda rng: symmetric_matrices_with_gaps(rng, batch, n, dtype))


def with_singular_values(batch: tuple[int, ...], m: int, n: int, dtype: Any) -> st.SearchStrategy[np.ndarray]:
    return seeded(lambda rng: matrices_with_singular_values(rng, batch, m, n, dtype))


def leading_block_invertible(batch: tuple[int, ...], m: int, n: int, dtype: Any) -> st.SearchStrategy[Any]:
    return seeded(lambda rng: leading_block_invertible_matrices(rng, batch, m, n, dtype))


def distinct_magnitudes(shape: tuple[int, ...], dtype: Any) -> st.SearchStrategy[np.ndarray]:
    return seeded(lambda rng: distinct_magnitude_values(rng, shape, dtype))


def second_derivatives_match_finite_differences(f: Any, *arrays: np.ndarray, seed: int = 0) -> None:
    """``tape.hvp`` of ⟨w, f⟩ (a gradient of a gradient, through the VJPs run with create_graph) against
    central differences of ``tape.grad`` of ⟨w, f⟩ along a random direction, for every argument."""
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal(np.shape(f(*arrays)))

    def loss(*xs: Any) -> Any:
        return np.sum(weights * f(*xs))

    directions = tuple(rng.standard_normal(np.shape(x)) for x in arrays)
    hessian_directions = tape.hvp(loss, arrays, directions)
    gradient = tape.grad(loss, argnums=tuple(range(len(arrays))))
    eps = 1e-6
    plus = gradient(*(x + eps * v for x, v in zip(arrays, directions, strict=True)))
    minus = gradient(*(x - eps * v for x, v in zip(arrays, directions, strict=True)))
    for analytic, up, down in zip(hessian_directions, plus, minus, strict=True):
        numeric = (up - down) / (2 * eps)
        scale = max(1.0, float(np.abs(numeric).max(initial=0.0)))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6 * scale)


def gradient_of(f: Any, x: np.ndarray, cotangent: np.ndarray | None = None) -> np.ndarray:
    leaf = tape.tensor(x, requires_grad=True)
    out = f(leaf)
    out.backward(np.ones(out.shape, out.dtype) if cotangent is None else cotangent)
    return leaf.grad


# -- inv, det, slogdet -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(batch=batch_shapes, n=sides, data=st.data())
def test_inv_det_slogdet(dtype, batch, n, data):
    a = data.draw(invertible(batch, n, dtype))
    check_op(np.linalg.inv, a)
    check_op(np.linalg.det, a)
    check_op(lambda a: np.linalg.slogdet(a).logabsdet, a)
    check_op(lambda a: np.linalg.slogdet(a)[0], a)  # the sign: locally constant, so its gradient is zero
    assert tape.gradcheck(lambda a: tuple(np.linalg.slogdet(a)), a)


def test_slogdet_returns_sign_and_logabsdet_by_name_and_the_sign_has_no_gradient():
    a = np.array([[[1.0, 2.0], [3.0, 4.0]], [[2.0, 0.0], [0.0, 3.0]]])
    x = tape.tensor(a, requires_grad=True)
    result = np.linalg.slogdet(x)
    sign, _ = result
    expected = np.linalg.slogdet(a)
    np.testing.assert_array_equal(result.sign.data, expected.sign)
    np.testing.assert_array_equal(result.logabsdet.data, expected.logabsdet)
    np.sum(sign * 100.0).backward()
    np.testing.assert_array_equal(x.grad, np.zeros_like(a))


# -- solve -------------------------------------------------------------------------------------------------
@st.composite
def solve_shapes(draw: st.DrawFn, b_kind: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of a (a stack of) square matrices and of b: one vector, or matrices whose batch axes
    broadcast against a's (numpy 2 reads b as a vector only when it is 1-D)."""
    n, k = draw(sides), draw(st.integers(0, 3))
    a_batch, b_batch = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=0, max_side=3).map(
            lambda result: result.input_shapes
        )
    )
    return (*a_batch, n, n), ((n,) if b_kind == "vector" else (*b_batch, n, k))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("b_kind", ["vector", "matrix"])
@given(data=st.data())
def test_solve(b_kind, dtype, data):
    a_shape, b_shape = data.draw(solve_shapes(b_kind))
    a = data.draw(invertible(a_shape[:-2], a_shape[-1], dtype))
    b = data.draw(seeded(lambda rng: rng.uniform(-2, 2, b_shape).astype(dtype)))
    check_op(np.linalg.solve, a, b)


@given(data=st.data())
def test_solve_with_float32_and_float64_operands_gives_float64_and_each_its_own_gradient(data):
    a_shape, b_shape = data.draw(solve_shapes("matrix"))
    a = data.draw(invertible(a_shape[:-2], a_shape[-1], np.float32))
    b = data.draw(seeded(lambda rng: rng.uniform(-2, 2, b_shape)))
    check_op(np.linalg.solve, a, b)


# -- cholesky ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("upper", [False, True])
@given(batch=batch_shapes, n=sides, data=st.data())
def test_cholesky_of_a_symmetrized_input(upper, dtype, batch, n, data):
    a = data.draw(positive_definite(batch, n, dtype))
    check_op(lambda a: np.linalg.cholesky(symmetrized(a), upper=upper), a)


# -- eigh, eigvalsh ----------------------------------------------------------------------------------------
# Each eigenvector is defined up to its sign, so the checks on eigenvectors go through functions that do
# not depend on the signs: the squares of their entries, and the matrix function V diag(w³) Vᵀ.
EIGH_FUNCTIONS = {
    "eigenvalues": lambda a, uplo: np.linalg.eigh(symmetrized(a), UPLO=uplo).eigenvalues,
    "eigvalsh": lambda a, uplo: np.linalg.eigvalsh(symmetrized(a), UPLO=uplo),
    "eigenvectors squared": lambda a, uplo: np.linalg.eigh(symmetrized(a), UPLO=uplo).eigenvectors ** 2,
    "V diag(w^3) Vt": lambda a, uplo: (lambda w, v: (v * np.expand_dims(w**3, -2)) @ _mT(v))(
        *np.linalg.eigh(symmetrized(a), UPLO=uplo)
    ),
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("uplo", ["L", "U"])
@pytest.mark.parametrize("function", EIGH_FUNCTIONS.values(), ids=EIGH_FUNCTIONS.keys())
@given(batch=batch_shapes, n=sides, data=st.data())
def test_eigh_on_well_separated_spectra(function, uplo, dtype, batch, n, data):
    a = data.draw(symmetric_with_gaps(batch, n, dtype))
    check_op(lambda a: function(a, uplo), a)


# -- one triangle read: cholesky, eigh, eigvalsh ----------------------------------------------------------
# numpy reads one triangle of the input (with the diagonal) and ignores the other, so on a non-symmetric
# input the function is F(tril(a) + tril(a, -1)ᵀ) (triu for the upper triangle). Its derivative in each
# entry, which gradcheck takes by perturbing that entry alone, is the gradient: zero on the ignored triangle.
ONE_TRIANGLE = {  # name: (the function, as numpy or torch code on their `linalg`; which triangle is read)
    "cholesky": (lambda linalg, a: linalg.cholesky(a), "lower"),
    "cholesky upper": (lambda linalg, a: linalg.cholesky(a, upper=True), "upper"),
    "eigvalsh L": (lambda linalg, a: linalg.eigvalsh(a, UPLO="L"), "lower"),
    "eigvalsh U": (lambda linalg, a: linalg.eigvalsh(a, UPLO="U"), "upper"),
    "eigh L, eigenvalues": (lambda linalg, a: linalg.eigh(a).eigenvalues, "lower"),
    "eigh U, eigenvalues": (lambda linalg, a: linalg.eigh(a, UPLO="U").eigenvalues, "upper"),
    # Each eigenvector is defined up to its sign: V diag(w³) Vᵀ and |v|² do not depend on it.
    "eigh L, V diag(w^3) Vt": (
        lambda linalg, a: (lambda w, v: (v * w[..., None, :] ** 3) @ v.swapaxes(-1, -2))(*linalg.eigh(a)),
        "lower",
    ),
    "eigh U, eigenvectors squared": (lambda linalg, a: linalg.eigh(a, UPLO="U").eigenvectors ** 2, "upper"),
}


def one_triangle_input(
    name: str, rng: np.random.Generator, batch: tuple[int, ...], n: int, dtype: Any
) -> Any:
    """A matrix whose read triangle is that of a positive definite matrix (cholesky) or of a symmetric one
    with gaps between its eigenvalues (eigh), and whose other triangle holds unrelated values."""
    build = positive_definite_matrices if name.startswith("cholesky") else symmetric_matrices_with_gaps
    return with_ignored_triangle_scrambled(rng, build(rng, batch, n, dtype), ONE_TRIANGLE[name][1] == "upper")


def read_triangle(n: int, which: str) -> np.ndarray:
    ones = np.ones((n, n))
    return np.triu(ones) if which == "upper" else np.tril(ones)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ONE_TRIANGLE)
@given(batch=batch_shapes, n=sides, data=st.data())
def test_one_triangle_gradients_of_non_symmetric_inputs(name, dtype, batch, n, data):
    f, which = ONE_TRIANGLE[name]
    a = data.draw(seeded(lambda rng: one_triangle_input(name, rng, batch, n, dtype)))
    check_op(lambda a: f(np.linalg, a), a)
    gradient = gradient_of(lambda a: f(np.linalg, a), a, np.ones(np.shape(f(np.linalg, a)), dtype))
    np.testing.assert_array_equal(gradient * (1 - read_triangle(n, which)), 0)


@pytest.mark.parametrize("name", ONE_TRIANGLE)
def test_one_triangle_second_derivatives_of_non_symmetric_inputs(name):
    a = one_triangle_input(name, np.random.default_rng(7), (2,), 3, np.float64)
    assert tape.gradgradcheck(lambda a: ONE_TRIANGLE[name][0](np.linalg, a), a)


@pytest.mark.parametrize("name", ONE_TRIANGLE)
def test_one_triangle_gradients_against_pytorch(name):
    # torch.linalg reads one triangle too, but its gradient is symmetric, even on a non-symmetric input: it
    # gives the change of the loss along symmetric dA only, not the derivative in each entry. tape's is the
    # derivative of numpy's function, so the two differ by design, entry by entry: PyTorch's is the symmetric
    # part of tape's, tape's is PyTorch's with the ignored triangle folded onto the read one. On any input,
    # symmetric or not, they give the same change of the loss along every symmetric direction.
    torch = pytest.importorskip("torch")
    f, which = ONE_TRIANGLE[name]
    rng = np.random.default_rng(3)
    n = 3
    non_symmetric = one_triangle_input(name, rng, (2,), n, np.float64)
    symmetric = non_symmetric * read_triangle(n, which)
    symmetric = symmetric + _mT(symmetric) * (1 - np.eye(n))
    cotangent = rng.standard_normal(np.shape(f(np.linalg, non_symmetric)))

    def torch_gradient(a: np.ndarray) -> np.ndarray:
        leaf = torch.tensor(a, requires_grad=True)
        f(torch.linalg, leaf).backward(torch.tensor(cotangent))
        return leaf.grad.numpy()

    for a in (non_symmetric, symmetric):
        ours, theirs = gradient_of(lambda a: f(np.linalg, a), a, cotangent), torch_gradient(a)
        np.testing.assert_allclose(symmetrized(ours), theirs, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(ours, (theirs + _mT(theirs)) * (read_triangle(n, which) - np.eye(n) / 2))
        assert not np.allclose(ours, theirs)
        direction = symmetrized(rng.standard_normal(a.shape))
        np.testing.assert_allclose(np.sum(ours * direction), np.sum(theirs * direction), rtol=1e-8)


# -- qr ------------------------------------------------------------------------------------------------------
@st.composite
def qr_inputs(draw: st.DrawFn, dtype: Any, shape_kind: str) -> np.ndarray:
    batch, n, extra = draw(batch_shapes), draw(sides), draw(st.integers(0, 3))
    m, n = {"tall": (n + extra, n), "wide": (n, n + extra)}[shape_kind]
    return draw(leading_block_invertible(batch, m, n, dtype))


# numpy's Q and R are a smooth function of the input wherever the leading block has full rank: LAPACK picks
# each Householder sign from a diagonal entry that stays away from zero for these inputs, so Q and R are
# checked directly (a stronger check than a sign-invariant function of them), and QR = A besides.
QR_FUNCTIONS = {
    "Q": lambda a: np.linalg.qr(a).Q,
    "R": lambda a: np.linalg.qr(a).R,
    "mode r": lambda a: np.linalg.qr(a, mode="r"),
    "Q R": lambda a: np.matmul(*np.linalg.qr(a)),
    "Q and R": lambda a: tuple(np.linalg.qr(a)),
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape_kind", ["tall", "wide"])
@pytest.mark.parametrize("function", QR_FUNCTIONS.values(), ids=QR_FUNCTIONS.keys())
@given(data=st.data())
def test_qr(function, shape_kind, dtype, data):
    a = data.draw(qr_inputs(dtype, shape_kind))
    if function is QR_FUNCTIONS["Q and R"]:
        assert tape.gradcheck(function, a)
    else:
        check_op(function, a)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_qr_complete_mode_of_a_wide_or_square_matrix_is_the_reduced_one(dtype, data):
    a = data.draw(qr_inputs(dtype, "wide"))
    check_op(lambda a: np.linalg.qr(a, mode="complete").Q, a)
    check_op(lambda a: np.linalg.qr(a, mode="complete").R, a)


# -- svd, svdvals --------------------------------------------------------------------------------------------
# Singular vectors are defined up to a sign shared by u_i and v_i, so they are checked through functions that
# do not depend on it: |U|, |Vh|, sum_i w_i u_i v_iᵀ for fixed weights w, and U diag(s) Vh itself.
SVD_FUNCTIONS = {
    "S": lambda a: np.linalg.svd(a, full_matrices=False).S,
    "compute_uv=False": lambda a: np.linalg.svd(a, compute_uv=False),
    "svdvals": lambda a: np.linalg.svdvals(a),
    "|U|": lambda a: np.abs(np.linalg.svd(a, full_matrices=False).U),
    "|Vh|": lambda a: np.abs(np.linalg.svd(a, full_matrices=False).Vh),
    "weighted outer products": lambda a: (
        lambda u, s, vh: (u * np.arange(1, s.shape[-1] + 1, dtype=s.dtype)) @ vh
    )(*np.linalg.svd(a, full_matrices=False)),
    "reconstruction": lambda a: (lambda u, s, vh: (u * np.expand_dims(s, -2)) @ vh)(
        *np.linalg.svd(a, full_matrices=False)
    ),
}


@st.composite
def svd_inputs(draw: st.DrawFn, dtype: Any) -> np.ndarray:
    return draw(with_singular_values(draw(batch_shapes), draw(sides), draw(sides), dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("function", SVD_FUNCTIONS.values(), ids=SVD_FUNCTIONS.keys())
@given(data=st.data())
def test_svd_on_distinct_singular_values(function, dtype, data):
    check_op(function, data.draw(svd_inputs(dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(batch=batch_shapes, n=sides, data=st.data())
def test_svd_full_matrices_of_a_square_matrix(dtype, batch, n, data):
    a = data.draw(with_singular_values(batch, n, n, dtype))
    check_op(lambda a: np.abs(np.linalg.svd(a).U) + np.abs(_mT(np.linalg.svd(a).Vh)), a)


# -- pinv, lstsq ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_pinv_of_full_rank_matrices(dtype, data):
    check_op(np.linalg.pinv, data.draw(svd_inputs(dtype)))


@st.composite
def lstsq_inputs(draw: st.DrawFn, dtype: Any, b_kind: str) -> tuple[np.ndarray, np.ndarray]:
    m, n, k = draw(st.integers(1, 5)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    a = draw(with_singular_values((), m, n, dtype))
    b = draw(seeded(lambda rng: rng.uniform(-2, 2, (m,) if b_kind == "vector" else (m, k)).astype(dtype)))
    return a, b


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("b_kind", ["vector", "matrix"])
@pytest.mark.parametrize("output", [0, 1, 3], ids=["x", "residuals", "s"])
@given(data=st.data())
def test_lstsq_of_full_rank_matrices(output, b_kind, dtype, data):
    a, b = data.draw(lstsq_inputs(dtype, b_kind))
    check_op(lambda a, b: np.linalg.lstsq(a, b)[output], a, b)


def test_lstsq_rank_is_numpys_integer():
    a, b = np.array([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]]), np.ones(3)
    rank = np.linalg.lstsq(tape.tensor(a, requires_grad=True), b)[2]
    assert rank == np.linalg.lstsq(a, b)[2] == 1
    assert isinstance(rank, np.integer)


# -- norm, vector_norm, matrix_norm --------------------------------------------------------------------------
VECTOR_ORDS = [None, 2, 1, 3, 1.5, 0.5, -1, np.inf, -np.inf, 0]


@st.composite
def vector_norm_axes(draw: st.DrawFn, ndim: int) -> Any:
    """``axis`` for a vector norm: None for a 1-D array, else an int or a 1-tuple (maybe negative)."""
    if ndim == 1 and draw(st.booleans()):
        return None
    axis = draw(st.integers(-ndim, ndim - 1))
    return (axis,) if draw(st.booleans()) else axis


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("ord", VECTOR_ORDS, ids=str)
@given(data=st.data(), keepdims=st.booleans())
def test_vector_norms(ord, dtype, data, keepdims):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = data.draw(distinct_magnitudes(shape, dtype))
    axis = data.draw(vector_norm_axes(len(shape)))
    check_op(lambda x: np.linalg.norm(x, ord, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data(), keepdims=st.booleans())
def test_the_default_norm_of_any_array_is_the_2_norm_of_its_elements(dtype, data, keepdims):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3))
    check_op(lambda x: np.linalg.norm(x, keepdims=keepdims), data.draw(distinct_magnitudes(shape, dtype)))


MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]


@st.composite
def matrix_norm_inputs(draw: st.DrawFn, ord: Any, dtype: Any) -> tuple[np.ndarray, Any]:
    """A stack of matrices and the ``axis`` pair of its row and column axes, in any order and place.

    Norms built on singular values get distinct nonzero ones; the others get distinct magnitudes, so no
    two column (or row) sums tie."""
    # numpy refuses empty matrices for the norms that take a minimum (-1, -2, -inf).
    matrix_sides = st.integers(1, 4) if ord in (-1, -2, -np.inf) else sides
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=1, min_side=1, max_side=3))
    m, n = draw(matrix_sides), draw(matrix_sides)
    if ord in ("nuc", 2, -2):
        matrices = draw(with_singular_values(batch, m, n, dtype))
    else:
        matrices = draw(distinct_magnitudes((*batch, m, n), dtype))
    ndim = matrices.ndim
    row, column = draw(st.permutations(range(ndim)).map(lambda order: order[:2]))
    # Contiguous, as the copy check_op takes for numpy's answer: sums over axes depend on the memory layout.
    x = np.ascontiguousarray(np.moveaxis(matrices, (-2, -1), (row, column)))
    if ndim == 2 and draw(st.booleans()):
        return x, None  # axis=None means the matrix norm of a 2-D array
    return x, (row - ndim if draw(st.booleans()) else row, column)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=str)
@given(data=st.data(), keepdims=st.booleans())
def test_matrix_norms(ord, dtype, data, keepdims):
    x, axis = data.draw(matrix_norm_inputs(ord, dtype))
    check_op(lambda x: np.linalg.norm(x, ord, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("ord", [2, 1, 3, np.inf, -np.inf, 0], ids=str)
@given(data=st.data(), keepdims=st.booleans())
def test_vector_norm(ord, dtype, data, keepdims):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = data.draw(
        st.none() | hnp.valid_tuple_axes(len(shape), min_size=1) | st.integers(0, len(shape) - 1)
    )
    x = data.draw(distinct_magnitudes(shape, dtype))
    check_op(lambda x: np.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("ord", ["fro", "nuc", 2, np.inf], ids=str)
@given(data=st.data(), keepdims=st.booleans())
def test_matrix_norm(ord, dtype, data, keepdims):
    batch, m, n = data.draw(batch_shapes), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    if ord in ("nuc", 2):
        x = data.draw(with_singular_values(batch, m, n, dtype))
    else:
        x = data.draw(distinct_magnitudes((*batch, m, n), dtype))
    check_op(lambda x: np.linalg.matrix_norm(x, keepdims=keepdims, ord=ord), x)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize(
    "norm",
    [
        lambda x: np.linalg.norm(x, axis=-1),
        lambda x: np.linalg.norm(x, 4, axis=-1),
        lambda x: np.linalg.norm(x, "fro", axis=(0, 1)),
        lambda x: np.linalg.vector_norm(x, axis=-1),
    ],
    ids=["2", "4", "fro", "vector_norm"],
)
def test_the_gradient_of_a_norm_at_zero_is_zero(norm, dtype):
    # Where the 2-norm (or a p-norm, p > 1) is zero it has no derivative; the subgradient 0 is chosen (as
    # PyTorch does). The other rows keep their ordinary gradient x / |x|_2 or sign(x) (|x| / |x|_p)^(p-1).
    x = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 12.0]], dtype=dtype)
    gradient = gradient_of(norm, x)
    np.testing.assert_array_equal(gradient[0], 0)
    assert np.all(np.isfinite(gradient))
    expected = tape.grad(lambda row: np.sum(norm(row)))(x[1:])
    np.testing.assert_allclose(gradient[1:], expected, rtol=1e-6)


def test_the_gradient_of_the_0_norm_is_zero():
    # ord=0 counts nonzero entries: piecewise constant, so its gradient is zero wherever it exists.
    np.testing.assert_array_equal(gradient_of(lambda x: np.linalg.norm(x, 0), np.array([1.0, 0.0, -2.0])), 0)


@pytest.mark.parametrize(
    ("ord", "axis", "x", "expected"),
    [
        (np.inf, None, [3.0, -3.0, 1.0], [0.5, -0.5, 0.0]),
        (-np.inf, None, [1.0, -1.0, 2.0], [0.5, -0.5, 0.0]),
        (1, (0, 1), [[1.0, -2.0], [-2.0, 1.0]], [[0.5, -0.5], [-0.5, 0.5]]),
        (np.inf, (0, 1), [[1.0, -2.0], [-2.0, 1.0], [0.5, 0.0]], [[0.5, -0.5], [-0.5, 0.5], [0.0, 0.0]]),
    ],
    ids=["vector inf", "vector -inf", "matrix 1", "matrix inf"],
)
def test_tied_extremes_share_the_cotangent_evenly(ord, axis, x, expected):
    # As np.max does: the entries (or the columns, the rows) that tie for the extreme share the cotangent.
    gradient = gradient_of(lambda x: np.linalg.norm(x, ord, axis=axis), np.array(x))
    np.testing.assert_array_equal(gradient, expected)


# -- cond, matrix_rank ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("p", [None, 2, -2], ids=str)
@given(data=st.data())
def test_cond_from_singular_values(p, dtype, data):
    batch, m, n = data.draw(batch_shapes), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    check_op(lambda x: np.linalg.cond(x, p), data.draw(with_singular_values(batch, m, n, dtype)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("p", ["fro", "nuc", 1, -1, np.inf, -np.inf], ids=str)
@given(batch=batch_shapes, n=st.integers(1, 4), data=st.data())
def test_cond_from_norms(p, dtype, batch, n, data):
    if p == "nuc":
        x = data.draw(with_singular_values(batch, n, n, dtype))
    else:
        x = data.draw(invertible(batch, n, dtype))
    check_op(lambda x: np.linalg.cond(x, p), x)


def test_matrix_rank_is_numpys_and_carries_no_gradient():
    a = np.array([[[1.0, 2.0], [2.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]]])
    rank = np.linalg.matrix_rank(tape.tensor(a, requires_grad=True))
    np.testing.assert_array_equal(rank.data, np.linalg.matrix_rank(a))
    assert not rank.requires_grad


# -- second derivatives --------------------------------------------------------------------------------------
SECOND_ORDER = {
    "inv": (np.linalg.inv, "square"),
    "det": (np.linalg.det, "square"),
    "slogdet": (lambda a: np.linalg.slogdet(a).logabsdet, "square"),
    "solve, b a vector": (np.linalg.solve, "square, vector"),
    "solve, b a matrix": (np.linalg.solve, "square, matrix"),
    "cholesky": (lambda a: np.linalg.cholesky(symmetrized(a)), "positive definite"),
    "eigh": (lambda a: np.linalg.eigh(symmetrized(a)).eigenvectors ** 2, "symmetric"),
    "eigvalsh": (lambda a: np.linalg.eigvalsh(symmetrized(a)), "symmetric"),
    "qr": (lambda a: np.linalg.qr(a).Q, "square"),
    "svd": (lambda a: np.abs(np.linalg.svd(a, full_matrices=False).U), "singular values"),
    "svdvals": (np.linalg.svdvals, "singular values"),
    "pinv": (np.linalg.pinv, "singular values"),
    "nuclear norm": (lambda a: np.linalg.norm(a, "nuc", axis=(-2, -1)), "singular values"),
    "3-norm": (lambda a: np.linalg.norm(a, 3, axis=-1), "square"),
}


@pytest.mark.parametrize("name", SECOND_ORDER)
@given(
    batch=hnp.array_shapes(min_dims=0, max_dims=1, min_side=1, max_side=2),
    n=st.integers(1, 3),
    data=st.data(),
)
def test_second_derivatives(name, batch, n, data):
    f, inputs = SECOND_ORDER[name]
    if inputs.startswith("square"):
        arrays = [data.draw(invertible(batch, n, np.float64))]
        if inputs != "square":
            b_shape = (n,) if inputs.endswith("vector") else (*batch, n, 2)
            arrays.append(data.draw(seeded(lambda rng: rng.uniform(-2, 2, b_shape))))
    elif inputs == "positive definite":
        arrays = [data.draw(positive_definite(batch, n, np.float64))]
    elif inputs == "symmetric":
        arrays = [data.draw(symmetric_with_gaps(batch, n, np.float64))]
    else:
        arrays = [data.draw(with_singular_values(batch, n + 1, n, np.float64))]
    second_derivatives_match_finite_differences(f, *arrays)


@pytest.mark.parametrize(
    "f",
    [np.linalg.inv, np.linalg.det, lambda a: np.linalg.solve(a, np.arange(1.0, a.shape[-1] + 1))],
    ids=["inv", "det", "solve"],
)
@given(
    batch=hnp.array_shapes(min_dims=0, max_dims=1, min_side=1, max_side=2),
    n=st.integers(1, 3),
    data=st.data(),
)
def test_grad_of_grad_along_a_line(f, batch, n, data):
    # t -> <w, f(a + t d)>: tape.grad(tape.grad(.)) at t = 0 against central differences of tape.grad.
    a, direction = (
        data.draw(invertible(batch, n, np.float64)),
        data.draw(invertible(batch, n, np.float64)) / 4,
    )
    weights = np.random.default_rng(n).standard_normal(np.shape(f(a)))

    def along_line(t: Any) -> Any:
        return np.sum(weights * f(a + t * direction))

    first, second = tape.grad(along_line), tape.grad(tape.grad(along_line))
    eps = 1e-5
    numeric = (first(eps) - first(-eps)) / (2 * eps)
    np.testing.assert_allclose(second(0.0), numeric, rtol=1e-5, atol=1e-7 * max(1.0, abs(numeric)))


# Every op, norm order and output, checked by tape.gradgradcheck: the VJPs recorded under create_graph and
# differentiated against finite differences of the first derivative, in the inputs and in the cotangent.
# Inputs are fixed (one seed per case), a stack of two small matrices where the op takes stacks.
def _stack(build: Any, *sides: int) -> Any:
    return lambda rng, dtype: [build(rng, (2,), *sides, dtype)]


def _with_right_hand_side(shape: tuple[int, ...]) -> Any:
    return lambda rng, dtype: [
        invertible_matrices(rng, (2,), 3, dtype),
        rng.uniform(-2, 2, shape).astype(dtype),
    ]


def _lstsq_operands(b_shape: tuple[int, ...]) -> Any:
    return lambda rng, dtype: [
        matrices_with_singular_values(rng, (), 4, 3, dtype),
        rng.uniform(-2, 2, b_shape).astype(dtype),
    ]


def _distinct(*shape: int) -> Any:
    return lambda rng, dtype: [distinct_magnitude_values(rng, shape, dtype)]


def _weighted_outer_products(u: Any, s: Any, vh: Any) -> Any:
    """sum_i i u_i v_iᵀ: smooth in the input and independent of the signs of the singular vectors."""
    return (u * np.arange(1, s.shape[-1] + 1, dtype=s.dtype)) @ vh


invertible_stack = _stack(invertible_matrices, 3)
singular_value_stack = _stack(matrices_with_singular_values, 3, 3)
GRADGRAD = {  # name: (function of the inputs, inputs from (rng, dtype))
    "inv": (np.linalg.inv, invertible_stack),
    "det": (np.linalg.det, invertible_stack),
    "slogdet": (lambda a: np.linalg.slogdet(a).logabsdet, invertible_stack),
    "solve, b a vector": (np.linalg.solve, _with_right_hand_side((3,))),
    "solve, b a matrix": (np.linalg.solve, _with_right_hand_side((2, 3, 2))),
    "qr Q, tall": (lambda a: np.linalg.qr(a).Q, _stack(leading_block_invertible_matrices, 4, 3)),
    "qr R, wide": (lambda a: np.linalg.qr(a).R, _stack(leading_block_invertible_matrices, 2, 4)),
    "qr mode r": (lambda a: np.linalg.qr(a, mode="r"), _stack(leading_block_invertible_matrices, 3, 3)),
    "svd S": (lambda a: np.linalg.svd(a, full_matrices=False).S, _stack(matrices_with_singular_values, 4, 3)),
    "svd vectors, tall": (
        lambda a: _weighted_outer_products(*np.linalg.svd(a, full_matrices=False)),
        _stack(matrices_with_singular_values, 4, 3),
    ),
    "svd vectors, wide": (
        lambda a: _weighted_outer_products(*np.linalg.svd(a, full_matrices=False)),
        _stack(matrices_with_singular_values, 2, 4),
    ),
    "svdvals": (np.linalg.svdvals, _stack(matrices_with_singular_values, 3, 4)),
    "pinv, tall": (np.linalg.pinv, _stack(matrices_with_singular_values, 4, 3)),
    "pinv, wide": (np.linalg.pinv, _stack(matrices_with_singular_values, 2, 3)),
    **{
        f"lstsq {output}, b a {kind}": (lambda a, b, k=k: np.linalg.lstsq(a, b)[k], _lstsq_operands(shape))
        for k, output in enumerate(["x", "residuals", "rank", "s"])
        if output != "rank"
        for kind, shape in (("vector", (4,)), ("matrix", (4, 2)))
    },
    "lstsq x, a wide": (
        lambda a, b: np.linalg.lstsq(a, b)[0],
        lambda rng, dtype: [
            matrices_with_singular_values(rng, (), 2, 3, dtype),
            rng.uniform(-2, 2, (2, 2)).astype(dtype),
        ],
    ),
    "lstsq, all outputs": (
        lambda a, b: (lambda x, r, _, s: np.sum(x**2, axis=0) + r + np.sum(s))(*np.linalg.lstsq(a, b)),
        _lstsq_operands((4, 2)),
    ),
    **{
        f"vector_norm {ord}": (lambda x, ord=ord: np.linalg.vector_norm(x, ord=ord, axis=-1), _distinct(2, 3))
        for ord in [2, 1, np.inf, -np.inf, 3, 0.5, 1.5, -1, 0]
    },
    "vector_norm over all axes, keepdims": (
        lambda x: np.linalg.vector_norm(x, keepdims=True),
        _distinct(2, 3),
    ),
    **{
        f"matrix_norm {ord}": (
            lambda x, ord=ord: np.linalg.matrix_norm(x, ord=ord),
            singular_value_stack if ord in ("nuc", 2, -2) else _distinct(2, 3, 3),
        )
        for ord in ["fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf]
    },
    **{
        f"norm {ord}, vectors": (lambda x, ord=ord: np.linalg.norm(x, ord, axis=0), _distinct(3, 2))
        for ord in [None, 1, np.inf, 3]
    },
    **{
        f"norm {ord}, matrices": (
            lambda x, ord=ord: np.linalg.norm(x, ord, axis=(2, 0), keepdims=True),
            (lambda rng, dtype: [np.moveaxis(singular_value_stack(rng, dtype)[0], (-2, -1), (2, 0)).copy()])
            if ord in ("nuc", 2, -2)
            else _distinct(3, 2, 3),
        )
        for ord in [None, "fro", "nuc", 2, -2, 1, -np.inf]
    },
    "norm of all elements": (np.linalg.norm, _distinct(2, 3)),
    **{
        f"cond {p}": (
            lambda x, p=p: np.linalg.cond(x, p),
            singular_value_stack if p in (None, 2, -2, "nuc") else invertible_stack,
        )
        for p in [None, 2, -2, "fro", "nuc", 1, -1, np.inf, -np.inf]
    },
    "cond, tall": (np.linalg.cond, _stack(matrices_with_singular_values, 4, 2)),
}


@pytest.mark.parametrize("name", GRADGRAD)
def test_second_derivatives_by_gradgradcheck(name):
    f, inputs = GRADGRAD[name]
    assert tape.gradgradcheck(f, *inputs(np.random.default_rng(5), np.float64))


# float32 VJPs run in float32 (the finite differences in float64), so the tolerances are float32's.
GRADGRAD_FLOAT32 = {
    "inv": GRADGRAD["inv"],
    "solve": GRADGRAD["solve, b a matrix"],
    "det": GRADGRAD["det"],
    **{
        name: (
            functools.partial(ONE_TRIANGLE[name][0], np.linalg),
            functools.partial(
                lambda rng, dtype, name: [one_triangle_input(name, rng, (2,), 3, dtype)], name=name
            ),
        )
        for name in ["eigh L, V diag(w^3) Vt", "eigh U, eigenvectors squared", "cholesky", "cholesky upper"]
    },
}


@pytest.mark.parametrize("name", GRADGRAD_FLOAT32)
def test_second_derivatives_in_float32(name):
    f, inputs = GRADGRAD_FLOAT32[name]
    arrays = inputs(np.random.default_rng(5), np.float32)
    assert all(a.dtype == np.float32 for a in arrays)
    assert tape.gradgradcheck(f, *arrays, rtol=2e-2, atol=2e-3)


# -- errors --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [np.linalg.inv, np.linalg.det, np.linalg.slogdet, np.linalg.cholesky, np.linalg.eigh, np.linalg.eigvalsh],
    ids=lambda call: call.__name__,
)
@pytest.mark.parametrize("shape", [(2, 3), (4, 3, 2), (3,)], ids=str)
def test_a_non_square_matrix_is_refused_naming_the_op_and_the_shape(call, shape):
    x = tape.tensor(np.ones(shape), requires_grad=True)
    message = (
        f"{call.__name__}: expected a square matrix or a stack of them (shape (..., n, n)), "
        f"got an array of shape {shape}"
    )
    with pytest.raises(np.linalg.LinAlgError, match=f"^{re.escape(message)}$"):
        call(x)


@pytest.mark.parametrize("call", [np.linalg.qr, np.linalg.svd, np.linalg.pinv], ids=lambda c: c.__name__)
def test_a_vector_is_refused_where_a_matrix_is_expected(call):
    with pytest.raises(
        np.linalg.LinAlgError, match=rf"^{call.__name__}: expected a matrix or a stack of them"
    ):
        call(tape.tensor(np.ones(3), requires_grad=True))


@pytest.mark.parametrize(
    "call", [np.linalg.inv, lambda a: np.linalg.solve(a, np.ones(2))], ids=["inv", "solve"]
)
def test_a_singular_matrix_is_refused_naming_the_op(call):
    x = tape.tensor(np.ones((2, 2)), requires_grad=True)
    # LinAlgError is a ValueError, so code that catches numpy's errors keeps working.
    assert issubclass(np.linalg.LinAlgError, ValueError)
    # numpy's own error; the op and what it was given are in a note (pytest matches notes too)
    message = r"^Singular matrix\n(inv|solve): array arguments of shapes"
    with pytest.raises(np.linalg.LinAlgError, match=message):
        call(x)


def test_cholesky_of_a_matrix_that_is_not_positive_definite_is_refused():
    x = tape.tensor(-np.eye(2), requires_grad=True)
    message = r"^Matrix is not positive definite\ncholesky: array arguments of shapes \(2, 2\)"
    with pytest.raises(np.linalg.LinAlgError, match=message):
        np.linalg.cholesky(x)


@pytest.mark.parametrize(
    "call", [np.linalg.det, lambda a: np.linalg.slogdet(a).logabsdet], ids=["det", "slogdet"]
)
def test_the_gradient_at_a_singular_matrix_is_refused_naming_the_op(call):
    x = tape.tensor(np.array([[1.0, 2.0], [2.0, 4.0]]), requires_grad=True)
    name = "det" if call is np.linalg.det else "slogdet"
    out = call(x)
    with pytest.raises(
        np.linalg.LinAlgError,
        match=rf"^{name}: the gradient at a singular matrix \(shape \(2, 2\)\) is not supported$",
    ):
        out.backward()


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [((2, 2), (3,)), ((2, 2), (3, 1)), ((4, 2, 2), (4, 2)), ((2, 2), ())],
    ids=["vector", "matrix", "stack of vectors as numpy 1 read them", "scalar"],
)
def test_solve_refuses_a_right_hand_side_that_does_not_fit(a_shape, b_shape):
    a = tape.tensor(np.ones(a_shape), requires_grad=True)
    message = (
        f"solve: a has shape {a_shape} (matrices of size 2), so b must have shape (2,) or (..., 2, k), got "
        f"{b_shape}; a stack of vectors is given as (..., 2, 1)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        np.linalg.solve(a, np.ones(b_shape))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda x: np.linalg.qr(x, mode="raw"),
            "numpy.linalg.qr: mode='raw' is not supported on tape tensors",
        ),
        (lambda x: np.linalg.qr(x, mode="economic"), "numpy.linalg.qr: mode='economic' is not supported"),
        (
            lambda x: np.linalg.qr(x, mode="complete"),
            "numpy.linalg.qr: mode='complete' is not supported on tape tensors; for a tall matrix "
            "(shape (3, 2))",
        ),
        (
            lambda x: np.linalg.svd(x),
            "numpy.linalg.svd: full_matrices=True is not supported on tape tensors; for a non-square matrix "
            "(shape (3, 2)) the singular vectors beyond the first 2",
        ),
        (lambda x: np.linalg.svd(x, hermitian=True), "numpy.linalg.svd: hermitian=True is not supported"),
        (lambda x: np.linalg.pinv(x, hermitian=True), "numpy.linalg.pinv: hermitian=True is not supported"),
        (lambda x: np.linalg.norm(x, ord=tape.tensor(2.0)), "numpy.linalg.norm: ord must be a number"),
    ],
    ids=[
        "qr raw",
        "qr unknown mode",
        "qr complete of a tall matrix",
        "svd full_matrices",
        "svd hermitian",
        "pinv hermitian",
        "norm ord tensor",
    ],
)
def test_what_has_no_gradient_here_is_refused_at_forward_time(call, message):
    x = tape.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    with pytest.raises(TypeError, match=f"^{re.escape(message)}"):
        call(x)


def test_an_invalid_norm_order_is_refused_naming_the_op():
    x = tape.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"^Invalid norm order 'fro' for vectors\nnorm: array arguments"):
        np.linalg.norm(x, "fro")


def test_lstsq_refuses_a_stack_of_matrices():
    a = tape.tensor(np.ones((2, 3, 2)), requires_grad=True)
    with pytest.raises(
        np.linalg.LinAlgError, match=r"^lstsq: a must be a matrix \(2-D\), got an array of shape"
    ):
        np.linalg.lstsq(a, np.ones(3))
