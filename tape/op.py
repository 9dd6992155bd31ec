"""The one way to define a differentiable operation, for built-in ops and users alike.

An ``Op`` is a forward function on numpy arrays plus a vector-Jacobian product (VJP) for each input that
can be differentiated::

    multiply = Op(np.multiply,
                  lambda g, out, x, y: g * y,     # cotangent for x
                  lambda g, out, x, y: g * x,     # cotangent for y
                  name="multiply")

A VJP receives the output cotangent ``g``, the forward's output and the forward's arguments, and returns
the cotangent of one input. It never thinks about broadcasting or dtypes: the engine sums a cotangent over
broadcast axes and casts it to its input's dtype in one place (``fit_cotangent``). VJPs are ordinary numpy
code; under ``create_graph=True`` they receive tensors, so they are recorded like any user code.

The lecture's gate style (a class whose ``forward`` keeps what ``backward`` needs) is accepted too, through
``gate``. This module must not contain any particular op; in-place writes live in ``inplace``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import saved
from .anomaly import user_origin
from .grad_mode import state
from .reads import EVERYTHING, OUTPUT, Everything, values_read
from .record import Record, next_position
from .saved import saved_arguments, saved_keywords, saved_output
from .tensor import Tensor, new_tensor
from .views import refresh_view

VJP = Callable[..., Any]

# The version counter given to arguments whose values no VJP reads: it never changes, so never complains.
_UNCHECKED = [0]
#: The version check of an output no VJP reads (a view op's, add's): none, so writes to it are free.
UNREAD_OUTPUT = ((_UNCHECKED, 0),)
_FLOATS = frozenset(np.dtype(code) for code in "efdg")
_COMPLEX = frozenset(np.dtype(code) for code in "FDG")
_DIFFERENTIABLE = _FLOATS | _COMPLEX
# Results that could carry a gradient but that no record follows: object arrays.
_LOSSY_KINDS = frozenset("O")
_COMPLEX_RULES = frozenset({"refused", "holomorphic", "own"})
ndarray = np.ndarray
_new_record = Record.__new__
# How many forward sweeps (``tape.jvp``) are running, in any thread: while none is, a call reads no
# thread-local state for them, so the per-op cost stays what it was.
_sweeps_running = 0
_sweeps_lock = threading.Lock()


def count_sweep(change: int) -> None:
    """Count a forward sweep as started (``change=1``) or ended (``-1``)."""
    global _sweeps_running
    with _sweeps_lock:
        _sweeps_running += change


class _EveryArgument:
    """``argnum in _EVERY_ARGUMENT`` is always true: an op with a joint backward differentiates them all."""

    def __contains__(self, argnum: object) -> bool:
        return True


_EVERY_ARGUMENT = _EveryArgument()


class Op:
    """A differentiable operation: ``forward`` on arrays and one VJP per differentiable input.

    Parameters
    ----------
    forward : function of numpy arrays (and any non-array arguments) returning an array, or a tuple of
        arrays for an op with several outputs.
    *vjps : for each positional argument, ``vjp(g, out, *args, **kwargs)`` returning the cotangent of that
        argument, or ``None`` where the argument is not differentiable.
    name : shown in error messages and in ``repr`` of records; defaults to ``forward.__name__``.
    backward : instead of ``vjps``, one ``backward(g, out, *args, **kwargs)`` returning a sequence with a
        cotangent (or ``None``) per positional argument, for ops whose cotangents share work.
    shape_only : positions of arguments whose values no VJP reads (only their shapes), so changing them
        in place after the call is harmless: ``add`` and ``reshape`` need no values at all.
    view : the output shares memory with the first argument (reshape, transpose, ...), so in-place
        changes to either are seen by both.
    keeps_output : whether the VJPs read the output's values; ops whose VJPs do not (``add``, ``matmul``,
        ``sin``) let their record drop a large output, so it is freed as soon as nothing else uses it.
    complex_rule : what the op does with complex values (a complex input that requires grad, or a complex
        output) while recording. ``"refused"`` (the default): a TypeError. ``"holomorphic"``: the VJPs are
        written as for real inputs (``g * f'(x)``) and the op is analytic, so on complex values the engine
        runs them as ``conj(vjp(conj(g)))``, which is PyTorch's convention (``.grad`` of a real loss is
        dL/dx + i dL/dy). ``"own"``: the VJPs handle complex values themselves, in that convention.
    batched : the VJPs also accept a cotangent with extra leading axes (a batch of cotangents, as
        ``jacobian`` sends) and return cotangents with those axes in front; elementwise VJPs written
        with broadcasting do. Other ops are run once per cotangent in such a batch.
    jvp : ``jvp(tangents, out, *args, **kwargs)``, the tangent of the output (a tuple for several) from a
        tuple with each positional argument's tangent (None where it has none): forward mode
        (``tape.tangents``). Optional: without it an elementwise op's VJPs serve, and any other op's VJPs
        are transposed (exact, slower). Also settable later with ``defjvp``.
    forward_jvp : ``forward_jvp(tangents, *args, **kwargs)``, the output and its tangent together,
        ``(out, tangent)``, or None where the rule does not apply (the forward and ``jvp`` then run): for
        ops that share work between the two, such as a product reading its matrix once for both. Used by
        ``tape.jvp`` while the function runs; ``out`` may differ from the forward's in the last bits.
    batched_jvp : ``jvp`` also takes tangents stacked on one extra leading axis (several directions at
        once: ``J @ V`` of ``tape.jacobian_operator``), known by that axis, and returns them stacked.
        Without it, such a stack is pushed through the rule one tangent at a time.
    elementwise : the op acts element by element (with broadcasting), so its Jacobian is diagonal and
        its VJPs, given a tangent, are its JVP.

    Examples
    --------
    >>> import numpy as np, tape
    >>> cube = tape.Op(lambda x: x ** 3, lambda g, out, x: g * 3 * x ** 2, name="cube")
    >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
    >>> cube(x).sum().backward()
    >>> x.grad
    array([ 3., 12.])
    """

    __slots__ = (
        "backward",
        "batched",
        "batched_jvp",
        "complex_rule",
        "complex_twin",
        "declared_keeps_output",
        "elementwise",
        "forward",
        "forward_jvp",
        "has_vjp",
        "jvp",
        "keeps_output",
        "name",
        "reads",
        "reads_always",
        "shape_only",
        "view",
        "vjp_prefix",
        "vjps",
    )
    backward: Callable[..., Sequence[Any]] | None
    has_vjp: frozenset[int] | _EveryArgument
    name: str
    reads: tuple[frozenset[int] | Everything, ...]
    reads_always: frozenset[int] | Everything | None

    if TYPE_CHECKING:  # __call__ is ``_call`` below, set after the class: the per-op hot path in one frame

        def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def __init__(
        self,
        forward: Callable[..., Any],
        *vjps: VJP | None,
        name: str | None = None,
        backward: Callable[..., Sequence[Any]] | None = None,
        view: bool = False,
        shape_only: tuple[int, ...] = (),
        batched: bool = False,
        keeps_output: bool = True,
        complex_rule: str = "refused",
        jvp: Callable[..., Any] | None = None,
        elementwise: bool = False,
        forward_jvp: Callable[..., Any] | None = None,
        batched_jvp: bool = False,
    ) -> None:
        if vjps and backward is not None:
            raise TypeError("Op: give either one VJP per argument or a joint backward, not both")
        self.forward = forward
        self.defvjp(*vjps)
        if backward is not None:
            self.backward = backward
            self.has_vjp = _EVERY_ARGUMENT
            self.vjp_prefix = sys.maxsize
        self.name = str(name or getattr(forward, "__name__", "op"))
        self.view = view
        self.shape_only = frozenset(shape_only)
        self.batched = batched
        self.declared_keeps_output = keeps_output
        if complex_rule not in _COMPLEX_RULES:
            raise ValueError(f"Op: complex_rule is one of {sorted(_COMPLEX_RULES)}, got {complex_rule!r}")
        self.complex_rule = complex_rule
        self.complex_twin: Op | None = None
        self.jvp = jvp
        self.forward_jvp = forward_jvp
        self.batched_jvp = batched_jvp
        self.elementwise = elementwise
        self._plan_reads()

    def defvjp(self, *vjps: VJP | None) -> Op:
        """Set the VJPs, one per positional argument (``None`` for non-differentiable ones); return self."""
        self.vjps = vjps
        self.backward = None
        # Checked for every tensor argument that requires grad, so a set lookup rather than a method call;
        # calls with no more arguments than ``vjp_prefix`` (the leading run of VJPs) need no check at all.
        self.has_vjp = frozenset(argnum for argnum, vjp in enumerate(vjps) if vjp is not None)
        self.vjp_prefix = next((argnum for argnum, vjp in enumerate(vjps) if vjp is None), len(vjps))
        if hasattr(self, "shape_only"):  # VJPs given after the op was made (the ``op`` decorator)
            self._plan_reads()
        return self

    def defjvp(
        self, jvp: Callable[..., Any], forward_jvp: Callable[..., Any] | None = None, batched: bool = False
    ) -> Op:
        """Set the forward-mode rule ``jvp(tangents, out, *args, **kwargs)``, the joint rule
        ``forward_jvp``, and whether ``jvp`` takes stacked tangents (``batched_jvp``; see ``Op``); return
        self.

        Examples
        --------
        >>> import numpy as np, tape
        >>> cube = tape.Op(lambda x: x ** 3, lambda g, out, x: g * 3 * x ** 2, name="cube")
        >>> _ = cube.defjvp(lambda tangents, out, x: tangents[0] * 3 * x ** 2)
        >>> tape.jvp(cube, (np.array([2.0]),), (np.array([1.0]),))[1]
        array([12.])
        """
        self.jvp = jvp
        self.forward_jvp = forward_jvp
        self.batched_jvp = batched
        return self

    def _plan_reads(self) -> None:
        """What each VJP reads of the saved values (``tape.reads``), less what the op declared shape-only.

        ``reads`` holds one read set per argument's VJP; ``reads_always`` is the read set whatever
        requires grad (a joint backward, or VJPs that all read alike), else None; ``keeps_output``
        whether some VJP reads the output's values (and the op did not declare that none does).
        """
        if self.backward is not None:
            self.reads = ()
            self.reads_always = self._without_shape_only(values_read(self.backward))
        else:
            self.reads = tuple(
                frozenset() if vjp is None else self._without_shape_only(values_read(vjp))
                for vjp in self.vjps
            )
            distinct = {id(read) if isinstance(read, Everything) else read for read in self.reads}
            self.reads_always = self.reads[0] if len(distinct) == 1 else None
        every = self.reads_always if self.reads_always is not None else _union(self.reads)
        self.keeps_output = self.declared_keeps_output and OUTPUT in every

    def _without_shape_only(self, reads: frozenset[int] | Everything) -> frozenset[int] | Everything:
        if isinstance(reads, Everything) or not self.shape_only:
            return reads
        return reads - self.shape_only

    def differentiable(self, argnum: int) -> bool:
        """Whether a cotangent can be computed for positional argument ``argnum``."""
        return argnum in self.has_vjp

    def __repr__(self) -> str:
        return f"<Op {self.name}>"


def _union(read_sets: Sequence[frozenset[int] | Everything]) -> frozenset[int] | Everything:
    union: frozenset[int] | Everything = frozenset()
    for reads in read_sets:
        union = union | reads
    return union


def linear_jvp(forward: Callable[..., Any]) -> Callable[..., Any]:
    """The JVP rule of an op whose forward is linear in its first argument, the only one with a gradient
    (a sum, a reshape, an index): the forward applied to the tangent.

    Examples
    --------
    >>> import numpy as np, tape
    >>> total = tape.Op(np.sum, lambda g, out, x: np.broadcast_to(g, np.shape(x)), name="total")
    >>> _ = total.defjvp(linear_jvp(np.sum))
    >>> tape.jvp(total, (np.ones(3),), (np.array([1.0, 2.0, 3.0]),))[1]
    array(6.)
    """

    def jvp(tangents: Sequence[Any], out: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        return forward(tangents[0], *args, **kwargs)

    return jvp


def op(forward: Callable[..., Any]) -> Op:
    """Decorator form of ``Op``: define the forward, then attach VJPs with ``.defvjp``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> @tape.op
    ... def logcosh(x):
    ...     return np.log(np.cosh(x))
    >>> _ = logcosh.defvjp(lambda g, out, x: g * np.tanh(x))
    """
    return Op(forward)


def apply(op: Op, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``op`` on arrays and, when an input requires grad and recording is on, append a record.

    With no tensor among ``args`` the result is a plain array (this is how VJPs calling other ops stay
    cheap in first-order backward); otherwise it is a ``Tensor``.
    """
    return _call(op, *args, **kwargs)


