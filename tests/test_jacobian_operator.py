"""tape.jacobian_operator: every product and method against the dense Jacobian of tape.jacobian, for op
families that do and do not keep the batch axis apart (float32 and float64); the structure found on the
tape (diagonal, factored, block diagonal, none) and that a batch-norm-like program never claims blocks;
scipy's solvers on an operator; and the errors for calls that do not fit."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tape
from tape.jacobian_operator import StructureUnavailableError

rng = np.random.default_rng(0)
W = rng.standard_normal((4, 5))
B = rng.standard_normal(4)
V = rng.standard_normal((3, 4))
C = rng.standard_normal((3, 5))
SPD = (lambda m: m @ m.T + 6 * np.eye(6))(rng.standard_normal((6, 6)))


@dataclass(frozen=True)
class Case:
    """A program, the input shape it runs at, and the structure the tape must show."""

    name: str
    function: Callable[[np.ndarray], object]
    shape: tuple[int, ...]
    structure: str
    blocks: int | None


def constants(dtype: type) -> tuple[np.ndarray, ...]:
    return tuple(value.astype(dtype) for value in (W, B, V, C))


def case_list(dtype: type) -> list[Case]:
    w, b, v, c = constants(dtype)
    return [
        Case("elementwise", lambda x: np.tanh(x) * x + 2.0, (3, 5), "diagonal", 3),
        Case("elementwise, constant per sample", lambda x: np.sin(x) * c, (3, 5), "diagonal", 3),
        Case("relu layer", lambda x: np.maximum(x @ w.T + b, 0.0), (3, 5), "factored", 3),
        Case("two layers", lambda x: np.tanh(x @ w.T) @ v.T, (3, 5), "factored", 3),
        Case("relu op layer", lambda x: tape.nn.functional.relu(x @ w.T + b), (3, 5), "factored", 3),
        Case("product on the left", lambda x: w @ np.exp(x), (5, 3), "factored", None),
        Case("row sums", lambda x: np.sum(x**2, axis=1), (3, 5), "block diagonal", 3),
        Case(
            "row means, kept axis",
            lambda x: np.mean(np.sin(x), axis=-1, keepdims=True),
            (3, 5),
            "block diagonal",
            3,
        ),
        Case("softmax over features", lambda x: tape.softmax(x, axis=-1), (3, 5), "block diagonal", 3),
        Case(
            "log_softmax of a layer", lambda x: tape.log_softmax(x @ w.T, axis=1), (3, 5), "block diagonal", 3
        ),
        Case("columns", lambda x: x[:, 1:3] * 2.0, (3, 5), "block diagonal", 3),
        Case(
            "reshape and sum", lambda x: np.sum(x.reshape(3, 5, 1) ** 2, axis=-1), (3, 5), "block diagonal", 3
        ),
        Case("transpose there and back", lambda x: (np.sin(x.T) * c.T).T, (3, 5), "block diagonal", 3),
        Case("batch norm like", lambda x: x - x.mean(axis=0), (3, 5), "general", None),
        Case("standardized over the batch", lambda x: x / np.std(x, axis=0), (3, 5), "general", None),
        Case("softmax over the batch", lambda x: tape.softmax(x, axis=0), (3, 5), "general", None),
        Case("samples reordered", lambda x: x[[2, 0, 1]] * 1.0, (3, 5), "general", None),
        Case("samples picked by an array", lambda x: x[np.array([1, 1, 0])] + x, (3, 5), "general", None),
        Case("every pair of samples", lambda x: np.sum(x[:, None] * x, axis=1), (3, 5), "general", None),
        Case("one sample broadcast", lambda x: x * x[0], (3, 5), "general", None),
        Case("vector layer", lambda x: w @ np.sin(x), (5,), "general", None),
        Case("scalar output", lambda x: np.sum(x**3), (3, 5), "general", None),
        Case("complex inside", lambda x: np.abs(np.fft.fft(x, axis=-1)), (3, 4), "general", None),
        Case("constant output", lambda x: np.ones(4, dtype=dtype), (3, 5), "zero", None),
    ]


CASE_NAMES = [case.name for case in case_list(np.float64)]
TOLERANCE = {np.float64: {"rtol": 1e-10, "atol": 1e-12}, np.float32: {"rtol": 2e-4, "atol": 2e-5}}


def case_named(name: str, dtype: type) -> Case:
    return next(case for case in case_list(dtype) if case.name == name)


def dense_reference(case: Case, x: np.ndarray) -> np.ndarray:
    jacobian = np.asarray(tape.jacobian(case.function)(x))
    return jacobian.reshape(-1, x.size)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_every_product_matches_the_dense_jacobian(name: str, dtype: type) -> None:
    case = case_named(name, dtype)
    x = rng.standard_normal(case.shape).astype(dtype)
    dense = dense_reference(case, x)
    close = TOLERANCE[dtype]
    for structured in (True, False):
        J = tape.jacobian_operator(case.function, x, structured=structured)
        rows, columns = J.shape
        assert J.shape == dense.shape
        v, u = rng.standard_normal(columns).astype(dtype), rng.standard_normal(rows).astype(J.dtype)
        np.testing.assert_allclose(J @ v, dense @ v, **close)
        if x.ndim != 1:  # (a 1-D input's shape is the flat form)
            np.testing.assert_allclose(J @ v.reshape(x.shape), (dense @ v).reshape(J.output_shape), **close)
        np.testing.assert_allclose(u @ J, u @ dense, **close)
        np.testing.assert_allclose(J.T @ u, dense.T @ u, **close)
        if len(J.output_shape) != 1:
            np.testing.assert_allclose(u.reshape(J.output_shape) @ J, (u @ dense).reshape(x.shape), **close)
        columns_block = rng.standard_normal((columns, 3)).astype(dtype)
        rows_block = rng.standard_normal((2, rows)).astype(J.dtype)
        np.testing.assert_allclose(J @ columns_block, dense @ columns_block, **close)
        np.testing.assert_allclose(rows_block @ J, rows_block @ dense, **close)
        np.testing.assert_allclose(J.to_dense(), dense, **close)
        np.testing.assert_allclose(J.to_dense(chunk_size=2), dense, **close)
        assert (J @ v).dtype == J.dtype and (u @ J).dtype == J.dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_structure_found_and_what_it_gives(name: str, dtype: type) -> None:
    case = case_named(name, dtype)
    x = rng.standard_normal(case.shape).astype(dtype)
    dense = dense_reference(case, x)
    J = tape.jacobian_operator(case.function, x)
    assert J.structure.name == case.structure, repr(J)
    assert J.structure.blocks == case.blocks, repr(J)
    assert case.structure in repr(J)
    close = TOLERANCE[dtype]
    if case.blocks:
        count = case.blocks
        per_row, per_column = dense.shape[0] // count, dense.shape[1] // count
        expected = [
            dense[i * per_row : (i + 1) * per_row, i * per_column : (i + 1) * per_column]
            for i in range(count)
        ]
        blocks = list(J.blocks())
        assert len(blocks) == count
        for i, block in enumerate(blocks):
            np.testing.assert_allclose(block, expected[i], **close)
        np.testing.assert_allclose(J.block(-1), expected[-1], **close)
        np.testing.assert_allclose(J.block(1, chunk_size=1), expected[1], **close)
        swept = list(J.blocks(by_sweeps=True, chunk_size=2))  # through the records, whatever the structure
        np.testing.assert_allclose(np.stack(swept), np.stack(expected), **close)
        # what the blocks leave out is zero: the claim of block structure is true
        np.testing.assert_array_equal(dense - _block_diagonal(expected), 0)
        assert case.structure == "diagonal" or f"{count} blocks" in repr(J)
    else:
        with pytest.raises(StructureUnavailableError, match="not block diagonal"):
            J.blocks()
    square = dense.shape[0] == dense.shape[1]
    diagonal_known = case.structure in ("diagonal", "zero") or (
        case.blocks and dense.shape[0] // case.blocks == dense.shape[1] // case.blocks
    )
    if square and diagonal_known:
        np.testing.assert_allclose(J.diagonal(), np.diagonal(dense), **close)
        estimate = J.trace()
        assert estimate.standard_error == 0.0 and estimate.samples == 0
        np.testing.assert_allclose(estimate.value, np.trace(dense), **close)
    elif square:
        with pytest.raises(StructureUnavailableError, match="diagonal is unavailable"):
            J.diagonal()


def _block_diagonal(blocks: list[np.ndarray]) -> np.ndarray:
    rows, columns = blocks[0].shape
    dense = np.zeros((rows * len(blocks), columns * len(blocks)), dtype=blocks[0].dtype)
    for i, block in enumerate(blocks):
        dense[i * rows : (i + 1) * rows, i * columns : (i + 1) * columns] = block
    return dense


def test_lecture_layer_is_diag_mask_times_one_w_per_batch() -> None:
    """relu(X Wᵀ + b) on a batch: diag(mask) · (I ⊗ W), holding W once, whatever the batch size."""
    weight, bias = rng.standard_normal((8, 16)), rng.standard_normal(8)
    layer = lambda xs: np.maximum(xs @ weight.T + bias, 0.0)
    small = tape.jacobian_operator(layer, rng.standard_normal((2, 16)))
    large = tape.jacobian_operator(layer, rng.standard_normal((50, 16)))
    assert "diag(50x8) · (I_50 ⊗ W 8x16)" in repr(large)
    # the structured form grows by the mask only (8 numbers a sample), the blocks by a W per sample
    assert large.memory.structured - small.memory.structured == 48 * 8 * 8
    assert large.memory.blocks == 50 * weight.nbytes
    assert large.memory.dense == 50 * 50 * weight.nbytes
    X = rng.standard_normal((4, 16))
    mask = X @ weight.T + bias > 0
    J = tape.jacobian_operator(layer, X)
    for i, block in enumerate(J.blocks()):
        np.testing.assert_array_equal(block, mask[i][:, None] * weight)


def test_one_recording_serves_many_products() -> None:
    calls = []

    def f(x: np.ndarray) -> object:
        calls.append(1)
        return np.sin(x) @ W.T

    x = rng.standard_normal((3, 5))
    J = tape.jacobian_operator(f, x, structured=False)
    v, u = rng.standard_normal(15), rng.standard_normal(12)
    first = (J @ v, u @ J)
    for _ in range(3):
        np.testing.assert_array_equal(J @ v, first[0])
        np.testing.assert_array_equal(u @ J, first[1])
    assert len(calls) == 1


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 4),
    inputs=st.integers(1, 5),
    outputs=st.integers(1, 4),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_random_layers_factor_and_agree(
    batch: int, inputs: int, outputs: int, dtype: type, seed: int
) -> None:
    generator = np.random.default_rng(seed)
    weight = generator.standard_normal((outputs, inputs)).astype(dtype)
    bias = generator.standard_normal(outputs).astype(dtype)
    layer = lambda xs: np.tanh(np.maximum(xs @ weight.T + bias, 0.0) * 2.0)
    X = generator.standard_normal((batch, inputs)).astype(dtype)
    J = tape.jacobian_operator(layer, X)
    dense = np.asarray(tape.jacobian(layer)(X)).reshape(batch * outputs, batch * inputs)
    assert J.structure.name == "factored" and J.structure.blocks == batch
    close = TOLERANCE[dtype]
    v, u = (
        generator.standard_normal(J.shape[1]).astype(dtype),
        generator.standard_normal(J.shape[0]).astype(dtype),
    )
    np.testing.assert_allclose(J @ v, dense @ v, **close)
    np.testing.assert_allclose(u @ J, u @ dense, **close)
    np.testing.assert_allclose(
        np.stack(list(J.blocks())),
        np.stack(
            [dense[i * outputs : (i + 1) * outputs, i * inputs : (i + 1) * inputs] for i in range(batch)]
        ),
        **close,
    )


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_random_elementwise_chains_are_diagonal(shape: list[int], seed: int) -> None:
    generator = np.random.default_rng(seed)
    scale = generator.standard_normal(shape[-1])
    f = lambda x: np.exp(np.sin(x) * scale) - x * x
    x = generator.standard_normal(shape)
    J = tape.jacobian_operator(f, x)
    dense = np.asarray(tape.jacobian(f)(x)).reshape(x.size, x.size)
    assert J.structure.name == "diagonal"
    np.testing.assert_allclose(J.diagonal(), np.diagonal(dense), rtol=1e-12)
    np.testing.assert_array_equal(dense, np.diag(np.diagonal(dense)))


def test_hutchinson_trace_where_no_diagonal_is_known() -> None:
    f = lambda x: np.tanh(x @ SPD) + x[::-1] * 0.5
    x = rng.standard_normal(6)
    J = tape.jacobian_operator(f, x)
    with pytest.raises(StructureUnavailableError):
        J.diagonal()
    exact = np.trace(dense_reference(Case("", f, (6,), "", None), x))
    estimate = J.trace(samples=400, rng=1)
    assert estimate.samples == 400 and estimate.standard_error > 0
    assert abs(estimate.value - exact) < 5 * estimate.standard_error
    assert J.trace(samples=400, rng=1) == estimate  # a seed makes it reproducible
    assert J.trace(samples=400, rng=1, chunk_size=64) == pytest.approx(estimate)


# -- scipy -----------------------------------------------------------------------------------------------

scipy_linalg = pytest.importorskip("scipy.sparse.linalg")


def symmetric_positive_definite_operator() -> tuple[object, np.ndarray]:
    """J = SPD + diag(x²): symmetric and positive definite."""
    x = rng.standard_normal(6)
    J = tape.jacobian_operator(lambda x: x @ SPD + x**3 / 3, x)
    return J, SPD + np.diag(x**2)


def test_cg_solves_with_a_symmetric_positive_definite_jacobian() -> None:
    J, dense = symmetric_positive_definite_operator()
    right = rng.standard_normal(6)
    solution, info = scipy_linalg.cg(J.aslinearoperator(), right, rtol=1e-12, atol=0)
    assert info == 0
    np.testing.assert_allclose(solution, np.linalg.solve(dense, right), rtol=1e-8)


def test_gmres_solves_with_a_general_jacobian() -> None:
    x = rng.standard_normal((2, 3))
    f = lambda x: np.tanh(x @ SPD[:3, :3].T) + 3 * x
    J = tape.jacobian_operator(f, x)
    dense = dense_reference(Case("", f, x.shape, "", None), x)
    right = rng.standard_normal(6)
    solution, info = scipy_linalg.gmres(J.aslinearoperator(), right, rtol=1e-12, atol=0)
    assert info == 0
    np.testing.assert_allclose(solution, np.linalg.solve(dense, right), rtol=1e-8)


def test_eigsh_and_svds_on_operators() -> None:
    J, dense = symmetric_positive_definite_operator()
    values = scipy_linalg.eigsh(J.aslinearoperator(), k=2, which="LA", return_eigenvectors=False)
    np.testing.assert_allclose(np.sort(values), np.linalg.eigvalsh(dense)[-2:], rtol=1e-8)
    layer = lambda xs: np.maximum(xs @ W.T + B, 0.0)
    X = rng.standard_normal((3, 5))
    operator = tape.jacobian_operator(layer, X).aslinearoperator()
    singular = scipy_linalg.svds(operator, k=3, return_singular_vectors=False)
    expected = np.linalg.svd(dense_reference(Case("", layer, X.shape, "", None), X), compute_uv=False)[:3]
    np.testing.assert_allclose(np.sort(singular)[::-1], expected, rtol=1e-8)
    block = rng.standard_normal((15, 2))
    np.testing.assert_allclose(operator.matmat(block), operator @ block)
    np.testing.assert_allclose(operator.rmatmat(rng.standard_normal((12, 2))).shape, (15, 2))


def test_a_float32_operator_takes_scipy_float64_vectors() -> None:
    J = tape.jacobian_operator(np.tanh, rng.standard_normal(4).astype(np.float32))
    result = J.aslinearoperator().matvec(np.ones(4))
    assert result.dtype == np.float32


def test_without_scipy_aslinearoperator_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.sparse.linalg", None)
    J = tape.jacobian_operator(np.tanh, np.ones(3))
    with pytest.raises(ImportError, match="needs scipy"):
        J.aslinearoperator()


# -- errors ----------------------------------------------------------------------------------------------


def test_wrong_shapes_and_dtypes_are_refused_with_names() -> None:
    weight = W.astype(np.float32)
    J = tape.jacobian_operator(lambda x: x @ weight.T, rng.standard_normal((3, 5)).astype(np.float32))
    with pytest.raises(
        ValueError, match=r"jacobian_operator\(<lambda>\): J @ v has the wrong shape.*\(7,\), dtype float32"
    ):
        J @ np.ones(7, dtype=np.float32)
    with pytest.raises(ValueError, match=r"u @ J has the wrong shape.*\(3, 5\)"):
        np.ones((3, 5), dtype=np.float32) @ J
    with pytest.raises(ValueError, match=r"wrong dtype.*of dtype float32.*dtype float64"):
        J @ np.ones(15)
    with pytest.raises(ValueError, match=r"wrong dtype.*dtype complex128"):
        np.ones(12, dtype=complex) @ J
    assert (J @ np.ones(15, dtype=np.int32)).dtype == np.float32  # integers cast safely


def test_unsupported_structures_are_refused() -> None:
    with pytest.raises(TypeError, match="argnums must be one int"):
        tape.jacobian_operator(lambda x, y: x * y, np.ones(2), np.ones(2), argnums=(0, 1))
    with pytest.raises(TypeError, match="must be a single array"):
        tape.jacobian_operator(lambda p: p["a"] * 2, {"a": np.ones(2)})
    with pytest.raises(TypeError, match="must return a single array"):
        tape.jacobian_operator(lambda x: (x, x), np.ones(2))
    with pytest.raises(TypeError, match="floating-point"):
        tape.jacobian_operator(lambda x: x * 2, np.ones(2, dtype=int))
    with pytest.raises(TypeError, match="complex"):
        tape.jacobian_operator(lambda x: x * 2, np.ones(2, dtype=complex))


def test_dense_refused_over_the_memory_limit_with_its_size() -> None:
    J = tape.jacobian_operator(lambda xs: np.maximum(xs @ W.T + B, 0.0), rng.standard_normal((3, 5)))
    with pytest.raises(MemoryError, match=r"1.41 KiB .*12 x 15 float64.*memory_limit=1 KiB.*\.blocks\(\)"):
        J.to_dense(memory_limit=1024)
    general = tape.jacobian_operator(lambda x: x - x.mean(axis=0), rng.standard_normal((3, 5)))
    with pytest.raises(MemoryError, match="never build it"):
        general.to_dense(memory_limit=100)
    swept = tape.jacobian_operator(lambda x: tape.softmax(x, axis=-1), rng.standard_normal((3, 5)))
    with pytest.raises(MemoryError, match=r"blocks\(\)"):
        swept.blocks(memory_limit=100)
    with pytest.raises(IndexError, match="3 diagonal blocks"):
        swept.block(3)


def test_trace_and_diagonal_need_a_square_jacobian() -> None:
    J = tape.jacobian_operator(lambda x: x @ W.T, rng.standard_normal((3, 5)))
    with pytest.raises(ValueError, match="12 x 15"):
        J.trace()
    with pytest.raises(StructureUnavailableError, match="not square"):
        J.diagonal()


def test_a_weight_changed_in_place_after_recording_is_refused_by_every_product():
    # The factored form reads W from the record: each use checks it as a sweep would, never a silent answer
    # computed with the new W.
    rng = np.random.default_rng(11)
    weight = tape.tensor(rng.standard_normal((3, 4)))
    x = rng.standard_normal((5, 4))
    operator = tape.jacobian_operator(lambda x: np.maximum(x @ weight.T, 0.0), x)
    assert operator.structure.factors is not None
    v, u = rng.standard_normal(x.size), rng.standard_normal(15)
    operator @ v  # fine before the change
    with tape.no_grad():
        weight[...] = weight * 2.0
    for product in (lambda: operator @ v, lambda: u @ operator, lambda: operator.block(0), operator.to_dense):
        with pytest.raises(RuntimeError, match="changed in place"):
            product()


def test_the_diagonal_is_the_callers_copy() -> None:
    x = np.array([0.3, 1.2, -0.4])
    J = tape.jacobian_operator(lambda a: np.sin(a) * 2.0, x)
    diagonal = J.diagonal()
    diagonal /= diagonal.max()  # the caller's to change
    np.testing.assert_allclose(J @ np.ones(3), 2 * np.cos(x), rtol=1e-15)
    np.testing.assert_allclose(J.diagonal(), 2 * np.cos(x), rtol=1e-15)
    np.testing.assert_allclose(np.diagonal(J.to_dense()), 2 * np.cos(x), rtol=1e-15)


def test_an_operator_of_values_an_enclosing_transform_differentiates_is_refused() -> None:
    x0, v0 = np.array([0.3, -0.7, 1.1]), np.ones(3)
    with pytest.raises(RuntimeError, match=r"inside another transform, of values that transform"):
        tape.grad(lambda a: np.sum(tape.jacobian_operator(lambda y: y**3, a * x0) @ v0))(2.0)
    with pytest.raises(RuntimeError, match=r"inside another transform"):
        tape.grad(lambda a: np.sum(tape.jacobian_operator(lambda y: y**3 * a, x0) @ v0))(2.0)
    # Independent of what the enclosing transform differentiates: a constant, as it should be.
    found = tape.grad(lambda a: np.sum(a * (tape.jacobian_operator(lambda y: y**3, x0) @ v0)))(2.0)
    np.testing.assert_allclose(found, np.sum(3 * x0**2), rtol=1e-15)
    # At top level, reading a tensor that requires grad (a module's weight) is allowed.
    weight = tape.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    np.testing.assert_allclose(tape.jacobian_operator(lambda y: y * weight, x0) @ v0, [1.0, 2.0, 3.0])
