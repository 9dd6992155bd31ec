"""ops/attention.py: scaled dot-product attention against numpy written by hand and against PyTorch (outputs
and every gradient), finite differences of first and second order, fully masked rows, dropout, errors."""

from __future__ import annotations

import numpy as np
import pytest

import tape
from tape.ops.attention import scaled_dot_product_attention as sdpa

# (query, key, value) shapes: no batch axes, one, two, and batch axes that broadcast.
SHAPES = [
    ((4, 5), (6, 5), (6, 3)),
    ((2, 4, 5), (2, 6, 5), (2, 6, 7)),
    ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 3)),
    ((2, 3, 4, 5), (1, 3, 6, 5), (1, 3, 6, 3)),
]
MASKS = ["none", "bool", "float", "causal"]
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}


def _inputs(shapes, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def _mask(kind, shapes, dtype, seed=1):
    rng = np.random.default_rng(seed)
    length, source = shapes[0][-2], shapes[1][-2]
    if kind == "bool":
        mask = rng.random((length, source)) > 0.3
        mask[:, 0] = True  # every row keeps a key
        return mask
    if kind == "float":
        ndim = len(shapes[0])  # varies along the first batch axis, broadcasts along the others
        batch = (shapes[0][0],) + (1,) * (ndim - 3) if ndim > 2 else ()
        return rng.standard_normal((*batch, length, source)).astype(dtype)
    return None


def _by_hand(q, k, v, bias=None, keep=None, scale=None):
    """Attention written out in numpy, with the same fully masked row rule (weights 0)."""
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2) * scale
    if bias is not None:
        scores = scores + bias
    top = np.max(scores, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    exponentials = np.exp(scores - top)
    total = np.sum(exponentials, axis=-1, keepdims=True)
    weights = exponentials / np.where(total == 0, 1, total)
    attended = weights if keep is None else weights * keep
    return attended @ v, attended


def _bias(kind, mask, shapes, dtype):
    length, source = shapes[0][-2], shapes[1][-2]
    if kind == "bool":
        return np.where(mask, 0, -np.inf).astype(dtype)
    if kind == "causal":
        return np.where(np.tril(np.ones((length, source), bool)), 0, -np.inf).astype(dtype)
    return mask


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("kind", MASKS)
@pytest.mark.parametrize("scale", [None, 0.3])
def test_matches_numpy_by_hand(shapes, kind, scale):
    q, k, v = _inputs(shapes, np.float64)
    mask = _mask(kind, shapes, np.float64)
    out, weights = sdpa(q, k, v, attn_mask=mask, is_causal=kind == "causal", scale=scale, need_weights=True)
    expected, expected_weights = _by_hand(q, k, v, _bias(kind, mask, shapes, np.float64), scale=scale)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("kind", MASKS)
def test_matches_torch_outputs_and_gradients(dtype, shapes, kind):
    torch = pytest.importorskip("torch")
    arrays = _inputs(shapes, dtype)
    mask = _mask(kind, shapes, dtype)
    scale = 0.7 if kind == "float" else None
    ours = [tape.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    our_mask = their_mask = None
    if kind == "float":  # an additive mask is differentiated too
        our_mask, their_mask = tape.tensor(mask, requires_grad=True), torch.tensor(mask, requires_grad=True)
        ours.append(our_mask)
        theirs.append(their_mask)
    elif kind == "bool":
        our_mask, their_mask = mask, torch.tensor(mask)
    causal = kind == "causal"
    out = sdpa(*ours[:3], attn_mask=our_mask, is_causal=causal, scale=scale)
    expected = torch.nn.functional.scaled_dot_product_attention(
        *theirs[:3], attn_mask=their_mask, is_causal=causal, scale=scale
    )
    cotangent = np.random.default_rng(2).standard_normal(out.shape).astype(dtype)
    np.sum(out * cotangent).backward()
    (expected * torch.tensor(cotangent)).sum().backward()
    tolerance = TOLERANCE[dtype]
    assert out.dtype == dtype
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=tolerance, atol=tolerance)
    for name, mine, reference in zip(("query", "key", "value", "attn_mask"), ours, theirs, strict=False):
        assert mine.grad.dtype == dtype, name
        np.testing.assert_allclose(
            mine.grad, reference.grad.numpy(), rtol=tolerance, atol=tolerance, err_msg=name
        )


@pytest.mark.parametrize("kind", MASKS)
def test_first_and_second_derivatives_by_finite_differences(kind):
    shapes = ((2, 3, 4), (2, 5, 4), (2, 5, 3))
    q, k, v = _inputs(shapes, np.float64)
    if kind == "float":
        mask = _mask(kind, shapes, np.float64)

        def f(q, k, v, mask):
            return sdpa(q, k, v, attn_mask=mask, scale=0.8)

        inputs = (q, k, v, mask)
    else:
        mask = _mask(kind, shapes, np.float64)

        def f(q, k, v):
            return sdpa(q, k, v, attn_mask=mask, is_causal=kind == "causal")

        inputs = (q, k, v)
    assert tape.gradcheck(f, *inputs)
    assert tape.gradgradcheck(f, *inputs)


def test_derivatives_with_dropout_and_weights_output():
    shapes = ((3, 4), (5, 4), (5, 2))
    q, k, v = _inputs(shapes, np.float64)

    def f(q, k, v):  # the same generator state each call, so the same dropout mask
        out, weights = sdpa(q, k, v, dropout_p=0.4, rng=np.random.default_rng(3), need_weights=True)
        return np.sum(out, axis=-1) + np.sum(weights * weights, axis=-1)

    assert tape.gradcheck(f, q, k, v)
    assert tape.gradgradcheck(f, q, k, v)


def test_dropout_uses_a_constant_mask_from_rng():
    shapes = ((2, 4, 5), (2, 6, 5), (2, 6, 3))
    q, k, v = _inputs(shapes, np.float32)
    out, weights = sdpa(q, k, v, dropout_p=0.25, rng=np.random.default_rng(7), need_weights=True)
    keep = (np.random.default_rng(7).random((2, 4, 6)) >= 0.25).astype(np.float32) / np.float32(0.75)
    expected, expected_weights = _by_hand(q, k, v, keep=keep)
    assert out.dtype == weights.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-5, atol=1e-6)
    assert np.any(weights == 0)
    everything_dropped = sdpa(q, k, v, dropout_p=1.0)
    assert np.all(everything_dropped == 0)