def _call(op: Op, *args: Any, **kwargs: Any) -> Any:
    # ``Op.__call__`` itself: the per-op hot path, kept in one frame. On arrays of a few elements its own
    # bookkeeping costs more than numpy's work, so each step here is written for speed.
    values = list(args)
    inputs = []  # (argnum, node, index, version counter, version) per tensor argument
    wants_grad = False
    needs_saving = False  # whether an argument may need more than keeping as it is (see ``saved``)
    complex_input = False
    shape_only = op.shape_only
    for argnum, arg in enumerate(args):
        if isinstance(arg, Tensor):
            values[argnum] = arg._data
            if arg._view_of is not None and arg._view_of[4] != arg._vc[0] and state.grad_enabled:
                refresh_view(arg)
            checked = _UNCHECKED if argnum in shape_only else arg._vc
            if not needs_saving and arg._data.size >= saved.KEEP_SMALLER_THAN:
                needs_saving = True  # large: dropped if no VJP reads it
            if arg.requires_grad:
                wants_grad = True
                if arg._data.dtype in _COMPLEX:
                    complex_input = True
                inputs.append((argnum, arg._record or arg, arg._index, checked, checked[0]))
            else:
                inputs.append((argnum, None, None, checked, checked[0]))
        elif type(arg) is ndarray or type(arg) is tuple:
            needs_saving = True  # plain: copied if a VJP reads it
    # ``tape.jvp`` pushing tangents as this runs
    sweep = state.forward_sweep if _sweeps_running and wants_grad else None
    joint = None if sweep is None or op.forward_jvp is None else sweep.joint(op, inputs, values, kwargs)
    try:
        if joint is not None:
            out = joint[0]
        else:
            out = op.forward(*values, **kwargs) if kwargs else op.forward(*values)
    except (ValueError, TypeError) as error:
        _add_context(op, values, error)
        raise
    if not inputs:
        return out
    if type(out) is not ndarray:
        if type(out) is tuple:
            return _wrap_outputs(op, args, values, kwargs, [item[0] for item in inputs], out)
        out = np.asarray(out)
    view_of = None
    if op.view and isinstance(args[0], Tensor) and np.may_share_memory(out, values[0]):
        # The view shares its base's buffer and version counter, and remembers how it was cut, so a write
        # through it can rewrite the base's history.
        counter = args[0]._vc
        view_of = (args[0], op, tuple(values[1:]), kwargs, counter[0])
    else:
        counter = [0]
    record = None
    if wants_grad and out.dtype in _DIFFERENTIABLE and state.grad_enabled:
        if complex_input or out.dtype in _COMPLEX:
            op = for_complex(op)
        if len(args) > op.vjp_prefix:  # some argument may lack a VJP: look at those that require grad
            for argnum, node, _, _, _ in inputs:
                if node is not None and argnum not in op.has_vjp:
                    _refuse_non_differentiable(op, argnum)
        reads = op.reads_always
        if reads is None:
            reads = _reads_of(op, inputs)
        record = _new_record(Record)  # Record(...), without the cost of calling a class
        record.op = op
        record.args = saved_arguments(args, values, reads, op.name) if needs_saving else tuple(values)
        record.kwargs = saved_keywords(kwargs) if kwargs else kwargs
        record.inputs = tuple(inputs)
        if reads is not EVERYTHING:
            for argnum, _, _, checked, _ in inputs:
                if checked is not _UNCHECKED and argnum not in reads:
                    record.inputs = _check_only(inputs, reads)
                    break
        # An output no VJP reads (a view op's, whose buffer later writes may change, or add's) is not kept.
        if op.keeps_output and view_of is None:
            record.out = out
            record.out_versions = ((counter, 0),)
        else:
            record.out = out if out.size < saved.KEEP_SMALLER_THAN else saved_output(out, op.name)
            record.out_versions = UNREAD_OUTPUT
        record.position = next_position()
        if state.anomaly:
            record.where = user_origin()
        if sweep is not None:
            if joint is not None:
                sweep.observe(record, joint[1])
            else:
                sweep.observe(record)
    elif wants_grad and out.dtype.kind in _LOSSY_KINDS and state.grad_enabled:
        _refuse_lossy_result(op, out.dtype)
    result = new_tensor(out, record, None, counter, view_of)
    if state.tracer is not None:  # tape.compile is recording this function: the call is a step
        state.tracer.observe(op, args, kwargs, result, record)
    return result


