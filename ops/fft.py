"""``numpy.fft`` on tensors: the transforms, ``fftshift``/``ifftshift``, each beside its VJP.

Every transform is linear, so its VJP is its adjoint, and each adjoint is again a transform of this module
(plus a crop or zero-pad), so gradients of gradients come for free. Cotangents follow PyTorch's convention
(README, "Complex numbers"); a real input takes the real part of its cotangent (the engine does that).

* ``fftn`` with norm N is the map F_N; its adjoint is ``ifftn`` with the swapped norm (``"backward"`` and
  ``"forward"`` trade places, ``"ortho"`` stays), and ``ifftn``'s is ``fftn`` likewise. A length ``s``
  crops or zero-pads the input first; the adjoint crops or zero-pads the result back.
* ``rfftn`` is ``fftn`` of a real input keeping the first ``n // 2 + 1`` bins of the last axis: its adjoint
  is the real part of the adjoint of ``fftn`` on the cotangent zero-padded to ``n`` bins, which is
  ``irfftn`` (swapped norm) of the cotangent with its interior bins halved: a real transform, half the work.
* ``irfftn`` reads each interior bin of the last axis twice (itself and its conjugate mirror), the DC bin
  and, for even ``n``, the Nyquist bin once and only their real parts: its adjoint is ``rfftn`` of the
  cotangent with the swapped norm, interior bins doubled. ``rfftn`` of a real cotangent has real DC and
  Nyquist bins, so their imaginary parts get no gradient, as numpy ignores them.
* ``hfft`` and ``ihfft`` are numpy's own compositions of ``irfft``/``rfft`` with ``conjugate``.

``fftfreq`` and ``rfftfreq`` take no arrays and do not dispatch: they return numpy's constants. Nothing here
writes into its arguments; numpy's ``out=`` is the dispatcher's (refused while recording).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tape.op import Op
from tape.registry import implements
from tape.tensor import plain

Axes = tuple[int, ...]
_SWAPPED = {None: "forward", "backward": "forward", "forward": "backward", "ortho": "ortho"}


def _swap(norm: str | None) -> str:
    if norm not in _SWAPPED:
        raise ValueError(f'fft: norm is "backward", "ortho", "forward" or None, got {norm!r}')
    return _SWAPPED[norm]


def _lengths(x: Any, axes: Axes) -> Axes:
    return tuple(x.shape[axis] for axis in axes)


# -- cropping and zero-padding along axes: its own adjoint, back to the original lengths -------------------
def _resized(x: np.ndarray, lengths: Axes, axes: Axes) -> np.ndarray:
    crop = [slice(None)] * x.ndim
    pad = [(0, 0)] * x.ndim
    for axis, length in zip(axes, lengths, strict=True):
        crop[axis] = slice(0, length)
        pad[axis] = (0, max(0, length - x.shape[axis]))
    return np.pad(x[tuple(crop)], pad)


def _resize_vjp(g: Any, out: Any, x: Any, lengths: Axes, axes: Axes) -> Any:
    return _resize(g, _lengths(x, axes), axes)


_resize_op = Op(_resized, _resize_vjp, name="fft resize", shape_only=(0,), complex_rule="own")


def _resize(x: Any, lengths: Axes, axes: Axes) -> Any:
    return x if _lengths(x, axes) == tuple(lengths) else _resize_op(x, tuple(lengths), axes)


# -- the four transforms, on resolved lengths ``s`` and non-negative ``axes`` --------------------------------
def _c2c_vjp(adjoint: Callable[[], Op]) -> Callable[..., Any]:
    def vjp(g: Any, out: Any, a: Any, s: Axes, axes: Axes, norm: str | None) -> Any:
        return _resize(adjoint()(g, _lengths(g, axes), axes, _swap(norm)), _lengths(a, axes), axes)

    return vjp


def _rfftn_vjp(g: Any, out: Any, a: Any, s: Axes, axes: Axes, norm: str | None) -> Any:
    # The real part of the adjoint of the full transform on g zero-padded to s[-1] bins, computed at half
    # the cost: irfftn reads each interior bin of the last axis twice, so those are halved first.
    halved = _halve_interior(g, s[-1], axes[-1])
    inverse = irfft_op if len(axes) == 1 else irfftn_op  # numpy's 1-D function skips the n-D wrapper
    return _resize(inverse(halved, s, axes, _swap(norm)), _lengths(a, axes), axes)


def _halve_interior(g: Any, n: int, axis: int) -> Any:
    """``g`` with the bins that ``irfft`` reads twice halved: a product and two copied bins on a plain
    array (a broadcast division costs several times more on complex values), the division on a tensor."""
    if type(g) is not np.ndarray:
        return g / _hermitian_weights(n, axis, np.ndim(g), plain(g).dtype)
    halved = g * 0.5
    edges = [slice(None)] * g.ndim
    for edge in (0, -1) if n % 2 == 0 else (0,):
        edges[axis] = slice(edge, edge + 1 or None)
        halved[tuple(edges)] = g[tuple(edges)]
    return halved


def _hermitian_weights(n: int, axis: int, ndim: int, dtype: Any) -> np.ndarray:
    """1 for the DC bin and (even ``n``) the Nyquist bin, 2 for the interior bins that ``irfft`` reads
    twice; shaped to broadcast along ``axis``."""
    weights = np.full(n // 2 + 1, 2.0, dtype=np.finfo(dtype).dtype)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    shape = [1] * ndim
    shape[axis] = weights.size
    return weights.reshape(shape)


def _irfftn_vjp(g: Any, out: Any, a: Any, s: Axes, axes: Axes, norm: str | None) -> Any:
    half = (rfft_op if len(axes) == 1 else rfftn_op)(g, _lengths(g, axes), axes, _swap(norm))
    weighted = half * _hermitian_weights(s[-1], axes[-1], np.ndim(g), plain(g).dtype)
    return _resize(weighted, _lengths(a, axes), axes)


def _transform(function: Callable[..., Any], one_axis: bool) -> Callable[..., Any]:
    """numpy's ``function`` called with resolved lengths and axes: as ``(a, n, axis)`` for a 1-D one."""
    if one_axis:
        return lambda a, s, axes, norm: function(a, s[0], axes[0], norm)
    return lambda a, s, axes, norm: function(a, s, axes, norm)