def test_fully_masked_rows_give_zero_output_and_zero_gradients():
    torch = pytest.importorskip("torch")
    shapes = ((2, 4, 3), (2, 5, 3), (2, 5, 2))
    arrays = _inputs(shapes, np.float64)
    mask = np.ones((4, 5), dtype=bool)
    mask[1] = False  # query 1 may attend to nothing
    ours = [tape.tensor(a, requires_grad=True) for a in arrays]
    out, weights = sdpa(*ours, attn_mask=mask, need_weights=True)
    np.sum(out * out).backward()
    assert np.all(out.data[:, 1] == 0) and np.all(weights.data[:, 1] == 0)
    assert np.all(ours[0].grad[:, 1] == 0)
    assert all(np.all(np.isfinite(t.grad)) for t in ours)
    # torch's scaled_dot_product_attention (2.13) makes the same choice, gradients included.
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    expected = torch.nn.functional.scaled_dot_product_attention(*theirs, attn_mask=torch.tensor(mask))
    (expected * expected).sum().backward()
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-15)
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), rtol=1e-10, atol=1e-15)
    # The same through an additive mask of -inf, and with the whole input masked.
    additive = np.where(mask, 0.0, -np.inf)
    np.testing.assert_array_equal(sdpa(*arrays, attn_mask=additive), out.data)
    assert np.all(sdpa(*arrays, attn_mask=np.zeros((4, 5), dtype=bool)) == 0)
    assert tape.gradcheck(lambda q, k, v: sdpa(q, k, v, attn_mask=mask), *arrays)


def test_large_scores_do_not_overflow():
    q = np.array([[1000.0, 0.0]], dtype=np.float32)
    k = np.array([[1000.0, 0.0], [0.0, 1000.0]], dtype=np.float32)
    v = np.array([[1.0], [2.0]], dtype=np.float32)
    np.testing.assert_array_equal(sdpa(q, k, v), np.array([[1.0]], dtype=np.float32))


def test_arrays_give_arrays_and_tensors_give_tensors():
    q, k, v = _inputs(((3, 2), (4, 2), (4, 2)), np.float64)
    assert type(sdpa(q, k, v)) is np.ndarray
    assert isinstance(sdpa(tape.tensor(q), k, v), tape.Tensor)


ERRORS = [
    (((3, 4), (5, 6), (5, 2)), {}, ValueError, r"query of shape \(3, 4\) and key of shape \(5, 6\).*4 != 6"),
    (((3, 4), (5, 4), (6, 2)), {}, ValueError, r"key of shape \(5, 4\) and value of shape \(6, 2\).*5 != 6"),
    (((4,), (5, 4), (5, 2)), {}, ValueError, r"query must have at least 2 axes.*\(4,\)"),
    (((2, 3, 4), (3, 5, 4), (3, 5, 2)), {}, ValueError, r"batch axes .* do not broadcast"),
    (
        ((3, 4), (5, 4), (5, 2)),
        {"attn_mask": np.ones((4, 5), bool)},
        ValueError,
        r"attn_mask of shape \(4, 5\)",
    ),
    (((3, 4), (5, 4), (5, 2)), {"attn_mask": np.ones((3, 5), int)}, TypeError, r"boolean or floating"),
    (((3, 4), (5, 4), (5, 2)), {"dropout_p": 1.5}, ValueError, r"dropout_p must be in \[0, 1\], got 1.5"),
    (
        ((3, 4), (5, 4), (5, 2)),
        {"attn_mask": np.ones((3, 5), bool), "is_causal": True},
        ValueError,
        "not both",
    ),
]


@pytest.mark.parametrize(("shapes", "options", "error", "message"), ERRORS)
def test_errors_name_the_op_and_the_shapes(shapes, options, error, message):
    arrays = _inputs(shapes, np.float64)
    with pytest.raises(error, match="scaled_dot_product_attention: " + ".*" + message):
        sdpa(*arrays, **options)


def test_mixed_dtypes_are_refused():
    q, k, v = _inputs(((3, 4), (5, 4), (5, 2)), np.float64)
    with pytest.raises(TypeError, match="share one dtype, got query float64, key float32"):
        sdpa(q, k.astype(np.float32), v)
