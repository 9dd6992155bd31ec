"""``Tensor``: a numpy array that remembers which record made it.

The class is thin on purpose, and low in the engine: the modules that make tensors (``op``, ``inplace``,
``backward``) import it, so it imports none of them. Arithmetic, methods, numpy functions, indexing,
in-place operators and ``backward`` all look up their handler in ``tape.registry`` by the callable they
stand for (``np.add``, ``np.sum``, ``operator.getitem``, ``operator.iadd``, ``Tensor.backward``), filled by
the modules above. This file never names a particular op's maths.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import dispatch, hooks
from .grad_mode import state
from .registry import FUNCTIONS, UFUNCS

_FLOAT_KINDS = "fc"  # the kinds that can require grad: real and complex floating point


def _dtype_name(dtype: Any) -> str:
    return np.dtype(dtype).name


# -- operators and numpy methods, made once per class body entry below ---------------------------------------
# As numpy's NDArrayOperatorsMixin makes them, but calling the op straight from the table: going through
# numpy's ufunc dispatch first would cost about 0.7 µs per operation.
def _binary(ufunc: np.ufunc) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``t <op> other`` and ``other <op> t``."""

    def forward(self: Tensor, other: Any) -> Any:
        return UFUNCS[ufunc](self, other)

    def reflected(self: Tensor, other: Any) -> Any:
        return UFUNCS[ufunc](other, self)

    forward.__name__, reflected.__name__ = f"{ufunc.__name__}", f"reflected_{ufunc.__name__}"
    return forward, reflected


def _numeric(ufunc: np.ufunc, in_place: Callable[..., Any]) -> tuple[Callable[..., Any], ...]:
    """``t <op> other``, ``other <op> t`` and ``t <op>= other`` (the handler of ``in_place``, e.g.
    ``operator.iadd``, writes into the tensor's buffer)."""

    def augmented(self: Tensor, other: Any) -> Tensor:
        FUNCTIONS[in_place](self, other)
        return self

    augmented.__name__ = in_place.__name__
    return (*_binary(ufunc), augmented)


def _unary(ufunc: np.ufunc) -> Callable[..., Any]:
    def method(self: Tensor) -> Any:
        return UFUNCS[ufunc](self)

    method.__name__ = ufunc.__name__
    return method


def _comparison(ufunc: np.ufunc) -> Callable[..., Any]:
    """A comparison: a boolean tensor, which carries no gradient."""

    def method(self: Tensor, other: Any) -> Tensor:
        result = new_tensor(np.asarray(ufunc(self._data, plain_or(other))), None, None, [0])
        if state.tracer is not None:  # tape.compile: not an op, but a step of the program all the same
            state.tracer.observe_plain(ufunc, (self, other), result)
        return result

    method.__name__ = ufunc.__name__
    return method


def _numpy_method(func: Any) -> Callable[..., Any]:
    """A method that runs ``func(self, ...)`` through numpy's dispatch (an unsupported one names itself)."""

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Any:
        return dispatch.dispatch_function(func, (self, *args), kwargs)

    method.__name__ = func.__name__
    method.__doc__ = f"As ``np.{func.__name__}(tensor, ...)``."
    return method


def _refuse_part_assignment(part: str) -> None:
    raise TypeError(
        f"Tensor.{part} cannot be assigned: a write into one part of a tensor's buffer would bypass the "
        f"tape. Build the new tensor instead, e.g. t = new_real + 1j * t.imag"
    )