def _op(function: Callable[..., Any], vjp: Callable[..., Any], one_axis: bool) -> Op:
    return Op(
        _transform(function, one_axis), vjp, name=function.__name__, shape_only=(0,), complex_rule="own"
    )


fftn_op: Op  # each of fftn and ifftn is the other's adjoint
ifftn_op = _op(np.fft.ifftn, _c2c_vjp(lambda: fftn_op), one_axis=False)
fftn_op = _op(np.fft.fftn, _c2c_vjp(lambda: ifftn_op), one_axis=False)
rfftn_op = _op(np.fft.rfftn, _rfftn_vjp, one_axis=False)
irfftn_op = _op(np.fft.irfftn, _irfftn_vjp, one_axis=False)
# The 1-D transforms run numpy's own 1-D function; their VJPs are those of the n-D ones on one axis.
fft_op = _op(np.fft.fft, _c2c_vjp(lambda: ifftn_op), one_axis=True)
ifft_op = _op(np.fft.ifft, _c2c_vjp(lambda: fftn_op), one_axis=True)
rfft_op = _op(np.fft.rfft, _rfftn_vjp, one_axis=True)
irfft_op = _op(np.fft.irfft, _irfftn_vjp, one_axis=True)


# -- numpy's signatures, resolved ---------------------------------------------------------------------------
def _axis(name: str, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(
            f"{name}: axis {axis} is out of bounds for an array of {ndim} dimensions"
        )
    return axis % ndim


def _one_axis(name: str, a: Any, n: int | None, axis: int, inverse_real: bool = False) -> tuple[Axes, Axes]:
    axis = _axis(name, axis, np.ndim(plain(a)))
    if n is None:
        n = 2 * (a.shape[axis] - 1) if inverse_real else a.shape[axis]
    return (int(n),), (axis,)


def _many_axes(
    name: str, a: Any, s: Sequence[int] | None, axes: Sequence[int] | None, inverse_real: bool = False
) -> tuple[Axes, Axes]:
    """numpy's lengths and axes of an n-D transform (as its ``_cook_nd_args``), made explicit."""
    ndim = np.ndim(plain(a))  # (np.ndim of a tensor would dispatch)
    if axes is None:
        axes = range(ndim) if s is None else range(-len(s), 0)
    resolved = tuple(_axis(name, axis, ndim) for axis in axes)
    if s is None:
        lengths = [a.shape[axis] for axis in resolved]
        if inverse_real and resolved:
            lengths[-1] = 2 * (lengths[-1] - 1)
    else:
        if len(s) != len(resolved):
            raise ValueError(f"{name}: s and axes have different lengths ({len(s)} != {len(resolved)})")
        lengths = [
            a.shape[axis] if length in (None, -1) else int(length)
            for length, axis in zip(s, resolved, strict=True)
        ]
    return tuple(lengths), resolved


@implements(np.fft.fft)
def fft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """``np.fft.fft`` on tensors; its VJP is ``ifft`` with the swapped norm.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    >>> np.sum(np.abs(np.fft.fft(x)) ** 2).backward()
    >>> x.grad
    array([ 8., 16., 24., 32.])
    """
    return fft_op(a, *_one_axis("fft", a, n, axis), norm)


@implements(np.fft.ifft)
def ifft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """``np.fft.ifft`` on tensors; its VJP is ``fft`` with the swapped norm.

    Examples
    --------
    >>> import numpy as np, tape
    >>> z = tape.tensor([4.0 + 0j, 0j], requires_grad=True)
    >>> np.fft.ifft(z)
    tensor([2.+0.j, 2.+0.j], dtype=complex128, op=ifft)
    """
    return ifft_op(a, *_one_axis("ifft", a, n, axis), norm)


@implements(np.fft.rfft)
def rfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """``np.fft.rfft`` on tensors: the first ``n // 2 + 1`` bins of the FFT of a real signal.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, 0.0, -1.0, 0.0], requires_grad=True)
    >>> np.sum(np.abs(np.fft.rfft(x)) ** 2).backward()
    >>> x.grad
    array([ 4.,  0., -4.,  0.])
    """
    return rfft_op(a, *_one_axis("rfft", a, n, axis), norm)


@implements(np.fft.irfft)
def irfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """``np.fft.irfft`` on tensors: the real signal of ``n`` samples whose spectrum's first half is ``a``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> c = tape.tensor([2.0 + 0j, 1.0 + 1j, 0j], requires_grad=True)
    >>> np.sum(np.fft.irfft(c) * np.array([1.0, 0.0, 0.0, 0.0])).backward()
    >>> c.grad
    array([0.25+0.j, 0.5 +0.j, 0.25+0.j])
    """
    return irfft_op(a, *_one_axis("irfft", a, n, axis, inverse_real=True), norm)


@implements(np.fft.hfft)
def hfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """``np.fft.hfft`` on tensors: numpy's ``irfft(conjugate(a), n, axis)`` with the swapped norm.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.fft.hfft(tape.tensor([1.0 + 0j, 1j, 0j]))
    tensor([ 1.,  3.,  1., -1.])
    """
    return irfft(np.conjugate(a), n, axis, norm=_swap(norm))


@implements(np.fft.ihfft)
def ihfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """``np.fft.ihfft`` on tensors: numpy's ``conjugate(rfft(a, n, axis))`` with the swapped norm.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.fft.ihfft(tape.tensor([1.0, 2.0, 3.0, 4.0]))
    tensor([ 2.5-0.j , -0.5-0.5j, -0.5-0.j ], dtype=complex128)
    """
    return np.conjugate(rfft(a, n, axis, norm=_swap(norm)))


def _many(op: Op, name: str, inverse_real: bool = False) -> Callable[..., Any]:
    def transform(a: Any, s: Any, axes: Any, norm: str | None) -> Any:
        return op(a, *_many_axes(name, a, s, axes, inverse_real), norm)

    return transform


_fftn, _ifftn = _many(fftn_op, "fftn"), _many(ifftn_op, "ifftn")
_rfftn, _irfftn = _many(rfftn_op, "rfftn"), _many(irfftn_op, "irfftn", inverse_real=True)


@implements(np.fft.fftn)
def fftn(a: Any, s: Any = None, axes: Any = None, norm: str | None = None) -> Any:
    """``np.fft.fftn`` on tensors; its VJP is ``ifftn`` with the swapped norm.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.fft.fftn(tape.tensor(np.ones((2, 2))))
    tensor([[4.+0.j, 0.+0.j],
            [0.+0.j, 0.+0.j]], dtype=complex128)
    """
    return _fftn(a, s, axes, norm)


@implements(np.fft.ifftn)
def ifftn(a: Any, s: Any = None, axes: Any = None, norm: str | None = None) -> Any:
    """``np.fft.ifftn`` on tensors; its VJP is ``fftn`` with the swapped norm.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.real(np.fft.ifftn(tape.tensor(np.ones((2, 2))), norm="forward"))
    tensor([[4., 0.],
            [0., 0.]])
    """
    return _ifftn(a, s, axes, norm)


@implements(np.fft.fft2)
def fft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None) -> Any:
    """``np.fft.fft2`` on tensors: ``fftn`` over the last two axes.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.real(np.fft.fft2(tape.tensor(np.eye(2))))
    tensor([[2., 0.],
            [0., 2.]])
    """
    return _fftn(a, s, axes, norm)


