"""``jacobian_operator``: a Jacobian as a matrix you multiply by, recorded once and never built unless asked.

``J = tape.jacobian_operator(f, x)`` runs ``f`` once at ``x`` and keeps its tape. ``J @ v`` pushes ``v``
forward through the records (forward mode, ``tape.tangents``); ``u @ J`` and ``J.T @ u`` sweep back
through them (reverse mode, keeping the records), so one recording serves any number of products. Where
the tape shows structure (``tape.jacobian_structure``) the products use it: a diagonal Jacobian is a
vector, a chain of elementwise ops and products with constant matrices is a few factors (the lecture's
``relu(X Wᵀ + b)`` is diag(mask) · (I ⊗ W), holding one W), and a Jacobian that keeps the batch axis apart
is block diagonal, which ``.blocks()`` yields block by block. ``.to_dense()`` builds the matrix when it
fits in memory, and refuses with its size otherwise. The operator is a numerical object: its products are
plain arrays and are not recorded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .backward import propagate
from .functional import jvp, track_arguments
from .grad_mode import no_grad
from .hooks import refuse_record_hooks
from .jacobian import _rows_batched
from .jacobian_structure import Factor, Product, Scaling, Structure, find_structure
from .pytree import flatten
from .tangents import ForwardModeUnavailableError, check_unchanged, push_forward, records_between
from .tensor import Tensor
from .trace import TransformCall, first_outside

#: ``to_dense`` and ``blocks`` refuse to build more than this many bytes unless told otherwise.
DEFAULT_MEMORY_LIMIT = 2 * 2**30


class StructureUnavailableError(ValueError):
    """The tape does not show the structure a method needs (a diagonal, diagonal blocks)."""


class TraceEstimate(NamedTuple):
    """The trace of a square Jacobian: exact (``standard_error`` 0, ``samples`` 0) where its diagonal is
    known, else Hutchinson's estimate from ``samples`` Rademacher vectors and its standard error."""

    value: float
    standard_error: float
    samples: int


@dataclass(frozen=True)
class JacobianMemory:
    """Bytes each representation takes: the dense matrix, its diagonal blocks (None when the batch axis
    mixes), and the structured form the operator uses (None for the tape alone: no matrix at all)."""

    dense: int
    blocks: int | None
    structured: int | None


