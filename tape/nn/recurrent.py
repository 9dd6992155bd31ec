"""Recurrent layers as in torch.nn: the cells ``RNNCell``, ``LSTMCell``, ``GRUCell`` (one time step) and the
sequence layers ``RNN``, ``LSTM``, ``GRU`` (several layers, either direction, dropout between layers).

Parameter names, shapes, gate order (LSTM: i, f, g, o; GRU: r, z, n), initialization and the shapes of
inputs and outputs are torch's, so a ``state_dict`` moves between the two. A step is written with
differentiable ops only (``linear``, ``sigmoid``, ``tanh``, ``lstm_cell``, ``np.where``, ...), so gradients of
any order follow from theirs; this file must define no VJP. The input projection of every time step is one
matrix product per layer and direction, taken before the time loop. An LSTM takes its gate rows in the order
i, f, o, g inside ``forward`` (the parameters keep torch's order) and adds its two biases once, with that
projection, so that a step is two ops: one product and ``tape.ops.recurrent.lstm_cell``, the pointwise rest
of the step fused into one record; and a sweep of an LSTM layer over a batch with no ``lengths`` is one op,
``tape.ops.recurrent.lstm_sequence``, whose VJP takes the recurrent weight's gradient as one product.

Variable-length batches take ``lengths`` (one int per sequence) in ``forward``, in place of torch's
``PackedSequence``: steps past a sequence's length leave its state unchanged and output zeros, so ``h_n``
holds each sequence's state at its last valid step, as torch gives for a packed batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tape.ops.nn import linear_op
from tape.ops.recurrent import lstm_cell, lstm_sequence

from ..dtypes import floating
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell"]

# How many blocks of ``hidden_size`` rows each kind of layer stacks in its weights.
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
_ACTIVATIONS = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(x._data if isinstance(x, Tensor) else x)


def _dtype(x: Any) -> np.dtype:
    return (x._data if isinstance(x, Tensor) else np.asarray(x)).dtype


# -- one time step -------------------------------------------------------------------------------------------
# Each step takes ``projected`` = x_t @ weight_ih.T + bias_ih (computed for all steps at once) and the state.
def _rnn_step(mode: str, projected: Any, state: Any, weight_hh: Any, bias_hh: Any) -> Any:
    pre = projected + linear_op(state, weight_hh, bias_hh)
    return np.tanh(pre) if mode == "RNN_TANH" else F.relu(pre)


def _lstm_step(projected: Any, state: tuple[Any, Any], weight_hh: Any, bias_hh: Any) -> tuple[Any, Any]:
    # The weights come from ``_lstm_weights``: gates in the order i, f, o, g, both biases in ``projected``
    # (``bias_hh`` is None). A step is two ops: one product and the fused pointwise cell.
    h, c = state
    return lstm_cell(linear_op(h, weight_hh, projected), c)


def _lstm_weights(weight_ih: Any, weight_hh: Any, bias_ih: Any, bias_hh: Any) -> tuple[Any, Any, Any, None]:
    """An LSTM's parameters as ``_lstm_step`` takes them: rows in the gate order i, f, o, g (torch's is i, f,
    g, o) and the two biases summed into one, which the input projection adds."""
    hidden = _shape(weight_hh)[1]
    order = np.r_[0 : 2 * hidden, 3 * hidden : 4 * hidden, 2 * hidden : 3 * hidden]
    bias = None if bias_ih is None else (bias_ih + bias_hh)[order]
    return weight_ih[order], weight_hh[order], bias, None


def _gru_step(projected: Any, state: Any, weight_hh: Any, bias_hh: Any) -> Any:
    x_r, x_z, x_n = np.split(projected, 3, axis=-1)
    h_r, h_z, h_n = np.split(linear_op(state, weight_hh, bias_hh), 3, axis=-1)
    r = F.sigmoid(x_r + h_r)
    z = F.sigmoid(x_z + h_z)
    n = np.tanh(x_n + r * h_n)
    return n + z * (state - n)  # (1 - z) * n + z * h, one op fewer


def _step(mode: str, projected: Any, state: Any, weight_hh: Any, bias_hh: Any) -> Any:
    if mode == "LSTM":
        return _lstm_step(projected, state, weight_hh, bias_hh)
    if mode == "GRU":
        return _gru_step(projected, state, weight_hh, bias_hh)
    return _rnn_step(mode, projected, state, weight_hh, bias_hh)


def _init_uniform(module: Module, hidden_size: int, rng: np.random.Generator | None) -> None:
    """torch's initialization: every parameter uniform in ±1/sqrt(hidden_size), drawn in parameter order."""
    rng = np.random.default_rng() if rng is None else rng
    bound = 1 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for parameter in module.parameters():
        init.uniform_(parameter, -bound, bound, rng=rng)


