"""tape/nn/recurrent.py: the cells and the sequence layers against torch.nn (outputs, final states and every
gradient, over a grid of settings), masking by ``lengths`` against torch's packed sequences, dropout between
layers, finite-difference checks without torch, initialization, repr and shape errors naming the layer."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import tape
from tape.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

# (tape class, torch class name, extra arguments)
LAYERS = [
    (RNN, "RNN", {"nonlinearity": "tanh"}),
    (RNN, "RNN", {"nonlinearity": "relu"}),
    (LSTM, "LSTM", {}),
    (GRU, "GRU", {}),
]
CELLS = [
    (RNNCell, "RNNCell", {"nonlinearity": "tanh"}),
    (RNNCell, "RNNCell", {"nonlinearity": "relu"}),
    (LSTMCell, "LSTMCell", {}),
    (GRUCell, "GRUCell", {}),
]
TOLERANCE = {np.float64: 1e-10, np.float32: 1e-4}


def layer_id(case):
    layer_class, _, extra = case
    return f"{layer_class.__name__}-{extra['nonlinearity']}" if extra else layer_class.__name__


def torch_twin(torch, module, torch_name, arguments, dtype):
    """The torch module of the same settings, holding the same parameters."""
    twin = getattr(torch.nn, torch_name)(**arguments, dtype=getattr(torch, np.dtype(dtype).name))
    twin.load_state_dict({name: torch.tensor(value) for name, value in module.state_dict().items()})
    assert [name for name, _ in twin.named_parameters()] == [name for name, _ in module.named_parameters()]
    return twin


def flatten_states(result):
    """The outputs of a forward call as a flat list: output, h_n[, c_n] (or h'[, c'] for a cell)."""
    items = []
    for item in result if isinstance(result, tuple) else (result,):
        items.extend(item if isinstance(item, tuple) else (item,))
    return items


def run_both(torch, module, twin, inputs, lengths=None, batch_first=False):
    """Forward and backward of a random linear function of every output in tape and torch; returns the
    outputs and the gradients (inputs', then parameters') of each, as numpy arrays."""
    ours = [tape.tensor(value, requires_grad=True) if value is not None else None for value in inputs]
    theirs = [torch.tensor(value, requires_grad=True) if value is not None else None for value in inputs]
    x, *states = ours
    state = None if states[0] is None else (tuple(states) if len(states) == 2 else states[0])
    tx, *tstates = theirs
    tstate = None if tstates[0] is None else (tuple(tstates) if len(tstates) == 2 else tstates[0])
    if lengths is None:
        results = flatten_states(module(x, state))
        tresults = flatten_states(twin(tx, tstate))
    else:
        results = flatten_states(module(x, state, lengths=lengths))
        pack = torch.nn.utils.rnn
        packed = pack.pack_padded_sequence(tx, lengths, batch_first=batch_first, enforce_sorted=False)
        tout, tfinal = twin(packed, tstate)
        tout, _ = pack.pad_packed_sequence(
            tout, batch_first=batch_first, total_length=tx.shape[int(batch_first)]
        )
        tresults = flatten_states((tout, tfinal))
    rng = np.random.default_rng(99)
    weights = [rng.standard_normal(result.shape).astype(result.dtype) for result in results]
    sum(np.sum(result * weight) for result, weight in zip(results, weights, strict=True)).backward()
    sum(
        (result * torch.tensor(weight)).sum() for result, weight in zip(tresults, weights, strict=True)
    ).backward()
    ours_out = [result.data for result in results]
    theirs_out = [result.detach().numpy() for result in tresults]
    ours_grads = [t.grad for t in ours if t is not None] + [p.grad for p in module.parameters()]
    theirs_grads = [t.grad.numpy() for t in theirs if t is not None] + [
        p.grad.numpy() for p in twin.parameters()
    ]
    return ours_out + ours_grads, theirs_out + theirs_grads


def assert_all_close(ours, theirs, tolerance):
    assert len(ours) == len(theirs)
    for index, (mine, reference) in enumerate(zip(ours, theirs, strict=True)):
        assert mine.shape == reference.shape and mine.dtype == reference.dtype, index
        np.testing.assert_allclose(mine, reference, rtol=tolerance, atol=tolerance, err_msg=f"item {index}")


def sequence_inputs(layer_class, arguments, batch_first, batched, given_state, dtype, steps=4, batch=3):
    rng = np.random.default_rng(1)
    directions = 2 if arguments.get("bidirectional") else 1
    count = arguments.get("num_layers", 1) * directions
    shape = ((batch, steps) if batch_first else (steps, batch)) if batched else (steps,)
    x = rng.standard_normal((*shape, arguments["input_size"])).astype(dtype)
    state_shape = (count, batch, arguments["hidden_size"]) if batched else (count, arguments["hidden_size"])
    states = 2 if layer_class is LSTM else 1
    if not given_state:
        return [x, *[None] * states]
    return [x, *[rng.standard_normal(state_shape).astype(dtype) for _ in range(states)]]


GRID = list(itertools.product([False, True], [1, 2], [False, True], [True, False], [False, True]))


@pytest.mark.parametrize("case", LAYERS, ids=layer_id)
@pytest.mark.parametrize(("batch_first", "num_layers", "bidirectional", "bias", "given_state"), GRID)
def test_layers_match_torch_in_float64(case, batch_first, num_layers, bidirectional, bias, given_state):
    torch = pytest.importorskip("torch")
    layer_class, torch_name, extra = case
    arguments = dict(input_size=3, hidden_size=4, num_layers=num_layers, bias=bias, batch_first=batch_first,
                     bidirectional=bidirectional, **extra)  # fmt: skip
    module = layer_class(**arguments, dtype=np.float64, rng=np.random.default_rng(0))
    twin = torch_twin(torch, module, torch_name, arguments, np.float64)
    inputs = sequence_inputs(layer_class, arguments, batch_first, True, given_state, np.float64)
    assert_all_close(*run_both(torch, module, twin, inputs), TOLERANCE[np.float64])


@pytest.mark.parametrize("case", LAYERS, ids=layer_id)
@pytest.mark.parametrize("given_state", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unbatched_and_float32_layers_match_torch(case, given_state, dtype):
    torch = pytest.importorskip("torch")
    layer_class, torch_name, extra = case
    arguments = dict(input_size=3, hidden_size=5, num_layers=2, bidirectional=True, **extra)
    module = layer_class(**arguments, dtype=dtype, rng=np.random.default_rng(0))
    twin = torch_twin(torch, module, torch_name, arguments, dtype)
    for batched in (False, True):
        module.zero_grad()
        twin.zero_grad()
        inputs = sequence_inputs(layer_class, arguments, False, batched, given_state, dtype)
        assert_all_close(*run_both(torch, module, twin, inputs), TOLERANCE[dtype])


@pytest.mark.parametrize("case", CELLS, ids=layer_id)
@pytest.mark.parametrize(("bias", "given_state", "batched"), list(itertools.product([True, False], repeat=3)))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cells_match_torch(case, bias, given_state, batched, dtype):
    torch = pytest.importorskip("torch")
    cell_class, torch_name, extra = case
    arguments = dict(input_size=3, hidden_size=4, bias=bias, **extra)
    cell = cell_class(**arguments, dtype=dtype, rng=np.random.default_rng(0))
    twin = torch_twin(torch, cell, torch_name, arguments, dtype)
    rng = np.random.default_rng(2)
    lead = (5,) if batched else ()
    states = 2 if cell_class is LSTMCell else 1
    inputs = [rng.standard_normal((*lead, 3)).astype(dtype)]
    inputs += [rng.standard_normal((*lead, 4)).astype(dtype) if given_state else None for _ in range(states)]
    assert_all_close(*run_both(torch, cell, twin, inputs), TOLERANCE[dtype])


@pytest.mark.parametrize("case", LAYERS, ids=layer_id)
@pytest.mark.parametrize(
    ("batch_first", "bidirectional", "given_state"),
    [(False, True, True), (True, True, False), (True, False, True)],
)
def test_lengths_match_torch_packed_sequences(case, batch_first, bidirectional, given_state):
    torch = pytest.importorskip("torch")
    layer_class, torch_name, extra = case
    arguments = dict(input_size=3, hidden_size=4, num_layers=2, batch_first=batch_first,
                     bidirectional=bidirectional, **extra)  # fmt: skip
    module = layer_class(**arguments, rng=np.random.default_rng(0))
    twin = torch_twin(torch, module, torch_name, arguments, np.float64)
    inputs = sequence_inputs(
        layer_class, arguments, batch_first, True, given_state, np.float64, steps=6, batch=4
    )
    lengths = [3, 6, 1, 4]  # unsorted, one full, one of a single step
    ours, theirs = run_both(torch, module, twin, inputs, lengths=lengths, batch_first=batch_first)
    assert_all_close(ours, theirs, TOLERANCE[np.float64])
    output = ours[0] if batch_first else np.swapaxes(ours[0], 0, 1)
    for sequence, length in enumerate(lengths):
        assert np.all(output[sequence, length:] == 0)


def test_lengths_all_full_is_the_plain_run():
    lstm = LSTM(3, 4, bidirectional=True, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((5, 2, 3))
    plain, masked = flatten_states(lstm(x)), flatten_states(lstm(x, lengths=[5, 5]))
    for mine, reference in zip(masked, plain, strict=True):
        np.testing.assert_array_equal(mine.data, reference.data)


@pytest.mark.parametrize("case", LAYERS[1:], ids=layer_id)
def test_dropout_between_layers(case):
    layer_class, torch_name, extra = case
    p = 0.4
    arguments = dict(input_size=3, hidden_size=50, num_layers=2, dropout=p, **extra)
    module = layer_class(**arguments, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((6, 4, 3))
    # Training: layer 0's output, dropped out with the mask drawn from the module's rng, feeds layer 1.
    module.rng = np.random.default_rng(7)
    output, _ = module(x)
    mask = np.random.default_rng(7).random((6, 4, 50)) >= p
    assert abs((1 - mask.mean()) - p) < 0.03
    first = layer_class(3, 50, **extra)
    second = layer_class(50, 50, **extra)
    state = module.state_dict()
    first.load_state_dict({name: value for name, value in state.items() if name.endswith("l0")})
    second.load_state_dict({name[:-1] + "0": value for name, value in state.items() if name.endswith("l1")})
    between, _ = first(x)
    expected, _ = second(between.data * mask / (1 - p))
    np.testing.assert_allclose(output.data, expected.data, rtol=1e-12, atol=1e-12)
    # Evaluation: no dropout, as torch.
    module.eval()
    output, _ = module(x)
    np.testing.assert_allclose(output.data, second(first(x)[0])[0].data, rtol=1e-12, atol=1e-12)
    torch = pytest.importorskip("torch")
    twin = torch_twin(torch, module, torch_name, arguments, np.float64).eval()
    np.testing.assert_allclose(output.data, twin(torch.tensor(x))[0].detach().numpy(), rtol=1e-10, atol=1e-10)


def with_parameters(module, x, states, weights):
    """Run ``module`` with ``weights`` (tensors) standing in for its parameters, so gradcheck sees them."""
    for (name, _), weight in zip(module.named_parameters(), weights, strict=True):
        module._parameters[name] = weight
    output, final = module(x, states)
    return (output, *final) if isinstance(final, tuple) else (output, final)


@pytest.mark.parametrize("layer_class", [LSTM, GRU])
def test_gradcheck_without_torch(layer_class):
    module = layer_class(2, 3, num_layers=2, bidirectional=True, rng=np.random.default_rng(0))
    weights = [p.data.copy() for p in module.parameters()]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 2, 2))
    h0 = rng.standard_normal((4, 2, 3))
    if layer_class is LSTM:
        c0 = rng.standard_normal((4, 2, 3))
        assert tape.gradcheck(
            lambda x, h0, c0, *w: with_parameters(module, x, (h0, c0), w), x, h0, c0, *weights
        )
    else:
        assert tape.gradcheck(lambda x, h0, *w: with_parameters(module, x, h0, w), x, h0, *weights)


def test_gradcheck_of_masked_lengths_and_cells():
    gru = GRU(2, 3, bidirectional=True, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((4, 3, 2))
    assert tape.gradcheck(lambda x: gru(x, lengths=[2, 4, 1])[0], x)
    cell = LSTMCell(2, 3, rng=np.random.default_rng(0))
    h = np.random.default_rng(2).standard_normal((2, 3))
    assert tape.gradcheck(lambda x, h, c: cell(x, (h, c)), x[0, :2], h, h[::-1].copy())


def test_second_derivatives():
    lstm = LSTM(2, 3, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((3, 2, 2))

    input_gradient = tape.grad(lambda x: np.sum(lstm(x)[0] ** 2))
    assert tape.gradcheck(input_gradient, x)


@pytest.mark.parametrize("case", LAYERS + CELLS, ids=layer_id)
def test_initialization_bounds_names_and_rng(case):
    layer_class, _, extra = case
    if layer_class in (RNNCell, LSTMCell, GRUCell):
        module = layer_class(3, 16, **extra, rng=np.random.default_rng(0))
        again = layer_class(3, 16, **extra, rng=np.random.default_rng(0))
    else:
        module = layer_class(3, 16, num_layers=2, bidirectional=True, **extra, rng=np.random.default_rng(0))
        again = layer_class(3, 16, num_layers=2, bidirectional=True, **extra, rng=np.random.default_rng(0))
    bound = 1 / math.sqrt(16)
    for (name, parameter), (_, twin) in zip(module.named_parameters(), again.named_parameters(), strict=True):
        assert np.all(np.abs(parameter.data) <= bound) and np.abs(parameter.data).max() > 0.5 * bound, name
        np.testing.assert_array_equal(parameter.data, twin.data)
        assert parameter.requires_grad and parameter.dtype == np.float64
    torch = pytest.importorskip("torch")
    if layer_class in (RNNCell, LSTMCell, GRUCell):
        reference = getattr(torch.nn, layer_class.__name__)(3, 16, **extra)
    else:
        reference = getattr(torch.nn, layer_class.__name__)(3, 16, num_layers=2, bidirectional=True, **extra)
    shapes = [(name, tuple(parameter.shape)) for name, parameter in reference.named_parameters()]
    assert shapes == [(name, parameter.shape) for name, parameter in module.named_parameters()]


def test_no_bias_and_float32_parameters():
    lstm = LSTM(3, 4, bias=False, dtype=np.float32)
    assert [name for name, _ in lstm.named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    output, (h_n, _) = lstm(np.ones((2, 1, 3), np.float32))
    assert output.dtype == h_n.dtype == np.float32
    with pytest.raises(TypeError, match="float64"):
        lstm(np.ones((2, 1, 3)))


def test_reprs_match_torch():
    torch = pytest.importorskip("torch")
    for arguments in ({}, {"num_layers": 2, "batch_first": True, "dropout": 0.5, "bidirectional": True},
                      {"bias": False}):  # fmt: skip
        assert repr(LSTM(3, 4, **arguments)) == repr(torch.nn.LSTM(3, 4, **arguments))
        assert repr(GRU(3, 4, **arguments)) == repr(torch.nn.GRU(3, 4, **arguments))
    assert repr(GRUCell(3, 4, bias=False)) == repr(torch.nn.GRUCell(3, 4, bias=False))
    assert repr(RNNCell(3, 4, nonlinearity="relu")) == repr(torch.nn.RNNCell(3, 4, nonlinearity="relu"))


def test_errors_name_the_layer_and_the_shapes():
    lstm = LSTM(3, 4, num_layers=2)
    with pytest.raises(
        ValueError, match=r"LSTM\(3, 4, num_layers=2\): expected input .* got shape \(5, 2, 7\)"
    ):
        lstm(np.ones((5, 2, 7)))
    with pytest.raises(ValueError, match=r"LSTM\(3, 4, num_layers=2\): expected input .* got shape \(3,\)"):
        lstm(np.ones(3))
    with pytest.raises(ValueError, match=r"expected h_0 of shape \(2, 2, 4\) .* got shape \(1, 2, 4\)"):
        lstm(np.ones((5, 2, 3)), (np.zeros((1, 2, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(ValueError, match=r"expected c_0 of shape \(2, 2, 4\) .* got shape \(2, 4\)"):
        lstm(np.ones((5, 2, 3)), (np.zeros((2, 2, 4)), np.zeros((2, 4))))
    with pytest.raises(ValueError, match=r"a pair \(h_0, c_0\)"):
        lstm(np.ones((5, 2, 3)), np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match=r"GRU\(3, 4, bidirectional=True\): expected h_0 of shape \(2, 4\)"):
        GRU(3, 4, bidirectional=True)(np.ones((5, 3)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"lengths as 2 ints"):
        lstm(np.ones((5, 2, 3)), lengths=[5])
    with pytest.raises(ValueError, match=r"each length must be in \[1, 5\]"):
        lstm(np.ones((5, 2, 3)), lengths=[6, 0])
    with pytest.raises(
        ValueError, match=r"GRUCell\(3, 4\): expected input of shape \(N, 3\) .* got shape \(2, 2\)"
    ):
        GRUCell(3, 4)(np.ones((2, 2)))
    with pytest.raises(
        ValueError, match=r"LSTMCell\(3, 4\): expected c of shape \(2, 4\) .* got shape \(4,\)"
    ):
        LSTMCell(3, 4)(np.ones((2, 3)), (np.zeros((2, 4)), np.zeros(4)))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\]"):
        GRU(3, 4, dropout=1.5)