def jacobian_operator(
    f: Callable[..., Any], *primals: Any, argnums: int = 0, structured: bool = True
) -> JacobianOperator:
    """The Jacobian of ``f`` at ``primals`` with respect to ``primals[argnums]``, as a linear operator.

    ``f`` is recorded once. The operator is a matrix of shape ``(output.size, input.size)`` over the
    flattened output and input: ``J @ v`` (forward mode), ``u @ J`` and ``J.T @ u`` (reverse mode), blocks
    of vectors (``J @ V`` with columns, ``U @ J`` with rows), and ``to_dense``, ``diagonal``, ``trace``,
    ``blocks``, ``block`` and ``aslinearoperator`` (scipy). ``U @ J`` is one batched reverse sweep and
    ``J @ V`` one forward sweep carrying every column (tangents stacked on a leading axis), or, where a
    diagonal or factored form was found, products with it. Vectors may be flat or shaped like the input (for
    ``J @ v``) or output (for ``u @ J``); results take the same form (a 2-D array whose length matches the
    flat size is read as a block). ``structured=False`` ignores what the tape shows and runs every product
    through the records. A program that forward mode does not handle (complex values inside) gets ``J @ v``
    from ``tape.jvp``, which records ``f`` again.

    One differentiated argument (an array) and one array output are supported; the operator does not
    record its products, so it is not differentiated further.

    Examples
    --------
    >>> import numpy as np, tape
    >>> J = tape.jacobian_operator(lambda x: np.sin(x) * 2, np.array([0.0, np.pi]))
    >>> J
    JacobianOperator(<lambda>: 2 x 2 float64, diagonal; 16 B structured against 32 B dense)
    >>> J @ np.array([1.0, 1.0])
    array([ 2., -2.])
    >>> J.diagonal()
    array([ 2., -2.])
    """
    if not isinstance(argnums, int | np.integer):
        raise TypeError(
            "jacobian_operator: argnums must be one int (a single differentiated argument), got "
            f"{argnums!r}; tape.jacobian takes several"
        )
    name = getattr(f, "__name__", "f")
    with no_grad():  # the operator's products are numbers, not recorded: its inputs are not linked
        call = TransformCall("jacobian_operator")
    enclosed = not call.outermost()
    arguments, _ = track_arguments(call, primals, int(argnums))
    primal = primals[int(argnums)]
    if len(call.tracked) != 1 or isinstance(primal, tuple | list | dict):
        raise TypeError(
            f"jacobian_operator({name}): argument {argnums} must be a single array, got "
            f"{type(primal).__name__} with {len(call.tracked)} arrays in it; differentiate one array "
            "(flatten a tree into one vector first)"
        )
    out = call.run(f, *arguments)
    if isinstance(out, tuple | list | dict):
        raise TypeError(
            f"jacobian_operator({name}): f must return a single array, got a {type(out).__name__}; "
            "return one array (np.concatenate the parts, or make one operator per output)"
        )
    leaf = call.tracked[0]
    output = out if isinstance(out, Tensor) else Tensor(np.asarray(out))
    if enclosed and _reads_an_enclosing_level(call, primals, output):
        raise RuntimeError(
            f"jacobian_operator({name}) inside another transform, of values that transform "
            "differentiates: the operator's products are numbers, not recorded, so a derivative through "
            "them would be lost; use tape.jvp or tape.vjp there (they nest), or build the operator outside"
        )
    if output.dtype.kind not in "f":
        raise TypeError(
            f"jacobian_operator({name}): f returned dtype {output.dtype.name}; a Jacobian operator needs a "
            "real floating-point output"
        )
    if not output.requires_grad:
        structure = Structure(depends=False, diagonal=None, blocks=None, factors=None)
    elif structured:
        structure = find_structure(leaf, output)
    else:
        structure = Structure(depends=True, diagonal=None, blocks=None, factors=None)
    number = int(argnums) % len(primals)

    def rerecorded_jvp(tangent: np.ndarray) -> np.ndarray:
        # For programs that forward mode does not handle (complex values inside): tape.jvp records f
        # again and differentiates its VJP instead.
        def of_one(value: Any) -> Any:
            return f(*primals[:number], value, *primals[number + 1 :])

        return np.asarray(jvp(of_one, (primal,), (tangent,))[1])

    return JacobianOperator(f"jacobian_operator({name})", name, call, leaf, output, structure, rerecorded_jvp)


def _reads_an_enclosing_level(call: TransformCall, primals: tuple[Any, ...], output: Tensor) -> bool:
    """Whether the operator's function read a tensor that requires grad from outside its call: a primal,
    or a value it captured."""
    if any(isinstance(leaf, Tensor) and leaf.requires_grad for leaf in flatten(primals)[0]):
        return True
    if not output.requires_grad:
        return False
    return first_outside([output._record or output], call.inside_leaves(), call.start) is not None