def _check_size(name: str, value: int, owner: str) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{owner}: {name} must be a non-negative int, got {value!r}")


# -- cells ---------------------------------------------------------------------------------------------------
class _CellBase(Module):
    """What the three cells share: parameters ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``, shape
    checks and repr."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.mode = mode
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            _check_size(name, value, type(self).__name__)
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.bias = bias
        rows = _GATES[self.mode] * self.hidden_size
        dtype = floating(dtype)
        self.weight_ih = Parameter(np.empty((rows, self.input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((rows, self.hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(np.empty(rows, dtype=dtype))
            self.bias_hh = Parameter(np.empty(rows, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Draw new parameters as at construction: uniform in ±1/sqrt(hidden_size)."""
        _init_uniform(self, self.hidden_size, rng)

    def _checked(self, input: Any, hx: Any) -> tuple[Any, list[Any], bool]:
        """The input as a batch ``(N, input_size)``, the states as ``(N, hidden_size)`` (zeros when not given)
        and whether the input had a batch axis."""
        shape = _shape(input)
        if len(shape) not in (1, 2) or shape[-1] != self.input_size:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.input_size}) or ({self.input_size},), "
                f"got shape {shape}"
            )
        batched = len(shape) == 2
        batch = shape[0] if batched else 1
        states = 2 if self.mode == "LSTM" else 1
        if hx is None:
            zeros = np.zeros((batch, self.hidden_size), dtype=self.weight_ih.dtype)
            return input if batched else input[None], [zeros] * states, batched
        given = list(hx) if states == 2 else [hx]
        if states == 2 and len(given) != 2:
            raise ValueError(f"{self!r}: expected the state as a pair (h, c), got {len(given)} items")
        expected = (batch, self.hidden_size) if batched else (self.hidden_size,)
        for name, state in zip(("h", "c"), given, strict=False):
            if _shape(state) != expected:
                raise ValueError(
                    f"{self!r}: expected {name} of shape {expected} for an input of shape {shape}, got shape "
                    f"{_shape(state)}"
                )
        if not batched:
            input, given = input[None], [state[None] for state in given]
        return input, given, batched

    def _run(self, input: Any, hx: Any) -> Any:
        input, states, batched = self._checked(input, hx)
        weight_ih, weight_hh, bias_ih, bias_hh = self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh
        if self.mode == "LSTM":
            weight_ih, weight_hh, bias_ih, bias_hh = _lstm_weights(weight_ih, weight_hh, bias_ih, bias_hh)
        projected = linear_op(input, weight_ih, bias_ih)
        state = tuple(states) if self.mode == "LSTM" else states[0]
        new = _step(self.mode, projected, state, weight_hh, bias_hh)
        if batched:
            return new
        return tuple(s[0] for s in new) if self.mode == "LSTM" else new[0]

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if self.mode == "RNN_RELU":
            text += ", nonlinearity=relu"  # as torch shows it
        return text


