"""An LSTM as ops: the pointwise part of a step, ``lstm_cell(gates, c) -> (h, c_new)``, and a whole sweep of
one layer in one direction, ``lstm_sequence(projected, h0, c0, weight_hh) -> (output, h_n, c_n)``.

``gates`` ``(N, 4H)`` holds a step's gate pre-activations in the order i, f, o, g (``tape.nn.LSTM`` keeps its
weight rows in that order inside ``forward``, so that the three sigmoids are one block), ``c`` ``(N, H)`` the
previous cell state::

    i, f, o = sigmoid(gates[:, :3H]) split in three;  g = tanh(gates[:, 3H:])
    c_new = f * c + i * g;  h = o * tanh(c_new)

Written with separate ops a step records about ten of them, and at an LSTM's sizes the engine's cost per op
outweighs numpy's work; ``lstm_cell`` records one, and ``lstm_sequence`` one for every step together (its
VJP loops over the steps backwards and takes the recurrent weight's cotangent as one product over all of
them, not one per step). A record keeps what its VJP reads and nothing else: the activated gates,
``tanh(c_new)`` and the cell states, not the pre-activations. The activated gates and ``tanh(c_new)`` are
extra outputs of the ops (the public functions leave them out), so that under ``create_graph`` a VJP reads
them as recorded tensors and differentiates again, as attention's weights do.

The forward takes the sigmoids as ``(1 + tanh(x / 2)) / 2``, so that one call of numpy's tanh (which runs
several elements at a time; a numba loop calls the C library's ``tanh`` once per element and was measured
four times slower) activates all four gates; the numba kernel ``finish_gates_kernel`` then finishes the
sigmoids and forms ``c_new`` in one pass, and numpy takes ``tanh(c_new)``. The VJP is only products and
sums: ``lstm_cell_vjp_kernel``, one pass with no temporaries. Both kernels run on plain C-contiguous
float32/float64 arrays (lazily compiled, cached); their twins, numpy formulas, run with JIT off, on other
layouts and dtypes, and for the VJP on tensors under ``create_graph``, where its formula is recorded.
This module holds no layer (``tape.nn.recurrent`` does) and imports nothing of ``tape.nn``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tape.jit import kernel
from tape.op import Op
from tape.tensor import Tensor

from . import mkl

__all__ = ["lstm_cell", "lstm_cell_op", "lstm_sequence", "lstm_sequence_op"]

_NAME = "lstm_cell"
_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _data(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else np.asarray(x)


def _kernel_fits(arrays: tuple[Any, ...]) -> bool:
    """Whether every array is a plain C-contiguous float32/float64 ndarray of one dtype: one compiled
    signature per dtype; anything else (tensors under create_graph, views, float16) runs the twin."""
    dtype = arrays[-1].dtype if type(arrays[-1]) is np.ndarray else None
    if dtype not in _KERNEL_DTYPES:
        return False
    return all(type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous for a in arrays)


# -- forward: numpy's tanh over every gate, one kernel for the arithmetic between it and tanh(c_new) ------
# sigmoid(x) = (1 + tanh(x / 2)) / 2, so one call of numpy's tanh activates all four gates, on the gates
# with the three sigmoid blocks halved: these factors, per block.
_HALVES = np.array([[0.5], [0.5], [0.5], [1.0]])


def _finish_gates_numpy(activated: np.ndarray, c: np.ndarray, c_new: np.ndarray) -> None:
    """numpy twin of ``finish_gates_kernel``."""
    hidden = c.shape[1]
    sigmoids = activated[:, : 3 * hidden]
    sigmoids *= 0.5
    sigmoids += 0.5
    np.multiply(activated[:, hidden : 2 * hidden], c, out=c_new)
    c_new += activated[:, :hidden] * activated[:, 3 * hidden :]


@kernel(_finish_gates_numpy)
def finish_gates_kernel(activated: np.ndarray, c: np.ndarray, c_new: np.ndarray) -> None:
    """Turn ``tanh(x / 2)`` into ``sigmoid(x)`` in place in the first three blocks of ``activated``
    ``(N, 4H)`` (the gates i, f, o; the fourth already holds ``g = tanh(x)``) and write
    ``f * c + i * g`` into ``c_new`` ``(N, H)``.

    Examples
    --------
    >>> activated, c_new = np.array([[0.0, 0.0, 1.0, 0.5]]), np.empty((1, 1))
    >>> finish_gates_kernel(activated, np.ones((1, 1)), c_new)
    >>> activated, c_new
    (array([[0.5, 0.5, 1. , 0.5]]), array([[0.75]]))
    """
    rows, hidden = c.shape
    a, b, d = hidden, 2 * hidden, 3 * hidden  # where the gates f, o and g begin
    for r in range(rows):
        sigmoids = activated[r, :d]
        for j in range(d):
            sigmoids[j] = sigmoids[j] * 0.5 + 0.5
        i, f, g, c_row, out = activated[r, :a], activated[r, a:b], activated[r, d:], c[r], c_new[r]
        for j in range(hidden):
            out[j] = f[j] * c_row[j] + i[j] * g[j]


def _lstm_cell_into(
    gates: np.ndarray,
    c: np.ndarray,
    h: np.ndarray,
    c_new: np.ndarray,
    activated: np.ndarray,
    tanh_c: np.ndarray,
    finish: Callable[[np.ndarray, np.ndarray, np.ndarray], None],
) -> None:
    """The cell's forward written into the C-contiguous arrays ``h``, ``c_new``, ``activated``, ``tanh_c``
    (the sequence op hands it one step's slices of its outputs, saving a copy of each); ``finish`` is
    ``finish_gates_kernel`` or its twin, chosen once per call of an op."""
    rows, hidden = c.shape
    np.multiply(
        np.reshape(gates, (rows, 4, hidden)),
        _HALVES.astype(gates.dtype),
        out=activated.reshape(rows, 4, hidden),
    )
    np.tanh(activated, out=activated)
    finish(activated, c, c_new)
    np.tanh(c_new, out=tanh_c)
    np.multiply(activated[:, 2 * hidden : 3 * hidden], tanh_c, out=h)


def _lstm_cell(gates: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
    h, c_new, tanh_c = (np.empty(c.shape, gates.dtype) for _ in range(3))
    activated = np.empty(gates.shape, gates.dtype)
    finish = finish_gates_kernel if _kernel_fits((activated, c)) else finish_gates_kernel.twin
    _lstm_cell_into(gates, c, h, c_new, activated, tanh_c, finish)
    return h, c_new, activated, tanh_c


# -- VJP: the numpy formula (the twin, and what records under create_graph) and its kernel ----------------
def _lstm_cell_vjp_numpy(
    g_h: Any, g_c: Any, g_activated: Any, g_tanh_c: Any, activated: Any, tanh_c: Any, c: Any
) -> tuple[Any, Any]:
    """numpy twin of ``lstm_cell_vjp_kernel``: the cotangents of ``gates`` and ``c``."""
    hidden = np.shape(c)[1]
    i, f, o, g = (activated[:, k * hidden : (k + 1) * hidden] for k in range(4))
    g_i, g_f, g_o, g_g = (g_activated[:, k * hidden : (k + 1) * hidden] for k in range(4))
    g_c_new = g_c + (g_h * o + g_tanh_c) * (1 - tanh_c * tanh_c)
    g_gates = np.concatenate(
        [
            (g_c_new * g + g_i) * (i * (1 - i)),
            (g_c_new * c + g_f) * (f * (1 - f)),
            (g_h * tanh_c + g_o) * (o * (1 - o)),
            (g_c_new * i + g_g) * (1 - g * g),
        ],
        axis=1,
    )
    return g_gates, g_c_new * f


@kernel(_lstm_cell_vjp_numpy)
def lstm_cell_vjp_kernel(
    g_h: np.ndarray,
    g_c: np.ndarray,
    g_activated: np.ndarray,
    g_tanh_c: np.ndarray,
    activated: np.ndarray,
    tanh_c: np.ndarray,
    c: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The cotangents of ``gates`` ``(N, 4H)`` and ``c`` ``(N, H)`` from those of the four outputs ``h``,
    ``c_new`` (``(N, H)``), the activated gates (``(N, 4H)``) and ``tanh(c_new)``, in one pass.

    Examples
    --------
    >>> ones, activated = np.ones((1, 1)), np.full((1, 4), 0.5)
    >>> g_gates, g_c = lstm_cell_vjp_kernel(ones, ones, np.zeros((1, 4)), ones * 0, activated, ones * 0, ones)
    >>> g_gates, g_c
    (array([[0.125, 0.25 , 0.   , 0.375]]), array([[0.5]]))
    """
    rows, hidden = c.shape
    g_gates = np.empty_like(activated)
    g_c_prev = np.empty_like(c)
    # Row by row through 1-d slices, one per gate: numba vectorizes these inner loops (indexing the 2-d
    # arrays inside the loop instead ran three times slower).
    for r in range(rows):
        a, b, d = hidden, 2 * hidden, 3 * hidden  # where the gates f, o and g begin
        i, f, o, g = activated[r, :a], activated[r, a:b], activated[r, b:d], activated[r, d:]
        g_i, g_f, g_o, g_g = g_activated[r, :a], g_activated[r, a:b], g_activated[r, b:d], g_activated[r, d:]
        out_i, out_f, out_o, out_g = g_gates[r, :a], g_gates[r, a:b], g_gates[r, b:d], g_gates[r, d:]
        g_h_row, g_c_row, g_tanh_row, tanh_row, c_row, out_c = (
            g_h[r],
            g_c[r],
            g_tanh_c[r],
            tanh_c[r],
            c[r],
            g_c_prev[r],
        )
        for j in range(hidden):
            t = tanh_row[j]
            g_c_new = g_c_row[j] + (g_h_row[j] * o[j] + g_tanh_row[j]) * (1.0 - t * t)
            out_i[j] = (g_c_new * g[j] + g_i[j]) * (i[j] * (1.0 - i[j]))
            out_f[j] = (g_c_new * c_row[j] + g_f[j]) * (f[j] * (1.0 - f[j]))
            out_o[j] = (g_h_row[j] * t + g_o[j]) * (o[j] * (1.0 - o[j]))
            out_g[j] = (g_c_new * i[j] + g_g[j]) * (1.0 - g[j] * g[j])
            out_c[j] = g_c_new * f[j]
    return g_gates, g_c_prev


def _lstm_cell_backward(g: tuple[Any, ...], out: tuple[Any, ...], gates: Any, c: Any) -> tuple[Any, Any]:
    g_h, g_c, g_activated, g_tanh_c = g
    arrays = (g_h, g_c, g_activated, g_tanh_c, out[2], out[3], c)
    if _kernel_fits(arrays):
        return lstm_cell_vjp_kernel(*arrays)
    return _lstm_cell_vjp_numpy(*arrays)


#: ``(gates, c) -> (h, c_new, activated gates, tanh(c_new))``; ``lstm_cell`` checks the arguments.
lstm_cell_op = Op(_lstm_cell, backward=_lstm_cell_backward, name=_NAME, shape_only=(0,))


def lstm_cell(gates: Any, c: Any) -> tuple[Any, Any]:
    """One LSTM step after its matrix products: ``(h, c_new)`` from the gate pre-activations and the cell.

    Parameters
    ----------
    gates : ``(N, 4H)`` float, the pre-activations of the gates i, f, o, g in that order (``x W_ih^T + b_ih +
        h W_hh^T + b_hh`` with the weight rows ordered so).
    c : ``(N, H)``, the previous cell state, of the same dtype.

    Returns
    -------
    ``(h, c_new)``, each ``(N, H)``: ``c_new = f * c + i * g`` and ``h = o * tanh(c_new)``, where ``i, f, o``
    are the sigmoids of the first three blocks of ``gates`` and ``g`` the tanh of the last. Recorded as one
    op when an input requires grad.

    Examples
    --------
    >>> h, c_new = lstm_cell(np.zeros((1, 4)), np.ones((1, 1)))
    >>> h.round(4), c_new
    (array([[0.2311]]), array([[0.5]]))
    """
    gates_data, c_data = _data(gates), _data(c)
    described = (
        f"gates of shape {gates_data.shape} ({gates_data.dtype.name}) and c of shape {c_data.shape} "
        f"({c_data.dtype.name})"
    )
    if gates_data.dtype.kind != "f" or c_data.dtype != gates_data.dtype:
        raise TypeError(f"{_NAME}: gates and c must share one floating-point dtype, got {described}")
    if gates_data.ndim != 2 or c_data.ndim != 2 or gates_data.shape != (c_data.shape[0], 4 * c_data.shape[1]):
        raise ValueError(
            f"{_NAME}: expected gates of shape (N, 4 * H) and c of shape (N, H), got {described}"
        )
    h, c_new, _, _ = lstm_cell_op(gates, c)
    return h, c_new


# -- a whole sequence: one op for every step of one layer in one direction ---------------------------------
_SEQUENCE = "lstm_sequence"


def _lstm_sequence(
    projected: np.ndarray, h0: np.ndarray, c0: np.ndarray, weight_hh: np.ndarray, *, reverse: bool
) -> tuple[np.ndarray, ...]:
    steps, rows, _ = projected.shape
    hidden = h0.shape[1]
    hs = np.empty((steps, rows, hidden), projected.dtype)
    cs, tanh_cs, activated = np.empty_like(hs), np.empty_like(hs), np.empty_like(projected)
    weight_t = np.ascontiguousarray(weight_hh.T)  # a contiguous right operand: a faster product per step
    # Every step's arrays are slices of the fresh outputs, so whether the kernel fits is decided once; the
    # initial cell (a view of the layer's c_0, say) is made contiguous for it.
    finish = finish_gates_kernel if _kernel_fits((activated,)) else finish_gates_kernel.twin
    h, c = h0, np.ascontiguousarray(c0)
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        gates = mkl.matmul(h, weight_t)
        gates += projected[t]
        _lstm_cell_into(gates, c, hs[t], cs[t], activated[t], tanh_cs[t], finish)
        h, c = hs[t], cs[t]
    return hs, cs, activated, tanh_cs


def _lstm_sequence_backward(
    g: tuple[Any, ...],
    out: tuple[Any, ...],
    projected: Any,
    h0: Any,
    c0: Any,
    weight_hh: Any,
    *,
    reverse: bool,
) -> tuple[Any, Any, Any, Any]:
    g_hs, g_cs, g_activated, g_tanh_cs = g
    hs, cs, activated, tanh_cs = out
    steps = np.shape(hs)[0]
    if type(g_hs) is np.ndarray:  # a cotangent cut out of a wider one (concatenate's) is made contiguous once
        g_hs, g_cs, g_activated, g_tanh_cs = (np.ascontiguousarray(x) for x in g)
    # Plain contiguous arrays throughout (tensors under create_graph are not): the kernel for every step.
    fits = _kernel_fits((g_hs, g_cs, g_activated, g_tanh_cs, activated, tanh_cs))
    cell_vjp = lstm_cell_vjp_kernel if fits else _lstm_cell_vjp_numpy
    c_first = np.ascontiguousarray(c0) if fits else c0
    g_gates: list[Any] = [None] * steps
    g_h: Any = 0
    g_c: Any = 0
    # Against the forward's order: each step hands the cotangents of the state it was given to the step
    # before it; the weight's cotangent is one product over every step at the end.
    for t in range(steps) if reverse else range(steps - 1, -1, -1):
        before = t + 1 if reverse else t - 1
        c_before = c_first if before in (-1, steps) else cs[before]
        g_gates[t], g_c = cell_vjp(
            g_hs[t] + g_h, g_cs[t] + g_c, g_activated[t], g_tanh_cs[t], activated[t], tanh_cs[t], c_before
        )
        g_h = mkl.matmul(g_gates[t], weight_hh)
    g_projected = np.stack(g_gates)
    # The state each step was given: h0, then every h but the last one made.
    h_before = np.concatenate([hs[1:], h0[None]]) if reverse else np.concatenate([h0[None], hs[:-1]])
    hidden = np.shape(h0)[1]
    g_weight = mkl.matmul(np.reshape(g_projected, (-1, 4 * hidden)).T, np.reshape(h_before, (-1, hidden)))
    return g_projected, g_h, g_c, g_weight


#: ``(projected, h0, c0, weight_hh, reverse=...) -> (hs, cs, activated gates, tanh(cs))``, each with the
#: steps first; ``lstm_sequence`` checks the arguments.
lstm_sequence_op = Op(_lstm_sequence, backward=_lstm_sequence_backward, name=_SEQUENCE, shape_only=(0,))


def lstm_sequence(projected: Any, h0: Any, c0: Any, weight_hh: Any, reverse: bool = False) -> tuple[Any, ...]:
    """Every step of one LSTM layer in one direction, recorded as one op: ``(output, h_n, c_n)``.

    Step ``t`` takes ``gates = h @ weight_hh.T + projected[t]`` and then ``lstm_cell(gates, c)``. One op
    for the sweep records nothing per step, and its VJP takes the weight's cotangent as one product over
    every step rather than one per step.

    Parameters
    ----------
    projected : ``(L, N, 4H)``, each step's input projection ``x_t @ weight_ih.T`` plus both biases, the
        gates in the order i, f, o, g.
    h0, c0 : ``(N, H)``, the initial state.
    weight_hh : ``(4H, H)``, its rows in the gate order i, f, o, g.
    reverse : run from the last step to the first (the backward direction of a bidirectional LSTM).

    Returns
    -------
    ``output`` ``(L, N, H)``, each step's ``h`` in the input's order, and the final state ``h_n``, ``c_n``
    ``(N, H)`` (of step 0 when ``reverse``).

    Examples
    --------
    >>> zeros, ones = np.zeros((1, 1)), np.ones((1, 1))
    >>> output, h_n, c_n = lstm_sequence(np.zeros((3, 1, 4)), zeros, ones, np.zeros((4, 1)))
    >>> output.round(4).ravel(), c_n
    (array([0.2311, 0.1225, 0.0622]), array([[0.125]]))
    """
    named = {"projected": projected, "h0": h0, "c0": c0, "weight_hh": weight_hh}
    shapes = {name: _data(x).shape for name, x in named.items()}
    dtypes = {name: _data(x).dtype for name, x in named.items()}
    described = ", ".join(f"{name} of shape {shapes[name]} ({dtypes[name].name})" for name in named)
    if dtypes["projected"].kind != "f" or len(set(dtypes.values())) > 1:
        raise TypeError(f"{_SEQUENCE}: every argument must share one floating-point dtype, got {described}")
    steps, rows = (*shapes["projected"], 0, 0)[:2]  # the shapes every argument must then have:
    hidden = shapes["weight_hh"][-1] if shapes["weight_hh"] else 0
    expected = {
        "projected": (steps, rows, 4 * hidden),
        "h0": (rows, hidden),
        "c0": (rows, hidden),
        "weight_hh": (4 * hidden, hidden),
    }
    if shapes != expected or steps == 0:
        raise ValueError(
            f"{_SEQUENCE}: expected projected (L, N, 4H) with L >= 1, h0 and c0 (N, H) and weight_hh "
            f"(4H, H), got {described}"
        )
    hs, cs, _, _ = lstm_sequence_op(projected, h0, c0, weight_hh, reverse=bool(reverse))
    last = 0 if reverse else steps - 1
    return hs, hs[last], cs[last]