class JacobianOperator:
    """The Jacobian of a recorded function as a linear operator (see ``jacobian_operator``)."""

    # numpy must leave ``u @ J`` to ``__rmatmul__`` instead of treating J as an object scalar.
    __array_ufunc__ = None

    def __init__(
        self,
        name: str,
        function_name: str,
        call: TransformCall,
        leaf: Tensor,
        output: Tensor,
        structure: Structure,
        rerecorded_jvp: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.name = name
        self._function_name = function_name
        self._call = call  # keeps the tracked input, which ``to_dense`` sweeps to
        self._leaf = leaf
        self._output = output  # keeps the records alive
        self.structure = structure
        self.input_shape: tuple[int, ...] = leaf.shape
        self.output_shape: tuple[int, ...] = output.shape
        self.shape = (output.size, leaf.size)
        self.dtype = np.result_type(leaf.dtype, output.dtype)
        self._forward_mode = True  # until the tangent sweep meets what it does not handle
        self._rerecorded_jvp = rerecorded_jvp
        # The structure's factors read the records' saved values (a weight, by reference): every use checks
        # them as a sweep would, so a weight changed in place since is refused, never read.
        self._records = records_between([output], "jacobian_operator")
        refuse_record_hooks(self._records, "tape.jacobian_operator")

    def _check_unchanged(self) -> None:
        check_unchanged(self._records)

    @property
    def T(self) -> TransposedJacobian:
        """Jᵀ: ``J.T @ u`` is ``u @ J``."""
        return TransposedJacobian(self)

    # -- products ------------------------------------------------------------------------------------

    def __matmul__(self, other: Any) -> np.ndarray:
        vectors, form = self._operand(other, "J @ v", self.input_shape, self._leaf.dtype, columns=True)
        if form == "block":
            products = self._push(vectors, many=True)  # (k, *output_shape)
            return products.reshape(len(products), -1).T
        return self._shaped(self._push(vectors, many=False), form, self.shape[0])

    def __rmatmul__(self, other: Any) -> np.ndarray:
        vectors, form = self._operand(other, "u @ J", self.output_shape, self._output.dtype, columns=False)
        if form == "block":
            return self._pull(vectors, many=True).reshape(len(vectors), -1)
        return self._shaped(self._pull(vectors, many=False), form, self.shape[1])

    def matvec(self, v: Any) -> np.ndarray:
        """J v, for ``v`` flat or of the input's shape."""
        return self @ v

    def rmatvec(self, u: Any) -> np.ndarray:
        """Jᵀ u (= u J), for ``u`` flat or of the output's shape."""
        return u @ self

    def _push(self, tangents: np.ndarray, many: bool) -> np.ndarray:
        """J applied to ``tangents`` (one of the input's shape, or ``many`` stacked on a leading axis)."""
        self._check_unchanged()
        structure, shape = self.structure, self.output_shape
        if not structure.depends:
            result = np.zeros((len(tangents), *shape) if many else shape, dtype=self.dtype)
        elif structure.diagonal is not None:
            result = tangents * structure.diagonal
        elif structure.factors is not None:
            result = tangents
            for factor in structure.factors:
                result = factor.forward(result)
        elif many:
            result = self._push_many(tangents)
        else:
            result = self._push_one(tangents)
        return np.asarray(result, dtype=self.dtype)

    def _push_many(self, tangents: np.ndarray) -> np.ndarray:
        """J V: the tangents stacked on a leading axis, pushed through the records in one sweep."""
        if self._forward_mode and len(tangents):
            try:
                (pushed,) = push_forward([self._output], {id(self._leaf): tangents}, batch=len(tangents))
            except ForwardModeUnavailableError:
                self._forward_mode = False
            else:
                shape = (len(tangents), *self.output_shape)
                return np.zeros(shape, dtype=self.dtype) if pushed is None else pushed
        if not len(tangents):
            return np.zeros((0, *self.output_shape), dtype=self.dtype)
        return np.stack([self._push_one(tangent) for tangent in tangents])

    def _push_one(self, tangent: np.ndarray) -> np.ndarray:
        if self._forward_mode:
            try:
                (pushed,) = push_forward([self._output], {id(self._leaf): tangent})
                return np.zeros(self.output_shape, dtype=self.dtype) if pushed is None else pushed
            except ForwardModeUnavailableError:
                self._forward_mode = False
        if self._rerecorded_jvp is None:
            raise RuntimeError(f"{self.name}: J @ v needs forward mode, which this program does not allow")
        return self._rerecorded_jvp(tangent)

    def _pull(self, cotangents: np.ndarray, many: bool, through_records: bool = False) -> np.ndarray:
        """``cotangents`` times J (one of the output's shape, or ``many`` rows in one batched sweep), from
        the structure found, or by a reverse sweep through the records when ``through_records``."""
        self._check_unchanged()
        structure, shape = self.structure, self.input_shape
        if not structure.depends:
            result = np.zeros((len(cotangents), *shape) if many else shape, dtype=self.dtype)
        elif structure.diagonal is not None and not through_records:
            result = cotangents * structure.diagonal
        elif structure.factors is not None and not through_records:
            result = cotangents
            for factor in reversed(structure.factors):
                result = factor.backward(result)
        else:
            seed = np.asarray(cotangents, dtype=self._output.dtype)
            batch = len(seed) if many else None
            reached = propagate([(self._output, seed)], retain_graph=True, create_graph=False, batch=batch)
            entry = reached.get(id(self._leaf))
            if entry is None:
                result = np.zeros((len(seed), *shape) if many else shape, dtype=self.dtype)
            else:
                result = np.asarray(entry[1])
        return np.asarray(result, dtype=self.dtype)

    def _operand(
        self, value: Any, what: str, shape: tuple[int, ...], dtype: np.dtype, columns: bool
    ) -> tuple[np.ndarray, str]:
        """``value`` as an array of ``shape`` (form "flat" or "shaped"), or a stack of them on a leading
        axis (form "block": columns of ``(size, k)`` for J @ V, rows of ``(k, size)`` for U @ J)."""
        if isinstance(value, Tensor):
            value = value.numpy()
        array = np.asarray(value)
        size = math.prod(shape)
        block_shape = f"({size}, k)" if columns else f"(k, {size})"
        given = array.dtype
        dtype_fits = given == dtype or given.kind in "bi" or (given.kind == "f" and np.can_cast(given, dtype))
        form = None
        if array.ndim == 1 and array.shape[0] == size:
            form = "flat"
        elif array.ndim == 2 and array.shape[0 if columns else 1] == size:
            form = "block"
        elif array.shape == shape:
            form = "shaped"
        if form is None or not dtype_fits:
            problem = "shape" if form is None else "dtype"
            raise ValueError(
                f"{self.name}: {what} has the wrong {problem}: J is {self.shape[0]} x {self.shape[1]} "
                f"({self.dtype.name}), so it takes a vector of shape ({size},) or {shape} or a block "
                f"{block_shape}, of dtype {dtype.name} (or one that casts to it safely); got shape "
                f"{array.shape}, dtype {given.name}"
            )
        array = array.astype(dtype, copy=False)
        if form == "flat":
            return array.reshape(shape), form
        if form == "block":
            stacked = array.T if columns else array
            return np.ascontiguousarray(stacked).reshape(len(stacked), *shape), form
        return array, form

    @staticmethod
    def _shaped(result: np.ndarray, form: str, size: int) -> np.ndarray:
        return result.reshape(size) if form == "flat" else result

    # -- whole matrices ------------------------------------------------------------------------------

    @property
    def memory(self) -> JacobianMemory:
        """Bytes of the dense matrix, of its diagonal blocks, and of the structured form in use."""
        itemsize = self.dtype.itemsize
        rows, columns = self.shape
        structure = self.structure
        blocks = None
        if structure.blocks:
            blocks = rows * columns // structure.blocks * itemsize
        structured: int | None = None
        if not structure.depends:
            structured = 0
        elif structure.diagonal is not None:
            structured = structure.diagonal.nbytes
        elif structure.factors is not None:
            structured = sum(_factor_bytes(factor) for factor in structure.factors)
        elif blocks is not None:
            structured = blocks
        return JacobianMemory(dense=rows * columns * itemsize, blocks=blocks, structured=structured)

    def to_dense(self, chunk_size: int | None = None, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> np.ndarray:
        """The Jacobian as a ``shape`` array, built by reverse sweeps carrying ``chunk_size`` rows each (all
        at once by default), as ``tape.jacobian`` does; refused when it would exceed ``memory_limit`` bytes.

        Examples
        --------
        >>> import numpy as np, tape
        >>> W = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        >>> tape.jacobian_operator(lambda x: W @ x, np.ones(2)).to_dense()
        array([[1., 2.],
               [3., 4.],
               [5., 6.]])
        """
        self._check_fits(self.memory.dense, "to_dense()", memory_limit)
        rows, columns = self.shape
        if not self.structure.depends:
            return np.zeros(self.shape, dtype=self.dtype)
        if self.structure.diagonal is not None:
            return np.diag(self.structure.diagonal.reshape(-1)).astype(self.dtype, copy=False)
        (dense,) = _rows_batched(self._call, self._output, chunk_size)
        return np.asarray(dense, dtype=self.dtype).reshape(rows, columns)

    def _check_fits(self, size: int, what: str, memory_limit: int) -> None:
        if size <= memory_limit:
            return
        rows, columns = self.shape
        advice = "use J @ v, u @ J or .aslinearoperator(), which never build it"
        memory = self.memory
        if what == "to_dense()" and memory.blocks is not None and self.structure.blocks:
            count = self.structure.blocks
            advice = (
                f"J is block diagonal: .blocks() yields its {count} blocks of {rows // count} x "
                f"{columns // count} one at a time ({_format_bytes(memory.blocks)} in all), or " + advice
            )
        raise MemoryError(
            f"{self.name}.{what}: the result would take {_format_bytes(size)} (J is {rows:,} x {columns:,} "
            f"{self.dtype.name}), over memory_limit={_format_bytes(memory_limit)}; {advice}"
        )

    def diagonal(self, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> np.ndarray:
        """The diagonal of a square Jacobian, exact, where the tape shows it: a diagonal Jacobian, or
        square diagonal blocks. Otherwise ``StructureUnavailableError`` (estimate the trace instead).

        Examples
        --------
        >>> import numpy as np, tape
        >>> tape.jacobian_operator(lambda x: x ** 2, np.array([1.0, 3.0])).diagonal()
        array([2., 6.])
        """
        self._check_unchanged()
        rows, columns = self.shape
        if rows != columns:
            raise StructureUnavailableError(
                f"{self.name}.diagonal(): J is {rows} x {columns}, not square; only a square Jacobian "
                "has a diagonal here"
            )
        structure = self.structure
        if not structure.depends:
            return np.zeros(rows, dtype=self.dtype)
        if structure.diagonal is not None:
            return structure.diagonal.reshape(-1).astype(self.dtype)  # a copy: the operator keeps its own
        count = structure.blocks
        if count and (rows // count) == (columns // count):
            return np.concatenate([np.diagonal(block) for block in self.blocks(memory_limit)])
        raise StructureUnavailableError(
            f"{self.name}.diagonal(): the diagonal is unavailable: the tape shows neither a diagonal "
            f"Jacobian nor square diagonal blocks (structure found: {structure.name}); "
            ".trace(samples=...) estimates the trace, and .to_dense() builds the matrix when it is small"
        )

    def trace(self, samples: int = 64, rng: Any = None, chunk_size: int | None = None) -> TraceEstimate:
        """The trace of a square Jacobian: exact where its diagonal is known (``diagonal``), otherwise
        Hutchinson's estimate E[zᵀ J z] over ``samples`` Rademacher vectors z (``rng``: a seed or a numpy
        Generator), all swept back at once (``chunk_size`` at a time if given).

        Examples
        --------
        >>> import numpy as np, tape
        >>> tape.jacobian_operator(lambda x: x ** 2, np.array([1.0, 3.0])).trace()
        TraceEstimate(value=8.0, standard_error=0.0, samples=0)
        >>> A = np.array([[2.0, 1.0], [0.0, 3.0]])
        >>> estimate = tape.jacobian_operator(lambda x: A @ x, np.ones(2)).trace(samples=200, rng=0)
        >>> abs(estimate.value - 5.0) < 4 * estimate.standard_error + 1e-12
        True
        """
        rows, columns = self.shape
        if rows != columns:
            raise ValueError(f"{self.name}.trace(): J is {rows} x {columns}; a trace needs a square Jacobian")
        try:
            return TraceEstimate(float(np.sum(self.diagonal())), 0.0, 0)
        except (StructureUnavailableError, MemoryError):
            pass
        if samples < 2:
            raise ValueError(
                f"{self.name}.trace(): samples must be at least 2 for an error estimate, got {samples}"
            )
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        probes = generator.choice(np.array([-1.0, 1.0]), size=(samples, columns)).astype(self._output.dtype)
        step = chunk_size or samples
        estimates = np.concatenate(
            [
                np.sum((probes[k : k + step] @ self) * probes[k : k + step], axis=1)
                for k in range(0, samples, step)
            ]
        )
        return TraceEstimate(
            float(np.mean(estimates)), float(np.std(estimates, ddof=1) / math.sqrt(samples)), samples
        )

    # -- diagonal blocks -----------------------------------------------------------------------------

    def _block_sizes(self, what: str) -> tuple[int, int, int]:
        count = self.structure.blocks
        if not count:
            raise StructureUnavailableError(
                f"{self.name}.{what}: J is not block diagonal along the batch axis: some op between input "
                f"{self.input_shape} and output {self.output_shape} mixes samples (structure found: "
                f"{self.structure.name}); use J @ v, u @ J, or .to_dense() when it is small"
            )
        return count, self.shape[0] // count, self.shape[1] // count

    def blocks(
        self, memory_limit: int = DEFAULT_MEMORY_LIMIT, chunk_size: int | None = None, by_sweeps: bool = False
    ) -> Iterator[np.ndarray]:
        """The diagonal blocks of a Jacobian that keeps the batch axis apart, one per sample, each of
        shape (outputs per sample, inputs per sample).

        From a factored or diagonal form each block is built on its own, as it is yielded. Otherwise the
        blocks come from reverse sweeps that each carry one output feature of every sample at once (a
        row of every block per sweep, ``chunk_size`` features per sweep), so all blocks are built first:
        refused when they would exceed ``memory_limit`` bytes. ``by_sweeps`` takes that way even where
        factors are known (to compare the two).

        Examples
        --------
        >>> import numpy as np, tape
        >>> W = np.array([[1.0, 2.0, 3.0]])
        >>> X = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])
        >>> J = tape.jacobian_operator(lambda X: np.maximum(X @ W.T, 0.0), X)
        >>> [block.tolist() for block in J.blocks()]
        [[[1.0, 2.0, 3.0]], [[0.0, 0.0, 0.0]]]
        """
        count, _, _ = self._block_sizes("blocks()")
        if self._blocks_on_their_own() and not by_sweeps:
            return (self._factored_block(i) for i in range(count))
        self._check_fits(self.memory.blocks or 0, "blocks()", memory_limit)
        return iter(self._swept_blocks(chunk_size, through_records=by_sweeps))

    def block(self, i: int, chunk_size: int | None = None) -> np.ndarray:
        """Diagonal block ``i`` (sample ``i``'s outputs against its inputs); see ``blocks``. Without a
        factored form, rows of it come from reverse sweeps seeded at sample ``i`` only, ``chunk_size``
        rows per sweep (all by default)."""
        count, rows, columns = self._block_sizes(f"block({i})")
        if not -count <= i < count:
            raise IndexError(f"{self.name}.block({i}): J has {count} diagonal blocks")
        i %= count
        if self._blocks_on_their_own():
            return self._factored_block(i)
        block = np.empty((rows, columns), dtype=self.dtype)
        step = chunk_size or rows
        for start in range(0, rows, step):
            features = np.arange(start, min(start + step, rows))
            seeds = np.zeros((len(features), count, rows), dtype=self._output.dtype)
            seeds[np.arange(len(features)), i, features] = 1
            pulled = self._pull(seeds.reshape(len(features), *self.output_shape), many=True)
            block[features] = pulled.reshape(len(features), count, columns)[:, i]
        return block

    def _blocks_on_their_own(self) -> bool:
        """Whether each block can be built alone: a diagonal, or factors that act on each sample alone."""
        structure = self.structure
        if not structure.depends or structure.diagonal is not None:
            return True
        factors = structure.factors
        return factors is not None and all(
            isinstance(factor, Scaling) or (factor.on_right and factor.repeats == structure.blocks)
            for factor in factors
        )

    def _factored_block(self, i: int) -> np.ndarray:
        """Block ``i`` from the diagonal or the factors, applied from the output end: a scaled copy of the
        first matrix met, so the lecture's block mask[:, None] * W costs one pass over W."""
        self._check_unchanged()
        structure = self.structure
        _, rows, columns = self._block_sizes(f"block({i})")
        if not structure.depends:
            return np.zeros((rows, columns), dtype=self.dtype)
        if structure.diagonal is not None:
            return np.diag(structure.diagonal[i].reshape(-1)).astype(self.dtype, copy=False)
        scale: np.ndarray | None = None  # the block so far, while it is diagonal
        block: np.ndarray | None = None
        for factor in reversed(structure.factors or ()):
            if isinstance(factor, Scaling):
                values = factor.values[i].reshape(-1)
                if block is None:
                    scale = values if scale is None else scale * values
                else:
                    block = block * values
            else:
                matrix_t = factor.matrix.T  # the block of I ⊗ Mᵀ
                if block is not None:
                    block = block @ matrix_t
                else:
                    block = matrix_t.copy() if scale is None else scale[:, None] * matrix_t
        if block is None:
            block = np.diag(np.ones(rows, dtype=self.dtype) if scale is None else scale)
        return np.asarray(block, dtype=self.dtype).reshape(rows, columns)

    def _swept_blocks(self, chunk_size: int | None, through_records: bool) -> np.ndarray:
        """Every block at once: the sweep for output feature k of every sample gives row k of every block."""
        count, rows, columns = self._block_sizes("blocks()")
        blocks = np.empty((count, rows, columns), dtype=self.dtype)
        step = chunk_size or rows
        for start in range(0, rows, step):
            features = np.arange(start, min(start + step, rows))
            seeds = np.zeros((len(features), count, rows), dtype=self._output.dtype)
            seeds[np.arange(len(features)), :, features] = 1
            pulled = self._pull(seeds.reshape(len(features), *self.output_shape), True, through_records)
            blocks[:, features] = pulled.reshape(len(features), count, columns).transpose(1, 0, 2)
        return blocks

    # -- scipy ---------------------------------------------------------------------------------------

    def aslinearoperator(self) -> Any:
        """A ``scipy.sparse.linalg.LinearOperator`` (matvec, rmatvec, matmat, rmatmat) for scipy's solvers
        (``cg``, ``gmres``, ``eigsh``, ``svds``, ...). Vectors scipy passes are cast to the operator's dtypes.

        Examples
        --------
        >>> import numpy as np, tape
        >>> from scipy.sparse.linalg import cg
        >>> J = tape.jacobian_operator(lambda x: 2 * x + x ** 3, np.array([1.0, 2.0]))
        >>> solution, info = cg(J.aslinearoperator(), np.array([5.0, 14.0]))
        >>> np.round(solution, 6), info
        (array([1., 1.]), 0)
        """
        try:
            from scipy.sparse.linalg import LinearOperator  # type: ignore[import-untyped]
        except ImportError as error:
            raise ImportError(
                f"{self.name}.aslinearoperator() needs scipy (pip install scipy); J @ v and u @ J work "
                "without it"
            ) from error
        forward, backward = self._leaf.dtype, self._output.dtype

        def real_parts(apply: Callable[[np.ndarray], np.ndarray], x: Any, dtype: np.dtype) -> np.ndarray:
            x = np.asarray(x)
            if x.dtype.kind == "c":  # J is real: apply it to the real and imaginary parts
                return apply(x.real.astype(dtype)) + 1j * apply(x.imag.astype(dtype))
            return apply(x.astype(dtype, copy=False))

        return LinearOperator(
            shape=self.shape,
            dtype=self.dtype,
            matvec=lambda v: real_parts(lambda x: self @ x.reshape(-1), v, forward),
            rmatvec=lambda u: real_parts(lambda x: x.reshape(-1) @ self, u, backward),
            matmat=lambda columns: real_parts(lambda x: self @ x, columns, forward),
            rmatmat=lambda columns: real_parts(lambda x: (x.T @ self).T, columns, backward),
        )

    def __repr__(self) -> str:
        rows, columns = self.shape
        structure = self.structure
        parts = [structure.name]
        if structure.name == "factored" and structure.factors:
            parts[0] += ": " + " · ".join(factor.describe() for factor in reversed(structure.factors))
        if structure.blocks and structure.name in ("factored", "block diagonal"):
            count = structure.blocks
            blocks = f"block diagonal: {count} blocks of {rows // count} x {columns // count}"
            parts = [*parts, blocks] if structure.name == "factored" else [blocks]
        if structure.name == "general":
            parts[0] += " (no structure found: products run through the records)"
        memory = self.memory
        if memory.structured is None:
            kept = "no matrix kept (the tape only)"
        else:
            kept = f"{_format_bytes(memory.structured)} structured"
        return (
            f"JacobianOperator({self._function_name}: {rows:,} x {columns:,} {self.dtype.name}, "
            f"{', '.join(parts)}; {kept} against {_format_bytes(memory.dense)} dense)"
        )


class TransposedJacobian:
    """Jᵀ of a ``JacobianOperator``: ``J.T @ u`` is ``u @ J``, and ``v @ J.T`` is ``J @ v``."""

    __array_ufunc__ = None

    def __init__(self, jacobian: JacobianOperator) -> None:
        self.T = jacobian
        self.shape = (jacobian.shape[1], jacobian.shape[0])
        self.dtype = jacobian.dtype

    def __matmul__(self, other: Any) -> np.ndarray:
        if np.ndim(other) == 2 and np.shape(other)[0] == self.shape[1]:  # columns: Jᵀ U = (Uᵀ J)ᵀ
            return (np.asarray(other).T @ self.T).T
        return other @ self.T

    def __rmatmul__(self, other: Any) -> np.ndarray:
        if np.ndim(other) == 2 and np.shape(other)[1] == self.shape[0]:  # rows: V Jᵀ = (J Vᵀ)ᵀ
            return (self.T @ np.asarray(other).T).T
        return self.T @ other

    def __repr__(self) -> str:
        return f"{self.T!r}.T"


def _factor_bytes(factor: Factor) -> int:
    if isinstance(factor, Scaling):
        return int(factor.values.nbytes)
    assert isinstance(factor, Product)
    return int(factor.matrix.nbytes)


def _format_bytes(size: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(size) >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"
