"""tape/nn/attention.py: MultiheadAttention, TransformerEncoderLayer and TransformerEncoder with the same
parameters as torch's modules: outputs, attention weights and every gradient compared; masks, batch_first,
norm_first, unbatched inputs, dropout in training and not in evaluation, errors naming the layer."""

from __future__ import annotations

import numpy as np
import pytest

import tape
import tape.nn as nn
from tape.nn.attention import MultiheadAttention, TransformerEncoder, TransformerEncoderLayer

torch = pytest.importorskip("torch")

TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}


def _torch_twin(ours, theirs, dtype):
    """``theirs`` (a torch module) with ``ours``' parameters, in ``dtype``, in ``ours``' mode."""
    theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    names = dict(theirs.named_parameters())
    ours_named = dict(ours.named_parameters())
    assert set(ours_named) == set(names)
    with torch.no_grad():
        for name, parameter in ours_named.items():
            names[name].copy_(torch.tensor(parameter.data))
    return theirs.train(ours.training)


def _compare_gradients(ours, theirs, inputs, their_inputs, tolerance):
    their_parameters = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(
            parameter.grad, their_parameters[name].grad.numpy(), rtol=tolerance, atol=tolerance, err_msg=name
        )
    for index, (mine, reference) in enumerate(zip(inputs, their_inputs, strict=True)):
        np.testing.assert_allclose(
            mine.grad, reference.grad.numpy(), rtol=tolerance, atol=tolerance, err_msg=f"input {index}"
        )


def _pair(array):
    return tape.tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("average", [True, False])