class RNNCell(_CellBase):
    """One step of an Elman RNN: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or ``relu``).

    ``forward(input, hx=None)`` takes ``input`` of shape ``(N, input_size)`` or ``(input_size,)`` and ``hx``
    of shape ``(N, hidden_size)`` or ``(hidden_size,)`` (zeros when None), and returns ``h'``.

    Examples
    --------
    >>> cell = RNNCell(3, 5, rng=np.random.default_rng(0))
    >>> cell(np.ones((2, 3))).shape
    (2, 5)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        if nonlinearity not in _ACTIVATIONS:
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(_ACTIVATIONS[nonlinearity], input_size, hidden_size, bias, dtype, rng)
        self.nonlinearity = nonlinearity

    def forward(self, input: Any, hx: Any = None) -> Any:
        return self._run(input, hx)


class LSTMCell(_CellBase):
    """One step of an LSTM, gates in torch's order i, f, g, o along the rows of ``weight_ih``/``weight_hh``.

    ``forward(input, hx=None)`` takes ``hx`` as a pair ``(h, c)`` (zeros when None) and returns ``(h', c')``.

    Examples
    --------
    >>> cell = LSTMCell(3, 5, rng=np.random.default_rng(0))
    >>> h, c = cell(np.ones((2, 3)))
    >>> h.shape, c.shape, cell.weight_ih.shape
    ((2, 5), (2, 5), (20, 3))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, dtype, rng)

    def forward(self, input: Any, hx: tuple[Any, Any] | None = None) -> tuple[Any, Any]:
        return self._run(input, hx)


