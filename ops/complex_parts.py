"""The parts of a complex number: real, imag, angle, real_if_close; each beside its VJP.

Cotangents follow PyTorch's convention (README, "Complex numbers"): for a real loss L and z = x + iy, the
cotangent of z is dL/dx + i dL/dy. So ``real`` hands its (real) cotangent back as is, ``imag`` hands back
``i g``, and ``angle`` (atan2(y, x)) hands back ``g (-y + i x) / |z|^2 = i g / conj(z)``, taken as 0 at 0
as PyTorch does. On real tensors these are numpy's: ``real`` and ``real_if_close`` return the tensor
itself, ``imag`` zeros and ``angle`` 0 or pi, both with a zero gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.op import Op
from tape.registry import implements
from tape.tensor import Tensor, plain


def _is_complex(value: Any) -> bool:
    return np.iscomplexobj(plain(value))


def _zero(g: Any, out: Any, *args: Any, **kwargs: Any) -> Any:
    return np.zeros_like(g)


def _angle_vjp(g: Any, out: Any, z: Any, deg: bool = False) -> Any:
    origin = plain(z) == 0
    scale = 180.0 / np.pi if deg else 1.0
    return np.where(origin, 0.0, g * (1j * scale) / np.conj(np.where(origin, 1.0, z)))


real_op = Op(np.real, lambda g, out, z: g, name="real", shape_only=(0,), complex_rule="own")
imag_op = Op(np.imag, lambda g, out, z: g * 1j, name="imag", shape_only=(0,), complex_rule="own")
imag_of_real_op = Op(np.zeros_like, _zero, name="imag", shape_only=(0,))
angle_op = Op(np.angle, _angle_vjp, name="angle", complex_rule="own")
angle_of_real_op = Op(np.angle, _zero, name="angle", shape_only=(0,))


@implements(np.real)
def real(val: Any) -> Any:
    """``np.real`` on tensors: the real part (of a real tensor, the tensor itself).

    Examples
    --------
    >>> import numpy as np, tape
    >>> z = tape.tensor([1 + 2j, -3j], requires_grad=True)
    >>> np.real(z).backward(np.array([1.0, 2.0]))
    >>> z.grad
    array([1.+0.j, 2.+0.j])
    """
    if isinstance(val, Tensor) and not _is_complex(val):
        return val
    return real_op(val)


@implements(np.imag)
def imag(val: Any) -> Any:
    """``np.imag`` on tensors: the imaginary part (of a real tensor, zeros with a zero gradient).

    Examples
    --------
    >>> import numpy as np, tape
    >>> z = tape.tensor([1 + 2j, -3j], requires_grad=True)
    >>> np.imag(z).backward(np.array([1.0, 2.0]))
    >>> z.grad
    array([0.+1.j, 0.+2.j])
    """
    return imag_op(val) if _is_complex(val) else imag_of_real_op(val)


@implements(np.angle)
def angle(z: Any, deg: bool = False) -> Any:
    """``np.angle`` on tensors: the argument of each element, in radians (degrees with ``deg``); of a real
    tensor 0 or pi with a zero gradient.

    Examples
    --------
    >>> import numpy as np, tape
    >>> z = tape.tensor([1j, 2.0 + 0j], requires_grad=True)
    >>> np.angle(z).backward(np.ones(2))
    >>> z.grad
    array([-1.+0.j ,  0.+0.5j])
    """
    return angle_op(z, deg=deg) if _is_complex(z) else angle_of_real_op(z, deg=deg)


@implements(np.real_if_close)
def real_if_close(a: Any, tol: Any = 100) -> Any:
    """``np.real_if_close`` on tensors: the real part when every imaginary part is within ``tol`` machine
    epsilons of 0, as numpy decides, else the tensor itself.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([1.0, -2.0])
    >>> np.real_if_close(x) is x
    True
    """
    if not _is_complex(a):
        return a
    values = plain(a)
    if np.real_if_close(values, tol=tol).dtype.kind == "c":
        return a
    return real_op(a)