def for_complex(op: Op) -> Op:
    """The op to record when complex values take part: ``op`` itself if its VJPs handle them, its
    conjugating twin if it is holomorphic; otherwise the call is refused."""
    if op.complex_rule == "own":
        return op
    if op.complex_rule == "holomorphic":
        if op.complex_twin is None:
            op.complex_twin = _conjugating_twin(op)
        return op.complex_twin
    raise TypeError(
        f"{op.name}: complex tensors that require grad are not supported by {op.name} yet; compute it on "
        "t.detach() (or under tape.no_grad()) if no gradient is wanted"
    )


def _conjugating_twin(op: Op) -> Op:
    """``op`` with each VJP run as ``conj(vjp(conj(g)))``: for an analytic function, whose VJP is
    ``g * f'(z)``, that is ``g * conj(f'(z))``, the cotangent in PyTorch's convention."""
    twin = Op.__new__(Op)
    for slot in Op.__slots__:
        setattr(twin, slot, getattr(op, slot))
    twin.complex_rule, twin.complex_twin = "own", None
    if op.backward is not None:
        twin.backward = _conjugating_backward(op.backward)
    else:
        twin.vjps = tuple(None if vjp is None else _conjugating_vjp(vjp) for vjp in op.vjps)
    return twin


def _conjugating_vjp(vjp: VJP) -> VJP:
    def conjugated(g: Any, out: Any, *args: Any, **kwargs: Any) -> Any:
        cotangent = vjp(np.conj(g), out, *args, **kwargs)
        return None if cotangent is None else np.conj(cotangent)

    return conjugated