class GRUCell(_CellBase):
    """One step of a GRU, gates in torch's order r, z, n: ``h' = (1 - z) * n + z * h`` with
    ``n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))``.

    Examples
    --------
    >>> cell = GRUCell(3, 5, rng=np.random.default_rng(0))
    >>> cell(np.ones(3)).shape
    (5,)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, dtype, rng)

    def forward(self, input: Any, hx: Any = None) -> Any:
        return self._run(input, hx)


# -- sequence layers -----------------------------------------------------------------------------------------
class _RNNBase(Module):
    """What ``RNN``, ``LSTM`` and ``GRU`` share: parameters per layer and direction, shape checks, the
    layer and time loops, masking by ``lengths``, dropout between layers and repr."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.mode = mode
        name = type(self).__name__
        for size_name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            _check_size(size_name, value, name)
        if not isinstance(num_layers, int | np.integer) or num_layers < 1:
            raise ValueError(f"{name}: num_layers must be a positive int, got {num_layers!r}")
        if isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.rng = np.random.default_rng() if rng is None else rng
        rows = _GATES[self.mode] * self.hidden_size
        directions = 2 if bidirectional else 1
        dtype = floating(dtype)
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                self.register_parameter(
                    f"weight_ih_l{layer}{suffix}", Parameter(np.empty((rows, layer_input), dtype=dtype))
                )
                self.register_parameter(
                    f"weight_hh_l{layer}{suffix}", Parameter(np.empty((rows, self.hidden_size), dtype=dtype))
                )
                if bias:
                    self.register_parameter(
                        f"bias_ih_l{layer}{suffix}", Parameter(np.empty(rows, dtype=dtype))
                    )
                    self.register_parameter(
                        f"bias_hh_l{layer}{suffix}", Parameter(np.empty(rows, dtype=dtype))
                    )
        self.reset_parameters(self.rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Draw new parameters as at construction: uniform in ±1/sqrt(hidden_size)."""
        _init_uniform(self, self.hidden_size, rng)

    @property
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _weights(self, layer: int, direction: int) -> tuple[Any, Any, Any, Any]:
        suffix = "_reverse" if direction else ""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return tuple(self._parameters.get(f"{name}_l{layer}{suffix}") for name in names)

    def _checked_input(self, input: Any) -> tuple[Any, bool]:
        """The input as ``(L, N, input_size)`` and whether it had a batch axis."""
        shape = _shape(input)
        batch_axes = "(N, L, " if self.batch_first else "(L, N, "
        if (
            len(shape) not in (2, 3)
            or shape[-1] != self.input_size
            or shape[0 if len(shape) == 2 else int(self.batch_first)] == 0
        ):
            raise ValueError(
                f"{self!r}: expected input of shape {batch_axes}{self.input_size}) or "
                f"(L, {self.input_size}) with L >= 1, got shape {shape}"
            )
        if len(shape) == 2:
            return input[:, None], False
        return (np.swapaxes(input, 0, 1) if self.batch_first else input), True

    def _checked_states(self, hx: Any, batch: int, batched: bool, dtype: np.dtype) -> list[list[Any]]:
        """One list per state (h, and c for an LSTM), each with one ``(N, hidden_size)`` entry per layer and
        direction: ``hx`` split up, or zeros."""
        states = 2 if self.mode == "LSTM" else 1
        count = self.num_layers * self._directions
        if hx is None:
            zeros = np.zeros((batch, self.hidden_size), dtype=dtype)
            return [[zeros] * count for _ in range(states)]
        if states == 2 and (not isinstance(hx, tuple | list) or len(hx) != 2):
            raise ValueError(f"{self!r}: expected the initial state as a pair (h_0, c_0)")
        given = list(hx) if states == 2 else [hx]
        expected = (count, batch, self.hidden_size) if batched else (count, self.hidden_size)
        result = []
        for name, state in zip(("h_0", "c_0"), given, strict=False):
            if _shape(state) != expected:
                raise ValueError(
                    f"{self!r}: expected {name} of shape {expected} (num_layers * num_directions, "
                    f"{'N, ' if batched else ''}hidden_size), got shape {_shape(state)}"
                )
            result.append(list(np.unstack(state if batched else state[:, None], axis=0)))
        return result

    def _checked_lengths(self, lengths: Sequence[int], steps: int, batch: int, batched: bool) -> np.ndarray:
        if not batched:
            raise ValueError(f"{self!r}: lengths needs a batched (3-D) input")
        lengths = np.asarray(lengths)
        if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
            raise ValueError(
                f"{self!r}: expected lengths as {batch} ints (one per sequence), got {lengths!r}"
            )
        if lengths.min(initial=1) < 1 or lengths.max(initial=0) > steps:
            raise ValueError(
                f"{self!r}: each length must be in [1, {steps}] (the input's steps), got {lengths}"
            )
        return lengths

    def forward(self, input: Any, hx: Any = None, lengths: Sequence[int] | None = None) -> Any:
        """Run every layer over the sequence.

        Parameters
        ----------
        input : ``(L, N, input_size)`` (``(N, L, input_size)`` with ``batch_first``) or unbatched
            ``(L, input_size)``.
        hx : the initial state, ``h_0`` (a pair ``(h_0, c_0)`` for an LSTM), each of shape
            ``(num_layers * num_directions, N, hidden_size)`` (without ``N`` when unbatched); zeros when None.
        lengths : optional, one int per sequence: steps from a sequence's length on do not change its state
            and give zero outputs (torch's packed-sequence semantics).

        Returns
        -------
        ``(output, h_n)`` (``(output, (h_n, c_n))`` for an LSTM): ``output`` of shape
        ``(L, N, num_directions * hidden_size)`` (batch axis as the input's), the states as ``hx``.
        """
        x, batched = self._checked_input(input)
        steps, batch = _shape(x)[:2]
        dtype = self.weight_ih_l0.dtype
        states = self._checked_states(hx, batch, batched, dtype)
        valid = None
        if lengths is not None:
            lengths = self._checked_lengths(lengths, steps, batch, batched)
            valid = np.arange(steps)[:, None, None] < lengths[None, :, None]  # (L, N, 1)
        finals: list[list[Any]] = [[] for _ in states]
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self._directions):
                index = layer * self._directions + direction
                start = tuple(state[index] for state in states)
                output, final = self._sweep(x, start, self._weights(layer, direction), bool(direction), valid)
                outputs.append(output)
                for kept, state in zip(finals, final, strict=True):
                    kept.append(state)
            x = outputs[0] if len(outputs) == 1 else np.concatenate(outputs, axis=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True, self.rng)
        finals_stacked = [np.stack(kept, axis=0) for kept in finals]
        if not batched:
            x = x[:, 0]
            finals_stacked = [state[:, 0] for state in finals_stacked]
        elif self.batch_first:
            x = np.swapaxes(x, 0, 1)
        if self.mode == "LSTM":
            return x, tuple(finals_stacked)
        return x, finals_stacked[0]

    def _sweep(
        self,
        x: Any,
        start: tuple[Any, ...],
        weights: tuple[Any, ...],
        reverse: bool,
        valid: np.ndarray | None,
    ) -> tuple[Any, tuple[Any, ...]]:
        """One layer in one direction over every step: outputs ``(L, N, hidden_size)`` and the last state."""
        weight_ih, weight_hh, bias_ih, bias_hh = weights
        if self.mode == "LSTM":
            weight_ih, weight_hh, bias_ih, bias_hh = _lstm_weights(weight_ih, weight_hh, bias_ih, bias_hh)
        steps, batch = _shape(x)[:2]
        # One product for every step, as a 2-D product (the fast path of ``linear``).
        rows = np.reshape(x, (steps * batch, _shape(x)[2]))
        projected = np.reshape(linear_op(rows, weight_ih, bias_ih), (steps, batch, -1))
        lstm = self.mode == "LSTM"
        if lstm and valid is None:  # every step of every sequence: the whole sweep is one op
            output, h_n, c_n = lstm_sequence(projected, *start, weight_hh, reverse=reverse)
            return output, (h_n, c_n)
        projected = np.unstack(projected, axis=0)
        state = start  # (h,) or (h, c)
        outputs: list[Any] = [None] * steps
        zeros = np.zeros((batch, self.hidden_size), dtype=_dtype(weight_hh))
        for t in range(steps - 1, -1, -1) if reverse else range(steps):
            if valid is not None and not valid[t].any():
                outputs[t] = zeros  # past every sequence's end: the state waits (or, reversed, has not begun)
                continue
            new = _step(self.mode, projected[t], state if lstm else state[0], weight_hh, bias_hh)
            new = new if lstm else (new,)
            if valid is None or valid[t].all():
                state = new
                outputs[t] = new[0]
            else:  # the sequences that have ended keep their state and output zeros
                keep = valid[t]
                state = tuple(np.where(keep, a, b) for a, b in zip(new, state, strict=True))
                outputs[t] = np.where(keep, new[0], zeros)
        return np.stack(outputs, axis=0), state

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            text += ", nonlinearity=relu"  # torch.nn.RNN leaves it out; its RNNCell shows it so
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class RNN(_RNNBase):
    """A multi-layer Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or ``relu``).

    Arguments, parameters (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, with
    ``_reverse`` for the backward direction), shapes and initialization are torch's; ``rng`` draws the
    initial parameters and then the dropout masks. ``forward(input, hx=None, lengths=None)`` returns
    ``(output, h_n)``.

    Examples
    --------
    >>> rnn = RNN(3, 5, num_layers=2, rng=np.random.default_rng(0))
    >>> output, h_n = rnn(np.ones((7, 2, 3)))
    >>> output.shape, h_n.shape
    ((7, 2, 5), (2, 2, 5))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        if nonlinearity not in _ACTIVATIONS:
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(
            _ACTIVATIONS[nonlinearity],
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype,
            rng,
        )
        self.nonlinearity = nonlinearity


class LSTM(_RNNBase):
    """A multi-layer LSTM, gates in torch's order i, f, g, o along the rows of each weight.

    As ``RNN``, but the state is a pair: ``forward(input, hx=None, lengths=None)`` takes ``hx = (h_0, c_0)``
    and returns ``(output, (h_n, c_n))``.

    Examples
    --------
    >>> lstm = LSTM(3, 5, batch_first=True, bidirectional=True, rng=np.random.default_rng(0))
    >>> output, (h_n, c_n) = lstm(np.ones((2, 7, 3)), lengths=[7, 4])
    >>> output.shape, h_n.shape, lstm.weight_hh_l0_reverse.shape
    ((2, 7, 10), (2, 2, 5), (20, 5))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            "LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype, rng
        )


class GRU(_RNNBase):
    """A multi-layer GRU, gates in torch's order r, z, n: ``h_t = (1 - z) * n + z * h_{t-1}``.

    As ``RNN``: ``forward(input, hx=None, lengths=None)`` returns ``(output, h_n)``.

    Examples
    --------
    >>> gru = GRU(3, 5, rng=np.random.default_rng(0))
    >>> output, h_n = gru(np.ones((7, 3)))  # unbatched
    >>> output.shape, h_n.shape
    ((7, 5), (1, 5))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, dtype, rng
        )