class Tensor:
    """An n-dimensional array whose operations are recorded for reverse-mode differentiation.

    Create one with ``tape.tensor``. Every numpy operation on it (operators, methods, ``np.sin(t)``,
    ``np.sum(t, axis=0)``, ``t @ w``, ``t[idx]``) returns a new ``Tensor``; when an input requires grad
    and recording is on, the operation is appended to the tape so that ``backward`` can replay it.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = np.sum(x ** 2)
    >>> y.backward()
    >>> x.grad
    array([2., 4., 6.])
    """

    __slots__ = ("_data", "requires_grad", "_grad", "_record", "_index", "_vc", "_view_of", "__weakref__")
    # numpy defers binary operators with an ndarray on the left to this class.
    __array_priority__ = 1000.0
    _data: np.ndarray
    _grad: Any

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        # A copy, as torch.Tensor(array) makes: an array the caller keeps could otherwise change the
        # tensor's values, and the values records saved, behind the tape's back.
        if isinstance(data, Tensor):
            if state.tracer is not None:
                state.tracer.refuse_exit(data, "a new tensor made from a tensor's values (tape.tensor(t))")
            data = data._data
        array = np.array(data, copy=True)
        if requires_grad and array.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                "tensor: only floating-point tensors can require grad, got dtype "
                f"{_dtype_name(array.dtype)}; pass dtype=np.float64 (or float32) when creating it"
            )
        self._data = array
        self.requires_grad = bool(requires_grad)
        self._grad: Any = None
        self._record: Any = None
        self._index: int | None = None
        self._vc = [0]
        # For a view made by a view op: (base tensor, op, the op's other arguments, its keyword arguments),
        # so that writing through the view can rewrite the base's history.
        self._view_of: Any = None
        if state.tracer is not None:
            state.tracer.created(self)

    # -- basic attributes ------------------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        """The values, as a read-only numpy view of the tensor's buffer (no copy), as ``numpy()`` gives.

        Records may have saved this buffer for backward, and a write through a plain array would be
        invisible to the tape, so the view refuses writes: change a tensor with its own operators
        (``t[i] = v``, ``t += v``; under ``tape.no_grad()`` for parameters), which are counted.
        """
        return self.numpy()

    @data.setter
    def data(self, value: Any) -> None:
        raise AttributeError(
            "a tensor's data cannot be replaced: it could differ from what records saved without the tape "
            "knowing; write into it with t[...] = value (under tape.no_grad() for a parameter), or make a "
            "new tensor"
        )

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the data."""
        return self._data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype of the data."""
        return self._data.dtype

    @property
    def size(self) -> int:
        """The number of elements."""
        return self._data.size

    @property
    def grad(self) -> Any:
        """The gradient accumulated by ``backward``: on leaves that require grad, and on other tensors after
        ``retain_grad()``. Reading it on another recorded tensor warns, as PyTorch does: it stays None."""
        grad = self._grad
        if grad is None and self._record is not None and not hooks.is_retaining(self):
            warnings.warn(
                "the .grad of a tensor made by a recorded op (not a leaf) is not kept by backward, so it is "
                "None; call t.retain_grad() before backward to keep it, or read the leaves' .grad",
                UserWarning,
                stacklevel=2,
            )
        return grad

    @grad.setter
    def grad(self, value: Any) -> None:
        self._grad = value

    def register_hook(self, hook: Callable[[Any], Any]) -> hooks.RemovableHandle:
        """Call ``hook(gradient)`` whenever backward (or ``tape.grad``, ``tape.gradients``) computes this
        tensor's gradient; a result other than None replaces the gradient (same shape and dtype). Returns a
        handle whose ``remove()`` unregisters it. Hooks run in the order they were registered, on the
        gradient of the value the tensor had then (an in-place change makes a new value).

        Examples
        --------
        >>> import numpy as np, tape
        >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
        >>> y = x * 2
        >>> handle = y.register_hook(lambda g: g * 100)
        >>> np.sum(y).backward()
        >>> x.grad
        array([200., 200.])
        """
        return hooks.register(self, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Any], None]) -> hooks.RemovableHandle:
        """Call ``hook(tensor)`` once ``backward`` has accumulated this leaf's gradient into its ``.grad``,
        as soon as no more of it can arrive (before the rest of backward has run), and after the hooks of
        ``register_hook``. Its result is ignored. ``tape.grad`` and the other transforms, which leave
        ``.grad`` alone, do not call it. Returns a handle whose ``remove()`` unregisters it.

        Examples
        --------
        >>> import numpy as np, tape
        >>> w = tape.tensor([1.0, 2.0], requires_grad=True)
        >>> handle = w.register_post_accumulate_grad_hook(lambda t: print("grad of w:", t.grad))
        >>> np.sum(w * 3).backward()
        grad of w: [3. 3.]
        """
        return hooks.register_post_accumulate_grad(self, hook)

    def retain_grad(self) -> None:
        """Keep this tensor's gradient on ``.grad`` after backward, though it is not a leaf (on a leaf,
        nothing to do).

        Examples
        --------
        >>> import numpy as np, tape
        >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
        >>> y = x * 3
        >>> y.retain_grad()
        >>> np.sum(y * y).backward()
        >>> y.grad
        array([ 6., 12.])
        """
        hooks.retain_grad(self)

    @property
    def retains_grad(self) -> bool:
        """Whether ``retain_grad()`` was called on this non-leaf tensor."""
        return hooks.is_retaining(self)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded op."""
        return self._record is None

    @property
    def record(self) -> Any:
        """The tape record that produced this tensor, or ``None`` for a leaf."""
        return self._record

    @property
    def grad_fn(self) -> Any:
        """PyTorch's name for ``record``: the record that made this tensor (``.name`` is its op's name,
        ``.next_functions`` the records and leaves its inputs came from), or ``None`` for a leaf.

        Examples
        --------
        >>> import numpy as np, tape
        >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
        >>> y = np.sin(x) * 2
        >>> y.grad_fn.name, [node.name for node, _ in y.grad_fn.next_functions]
        ('multiply', ['sin'])
        """
        return self._record

    @property
    def T(self) -> Tensor:
        """The transpose (axes reversed), as ``np.transpose``."""
        return FUNCTIONS[np.transpose](self)

    @property
    def mT(self) -> Tensor:
        """The transpose of the last two axes, as ``np.matrix_transpose``."""
        return FUNCTIONS[np.swapaxes](self, -1, -2)

    @property
    def real(self) -> Tensor:
        """The real part, as ``np.real`` (of a real tensor, the tensor itself)."""
        return FUNCTIONS[np.real](self)

    @real.setter
    def real(self, value: Any) -> None:
        _refuse_part_assignment("real")

    @property
    def imag(self) -> Tensor:
        """The imaginary part, as ``np.imag`` (of a real tensor, zeros with a zero gradient)."""
        return FUNCTIONS[np.imag](self)

    @imag.setter
    def imag(self, value: Any) -> None:
        _refuse_part_assignment("imag")

    def conj(self) -> Tensor:
        """The complex conjugate, as ``np.conj`` (of a real tensor, the tensor itself)."""
        return UFUNCS[np.conjugate](self)

    conjugate = conj

    def numpy(self) -> np.ndarray:
        """Return the data as a read-only numpy view of the tensor's buffer (no copy).

        Records may have saved this buffer for backward, and a write through a plain array is invisible to
        the tape, so the view refuses writes. Change a tensor with its own operators (``t += 1``,
        ``t[i] = v``, which are recorded or refused), or write ``t.numpy().copy()`` for an array of your own.
        """
        if state.tracer is not None:
            state.tracer.refuse_exit(self, "t.numpy()")
        view = self._data.view()
        view.flags.writeable = False
        return view

    def item(self) -> Any:
        """Return the only element as a Python scalar."""
        if state.tracer is not None:
            state.tracer.refuse_exit(self, "t.item()")
        return self._data.item()

    def tolist(self) -> Any:
        """Return the data as nested Python lists."""
        if state.tracer is not None:
            state.tracer.refuse_exit(self, "t.tolist()")
        return self._data.tolist()

    def detach(self) -> Tensor:
        """Return a tensor with the same data that is cut from the tape and does not require grad."""
        return new_tensor(self._data, None, None, self._vc)  # same buffer, same version counter

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` on a leaf tensor in place and return it."""
        if not self.is_leaf:
            raise RuntimeError(
                "requires_grad_: only leaf tensors can change requires_grad; use .detach() for a non-leaf"
            )
        if requires_grad and self._data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                f"requires_grad_: only floating-point tensors can require grad, got dtype "
                f"{_dtype_name(self._data.dtype)}"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, gradient: Any = None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Accumulate the gradient of this tensor with respect to every leaf into the leaves' ``.grad``.

        Parameters
        ----------
        gradient : the cotangent of this tensor, same shape; may be omitted for a single-element tensor.
        retain_graph : keep the records' saved values so that backward can run through them again.
        create_graph : record the backward pass itself, so that the gradients are tensors that can be
            differentiated again (implies ``retain_graph``).
        """
        FUNCTIONS[Tensor.backward](self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    # -- conversion --------------------------------------------------------------------------------------
    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if state.tracer is not None:
            state.tracer.refuse_exit(self, "np.asarray(t) (or numpy code that does not dispatch to tensors)")
        if self.requires_grad and state.grad_enabled:
            # numpy asks for the data when a tensor meets code that does not dispatch to it: a list of
            # tensors given to a numpy function, np.array(t), np.r_[...], array[i] = t, a scipy function.
            # The values would go on without their gradient, so say so rather than drop it silently.
            raise TypeError(
                f"a tensor that requires grad (shape {self.shape}, {self.dtype.name}) was converted to a "
                "plain numpy array while recording, which would drop its gradient. Build results from "
                "tensors (np.stack([a, b]) rather than a list given to a numpy function, np.concatenate, "
                "t[i] = v on a tensor made with tape.zeros), or take the data explicitly: t.detach() or "
                "t.numpy() where no gradient is wanted, or compute under tape.no_grad(). scipy.special's "
                "logsumexp, softmax, log_softmax and polygamma, which do not dispatch to tensors, have "
                "differentiable twins in tape.scipy.special (import tape.scipy.special)"
            )
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            return self._data.astype(dtype)
        if copy:
            return self._data.copy()
        # Records may have saved this buffer (this tensor's, or one it shares through detach()): a write
        # through a plain array would go unnoticed, so the array numpy gets refuses writes.
        return self.numpy()

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="tensor(")
        extras = []
        if self._data.dtype != np.float64 and self._data.dtype != np.int64 and self._data.dtype != np.bool_:
            extras.append(f"dtype={_dtype_name(self._data.dtype)}")
        if self._record is not None:
            extras.append(f"op={self._record.op.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + extra for extra in extras)})"

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Tensor]:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self._data)))

    def __bool__(self) -> bool:
        if state.tracer is not None:
            state.tracer.refuse_exit(self, "bool(t) (an `if`, `and`, `or` or `not` on a tensor)")
        return bool(self._data)

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def _scalar(self, caller: str) -> np.ndarray:
        if state.tracer is not None:
            state.tracer.refuse_exit(self, f"{caller}(t)")
        if self._data.size != 1:
            raise TypeError(
                f"{caller}() of a tensor of shape {self.shape}: only a single-element tensor has one"
            )
        return self._data.reshape(())

    def __index__(self) -> int:
        if state.tracer is not None:
            state.tracer.refuse_exit(self, "using a tensor as a Python int (an index, range(t))")
        return self._data.__index__()

    __hash__ = object.__hash__

    # -- numpy protocols ---------------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method == "__call__" and not kwargs:
            op = UFUNCS.get(ufunc)
            if op is not None:
                return op(*inputs)
        return dispatch.dispatch_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        return dispatch.dispatch_function(func, args, kwargs)

    # -- indexing ------------------------------------------------------------------------------------------
    def __getitem__(self, index: Any) -> Tensor:
        return FUNCTIONS[operator.getitem](self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        FUNCTIONS[operator.setitem](self, index, value)

    # -- methods that mirror numpy's ---------------------------------------------------------------------
    def sum(self, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis``, as ``np.sum``."""
        return FUNCTIONS[np.sum](self, axis=axis, dtype=dtype, keepdims=keepdims)

    def mean(self, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis``, as ``np.mean``."""
        return FUNCTIONS[np.mean](self, axis=axis, dtype=dtype, keepdims=keepdims)

    def prod(self, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Tensor:
        """Product over ``axis``, as ``np.prod``."""
        return FUNCTIONS[np.prod](self, axis=axis, dtype=dtype, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``, as ``np.max``; tied maxima share the gradient equally."""
        return FUNCTIONS[np.max](self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Minimum over ``axis``, as ``np.min``; tied minima share the gradient equally."""
        return FUNCTIONS[np.min](self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: Any, order: str = "C") -> Tensor:
        """Return the data in a new shape, as ``ndarray.reshape`` (``t.reshape(2, 3)`` or ``((2, 3))``)."""
        if len(shape) == 1 and not isinstance(shape[0], int | np.integer):
            shape = shape[0]
        return FUNCTIONS[np.reshape](self, shape, order=order)

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes, as ``ndarray.transpose``."""
        if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], int | np.integer)):
            return FUNCTIONS[np.transpose](self, axes[0])
        return FUNCTIONS[np.transpose](self, axes or None)

    def squeeze(self, axis: Any = None) -> Tensor:
        """Remove axes of length one, as ``np.squeeze``."""
        return FUNCTIONS[np.squeeze](self, axis=axis)

    def astype(self, dtype: Any) -> Tensor:
        """Return a copy cast to ``dtype``; the gradient is cast back to this tensor's dtype."""
        return FUNCTIONS[np.ndarray.astype](self, dtype)

    def copy(self) -> Tensor:
        """Return a copy whose gradient flows back to this tensor."""
        return FUNCTIONS[np.copy](self)

    def compress(self, condition: Any, axis: Any = None) -> Tensor:
        """The slices along ``axis`` where ``condition`` is true, as ``ndarray.compress``."""
        return FUNCTIONS[np.compress](condition, self, axis=axis)

    def flatten(self, order: str = "C") -> Tensor:
        """Return a flattened copy, as ``ndarray.flatten``."""
        return FUNCTIONS[np.ravel](self, order=order).copy()

    def dot(self, other: Any) -> Tensor:
        """Matrix product, as ``ndarray.dot`` on 1-D and 2-D data."""
        return FUNCTIONS[np.dot](self, other)

    # -- operators: each the op of numpy's ufunc for it ------------------------------------------------------
    __add__, __radd__, __iadd__ = _numeric(np.add, operator.iadd)
    __sub__, __rsub__, __isub__ = _numeric(np.subtract, operator.isub)
    __mul__, __rmul__, __imul__ = _numeric(np.multiply, operator.imul)
    __truediv__, __rtruediv__, __itruediv__ = _numeric(np.true_divide, operator.itruediv)
    __floordiv__, __rfloordiv__, __ifloordiv__ = _numeric(np.floor_divide, operator.ifloordiv)
    __mod__, __rmod__, __imod__ = _numeric(np.remainder, operator.imod)
    __pow__, __rpow__, __ipow__ = _numeric(np.power, operator.ipow)
    __matmul__, __rmatmul__, __imatmul__ = _numeric(np.matmul, operator.imatmul)
    # Masks combine as in numpy (``(x > 0) & (x < 1)``); their results carry no gradient.
    __and__, __rand__ = _binary(np.bitwise_and)
    __or__, __ror__ = _binary(np.bitwise_or)
    __xor__, __rxor__ = _binary(np.bitwise_xor)
    __neg__ = _unary(np.negative)
    __pos__ = _unary(np.positive)
    __abs__ = _unary(np.absolute)
    __invert__ = _unary(np.invert)
    __lt__ = _comparison(np.less)
    __le__ = _comparison(np.less_equal)
    __gt__ = _comparison(np.greater)
    __ge__ = _comparison(np.greater_equal)
    __eq__ = _comparison(np.equal)
    __ne__ = _comparison(np.not_equal)

    # -- methods that mean exactly numpy's function of the same name (``t.var(0)`` is ``np.var(t, 0)``) ------
    all = _numpy_method(np.all)
    any = _numpy_method(np.any)
    argmax = _numpy_method(np.argmax)
    argmin = _numpy_method(np.argmin)
    argsort = _numpy_method(np.argsort)
    clip = _numpy_method(np.clip)
    cumprod = _numpy_method(np.cumprod)
    cumsum = _numpy_method(np.cumsum)
    diagonal = _numpy_method(np.diagonal)
    nonzero = _numpy_method(np.nonzero)
    ptp = _numpy_method(np.ptp)
    ravel = _numpy_method(np.ravel)
    repeat = _numpy_method(np.repeat)
    round = _numpy_method(np.round)
    std = _numpy_method(np.std)
    swapaxes = _numpy_method(np.swapaxes)
    take = _numpy_method(np.take)
    trace = _numpy_method(np.trace)
    var = _numpy_method(np.var)


def plain(value: Any) -> np.ndarray:
    """The values of ``value`` with no gradient: a tensor's data, or ``np.asarray`` of anything else.

    For what a VJP reads only to choose, never to compute with (masks, conditions, counts): under
    ``create_graph`` its arguments are tensors that require grad, and ``np.asarray`` of those refuses.

    Examples
    --------
    >>> import tape
    >>> plain(tape.tensor([1.0, 2.0], requires_grad=True)) > 1.5
    array([False,  True])
    """
    return value._data if isinstance(value, Tensor) else np.asarray(value)


def plain_or(value: Any) -> Any:
    """A tensor's data; anything else as it is."""
    return value._data if isinstance(value, Tensor) else value


def leaf(array: np.ndarray, requires_grad: bool = False) -> Tensor:
    """A leaf tensor over ``array`` itself, for arrays nobody else holds (fresh results, fresh copies): what
    ``Tensor(array)`` makes, without its copy."""
    if requires_grad and array.dtype.kind not in _FLOAT_KINDS:
        Tensor(array[:0], requires_grad=True)  # raises the constructor's error
    tensor = new_tensor(array, None, None, [0])
    tensor.requires_grad = bool(requires_grad)
    if state.tracer is not None:
        state.tracer.created(tensor)
    return tensor


def new_tensor(
    data: Any, record: Any, index: int | None, version_counter: list[int], view_of: Any = None
) -> Tensor:
    """Wrap an op's output (``index``: which of ``record``'s outputs): the fast path that skips
    ``Tensor.__init__``'s checks. It requires grad exactly when it has a record."""
    tensor = _new(Tensor)
    tensor._data = data
    tensor.requires_grad = record is not None
    tensor._grad = None
    tensor._record = record
    tensor._index = index
    tensor._vc = version_counter
    tensor._view_of = view_of
    return tensor


_new = Tensor.__new__