@implements(np.fft.ifft2)
def ifft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None) -> Any:
    """``np.fft.ifft2`` on tensors: ``ifftn`` over the last two axes.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.real(np.fft.ifft2(tape.tensor(np.eye(2))))
    tensor([[0.5, 0. ],
            [0. , 0.5]])
    """
    return _ifftn(a, s, axes, norm)


@implements(np.fft.rfftn)
def rfftn(a: Any, s: Any = None, axes: Any = None, norm: str | None = None) -> Any:
    """``np.fft.rfftn`` on tensors: ``fftn`` of a real input, half of the last axis's bins kept.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.fft.rfftn(tape.tensor(np.ones((2, 4)))).shape
    (2, 3)
    """
    return _rfftn(a, s, axes, norm)


@implements(np.fft.irfftn)
def irfftn(a: Any, s: Any = None, axes: Any = None, norm: str | None = None) -> Any:
    """``np.fft.irfftn`` on tensors: the inverse of ``rfftn``, a real result.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.fft.irfftn(tape.tensor(np.ones((2, 3)))).shape
    (2, 4)
    """
    return _irfftn(a, s, axes, norm)


@implements(np.fft.rfft2)
def rfft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None) -> Any:
    """``np.fft.rfft2`` on tensors: ``rfftn`` over the last two axes.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.fft.rfft2(tape.tensor(np.ones((3, 4)))).shape
    (3, 3)
    """
    return _rfftn(a, s, axes, norm)


