"""The structure of a Jacobian read off the tape: diagonal, block diagonal along a batch axis, or a product
of a few cheap factors, found from the records between one input and one output without building it.

Three findings, each from the ops alone (``tape.axis_mixing`` says how each op mixes axes):

- **diagonal**: every op between input and output is elementwise and the output has the input's shape.
  The diagonal is then one VJP with a cotangent of ones (``1ᵀJ`` of a diagonal J is its diagonal).
- **block diagonal**: the input's leading (batch) axis reaches the output's leading axis with no op mixing
  samples, so sample ``i`` of the output depends on sample ``i`` of the input alone.
- **factored**: the records form a chain of elementwise ops and products with constant matrices, so
  J = D_k · ... · (I ⊗ Wᵀ) · D_1, with each D_i diagonal (the elementwise derivative, from the op's
  JVP rule) and each W the record's own saved matrix, never copied per sample. The lecture's layer
  ``relu(X Wᵀ + b)`` is diag(mask) · (I ⊗ W).

This module reads records and makes no new ones; it never releases them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tape.ops import linalg, mkl

from .axis_mixing import output_batch_axis
from .backward import propagate
from .record import Record
from .tangents import ForwardModeUnavailableError, records_between, tangent_of_record
from .tensor import Tensor


@dataclass(frozen=True)
class Scaling:
    """Multiplication by ``values`` elementwise (a diagonal factor), in the shape of the value it scales."""

    values: np.ndarray

    def forward(self, tangents: np.ndarray) -> np.ndarray:
        return tangents * self.values

    def backward(self, cotangents: np.ndarray) -> np.ndarray:
        return cotangents * self.values

    def describe(self) -> str:
        return f"diag({'x'.join(map(str, self.values.shape))})"


@dataclass(frozen=True)
class Product:
    """``value @ matrix`` (``on_right``) or ``matrix @ value``, with a constant matrix."""

    matrix: np.ndarray
    on_right: bool
    repeats: int  # how many times the matrix acts: the other axes of the value (the I in I ⊗ W)

    # The products go where matmul's forward goes (MKL for large 2-D products when installed), so that a
    # product costs what the same product in the recorded program costs.
    def forward(self, tangents: np.ndarray) -> np.ndarray:
        return mkl.matmul(tangents, self.matrix) if self.on_right else mkl.matmul(self.matrix, tangents)

    def backward(self, cotangents: np.ndarray) -> np.ndarray:
        # (u J) for J v = v @ M is u @ Mᵀ; for J v = M @ v it is Mᵀ @ u.
        matrix_t = self.matrix.T
        return mkl.matmul(cotangents, matrix_t) if self.on_right else mkl.matmul(matrix_t, cotangents)

    def describe(self) -> str:
        rows, columns = self.matrix.shape
        if self.on_right:  # acting on each row: I ⊗ Mᵀ, with Mᵀ of shape (columns, rows)
            return f"(I_{self.repeats} ⊗ W {columns}x{rows})"
        return f"(W {rows}x{columns} ⊗ I_{self.repeats})"


Factor = Scaling | Product


@dataclass(frozen=True)
class Structure:
    """What the records say about the Jacobian of ``output`` with respect to ``leaf``.

    Attributes
    ----------
    depends : whether the output depends on the input at all (otherwise J is zero).
    diagonal : the diagonal, in the output's shape, when J is diagonal; else None.
    blocks : the number of diagonal blocks along the leading axis when J is block diagonal; else None.
    factors : when the program is a chain of cheap factors, those factors, the first applied first in
        ``J @ v``; else None.
    """

    depends: bool
    diagonal: np.ndarray | None
    blocks: int | None
    factors: tuple[Factor, ...] | None

    @property
    def name(self) -> str:
        """The most specific finding, as ``repr`` shows it."""
        if not self.depends:
            return "zero"
        if self.diagonal is not None:
            return "diagonal"
        if self.factors is not None:
            return "factored"
        if self.blocks is not None:
            return "block diagonal"
        return "general"


def find_structure(leaf: Tensor, output: Tensor) -> Structure:
    """The structure of d output / d leaf, from the records between them (see the module's docstring)."""
    if output is leaf:  # f(x) = x
        ones = np.ones(leaf.shape, dtype=leaf.dtype)
        return Structure(depends=True, diagonal=ones, blocks=leaf.shape[0] if leaf.ndim else None, factors=())
    records = _dependent_records(leaf, output)
    walk = _Walk(leaf)
    for record in records:
        walk.visit(record)
    key = _key(output._record, output._index) if output._record is not None else id(output)
    if key not in walk.axes:
        return Structure(depends=False, diagonal=None, blocks=None, factors=None)
    in_shape, out_shape = leaf.shape, output.shape
    batch_kept = (
        walk.axes[key] == 0 and len(in_shape) >= 1 and len(out_shape) >= 1 and in_shape[0] == out_shape[0]
    )
    diagonal = None
    if walk.elementwise and out_shape == in_shape:
        diagonal = _diagonal_by_one_sweep(leaf, output)
    factors = tuple(walk.factors) if walk.factors is not None and walk.head == key else None
    return Structure(
        depends=True, diagonal=diagonal, blocks=in_shape[0] if batch_kept else None, factors=factors
    )


def _key(record: Any, index: int | None) -> Any:
    return (record, index)


def _dependent_records(leaf: Tensor, output: Tensor) -> list[Record]:
    """The records behind ``output``, earliest first."""
    return records_between([output], "jacobian_operator")


class _Walk:
    """One pass over the records in tape order, following what depends on the input.

    ``axes`` maps each value that depends on the input (``id(leaf)`` or ``(record, index)``) to its batch
    axis (None once samples mixed). ``elementwise`` stays true while every dependent op is elementwise
    without broadcasting a dependent argument. ``factors`` stays a list while the dependent records form
    one chain of elementwise ops and products with a constant matrix; ``head`` is the chain's last value.
    """

    def __init__(self, leaf: Tensor) -> None:
        self.axes: dict[Any, int | None] = {id(leaf): 0 if leaf.ndim >= 1 else None}
        self.elementwise = True
        self.factors: list[Factor] | None = []
        self.head: Any = id(leaf)

    def visit(self, record: Record) -> None:
        dependent: dict[int, Any] = {}
        for argnum, node, index, _, _ in record.inputs:
            key = id(node) if type(node) is not Record else _key(node, index)
            if node is not None and key in self.axes:
                dependent[argnum] = key
        if not dependent:
            return  # made of constants only (a weight's transpose): it carries no batch axis
        axes = {argnum: self.axes[key] for argnum, key in dependent.items()}
        out_key = _key(record, None)
        self.axes[out_key] = output_batch_axis(record, axes)
        full_shape = all(np.shape(record.args[argnum]) == np.shape(record.out) for argnum in dependent)
        if not (record.op.elementwise and full_shape):
            self.elementwise = False
        if self.factors is not None:
            factor = _as_factor(record, dependent, self.head, full_shape)
            if factor is False:
                self.factors = None
            else:
                if factor is not None:
                    _append(self.factors, factor)
                self.head = out_key


def _as_factor(record: Record, dependent: dict[int, Any], head: Any, full_shape: bool) -> Any:
    """The factor for one link of a chain: a ``Scaling``, a ``Product``, None (an identity, nothing to
    keep), or False when the record is not a link the factored form handles."""
    if any(key != head for key in dependent.values()) or type(record.out) is tuple:
        return False
    if record.op.elementwise and full_shape:
        ones: list[Any] = [None] * len(record.args)
        for argnum in dependent:
            ones[argnum] = np.ones(np.shape(record.args[argnum]), dtype=record.args[argnum].dtype)
        try:
            derivative = np.asarray(tangent_of_record(record, ones))
        except ForwardModeUnavailableError:
            return False
        return None if bool(np.all(derivative == 1)) else Scaling(derivative)
    if record.op is linalg.matmul and len(dependent) == 1:
        (argnum,) = dependent
        matrix = record.args[1 - argnum]
        value = record.args[argnum]
        if type(matrix) is not np.ndarray or matrix.ndim != 2 or np.ndim(value) < 2:
            return False
        on_right = argnum == 0
        repeats = int(np.size(value) // value.shape[-1 if on_right else -2])
        return Product(matrix, on_right, repeats)
    return False


def _append(factors: list[Factor], factor: Factor) -> None:
    """Add ``factor`` to the chain, merging two diagonal factors in a row into one."""
    if factors and isinstance(factor, Scaling) and isinstance(factors[-1], Scaling):
        previous = factors[-1].values
        if previous.shape == factor.values.shape:
            factors[-1] = Scaling(previous * factor.values)
            return
    factors.append(factor)


def _diagonal_by_one_sweep(leaf: Tensor, output: Tensor) -> np.ndarray:
    """The diagonal of a diagonal Jacobian: 1ᵀJ, one reverse sweep that keeps the records."""
    seed = np.ones(output.shape, dtype=output.dtype)
    reached = propagate([(output, seed)], retain_graph=True, create_graph=False)
    entry = reached.get(id(leaf))
    if entry is None:
        return np.zeros(output.shape, dtype=output.dtype)
    return np.asarray(entry[1]).reshape(output.shape)