def _conjugating_backward(backward: Callable[..., Sequence[Any]]) -> Callable[..., Sequence[Any]]:
    def conjugated(g: Any, out: Any, *args: Any, **kwargs: Any) -> list[Any]:
        g = tuple(np.conj(item) for item in g) if type(g) is tuple else np.conj(g)
        return [None if c is None else np.conj(c) for c in backward(g, out, *args, **kwargs)]

    return conjugated


def _reads_of(op: Op, inputs: list[tuple[int, Any, int | None, list[int], int]]) -> Any:
    """What the VJPs that will run (those of the arguments that require grad) read of the saved values."""
    reads = op.reads
    union: Any = None
    for argnum, node, _, _, _ in inputs:
        if node is not None:  # (an argument without a VJP was refused before)
            union = reads[argnum] if union is None else union | reads[argnum]
    return union


def _check_only(inputs: list[tuple[int, Any, int | None, list[int], int]], reads: Any) -> tuple[Any, ...]:
    """``inputs`` with the version checks of the arguments no VJP reads dropped: writes to them are free."""
    return tuple(
        entry if entry[0] in reads else (entry[0], entry[1], entry[2], _UNCHECKED, 0) for entry in inputs
    )


def _add_context(op: Op, values: list[Any], error: Exception) -> None:
    """Note on the forward's own error the op's name and the shapes and dtypes of its array arguments.

    The error itself is left as raised (its type, arguments and traceback are the caller's to rely on);
    the context is a note, shown under the message. An error that already names the op gets none.
    """
    if str(error).startswith(f"{op.name}:"):
        return
    arrays = [v for v in values if isinstance(v, np.ndarray)]
    shapes = ", ".join(str(v.shape) for v in arrays)
    dtypes = ", ".join(v.dtype.name for v in arrays)
    add_note(error, f"{op.name}: array arguments of shapes {shapes}; dtypes {dtypes}")