def test_self_attention_matches_torch(dtype, batch_first, average):
    rng = np.random.default_rng(0)
    batch, length, embed = 3, 5, 8
    ours = MultiheadAttention(embed, 2, batch_first=batch_first, dtype=dtype, rng=rng)
    theirs = _torch_twin(ours, torch.nn.MultiheadAttention(embed, 2, batch_first=batch_first), dtype)
    shape = (batch, length, embed) if batch_first else (length, batch, embed)
    x, x_torch = _pair(rng.standard_normal(shape).astype(dtype))
    padding = np.zeros((batch, length), dtype=bool)
    padding[0, 3:] = True
    causal = np.triu(np.ones((length, length), dtype=bool), 1)
    output, weights = ours(x, x, x, key_padding_mask=padding, attn_mask=causal, average_attn_weights=average)
    expected, expected_weights = theirs(
        x_torch, x_torch, x_torch, key_padding_mask=torch.tensor(padding), attn_mask=torch.tensor(causal),
        average_attn_weights=average,
    )  # fmt: skip
    tolerance = TOLERANCE[dtype]
    assert output.dtype == dtype and weights.shape == tuple(expected_weights.shape)
    np.testing.assert_allclose(output.data, expected.detach().numpy(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(
        weights.data, expected_weights.detach().numpy(), rtol=tolerance, atol=tolerance
    )
    cotangent = rng.standard_normal(output.shape).astype(dtype)
    weight_cotangent = rng.standard_normal(weights.shape).astype(dtype)
    (np.sum(output * cotangent) + np.sum(weights * weight_cotangent)).backward()
    (
        (expected * torch.tensor(cotangent)).sum() + (expected_weights * torch.tensor(weight_cotangent)).sum()
    ).backward()
    _compare_gradients(ours, theirs, [x], [x_torch], tolerance)


def test_cross_attention_with_other_key_and_value_sizes_matches_torch():
    rng = np.random.default_rng(1)
    ours = MultiheadAttention(6, 3, batch_first=True, kdim=4, vdim=5, rng=rng)
    assert ours.in_proj_weight is None and ours.k_proj_weight.shape == (6, 4)
    theirs = _torch_twin(
        ours, torch.nn.MultiheadAttention(6, 3, batch_first=True, kdim=4, vdim=5), np.float64
    )
    arrays = [rng.standard_normal(shape) for shape in ((2, 3, 6), (2, 7, 4), (2, 7, 5))]
    pairs = [_pair(a) for a in arrays]
    mask = rng.standard_normal((2 * 3, 3, 7))  # an additive float mask per batch element and head
    output, weights = ours(*(p[0] for p in pairs), attn_mask=mask)
    expected, expected_weights = theirs(*(p[1] for p in pairs), attn_mask=torch.tensor(mask))
    np.testing.assert_allclose(output.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.data, expected_weights.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.sum(output * output).backward()
    (expected * expected).sum().backward()
    _compare_gradients(ours, theirs, [p[0] for p in pairs], [p[1] for p in pairs], 1e-10)


def test_separate_query_key_value_unbatched_and_without_bias_match_torch():
    rng = np.random.default_rng(2)
    ours = MultiheadAttention(4, 2, bias=False, rng=rng)
    assert ours.in_proj_bias is None and ours.out_proj.bias is None
    theirs = _torch_twin(ours, torch.nn.MultiheadAttention(4, 2, bias=False), np.float64)
    arrays = [rng.standard_normal(shape) for shape in ((3, 4), (6, 4), (6, 4))]
    pairs = [_pair(a) for a in arrays]
    padding = np.array([False, False, True, False, True, False])
    output, weights = ours(*(p[0] for p in pairs), key_padding_mask=padding)
    expected, expected_weights = theirs(*(p[1] for p in pairs), key_padding_mask=torch.tensor(padding))
    assert output.shape == (3, 4) and weights.shape == (3, 6)
    np.testing.assert_allclose(output.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.data, expected_weights.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.sum(output * output).backward()
    (expected * expected).sum().backward()
    _compare_gradients(ours, theirs, [p[0] for p in pairs], [p[1] for p in pairs], 1e-10)


def test_parameter_names_and_initialization_follow_torch():
    ours = MultiheadAttention(8, 2, rng=np.random.default_rng(0))
    expected = [name for name, _ in torch.nn.MultiheadAttention(8, 2).named_parameters()]
    assert [name for name, _ in ours.named_parameters()] == expected
    bound = np.sqrt(6 / (8 + 24))  # Xavier-uniform over the packed (3 E, E) matrix
    assert np.abs(ours.in_proj_weight.data).max() <= bound
    assert np.all(ours.in_proj_bias.data == 0) and np.all(ours.out_proj.bias.data == 0)
    layer = TransformerEncoderLayer(8, 2, dim_feedforward=16)
    reference = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    assert [n for n, _ in layer.named_parameters()] == [n for n, _ in reference.named_parameters()]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_in_evaluation_matches_torch(norm_first, batch_first, activation):
    rng = np.random.default_rng(3)
    options = {"dim_feedforward": 12, "dropout": 0.1, "activation": activation}
    options |= {"batch_first": batch_first, "norm_first": norm_first}
    ours = TransformerEncoderLayer(8, 2, rng=rng, **options).eval()
    theirs = _torch_twin(ours, torch.nn.TransformerEncoderLayer(8, 2, **options), np.float64)
    shape = (3, 5, 8) if batch_first else (5, 3, 8)
    x, x_torch = _pair(rng.standard_normal(shape))
    padding = np.zeros((3, 5), dtype=bool)
    padding[1, 4] = True
    output = ours(x, src_key_padding_mask=padding)
    expected = theirs(x_torch, src_key_padding_mask=torch.tensor(padding))
    np.testing.assert_allclose(output.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    cotangent = rng.standard_normal(shape)
    np.sum(output * cotangent).backward()
    (expected * torch.tensor(cotangent)).sum().backward()
    _compare_gradients(ours, theirs, [x], [x_torch], 1e-10)


def test_encoder_layer_float32_and_causal_mask_match_torch():
    rng = np.random.default_rng(4)
    ours = TransformerEncoderLayer(
        8, 4, dim_feedforward=16, batch_first=True, dtype=np.float32, rng=rng
    ).eval()
    theirs = _torch_twin(
        ours, torch.nn.TransformerEncoderLayer(8, 4, dim_feedforward=16, batch_first=True), np.float32
    )
    x, x_torch = _pair(rng.standard_normal((2, 6, 8)).astype(np.float32))
    causal = torch.nn.Transformer.generate_square_subsequent_mask(6)  # additive, -inf above the diagonal
    output = ours(x, src_mask=causal.numpy(), is_causal=True)
    assert output.dtype == np.float32
    expected = theirs(x_torch, src_mask=causal, is_causal=True)
    np.testing.assert_allclose(output.data, expected.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours(x, is_causal=True).data, output.data, rtol=1e-6)  # the mask made here
    np.sum(output * output).backward()
    (expected * expected).sum().backward()
    _compare_gradients(ours, theirs, [x], [x_torch], 1e-4)


def test_encoder_stack_with_final_norm_matches_torch():
    rng = np.random.default_rng(5)
    layer = TransformerEncoderLayer(8, 2, dim_feedforward=16, rng=rng)
    ours = TransformerEncoder(layer, 2, norm=nn.LayerNorm(8)).eval()
    assert not np.shares_memory(ours.layers[0].linear1.weight.data, ours.layers[1].linear1.weight.data)
    reference = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16), 2, norm=torch.nn.LayerNorm(8),
        enable_nested_tensor=False,
    )  # fmt: skip
    theirs = _torch_twin(ours, reference, np.float64)
    x, x_torch = _pair(rng.standard_normal((5, 3, 8)))
    output, expected = ours(x), theirs(x_torch)
    np.testing.assert_allclose(output.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.sum(output * output).backward()
    (expected * expected).sum().backward()
    _compare_gradients(ours, theirs, [x], [x_torch], 1e-10)


def test_dropout_acts_in_training_only():
    ours = MultiheadAttention(8, 2, dropout=0.5, batch_first=True, rng=np.random.default_rng(6))
    x = np.random.default_rng(7).standard_normal((2, 5, 8))
    _, weights = ours(x, x, x, average_attn_weights=False)
    ours.eval()
    first, evaluation_weights = ours(x, x, x, average_attn_weights=False)
    second, _ = ours(x, x, x)
    np.testing.assert_array_equal(first.data, second.data)
    np.testing.assert_allclose(np.sum(evaluation_weights.data, axis=-1), 1.0)
    kept = weights.data != 0  # dropped, or kept and scaled by 1 / (1 - 0.5)
    assert 0.3 < np.mean(kept) < 0.7
    np.testing.assert_allclose(weights.data[kept], 2 * evaluation_weights.data[kept], rtol=1e-12)
    layer = TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.3, rng=np.random.default_rng(8))
    assert not np.allclose(layer(x).data, layer(x).data)
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, layer(x).data)


def test_gradients_by_finite_differences():
    ours = MultiheadAttention(4, 2, batch_first=True, rng=np.random.default_rng(9))
    x = np.random.default_rng(10).standard_normal((2, 3, 4))
    assert tape.gradcheck(lambda x: ours(x, x, x)[0], x)


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"embed_dim \(6\) must be divisible by num_heads \(4\)"):
        MultiheadAttention(6, 4)
    attention = MultiheadAttention(4, 2)
    with pytest.raises(
        ValueError,
        match=r"MultiheadAttention\(embed_dim=4, num_heads=2\): expected query with last axis 4, got shape",
    ):
        attention(np.ones((3, 2, 5)), np.ones((3, 2, 4)), np.ones((3, 2, 4)))
    x = np.ones((3, 2, 4))
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(3, 3\) or \(4, 3, 3\)"):
        attention(x, x, x, attn_mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 3\)"):
        attention(x, x, x, key_padding_mask=np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="activation must be 'relu', 'gelu' or a callable"):
        TransformerEncoderLayer(4, 2, activation="swish")