@implements(np.fft.irfft2)
def irfft2(a: Any, s: Any = None, axes: Any = (-2, -1), norm: str | None = None) -> Any:
    """``np.fft.irfft2`` on tensors: ``irfftn`` over the last two axes.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.fft.irfft2(tape.tensor(np.ones((3, 3)))).shape
    (3, 4)
    """
    return _irfftn(a, s, axes, norm)


# -- fftshift and ifftshift: rolls, each the other's adjoint ------------------------------------------------
fftshift_op = Op(
    np.fft.fftshift,
    lambda g, out, x, axes=None: np.fft.ifftshift(g, axes=axes),
    name="fftshift",
    shape_only=(0,),
    complex_rule="own",
)
ifftshift_op = Op(
    np.fft.ifftshift,
    lambda g, out, x, axes=None: np.fft.fftshift(g, axes=axes),
    name="ifftshift",
    shape_only=(0,),
    complex_rule="own",
)


@implements(np.fft.fftshift)
def fftshift(x: Any, axes: Any = None) -> Any:
    """``np.fft.fftshift`` on tensors: the zero frequency moved to the middle; its VJP is ``ifftshift``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.fft.fftshift(tape.tensor([0.0, 1.0, 2.0, -2.0, -1.0]))
    tensor([-2., -1.,  0.,  1.,  2.])
    """
    return fftshift_op(x, axes=axes)


@implements(np.fft.ifftshift)
def ifftshift(x: Any, axes: Any = None) -> Any:
    """``np.fft.ifftshift`` on tensors: the inverse of ``fftshift``; its VJP is ``fftshift``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.fft.ifftshift(tape.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))
    tensor([ 0.,  1.,  2., -2., -1.])
    """
    return ifftshift_op(x, axes=axes)