def add_note(error: BaseException, note: str) -> None:
    """Add ``note`` under ``error``'s message, keeping the error (type, arguments, traceback) as raised.

    Never rebuild an error as ``type(error)(message)``: its constructor may take other arguments.
    """
    if sys.version_info >= (3, 11):
        error.add_note(note)
    else:  # where add_note sets it: read by pytest and the traceback backports, ignored by 3.10 itself
        vars(error).setdefault("__notes__", []).append(note)


Op.__call__ = _call  # type: ignore[assignment]


def _check_differentiable(op: Op, inputs: list[tuple[int, Any, int | None, list[int], int]]) -> None:
    for argnum, node, _, _, _ in inputs:
        if node is not None and not op.differentiable(argnum):
            _refuse_non_differentiable(op, argnum)


def _refuse_non_differentiable(op: Op, argnum: int) -> None:
    raise TypeError(
        f"{op.name}: argument {argnum} requires grad but {op.name} has no gradient with "
        f"respect to it; pass it detached (x.detach()) or define a VJP for it with tape.Op"
    )


def _refuse_lossy_result(op: Op, dtype: np.dtype) -> None:
    what = "object arrays hold no gradient"
    raise TypeError(
        f"{op.name}: gives {dtype.name} values from an input that requires grad, but {what}, so its "
        f"gradient would be lost; compute it on x.detach() (or under tape.no_grad()) if no gradient is wanted"
    )


