"""tape.jacobian and tape.hessian: values against row-by-row VJPs and finite differences, the batched sweep
against the per-row one for every op marked ``batched``, chunking, the diagonal seed, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tape
from tape.diagonal import DiagonalRows
from tests.strategies import FLOAT_DTYPES, arrays, shapes


def rows_one_by_one(f, x):
    """The Jacobian from one VJP per unit cotangent: the reference the batched sweep must reproduce."""
    out, pullback = tape.vjp(f, x)
    rows = []
    for k in range(out.size):
        unit = np.zeros(out.size, dtype=out.dtype)
        unit[k] = 1
        rows.append(pullback(unit.reshape(out.shape))[0])
    return np.stack(rows).reshape(out.shape + np.shape(x)) if rows else np.zeros(out.shape + np.shape(x))


def finite_difference_jacobian(f, x, eps=1e-6):
    x = np.asarray(x, dtype=np.float64)
    columns = []
    for j in range(x.size):
        step = np.zeros_like(x)
        step.flat[j] = eps
        up, down = np.asarray(f(x + step)), np.asarray(f(x - step))
        columns.append((up - down) / (2 * eps))
    out_shape = np.shape(columns[0]) if columns else ()
    return np.stack(columns, axis=-1).reshape(out_shape + x.shape)


rng = np.random.default_rng(0)
MATRIX = rng.standard_normal((3, 4))
CASES = {
    "elementwise chain": lambda x: np.tanh(x) * np.sin(x) + x**2,
    "relu layer": lambda x: np.maximum(x @ MATRIX.T[: x.shape[-1], :] + 0.1, 0),
    "broadcast add": lambda x: x + np.ones((2, *x.shape)),
    "reshape and transpose": lambda x: np.transpose(np.reshape(np.exp(x), (-1, 1)) * np.ones(3)),
    "moveaxis swapaxes": lambda x: np.swapaxes(np.moveaxis(x[None, None] * np.ones((2, 1, 1)), 0, -1), 0, 1),
    "where": lambda x: np.where(x > 0, x**3, -x),
    "reduction (per-row path)": lambda x: np.sum(np.cos(x)) * x,
    "expand squeeze broadcast_to": lambda x: np.squeeze(np.broadcast_to(np.expand_dims(x, 0), (3, *x.shape))),
    "clip and astype": lambda x: np.clip(x, -0.5, 0.5).astype(np.float64) * 2,
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", sorted(CASES))
@given(shape=st.sampled_from([(4,), (2, 3), (1, 4), (3, 1)]), seed=st.integers(0, 2**16))
def test_jacobian_matches_row_by_row_vjps(name, dtype, shape, seed):
    f = CASES[name]
    if name == "relu layer" and shape[-1] > 4:
        return
    x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)
    jac = tape.jacobian(f)(x)
    expected = rows_one_by_one(f, x)
    assert jac.dtype == dtype and jac.shape == expected.shape
    np.testing.assert_allclose(jac, expected, rtol=1e-6 if dtype == np.float64 else 1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_jacobian_matches_finite_differences(name):
    x = np.random.default_rng(3).uniform(-1, 1, (2, 3))
    f = CASES[name]
    np.testing.assert_allclose(tape.jacobian(f)(x), finite_difference_jacobian(f, x), rtol=1e-6, atol=1e-7)


@given(shape=shapes, chunk=st.integers(1, 7))
def test_chunk_size_does_not_change_the_result(shape, chunk):
    x = np.random.default_rng(1).uniform(-1, 1, shape)
    f = lambda x: np.tanh(x)[..., None] * np.arange(1.0, 3.0)
    np.testing.assert_array_equal(tape.jacobian(f, chunk_size=chunk)(x), tape.jacobian(f)(x))


def test_elementwise_jacobian_is_the_diagonal():
    x = np.linspace(-1, 1, 6)
    np.testing.assert_allclose(tape.jacobian(np.tanh)(x), np.diag(1 - np.tanh(x) ** 2))


def test_lecture_layer_against_the_analytic_jacobian():
    rng = np.random.default_rng(4)
    weights, bias, x = rng.standard_normal((16, 32)), rng.standard_normal(16), rng.standard_normal(32)
    jac = tape.jacobian(lambda x: np.maximum(x @ weights.T + bias, 0))(x)
    np.testing.assert_allclose(jac, ((weights @ x + bias) > 0)[:, None] * weights, rtol=1e-12)


def test_batch_jacobian_is_block_diagonal():
    rng = np.random.default_rng(5)
    weights, batch = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    jac = tape.jacobian(lambda x: np.tanh(x @ weights.T))(batch)
    assert jac.shape == (5, 3, 5, 4)
    for i in range(5):
        for j in range(5):
            block = jac[i, :, j, :]
            if i == j:
                np.testing.assert_allclose(block, (1 - np.tanh(weights @ batch[i]) ** 2)[:, None] * weights)
            else:
                assert not block.any()


def test_argnums_tuple_and_several_arguments():
    rng = np.random.default_rng(6)
    w, x = rng.standard_normal((2, 3)), rng.standard_normal(3)
    jac_w, jac_x = tape.jacobian(lambda w, x: w @ x, argnums=(0, 1))(w, x)
    assert jac_w.shape == (2, 2, 3) and jac_x.shape == (2, 3)
    np.testing.assert_allclose(jac_x, w)
    np.testing.assert_allclose(jac_w, np.einsum("ij,k->ijk", np.eye(2), x))


def test_output_independent_of_the_input_gives_zeros():
    jac = tape.jacobian(lambda x: np.ones(3))(np.ones(2))
    assert jac.shape == (3, 2) and not jac.any()


def test_jacobian_nests_inside_grad():
    # d/dx sum(J(x)) for f = x**3 elementwise: J = diag(3x^2), so the gradient is 6x.
    x = np.array([0.5, -1.0, 2.0])
    gradient = tape.grad(lambda x: np.sum(tape.jacobian(lambda y: y**3)(x)))(x)
    np.testing.assert_allclose(gradient, 6 * x)


def test_hessian_matches_finite_differences_of_the_gradient():
    f = lambda x: np.sum(np.sin(x) * x**2) + np.prod(x)
    x = np.array([0.3, -0.7, 1.1])
    hess = tape.hessian(f)(x)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-12)
    np.testing.assert_allclose(hess, finite_difference_jacobian(tape.grad(f), x), rtol=1e-6, atol=1e-7)


def test_hessian_blocks_for_several_arguments():
    f = lambda a, b: np.sum(a**2 * b) + np.sum(b**3)
    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    ((h_aa, h_ab), (h_ba, h_bb)) = tape.hessian(f, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(h_aa, np.diag(2 * b))
    np.testing.assert_allclose(h_ab, np.diag(2 * a))
    np.testing.assert_allclose(h_ba, np.diag(2 * a))
    np.testing.assert_allclose(h_bb, np.diag(6 * b))


def test_bad_chunk_size_is_an_error():
    with pytest.raises(ValueError, match="jacobian: chunk_size must be a positive"):
        tape.jacobian(np.sin, chunk_size=0)


def test_diagonal_rows_keep_structure_and_densify_correctly():
    values = np.arange(1.0, 7.0).reshape(2, 3)
    rows = DiagonalRows(values, 1, 5)
    dense = np.asarray(rows)
    expected = np.eye(6)[1:5].reshape(4, 2, 3) * values
    np.testing.assert_array_equal(dense, expected)
    scaled = rows * np.array([1.0, 2.0, 3.0])
    assert isinstance(scaled, DiagonalRows)
    np.testing.assert_array_equal(np.asarray(scaled), expected * np.array([1.0, 2.0, 3.0]))
    assert isinstance(np.where(values > 2, rows, 0), DiagonalRows)
    np.testing.assert_array_equal(
        np.asarray(np.where(values > 2, rows, 0)), np.where(values > 2, expected, 0)
    )
    # A factor that would broadcast the rows to a larger shape gives the dense result instead.
    wider = rows * np.ones((4, 2, 3))
    assert type(wider) is np.ndarray
    np.testing.assert_array_equal(wider, expected)
    matrix_rows = DiagonalRows(values, 1, 5) @ np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(matrix_rows, expected @ np.arange(12.0).reshape(3, 4))
    vector = DiagonalRows(np.array([2.0, 3.0, 4.0]), 0, 3)
    matrix = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(vector @ matrix, np.diag([2.0, 3.0, 4.0]) @ matrix)
    np.testing.assert_array_equal(np.sum(rows, axis=0), expected.sum(axis=0))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_jacobian_of_a_product_in_both_dtypes(dtype, data):
    x = data.draw(arrays((3,), dtype))
    y = data.draw(arrays((3,), dtype))
    jac = tape.jacobian(lambda x: x * y + x**2)(x)
    assert jac.dtype == dtype
    np.testing.assert_allclose(jac, np.diag(y + 2 * x), rtol=1e-6)


MATMULS = {
    "vector @ matrix": ((3,), (3, 2)),
    "matrix @ vector": ((2, 3), (3,)),
    "vector @ vector": ((3,), (3,)),
    "matrix @ matrix": ((2, 3), (3, 4)),
    "stack @ matrix": ((2, 2, 3), (3, 2)),
    "vector @ stack": ((3,), (2, 3, 2)),
    "stack @ vector": ((2, 2, 3), (3,)),
}


@pytest.mark.parametrize("name", sorted(MATMULS))
def test_batched_matmul_vjps_match_row_by_row(name):
    x_shape, y_shape = MATMULS[name]
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal(x_shape), rng.standard_normal(y_shape)
    for argnum, f in ((0, lambda x: np.tanh(x @ y)), (1, lambda y: np.tanh(x @ y))):
        point = (x, y)[argnum]
        np.testing.assert_allclose(tape.jacobian(f)(point), rows_one_by_one(f, point), rtol=1e-12, atol=1e-14)


def test_jacobian_with_respect_to_a_dict_of_parameters():
    rng = np.random.default_rng(8)
    params = {"w": rng.standard_normal((2, 3)), "b": [rng.standard_normal(2)]}
    x = rng.standard_normal(3)
    jac = tape.jacobian(lambda p, x: np.tanh(p["w"] @ x + p["b"][0]))(params, x)
    assert set(jac) == {"w", "b"} and isinstance(jac["b"], list)
    slope = 1 - np.tanh(params["w"] @ x + params["b"][0]) ** 2
    np.testing.assert_allclose(jac["b"][0], np.diag(slope))
    np.testing.assert_allclose(jac["w"], np.einsum("ij,k->ijk", np.diag(slope), x))
