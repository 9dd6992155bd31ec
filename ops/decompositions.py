"""Matrix functions and decompositions of ``np.linalg``, each beside its VJP.

Covered: ``inv``, ``solve``, ``det``, ``slogdet``, ``cholesky``, ``eigh``, ``eigvalsh``, ``eig``, ``eigvals``,
``qr``, ``svd``, ``svdvals``, ``pinv``, ``lstsq``, ``norm``, ``vector_norm``, ``matrix_norm`` and ``cond``;
``matrix_rank`` runs on the data (an integer has no gradient). Every op takes a single matrix or a stack of
them (leading batch axes), as numpy does, and the forward is numpy's own, so values are numpy's to the last
bit.

The VJPs are numpy code on the arguments, the outputs and the cotangents: products (``@``), ``swapaxes``
and elementwise arithmetic, with triangular and diagonal masks built as constant arrays and multiplied in,
and ``np.linalg.inv``/``solve``/``eigh``/``svd`` where a VJP needs them. Under ``create_graph=True`` those
calls dispatch back to the ops of this file, so gradients of gradients need nothing more.

``cholesky`` and ``eigh``/``eigvalsh`` read one triangle of ``a`` (with the diagonal) and ignore the other:
they compute F(S) of the symmetric S = tril(a) + tril(a, -1)ᵀ (``UPLO='L'``, ``upper=False``; triu for the
upper triangle). Their gradient is the derivative of that function, exact for any ``a``, symmetric or not:
with Ḡ such that ⟨Ḡ, dS⟩ = dF for every symmetric dS, it is Ḡ + Ḡᵀ on the read triangle, Ḡᵢᵢ on the
diagonal and zero on the ignored triangle. PyTorch returns its symmetric part instead (as tape does for a
function of a symmetrized input, ``np.linalg.cholesky((a + a.T) / 2)``); the two give the same change of
the loss along every symmetric dA (tape's alone is also right along any other dA).

Every op takes complex matrices too, with PyTorch's convention for the gradient (``tape.Op``): ``inv``,
``solve`` and ``det`` are analytic, so their real VJPs serve complex values (``complex_rule="holomorphic"``);
the others conjugate where the mathematics does (``"own"``: conjugate transposes ᴴ where the real VJPs have
transposes, and the real parts the formulas need), at the cost of one dtype check on real values. A complex
``a`` given to ``cholesky``, ``eigh`` or ``eigvalsh`` stands for the Hermitian S = tril(a) + tril(a, -1)ᴴ
whose diagonal is the real part of a's (LAPACK ignores the imaginary part), so the gradient there is real.

Where a gradient is not determined by the value, the choice made here is the usual one (PyTorch, JAX):

* eigenvectors and singular vectors are defined up to sign (and up to rotation within a repeated
  eigenvalue or singular value); their gradient is that of a loss that does not depend on those choices,
  and it is undefined (infinite) for repeated eigenvalues or singular values; the ``svd`` gradient of
  ``u`` and ``vh`` also needs nonzero singular values when the matrix is not square. Complex eigenvectors
  and singular vectors are defined up to a phase e^{iφ} each (``eig``'s are normalized to unit length);
  a loss that depends on those phases has no gradient, and its backward raises a ValueError naming the op,
  as PyTorch's does.
* ``eig``/``eigvals``: the gradient needs distinct eigenvalues (and so a diagonalizable matrix).
* ``norm`` and friends take the subgradient zero where the 2-norm, the Frobenius norm or the 1-norm meets
  zero, and share the cotangent evenly among tied maxima (``inf`` norms, matrix 1-norms), as
  ``np.max`` does. ``ord=0`` counts nonzeros: its gradient is zero.
* ``det``, ``slogdet``: the gradient at an exactly singular matrix is refused with an error naming the op.
* ``pinv`` and ``lstsq``: the gradient assumes the rank stays the same near the input (full-rank inputs).

Gradients flow only through floating-point outputs: the rank of ``lstsq`` receives none, and nor does the
sign of ``slogdet`` of a real matrix (it is locally constant); that of a complex matrix, det / |det|, does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tape.op import Op
from tape.registry import implements
from tape.tensor import Tensor, plain


class SlogdetResult(NamedTuple):
    """``np.linalg.slogdet`` on tensors: the sign (no gradient) and the log of the absolute determinant."""

    sign: Any
    logabsdet: Any


class EighResult(NamedTuple):
    """``np.linalg.eigh`` on tensors: ascending eigenvalues and the eigenvectors as columns."""

    eigenvalues: Any
    eigenvectors: Any


class EigResult(NamedTuple):
    """``np.linalg.eig`` on tensors: the eigenvalues and the unit-norm eigenvectors as columns."""

    eigenvalues: Any
    eigenvectors: Any


class QRResult(NamedTuple):
    """``np.linalg.qr`` on tensors: orthonormal columns ``Q`` and upper triangular ``R``."""

    Q: Any
    R: Any


class SVDResult(NamedTuple):
    """``np.linalg.svd`` on tensors: ``U``, the descending singular values ``S``, and ``Vh``."""

    U: Any
    S: Any
    Vh: Any


# -- helpers shared by the VJPs ----------------------------------------------------------------------------
def _mT(x: Any) -> Any:
    """The transpose of each matrix in a stack."""
    return np.swapaxes(x, -1, -2)


def _is_complex(x: Any) -> bool:
    return x.dtype.kind == "c"


def _mH(x: Any) -> Any:
    """The conjugate transpose of each matrix in a stack (the transpose of a real one, with no copy)."""
    return np.swapaxes(np.conj(x), -1, -2) if x.dtype.kind == "c" else np.swapaxes(x, -1, -2)


def _diagonal(x: Any) -> Any:
    return np.diagonal(x, axis1=-2, axis2=-1)


def _check_phase_invariance(name: str, slopes: np.ndarray, scale: np.ndarray) -> None:
    """Refuse a loss that depends on the phases of complex eigen- or singular vectors: ``slopes`` are its
    derivatives along those phases (the imaginary diagonal of Vᴴ V̄), which must be 0 up to rounding at
    the size of ``scale`` (Vᴴ V̄)."""
    if not slopes.size:
        return
    tolerance = np.sqrt(np.finfo(slopes.dtype).eps) * (1 + float(np.max(np.abs(scale))))
    worst = float(np.max(np.abs(slopes)))
    if not worst <= tolerance:
        what = "singular vectors" if name == "svd" else "eigenvectors"
        raise ValueError(
            f"{name}: the loss depends on the phases of the complex {what}, which numpy's {name} fixes "
            f"arbitrarily (each is defined only up to a factor e^(i phi)), so it has no gradient "
            f"(its derivative along a phase is {worst:.3g}, above {tolerance:.3g}); use a loss that does not "
            f"depend on them, such as one of abs(v) or of products v_i conj(v_j) of entries of one vector"
        )


def _read_triangle_gradient(g: Any, upper: bool) -> Any:
    """The gradient w.r.t. ``a`` of F(S), S = tril(a) + tril(a, -1)ᴴ (triu with ``upper``), from Ḡ = ``g``
    with Re⟨Ḡ, dS⟩ = dF for Hermitian dS: Ḡ + Ḡᴴ on the read triangle, Re Ḡᵢᵢ on the diagonal (whose
    imaginary part numpy ignores), zero on the other triangle."""
    n = np.shape(g)[-1]
    ones = np.ones((n, n), dtype=g.dtype)
    read = np.triu(ones) if upper else np.tril(ones)
    return (g + _mH(g)) * (read - np.eye(n, dtype=g.dtype) / 2)


def _diag_embed(values: Any, dtype: Any) -> Any:
    """(..., n) -> (..., n, n) with ``values`` on the diagonal."""
    n = np.shape(values)[-1]
    return np.expand_dims(values, -1) * np.eye(n, dtype=dtype)


def _inverse_gaps(values: Any, dtype: Any) -> Any:
    """F[..., i, j] = 1 / (values[j] - values[i]) off the diagonal and 0 on it."""
    n = np.shape(values)[-1]
    eye = np.eye(n, dtype=dtype)
    gaps = np.expand_dims(values, -2) - np.expand_dims(values, -1)
    # Adding the identity keeps the diagonal away from 0/0; the mask then sets it to zero.
    return (1 - eye) / (gaps + eye)


def _is_zero(g: Any) -> bool:
    """True for the zeros the engine hands to an output that nothing used (skipping them saves work)."""
    return type(g) is np.ndarray and not g.any()


def _check_square(name: str, a: Any) -> None:
    shape = np.shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise np.linalg.LinAlgError(
            f"{name}: expected a square matrix or a stack of them (shape (..., n, n)), got an array of shape "
            f"{shape}"
        )


def _check_matrix(name: str, a: Any) -> None:
    if np.ndim(a) < 2:
        raise np.linalg.LinAlgError(
            f"{name}: expected a matrix or a stack of them (shape (..., m, n)), got an array of shape "
            f"{np.shape(a)}"
        )


def _inverse_for_gradient(name: str, a: Any) -> Any:
    """``inv(a)`` for the VJP of ``name``, which is not defined where ``a`` is singular."""
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError as error:
        raise np.linalg.LinAlgError(
            f"{name}: the gradient at a singular matrix (shape {np.shape(a)}) is not supported"
        ) from error


def _refuse(name: str, keyword: str, value: Any, why: str) -> TypeError:
    return TypeError(f"numpy.linalg.{name}: {keyword}={value!r} is not supported on tape tensors; {why}")


# -- inv, solve ----------------------------------------------------------------------------------------------
def _inv(a: Any) -> Any:
    _check_square("inv", a)
    return np.linalg.inv(a)


def _inv_vjp(g: Any, out: Any, a: Any) -> Any:
    # d(A^-1) = -A^-1 dA A^-1
    inverse_t = _mT(out)
    return -(inverse_t @ g @ inverse_t)


inv_op = Op(_inv, _inv_vjp, name="inv", shape_only=(0,), complex_rule="holomorphic")


@implements(np.linalg.inv)
def inv(a: Any) -> Any:
    """``np.linalg.inv`` on tensors: the inverse of a matrix or of each matrix in a stack.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[2.0, 0.0], [0.0, 4.0]], requires_grad=True)
    >>> np.linalg.inv(a).sum().backward()
    >>> a.grad
    array([[-0.25  , -0.125 ],
           [-0.125 , -0.0625]])
    """
    return inv_op(a)


def _solve(a: Any, b: Any) -> Any:
    _check_square("solve", a)
    size = np.shape(a)[-1]
    b_shape = np.shape(b)
    if len(b_shape) == 0 or b_shape[-1 if len(b_shape) == 1 else -2] != size:
        raise ValueError(
            f"solve: a has shape {np.shape(a)} (matrices of size {size}), so b must have shape ({size},) or "
            f"(..., {size}, k), got {b_shape}; a stack of vectors is given as (..., {size}, 1)"
        )
    return np.linalg.solve(a, b)


def _solve_backward(g: Any, out: Any, a: Any, b: Any) -> tuple[Any, Any]:
    # x = A^-1 b: the cotangent of b is A^-T g, and that of A is -(A^-T g) x^T.
    a_t = _mT(a)
    if np.ndim(b) == 1:
        g_b = np.linalg.solve(a_t, np.expand_dims(g, -1))[..., 0]
        return -(np.expand_dims(g_b, -1) * np.expand_dims(out, -2)), g_b
    g_b = np.linalg.solve(a_t, g)
    return -(g_b @ _mT(out)), g_b


solve_op = Op(_solve, name="solve", backward=_solve_backward, complex_rule="holomorphic")


@implements(np.linalg.solve)
def solve(a: Any, b: Any) -> Any:
    """``np.linalg.solve`` on tensors: ``x`` with ``a @ x == b``.

    As in numpy 2, ``b`` is a vector only when it is 1-D; otherwise it is a matrix (or a stack of them)
    whose columns are right-hand sides.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[2.0, 0.0], [0.0, 4.0]], requires_grad=True)
    >>> np.linalg.solve(a, np.array([2.0, 4.0]))
    tensor([1., 1.], op=solve)
    """
    return solve_op(a, b)


# -- det, slogdet ------------------------------------------------------------------------------------------
def _det(a: Any) -> Any:
    _check_square("det", a)
    return np.linalg.det(a)


def _det_vjp(g: Any, out: Any, a: Any) -> Any:
    # d det(A) = det(A) tr(A^-1 dA)
    return np.expand_dims(g * out, (-2, -1)) * _mT(_inverse_for_gradient("det", a))


det_op = Op(_det, _det_vjp, name="det", complex_rule="holomorphic")


@implements(np.linalg.det)
def det(a: Any) -> Any:
    """``np.linalg.det`` on tensors. The gradient at an exactly singular matrix raises an error.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[2.0, 1.0], [0.0, 3.0]], requires_grad=True)
    >>> np.linalg.det(a).backward()
    >>> a.grad
    array([[ 3.,  0.],
           [-1.,  2.]])
    """
    return det_op(a)


def _slogdet(a: Any) -> tuple[Any, Any]:
    _check_square("slogdet", a)
    sign, logabsdet = np.linalg.slogdet(a)
    return sign, logabsdet


def _slogdet_vjp(g: tuple[Any, Any], out: Any, a: Any) -> Any:
    # log det A = log|det A| + i arg det A is analytic, d log det A = tr(A^-1 dA). A real sign is locally
    # constant: only log|det A| carries a gradient, A^-T. A complex sign s = exp(i arg det A) turns its
    # cotangent into one of arg det A, -Im(conj(g_s) s), so log det A has the cotangent
    # c = g_logabsdet - i Im(conj(g_s) s), and A the cotangent c A^-H.
    g_sign, g_logabsdet = g
    sign = out[0]
    if _is_complex(sign) and not _is_zero(g_sign):
        g_logabsdet = g_logabsdet - 1j * np.imag(np.conj(g_sign) * sign)
    return np.expand_dims(g_logabsdet, (-2, -1)) * _mH(_inverse_for_gradient("slogdet", a))


slogdet_op = Op(_slogdet, _slogdet_vjp, name="slogdet", complex_rule="own")


@implements(np.linalg.slogdet)
def slogdet(a: Any) -> SlogdetResult:
    """``np.linalg.slogdet`` on tensors: ``(sign, logabsdet)``; the gradient flows through ``logabsdet``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[4.0, 1.0], [2.0, -2.0]], requires_grad=True)
    >>> sign, logabsdet = np.linalg.slogdet(a)
    >>> sign, logabsdet.backward()
    (tensor(-1., op=slogdet), None)
    >>> a.grad
    array([[ 0.2,  0.2],
           [ 0.1, -0.4]])
    """
    return SlogdetResult(*slogdet_op(a))


# -- cholesky ----------------------------------------------------------------------------------------------
def _cholesky(a: Any, upper: bool = False) -> Any:
    _check_square("cholesky", a)
    return np.linalg.cholesky(a, upper=upper)


def _cholesky_vjp(g: Any, out: Any, a: Any, upper: bool = False) -> Any:
    # S = L L^T gives L^-1 dS L^-T = X + X^T with X = L^-1 dL lower triangular, so dL = L Φ(L^-1 dS L^-T),
    # Φ keeping the lower triangle with its diagonal halved. Transposed: Sbar = L^-T Φ(L^T Lbar) L^-1, then
    # onto the triangle of a that numpy read. Only the lower triangle of Lbar enters Φ(L^T Lbar).
    # Complex (S = L L^H, real diagonal): the same with conjugate transposes.
    lower, g_lower = (_mH(out), _mH(g)) if upper else (out, g)
    n = np.shape(out)[-1]
    half_diagonal_lower = np.tril(np.ones((n, n), dtype=out.dtype)) - np.eye(n, dtype=out.dtype) / 2
    phi = (_mH(lower) @ g_lower) * half_diagonal_lower
    lower_inverse = np.linalg.inv(lower)
    return _read_triangle_gradient(_mH(lower_inverse) @ phi @ lower_inverse, upper)


cholesky_op = Op(_cholesky, _cholesky_vjp, name="cholesky", shape_only=(0,), complex_rule="own")


@implements(np.linalg.cholesky)
def cholesky(a: Any, /, *, upper: bool = False) -> Any:
    """``np.linalg.cholesky`` on tensors: ``L`` with ``a = L @ L.T`` (or ``U`` with ``upper=True``).

    numpy reads the lower triangle of ``a`` (the upper one with ``upper=True``) and ignores the other; the
    gradient is that of numpy's function, so it is zero on the ignored triangle (see the module docstring).

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[4.0, 9.0], [2.0, 5.0]], requires_grad=True)
    >>> np.linalg.cholesky(a)
    tensor([[2., 0.],
            [1., 2.]], op=cholesky)
    >>> np.linalg.cholesky(a).sum().backward()
    >>> a.grad
    array([[0.1875, 0.    ],
           [0.25  , 0.25  ]])
    """
    return cholesky_op(a, upper=bool(upper))


# -- eigh, eigvalsh ----------------------------------------------------------------------------------------
def _eigh(a: Any, UPLO: str = "L") -> tuple[Any, Any]:  # noqa: N803 (numpy's keyword)
    _check_square("eigh", a)
    values, vectors = np.linalg.eigh(a, UPLO=UPLO)
    return values, vectors


def _eigh_vjp(g: tuple[Any, Any], out: Any, a: Any, UPLO: str = "L") -> Any:  # noqa: N803
    # For symmetric dA: dw_i = v_i^T dA v_i and V^T dV = F ∘ (V^T dA V), F_ij = 1 / (w_j - w_i). Hermitian
    # (complex) dA: the same with V^H, and the imaginary diagonal of V^H dV is each vector's free phase.
    g_values, g_vectors = g
    values, vectors = out
    inner = _diag_embed(g_values, values.dtype)
    if not _is_zero(g_vectors):
        projected = _mH(vectors) @ g_vectors
        if _is_complex(projected):
            _check_phase_invariance("eigh", np.imag(_diagonal(plain(projected))), plain(projected))
        inner = inner + _inverse_gaps(values, values.dtype) * projected
    return _read_triangle_gradient(vectors @ inner @ _mH(vectors), UPLO.upper() == "U")


eigh_op = Op(_eigh, _eigh_vjp, name="eigh", shape_only=(0,), complex_rule="own")


@implements(np.linalg.eigh)
def eigh(a: Any, UPLO: str = "L") -> EighResult:  # noqa: N803
    """``np.linalg.eigh`` on tensors: eigenvalues (ascending) and eigenvectors of a symmetric matrix.

    numpy reads the triangle ``UPLO`` names and ignores the other; the gradient is that of numpy's function,
    zero on the ignored triangle (see the module docstring). The eigenvectors' part is undefined for
    repeated eigenvalues, and only a loss that does not depend on each eigenvector's sign has a gradient.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[2.0, 1.0], [7.0, 2.0]], requires_grad=True)
    >>> values, vectors = np.linalg.eigh(a, UPLO="U")
    >>> values[1].backward()
    >>> a.grad
    array([[0.5, 1. ],
           [0. , 0.5]])
    """
    return EighResult(*eigh_op(a, UPLO=UPLO))


def _eigvalsh(a: Any, UPLO: str = "L") -> Any:  # noqa: N803
    _check_square("eigvalsh", a)
    return np.linalg.eigvalsh(a, UPLO=UPLO)


def _eigvalsh_vjp(g: Any, out: Any, a: Any, UPLO: str = "L") -> Any:  # noqa: N803
    # The eigenvectors were not kept by the forward: recompute them (through eigh, so create_graph works).
    vectors = np.linalg.eigh(a, UPLO=UPLO)[1]
    return _read_triangle_gradient(vectors @ (np.expand_dims(g, -1) * _mH(vectors)), UPLO.upper() == "U")


eigvalsh_op = Op(_eigvalsh, _eigvalsh_vjp, name="eigvalsh", complex_rule="own")


@implements(np.linalg.eigvalsh)
def eigvalsh(a: Any, UPLO: str = "L") -> Any:  # noqa: N803
    """``np.linalg.eigvalsh`` on tensors: the eigenvalues of a symmetric matrix, ascending.

    numpy reads the triangle ``UPLO`` names and ignores the other; the gradient is that of numpy's function,
    zero on the ignored triangle (see the module docstring).

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[2.0, 7.0], [1.0, 2.0]], requires_grad=True)
    >>> np.linalg.eigvalsh(a)[1].backward()
    >>> a.grad
    array([[0.5, 0. ],
           [1. , 0.5]])
    """
    return eigvalsh_op(a, UPLO=UPLO)


# -- eig, eigvals ------------------------------------------------------------------------------------------
def _eig(a: Any) -> tuple[Any, Any]:
    _check_square("eig", a)
    values, vectors = np.linalg.eig(a)
    return values, vectors


def _left_solve_for_gradient(name: str, vectors_h: Any, b: Any) -> Any:
    """V^-H b, for the VJP of ``name``: not defined where the eigenvectors V are dependent (a defective a)."""
    try:
        return np.linalg.solve(vectors_h, b)
    except np.linalg.LinAlgError as error:
        raise np.linalg.LinAlgError(
            f"{name}: the gradient needs a diagonalizable matrix with distinct eigenvalues, but the "
            f"eigenvectors are linearly dependent (shape {np.shape(vectors_h)})"
        ) from error


def _eig_vjp(g: tuple[Any, Any], out: Any, a: Any) -> Any:
    # A = V L V^-1: V^-1 dA V = dL + C L - L C with C = V^-1 dV, so dL = diag(V^-1 dA V) and, off the
    # diagonal, C_ij = (V^-1 dA V)_ij / (l_j - l_i). The diagonal of C keeps each column of unit length,
    # Re(v_i^H dv_i) = 0; its imaginary part is the free phase. Transposed:
    # Abar = V^-H (diag(Lbar) + conj(F) ∘ (V^H Vbar - V^H V Re(diag(V^H Vbar)))) V^H, F_ij = 1 / (l_j - l_i).
    g_values, g_vectors = g
    values, vectors = out
    vectors_h = _mH(vectors)
    inner = _diag_embed(g_values, g_values.dtype)
    if not _is_zero(g_vectors):
        projected = vectors_h @ g_vectors
        diagonal = _diagonal(projected)
        if _is_complex(projected):
            _check_phase_invariance("eig", np.imag(_diagonal(plain(projected))), plain(projected))
            diagonal = np.real(diagonal)
        gaps = _inverse_gaps(values, values.dtype)
        kept = projected - (vectors_h @ vectors) * np.expand_dims(diagonal, -2)
        inner = inner + (np.conj(gaps) if _is_complex(gaps) else gaps) * kept
    return _left_solve_for_gradient("eig", vectors_h, inner @ vectors_h)


eig_op = Op(_eig, _eig_vjp, name="eig", shape_only=(0,), complex_rule="own")


@implements(np.linalg.eig)
def eig(a: Any) -> EigResult:
    """``np.linalg.eig`` on tensors: the eigenvalues and right eigenvectors (unit-norm columns) of a square
    matrix, real or complex, or of each matrix in a stack.

    As numpy's, the results are complex unless ``a`` is real and every eigenvalue is real. The gradient needs
    distinct eigenvalues (it is infinite where two meet, and undefined for a defective matrix). Each
    eigenvector is defined only up to a phase e^(iφ) (a sign for real ones), so only a loss that does not
    depend on those phases has a gradient; backward raises a ValueError for one that does (as
    ``torch.linalg.eig`` does). A real ``a`` gets the real part of the complex gradient.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[0.0, -1.0], [1.0, 0.0]], requires_grad=True)
    >>> values, vectors = np.linalg.eig(a)
    >>> values
    tensor([0.+1.j, 0.-1.j], dtype=complex128, op=eig)
    >>> np.imag(values[0]).backward()
    >>> a.grad
    array([[ 0. , -0.5],
           [ 0.5,  0. ]])
    """
    return EigResult(*eig_op(a))


def _eigvals(a: Any) -> Any:
    _check_square("eigvals", a)
    return np.linalg.eigvals(a)


def _eigvals_vjp(g: Any, out: Any, a: Any) -> Any:
    # Abar = V^-H diag(Lbar) V^H, whatever the eigenvectors' phases. They were not kept by the forward:
    # recompute them (through eig, so create_graph works).
    vectors_h = _mH(np.linalg.eig(a)[1])
    return _left_solve_for_gradient("eigvals", vectors_h, np.expand_dims(g, -1) * vectors_h)


eigvals_op = Op(_eigvals, _eigvals_vjp, name="eigvals", complex_rule="own")


@implements(np.linalg.eigvals)
def eigvals(a: Any) -> Any:
    """``np.linalg.eigvals`` on tensors: the eigenvalues of a square matrix (or of each in a stack), complex
    unless ``a`` is real and they all are. The gradient needs distinct eigenvalues.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[2.0, 1.0], [0.0, 3.0]], requires_grad=True)
    >>> np.linalg.eigvals(a)
    tensor([2., 3.], op=eigvals)
    >>> np.linalg.eigvals(a)[1].backward()
    >>> a.grad
    array([[0., 0.],
           [1., 1.]])
    """
    return eigvals_op(a)


# -- qr ------------------------------------------------------------------------------------------------------
def _qr(a: Any, mode: str = "reduced") -> Any:
    _check_matrix("qr", a)
    if mode == "r":
        return np.linalg.qr(a, mode="r")
    q, r = np.linalg.qr(a, mode=mode)
    return q, r


def _qr_square_or_tall_vjp(q: Any, r: Any, g_q: Any, g_r: Any) -> Any:
    # A = QR with m >= n: Q^T dQ is antisymmetric and dR R^-1 upper triangular, which splits
    # X = Q^T dA R^-1 between them. Transposed: Abar = (Qbar + Q N) R^-T, where N is the symmetric matrix
    # with the upper triangle of M = Rbar R^T - Q^T Qbar. Complex (LAPACK's R has a real diagonal): Q^H dQ
    # is anti-Hermitian, and N the Hermitian matrix with M's upper triangle and Re(M)'s diagonal.
    n = np.shape(r)[-1]
    upper = np.triu(np.ones((n, n), dtype=r.dtype))
    strictly_upper = upper - np.eye(n, dtype=r.dtype)
    m = g_r @ _mH(r) - _mH(q) @ g_q
    n_matrix = m * upper + _mH(m * strictly_upper)
    if _is_complex(n_matrix):
        n_matrix = n_matrix - 1j * _diag_embed(np.imag(_diagonal(m)), r.dtype)
    # B R^-H, as the solution of R X^H = B^H.
    return _mH(np.linalg.solve(r, _mH(g_q + q @ n_matrix)))


def _qr_vjp(g: Any, out: Any, a: Any, mode: str = "reduced") -> Any:
    if mode == "r":
        # Only R was returned: recompute Q (through qr, so create_graph works); it received no cotangent.
        q, r = np.linalg.qr(a)
        g_q, g_r = np.zeros(np.shape(q), dtype=q.dtype), g
    else:
        (q, r), (g_q, g_r) = out, g
    m, n = np.shape(a)[-2:]
    if m >= n:
        return _qr_square_or_tall_vjp(q, r, g_q, g_r)
    # A wide matrix [X | Y]: X = Q R1 is a square QR, and R2 = Q^H Y, so Y gets Q R2bar and Q gets Y R2bar^H.
    g_r_left, g_r_right = g_r[..., :, :m], g_r[..., :, m:]
    right = a[..., :, m:]
    g_left = _qr_square_or_tall_vjp(q, r[..., :, :m], g_q + right @ _mH(g_r_right), g_r_left)
    g_right = q @ g_r_right
    # Place the two blocks side by side with constant selection matrices (differentiable, unlike writes).
    dtype = r.dtype
    return g_left @ np.eye(m, n, dtype=dtype) + g_right @ np.eye(n - m, n, k=m, dtype=dtype)


qr_op = Op(_qr, _qr_vjp, name="qr", complex_rule="own")


@implements(np.linalg.qr)
def qr(a: Any, mode: str = "reduced") -> Any:
    """``np.linalg.qr`` on tensors, with ``mode`` 'reduced' (the default) or 'r'; 'complete' when it is the
    same as 'reduced' (m <= n).

    Q and R are numpy's (LAPACK's signs, which are locally constant); their gradient needs the first
    min(m, n) columns of ``a`` to be linearly independent.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[3.0, 1.0], [4.0, 2.0]], requires_grad=True)
    >>> q, r = np.linalg.qr(a)
    >>> np.abs(r[0, 0])
    tensor(5., op=absolute)
    """
    if mode not in ("reduced", "complete", "r"):
        why = "mode 'raw' returns LAPACK's Householder reflectors, which have no gradient here; use 'reduced'"
        raise _refuse("qr", "mode", mode, why if mode == "raw" else "use 'reduced', 'complete' or 'r'")
    if mode == "complete":
        shape = np.shape(a)
        if len(shape) >= 2 and shape[-2] > shape[-1]:
            raise _refuse(
                "qr",
                "mode",
                mode,
                f"for a tall matrix (shape {shape}) the columns of Q beyond the first {shape[-1]} are not "
                "determined by the input, so they have no gradient; use mode='reduced'",
            )
        mode = "reduced"
    result = qr_op(a, mode=mode)
    return result if mode == "r" else QRResult(*result)


# -- svd, svdvals ------------------------------------------------------------------------------------------
def _svd(a: Any) -> tuple[Any, Any, Any]:
    _check_matrix("svd", a)
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return u, s, vh


def _svd_vjp(g: tuple[Any, Any, Any], out: Any, a: Any) -> Any:
    # Abar = U [diag(Sbar) + (F ∘ (U^T Ubar - Ubar^T U)) S + S (F ∘ (V^T Vbar - Vbar^T V))] V^T
    #        + (I - U U^T) Ubar S^-1 V^T + U S^-1 Vbar^T (I - V V^T),   F_ij = 1 / (s_j^2 - s_i^2).
    # Complex: the same with conjugate transposes, plus i Im(diag(U^H Ubar - V^H Vbar)) / 2S on the diagonal
    # (the phases of u_i and v_i move together: only their difference is determined by A).
    g_u, g_s, g_vh = g
    u, s, vh = out
    dtype = s.dtype
    inner = _diag_embed(g_s, dtype)
    m, n = np.shape(a)[-2:]
    k = min(m, n)
    gradient = None
    uses_u, uses_vh = not _is_zero(g_u), not _is_zero(g_vh)
    if uses_u or uses_vh:
        inverse_gaps = _inverse_gaps(s * s, dtype)
        s_row, s_column = np.expand_dims(s, -2), np.expand_dims(s, -1)
        slopes: Any = 0  # the loss's derivatives along the common phases of u_i and v_i
        phase_terms: Any = 0  # Im(diag(U^H Ubar - V^H Vbar)), complex only
    if uses_u:
        u_h_g_u = _mH(u) @ g_u
        inner = inner + (inverse_gaps * (u_h_g_u - _mH(u_h_g_u))) * s_row
        if m > k:
            gradient = ((g_u - u @ u_h_g_u) / s_row) @ vh
        if _is_complex(u_h_g_u):
            slopes = slopes + np.imag(_diagonal(plain(u_h_g_u)))
            phase_terms = phase_terms + np.imag(_diagonal(u_h_g_u))
    if uses_vh:
        vh_g_vh_h = vh @ _mH(g_vh)  # V^H Vbar
        inner = inner + s_column * (inverse_gaps * (vh_g_vh_h - _mH(vh_g_vh_h)))
        if n > k:
            beyond = u @ ((g_vh - _mH(vh_g_vh_h) @ vh) / s_column)
            gradient = beyond if gradient is None else gradient + beyond
        if _is_complex(vh_g_vh_h):
            slopes = slopes + np.imag(_diagonal(plain(vh_g_vh_h)))
            phase_terms = phase_terms - np.imag(_diagonal(vh_g_vh_h))
    if (uses_u or uses_vh) and _is_complex(u):
        scale = np.abs(plain(g_u if uses_u else g_vh))
        _check_phase_invariance("svd", np.asarray(slopes), scale)
        inner = inner + _diag_embed(1j * phase_terms / (2 * s), u.dtype)
    core = u @ inner @ vh
    return core if gradient is None else core + gradient


svd_op = Op(_svd, _svd_vjp, name="svd", shape_only=(0,), complex_rule="own")


def _singular_values(a: Any) -> Any:
    _check_matrix("svd", a)
    return np.linalg.svd(a, compute_uv=False)


def _singular_values_vjp(g: Any, out: Any, a: Any) -> Any:
    # The singular vectors were not kept: recompute them (through svd, so create_graph works).
    u, _, vh = np.linalg.svd(a, full_matrices=False)
    return u @ (np.expand_dims(g, -1) * vh)


# U diag(Sbar) V^H does not depend on the singular vectors' phases: complex values take the same VJP.
singular_values_op = Op(_singular_values, _singular_values_vjp, name="svd", complex_rule="own")


@implements(np.linalg.svd)
def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False) -> Any:
    """``np.linalg.svd`` on tensors: ``(U, S, Vh)``, or ``S`` alone with ``compute_uv=False``.

    ``full_matrices=True`` (numpy's default) is accepted for square matrices, where it changes nothing;
    for others pass ``full_matrices=False``: the extra singular vectors are not determined by the input.
    The gradient is undefined for repeated singular values and, for ``U``/``Vh`` of a non-square matrix,
    for zero ones; only a loss that does not depend on the vectors' signs has a gradient.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[3.0, 0.0], [0.0, -2.0]], requires_grad=True)
    >>> np.linalg.svd(a, compute_uv=False).sum().backward()
    >>> a.grad
    array([[ 1.,  0.],
           [ 0., -1.]])
    """
    if hermitian:
        raise _refuse(
            "svd", "hermitian", hermitian, "numpy then reads one triangle only; the default gives the same S"
        )
    if not compute_uv:
        return singular_values_op(a)
    shape = np.shape(a)
    if full_matrices and len(shape) >= 2 and shape[-1] != shape[-2]:
        raise _refuse(
            "svd",
            "full_matrices",
            True,
            f"for a non-square matrix (shape {shape}) the singular vectors beyond the first "
            f"{min(shape[-2:])} are not determined by the input, so they have no gradient; pass "
            "full_matrices=False",
        )
    return SVDResult(*svd_op(a))


@implements(np.linalg.svdvals)
def svdvals(x: Any, /) -> Any:
    """``np.linalg.svdvals`` on tensors: the singular values, as ``svd(x, compute_uv=False)``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.linalg.svdvals(tape.tensor([[0.0, 2.0], [1.0, 0.0]]))
    tensor([2., 1.])
    """
    return singular_values_op(x)


# -- pinv, lstsq -------------------------------------------------------------------------------------------
def _pinv(a: Any, rcond: Any = None, rtol: Any = np._NoValue) -> Any:
    _check_matrix("pinv", a)
    return np.linalg.pinv(a, rcond=rcond, rtol=rtol)


def _pinv_cotangent(g: Any, pinv: Any, a: Any) -> Any:
    """The cotangent of ``a`` from the cotangent ``g`` of its pseudo-inverse ``pinv`` (rank held fixed)."""
    # d(A+) = -A+ dA A+ + A+ A+^T dA^T (I - A A+) + (I - A+ A) dA^T A+^T A+ (Golub and Pereyra); for
    # complex values the transposes are conjugate transposes (named _t below all the same).
    pinv_t = _mH(pinv)
    g_t = _mH(g)
    cotangent = -(pinv_t @ g @ pinv_t)
    cotangent = cotangent + (g_t - a @ (pinv @ g_t)) @ (pinv @ pinv_t)
    return cotangent + (pinv_t @ pinv) @ (g_t - (g_t @ pinv) @ a)


def _pinv_vjp(g: Any, out: Any, a: Any, rcond: Any = None, rtol: Any = np._NoValue) -> Any:
    return _pinv_cotangent(g, out, a)


pinv_op = Op(_pinv, _pinv_vjp, name="pinv", complex_rule="own")


@implements(np.linalg.pinv)
def pinv(a: Any, rcond: Any = None, hermitian: bool = False, *, rtol: Any = np._NoValue) -> Any:
    """``np.linalg.pinv`` on tensors; the gradient holds the rank fixed (exact for full-rank inputs).

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.linalg.pinv(tape.tensor([[2.0], [0.0]]))
    tensor([[0.5, 0. ]])
    """
    if hermitian:
        raise _refuse("pinv", "hermitian", hermitian, "the default gives the same values")
    if isinstance(rcond, Tensor) or isinstance(rtol, Tensor):
        raise TypeError("numpy.linalg.pinv: rcond and rtol must be numbers or arrays, not tensors")
    return pinv_op(a, rcond=rcond, rtol=rtol)


def _lstsq(a: Any, b: Any, rcond: Any = None) -> tuple[Any, Any, Any, Any]:
    if np.ndim(a) != 2:
        raise np.linalg.LinAlgError(f"lstsq: a must be a matrix (2-D), got an array of shape {np.shape(a)}")
    x, residuals, rank, singular_values = np.linalg.lstsq(a, b, rcond=rcond)
    return x, residuals, rank, singular_values


def _lstsq_backward(g: tuple[Any, ...], out: Any, a: Any, b: Any, rcond: Any = None) -> tuple[Any, Any]:
    g_x, g_residuals, _, g_s = g
    x, residuals = out[0], out[1]
    vector = np.ndim(b) == 1
    if vector:  # columns of one right-hand side, so that one code path serves both
        b, x, g_x = np.expand_dims(b, -1), np.expand_dims(x, -1), np.expand_dims(g_x, -1)
    pinv = np.linalg.pinv(a)
    # x = A+ b: A+ receives g_x b^T and b receives A+^T g_x.
    g_a = _pinv_cotangent(g_x @ _mH(b), pinv, a)
    g_b = _mH(pinv) @ g_x
    if np.size(residuals) and not _is_zero(g_residuals):
        # residuals_k = |A x_k - b_k|^2 at the optimum, where A^H (A x - b) = 0:
        # d = 2 Re e_k^H (dA x_k - db_k).
        weighted = 2 * (a @ x - b) * g_residuals
        g_a = g_a + weighted @ _mH(x)
        g_b = g_b - weighted
    if not _is_zero(g_s):
        u, _, vh = np.linalg.svd(a, full_matrices=False)
        g_a = g_a + u @ (np.expand_dims(g_s, -1) * vh)
    return g_a, g_b[..., 0] if vector else g_b


lstsq_op = Op(_lstsq, name="lstsq", backward=_lstsq_backward, complex_rule="own")


@implements(np.linalg.lstsq)
def lstsq(a: Any, b: Any, rcond: Any = None) -> tuple[Any, Any, Any, Any]:
    """``np.linalg.lstsq`` on tensors: ``(x, residuals, rank, s)``; ``x``, ``residuals`` and ``s`` have
    gradients (full-rank ``a``), ``rank`` is numpy's integer.

    Examples
    --------
    >>> import numpy as np, tape
    >>> a = tape.tensor([[1.0], [1.0]], requires_grad=True)
    >>> x, residuals, rank, s = np.linalg.lstsq(a, np.array([1.0, 3.0]))
    >>> x
    tensor([2.], op=lstsq)
    """
    if isinstance(rcond, Tensor):
        raise TypeError("numpy.linalg.lstsq: rcond must be a number, not a tensor")
    x, residuals, rank, singular_values = lstsq_op(a, b, rcond=rcond)
    return x, residuals, rank._data[()], singular_values


# -- norm, vector_norm, matrix_norm ------------------------------------------------------------------------
_VECTOR_ORDS_WITHOUT_POWER = (None, 2, 1, 0, np.inf, -np.inf)
_MATRIX_ORDS = (None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf)


def _share_of_extremes(values: Any, axis: int | tuple[int, ...], largest: bool) -> Any:
    """A constant mask of where ``values`` reach their extreme along ``axis``, ties sharing it evenly."""
    values = plain(values)
    reduce = np.max if largest else np.min
    extreme = reduce(values, axis=axis, keepdims=True)
    hits = (values == extreme).astype(values.dtype)
    return hits / np.sum(hits, axis=axis, keepdims=True)


def _two_norm_direction(x: Any, norm: Any) -> Any:
    """x / |x|, taking 0 (a subgradient) where the norm is 0."""
    return x / np.where(plain(norm) == 0, 1, norm)


def _vector_norm_gradient(x: Any, norm: Any, ord: Any, axes: tuple[int, ...]) -> Any:
    """d|x|_ord / dx along ``axes``, with ``norm`` broadcasting against ``x``."""
    if ord is None or ord == 2:
        return _two_norm_direction(x, norm)
    if ord == 1:
        return np.sign(x)
    if ord == 0:  # a count of nonzeros: constant almost everywhere
        return np.zeros(np.shape(x), dtype=x.dtype)
    if ord in (np.inf, -np.inf):
        return np.sign(x) * _share_of_extremes(np.abs(x), axes, largest=ord > 0)
    # |x|_p = (sum |x|^p)^(1/p): the derivative is sign(x) (|x| / |x|_p)^(p - 1).
    return np.sign(x) * (np.abs(x) / np.where(plain(norm) == 0, 1, norm)) ** (ord - 1)


def _matrix_norm_gradient(x: Any, norm: Any, ord: Any, row: int, column: int) -> Any:
    """d|x|_ord / dx for the matrices spanned by axes ``row`` and ``column`` of ``x``."""
    if ord in (None, "fro"):
        return _two_norm_direction(x, norm)
    if ord in ("nuc", 2, -2):
        matrices = np.moveaxis(x, (row, column), (-2, -1))
        u, _, vh = np.linalg.svd(matrices, full_matrices=False)
        if ord == "nuc":
            gradient = u @ vh
        elif ord == 2:
            gradient = u[..., :, :1] @ vh[..., :1, :]
        else:
            gradient = u[..., :, -1:] @ vh[..., -1:, :]
        return np.moveaxis(gradient, (-2, -1), (row, column))
    # 1 and -1 pick a column by its sum over rows, inf and -inf a row by its sum over columns.
    summed, picked = (row, column) if ord in (1, -1) else (column, row)
    sums = np.sum(np.abs(plain(x)), axis=summed, keepdims=True)
    return np.sign(x) * _share_of_extremes(sums, picked, largest=ord > 0)


def _norm_layout(ord: Any, axis: Any, ndim: int) -> tuple[str, tuple[int, ...]]:
    """('vector' or 'matrix', the non-negative axes the norm reduces), as np.linalg.norm reads them."""
    if axis is None:
        if ord is None or ndim == 1:
            return "vector", tuple(range(ndim))
        return "matrix", (0, 1)
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    axes = tuple(int(a) % ndim for a in axes) if ndim else axes
    return ("vector" if len(axes) == 1 else "matrix"), axes


def _norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    return np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)


def _norm_vjp(g: Any, out: Any, x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    if np.size(x) == 0:  # numpy gives 0 for empty matrices; there is nothing to differentiate
        return np.zeros(np.shape(x), dtype=x.dtype)
    kind, axes = _norm_layout(ord, axis, np.ndim(x))
    if not keepdims:
        # Put the reduced axes back (length one), so g and the norm broadcast against x.
        g, out = np.expand_dims(g, axes), np.expand_dims(out, axes)
    # inf / inf at an infinite entry, 0 / 0 in the shares of a nan maximum (ord=inf): nan, quietly.
    with np.errstate(invalid="ignore"):
        if kind == "vector":
            return g * _vector_norm_gradient(x, out, ord, axes)
        return g * _matrix_norm_gradient(x, out, ord, *axes)


# The gradient of |z| is z / |z| in PyTorch's convention: the VJPs above, with numpy 2's complex sign
# z / |z| where they take the sign, are those of complex values too.
norm_op = Op(_norm, _norm_vjp, name="norm", complex_rule="own")


def _check_norm_arguments(name: str, ord: Any, axis: Any) -> None:
    """Refuse, at forward time, what has no gradient here; numpy refuses the rest itself."""
    for value, what in ((ord, "ord"), (axis, "axis")):
        if isinstance(value, Tensor):
            raise TypeError(f"numpy.linalg.{name}: {what} must be a number, not a tensor")


@implements(np.linalg.norm)
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """``np.linalg.norm`` on tensors: vector norms (``ord`` None/2, 1, inf, -inf, 0, any other p) and
    matrix norms (None/'fro', 'nuc', 1, -1, 2, -2, inf, -inf) over ``axis``, with ``keepdims``.

    At zero the 2-norm and the Frobenius norm take the subgradient 0; tied maxima share the cotangent;
    ``ord=0`` (a count) has gradient 0; for ``p < 1`` the entries must be nonzero.

    Examples
    --------
    >>> import numpy as np, tape
    >>> x = tape.tensor([3.0, -4.0], requires_grad=True)
    >>> np.linalg.norm(x).backward()
    >>> x.grad
    array([ 0.6, -0.8])
    """
    _check_norm_arguments("norm", ord, axis)
    return norm_op(x, ord=ord, axis=axis, keepdims=bool(keepdims))


def _vector_norm(x: Any, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    return np.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord)


def _vector_norm_vjp(g: Any, out: Any, x: Any, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    ndim = np.ndim(x)
    if axis is None:
        axes = tuple(range(ndim))
    else:
        axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
        axes = tuple(int(a) % ndim for a in axes)
    if not keepdims:
        g, out = np.expand_dims(g, axes), np.expand_dims(out, axes)
    with np.errstate(invalid="ignore"):  # as in _norm_vjp
        return g * _vector_norm_gradient(x, out, ord, axes)


vector_norm_op = Op(_vector_norm, _vector_norm_vjp, name="vector_norm", complex_rule="own")


@implements(np.linalg.vector_norm)
def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:
    """``np.linalg.vector_norm`` on tensors: the ``ord``-norm over ``axis`` (all axes by default).

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.linalg.vector_norm(tape.tensor([[3.0], [-4.0]]))
    tensor(5.)
    """
    _check_norm_arguments("vector_norm", ord, axis)
    return vector_norm_op(x, axis=axis, keepdims=bool(keepdims), ord=ord)


@implements(np.linalg.matrix_norm)
def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    """``np.linalg.matrix_norm`` on tensors: ``norm(x, ord, axis=(-2, -1), keepdims=keepdims)``.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.linalg.matrix_norm(tape.tensor([[3.0, 0.0], [0.0, 4.0]]), ord="nuc")
    tensor(7.)
    """
    _check_matrix("matrix_norm", x)
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


# -- cond, matrix_rank -------------------------------------------------------------------------------------
@implements(np.linalg.cond)
def cond(x: Any, p: Any = None) -> Any:
    """``np.linalg.cond`` on tensors, built from ``svd``, ``norm`` and ``inv`` so it has a gradient.

    For ``p`` other than None, 2 and -2 the inverse is needed: a singular matrix raises (numpy returns inf).

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.linalg.cond(tape.tensor([[4.0, 0.0], [0.0, 2.0]]))
    tensor(2.)
    """
    _check_matrix("cond", x)
    if 0 in np.shape(x)[-2:]:
        raise np.linalg.LinAlgError("cond: not defined on empty matrices")
    if p is None or p in (2, -2):
        singular_values = np.linalg.svd(x, compute_uv=False)
        largest, smallest = singular_values[..., 0], singular_values[..., -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return smallest / largest if p == -2 else largest / smallest
    _check_square("cond", x)
    # numpy inverts in double precision and casts the product back; the same here gives numpy's values.
    inverse = inv(x.astype(np.complex128 if _is_complex(x) else np.float64))
    return (norm(x, p, axis=(-2, -1)) * norm(inverse, p, axis=(-2, -1))).astype(np.finfo(x.dtype).dtype)


@implements(np.linalg.matrix_rank)
def matrix_rank(a: Any, tol: Any = None, hermitian: bool = False, *, rtol: Any = None) -> Any:
    """``np.linalg.matrix_rank`` on tensors: an integer (a tensor without gradient), computed on the data.

    Examples
    --------
    >>> import numpy as np, tape
    >>> np.linalg.matrix_rank(tape.tensor([[1.0, 2.0], [2.0, 4.0]]))
    tensor(1)
    """

    def data(value: Any) -> Any:
        return value._data if isinstance(value, Tensor) else value

    return Tensor(np.linalg.matrix_rank(data(a), tol=data(tol), hermitian=hermitian, rtol=data(rtol)))