def _wrap_outputs(
    op: Op,
    args: tuple[Any, ...],
    values: list[Any],
    kwargs: dict[str, Any],
    tensor_argnums: list[int],
    outs: tuple[Any, ...],
) -> tuple[Tensor, ...]:
    """``apply`` for an op with several outputs: one record, one tensor per output."""
    outs = tuple(np.asarray(item) for item in outs)
    counters = [[0] for _ in outs]
    if state.grad_enabled and any(args[argnum].requires_grad for argnum in tensor_argnums):
        for item in outs:
            if item.dtype.kind in _LOSSY_KINDS:
                _refuse_lossy_result(op, item.dtype)
        if any(item.dtype in _COMPLEX for item in outs) or any(
            args[argnum].requires_grad and args[argnum]._data.dtype in _COMPLEX for argnum in tensor_argnums
        ):
            op = for_complex(op)
    inputs = []
    if state.grad_enabled and any(item.dtype in _DIFFERENTIABLE for item in outs):
        inputs = [
            (
                argnum,
                tensor._record or tensor if tensor.requires_grad else None,
                tensor._index,
                tensor._vc,
                tensor._vc[0],
            )
            for argnum in tensor_argnums
            for tensor in (args[argnum],)
        ]
    if not any(node is not None for _, node, _, _, _ in inputs):
        results = tuple(
            new_tensor(item, None, None, counter) for item, counter in zip(outs, counters, strict=True)
        )
        if state.tracer is not None:
            state.tracer.observe(op, args, kwargs, results, None)
        return results
    _check_differentiable(op, inputs)
    reads = op.reads_always if op.reads_always is not None else _reads_of(op, inputs)
    saved = saved_arguments(args, values, reads, op.name)
    out_versions = (
        tuple((counter, 0) for counter in counters) if op.keeps_output else UNREAD_OUTPUT * len(outs)
    )
    keywords = saved_keywords(kwargs) if kwargs else kwargs
    record = Record(op, saved, keywords, _check_only(inputs, reads), outs, out_versions)
    if state.anomaly:
        record.where = user_origin()
    if _sweeps_running and state.forward_sweep is not None:
        state.forward_sweep.observe(record)
    results = tuple(
        new_tensor(item, record if item.dtype in _DIFFERENTIABLE else None, k, counter)
        for k, (item, counter) in enumerate(zip(outs, counters, strict=True))
    )
    if state.tracer is not None:
        state.tracer.observe(op, args, kwargs, results, record)
    return results


def gate(gate_class: type) -> Callable[..., Any]:
    """Turn a lecture-style gate class into an op.

    The class has ``forward(self, *inputs)`` that computes on arrays and keeps on ``self`` what it needs,
    and ``backward(self, dz)`` that returns one cotangent per input. Each call makes a new instance, so the
    saved values belong to that call's record.

    Examples
    --------
    >>> import tape
    >>> class MultiplyGate:
    ...     def forward(self, x, y):
    ...         z = x * y
    ...         self.x = x  # must keep these around!
    ...         self.y = y
    ...         return z
    ...     def backward(self, dz):
    ...         dx = self.y * dz
    ...         dy = self.x * dz
    ...         return [dx, dy]
    >>> multiply = tape.gate(MultiplyGate)
    >>> x = tape.tensor(3.0, requires_grad=True)
    >>> y = tape.tensor(-4.0, requires_grad=True)
    >>> multiply(x, y).backward()
    >>> x.grad, y.grad
    (array(-4.), array(3.))
    """
    name = gate_class.__name__

    def forward(instance: Any, *inputs: Any) -> Any:
        return instance.forward(*inputs)

    def backward(g: Any, out: Any, instance: Any, *inputs: Any) -> list[Any]:
        if isinstance(g, Tensor):
            raise TypeError(
                f"{name}: a gate's backward runs on arrays, so it cannot be differentiated again "
                "(create_graph=True); define the operation with tape.Op to get higher derivatives"
            )
        cotangents = list(instance.backward(g))
        if len(cotangents) != len(inputs):
            raise ValueError(
                f"{name}.backward returned {len(cotangents)} cotangents for {len(inputs)} inputs"
            )
        return [None, *cotangents]

    gate_op = Op(forward, name=name, backward=backward)

    def call(*inputs: Any) -> Any:
        return gate_op(gate_class(), *inputs)

    call.__name__ = name
    call.__doc__ = gate_class.__doc__
    return call
