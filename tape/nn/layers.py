"""Layers: modules that hold parameters (``Linear``, ``Embedding``, norms, the lecture's ``Add``, ``Mul``,
``CMul``) or wrap a function (activations, ``Dropout``, ``Flatten``), and the table layers of the
lecture's list (``Concat``, ``JoinTable``, ``DotProduct``, ``CosineDistance``, ``PairwiseDistance``).

Each layer's maths lives in ``tape.ops.nn`` (through ``tape.nn.functional``) or in plain numpy on tensors;
this file only holds state, checks shapes and names itself in errors. Parameters take ``dtype``, or the
default floating dtype (``tape.get_default_dtype()``); random initialization takes an optional ``rng`` (a
``numpy.random.Generator``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tape.ops.nn import linear_op

from ..dtypes import floating
from ..grad_mode import no_grad
from ..op import add_note
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = [
    "ELU",
    "GELU",
    "SELU",
    "Abs",
    "Add",
    "AddConstant",
    "CMul",
    "Concat",
    "CosineDistance",
    "DotProduct",
    "Dropout",
    "Embedding",
    "Flatten",
    "HardTanh",
    "Hardtanh",
    "Identity",
    "JoinTable",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "Mul",
    "PairwiseDistance",
    "ReLU",
    "Sigmoid",
    "Softplus",
    "Tanh",
]


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(x._data if isinstance(x, Tensor) else x)


# -- parameterized layers ------------------------------------------------------------------------------------
class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape ``(out_features, in_features)``.

    Initialized as torch does: weight by ``kaiming_uniform_(a=sqrt(5))`` (so ``U(-1/sqrt(in), 1/sqrt(in))``),
    bias ``U(-1/sqrt(in), 1/sqrt(in))``.

    Examples
    --------
    >>> layer = Linear(4, 3, rng=np.random.default_rng(0))
    >>> layer(np.ones((2, 4))).shape
    (2, 3)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=floating(dtype)))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=floating(dtype)))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Draw new weights (and bias) as at construction."""
        init.layer_default_(self.weight, self.bias, rng)

    def forward(self, x: Any) -> Any:
        shape = _shape(x)
        if len(shape) == 0 or shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input with last axis {self.in_features}, got shape {shape}")
        return linear_op(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    def __repr__(self) -> str:
        bias = "" if self.bias is not None else ", bias=False"
        return f"Linear({self.extra_repr()}{bias})"


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``, looked up by integer indices.

    Row ``padding_idx`` (negative counts from the end, as in torch), when given, starts as zeros and gets
    no gradient. With ``max_norm``, each lookup first scales the rows it reads whose ``norm_type``-norm
    exceeds ``max_norm`` down to that norm, in place in ``weight`` and without gradient, as torch does
    (``tape.nn.functional.embedding`` says more).

    Examples
    --------
    >>> table = Embedding(10, 3, padding_idx=0, rng=np.random.default_rng(0))
    >>> table(np.array([[1, 2], [3, 0]])).shape
    (2, 2, 3)
    >>> table.weight.data[0]
    array([0., 0., 0.])
    >>> bounded = Embedding(10, 3, max_norm=1.0, rng=np.random.default_rng(0))
    >>> float(np.linalg.norm(bounded(np.array([4])).data)) <= 1.0
    True
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        *,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        if max_norm is not None and not max_norm >= 0:
            raise ValueError(f"Embedding: max_norm must be a non-negative number, got {max_norm!r}")
        self.max_norm = None if max_norm is None else float(max_norm)
        self.norm_type = float(norm_type)
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(
                f"Embedding: padding_idx must lie in [-{num_embeddings}, {num_embeddings}), got {padding_idx}"
            )
        self.padding_idx = None if padding_idx is None else int(padding_idx) % num_embeddings
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=floating(dtype)))
        init.normal_(self.weight, rng=rng)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0

    def forward(self, indices: Any) -> Any:
        try:
            return F.embedding(indices, self.weight, self.padding_idx, self.max_norm, self.norm_type)
        except (IndexError, TypeError) as error:
            add_note(error, f"in {self!r}")
            raise

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2.0:
            text += f", norm_type={self.norm_type}"
        return text


class LayerNorm(Module):
    """Normalize over the trailing ``normalized_shape`` axes, then scale and shift (learnable, per element).

    Examples
    --------
    >>> LayerNorm(4)(np.arange(8.0).reshape(2, 4)).shape
    (2, 4)
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape = shape
        self.eps = eps
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape, dtype=floating(dtype)))
            self.bias = Parameter(np.zeros(shape, dtype=floating(dtype)))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Any:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.weight is not None}"


class Add(Module):
    """Add a learnable bias: one per element of ``size`` (or a single scalar with ``scalar=True``).

    Examples
    --------
    >>> Add(3)(np.zeros((2, 3))).shape
    (2, 3)
    """

    def __init__(self, size: int | tuple[int, ...] = 1, scalar: bool = False, dtype: Any = None) -> None:
        super().__init__()
        shape = () if scalar else ((size,) if isinstance(size, int) else tuple(size))
        self.bias = Parameter(np.zeros(shape, dtype=floating(dtype)))

    def forward(self, x: Any) -> Any:
        return x + self.bias

    def extra_repr(self) -> str:
        return f"{self.bias.shape}"


class Mul(Module):
    """Multiply by one learnable scalar (initialized to 1).

    Examples
    --------
    >>> Mul()(np.ones(2)).shape
    (2,)
    """

    def __init__(self, dtype: Any = None) -> None:
        super().__init__()
        self.weight = Parameter(np.ones((), dtype=floating(dtype)))

    def forward(self, x: Any) -> Any:
        return x * self.weight


class CMul(Module):
    """Multiply elementwise by a learnable tensor of ``size`` (broadcast along leading axes;
    initialized to 1).

    Examples
    --------
    >>> CMul(3)(np.ones((2, 3))).shape
    (2, 3)
    """

    def __init__(self, size: int | tuple[int, ...], dtype: Any = None) -> None:
        super().__init__()
        shape = (size,) if isinstance(size, int) else tuple(size)
        self.weight = Parameter(np.ones(shape, dtype=floating(dtype)))

    def forward(self, x: Any) -> Any:
        return x * self.weight

    def extra_repr(self) -> str:
        return f"{self.weight.shape}"


# -- function layers -----------------------------------------------------------------------------------------
class Identity(Module):
    """Return the input unchanged."""

    def forward(self, x: Any) -> Any:
        return x


class Abs(Module):
    """``|x|`` elementwise."""

    def forward(self, x: Any) -> Any:
        return np.abs(x)


class AddConstant(Module):
    """Add a fixed (not learned) constant."""

    def __init__(self, constant: float) -> None:
        super().__init__()
        self.constant = constant

    def forward(self, x: Any) -> Any:
        return x + self.constant

    def extra_repr(self) -> str:
        return f"{self.constant}"


class ReLU(Module):
    """``max(x, 0)``."""

    def forward(self, x: Any) -> Any:
        return F.relu(x)


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope * x`` elsewhere."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Any) -> Any:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Any) -> Any:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class SELU(Module):
    """The self-normalizing ``scale * elu(x, alpha)`` with its fixed constants."""

    def forward(self, x: Any) -> Any:
        return F.selu(x)


class GELU(Module):
    """Gaussian error linear unit: exact, or ``approximate='tanh'`` (see ``ops.nn.gelu``)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        F.gelu(np.zeros(0), approximate)  # fail now, not at the first call, on an unsupported mode
        self.approximate = approximate

    def forward(self, x: Any) -> Any:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """``log(1 + exp(beta x)) / beta``, linear above ``threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float | None = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x: Any) -> Any:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``."""

    def forward(self, x: Any) -> Any:
        return F.sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, x: Any) -> Any:
        return F.tanh(x)


class Softmax(Module):
    """Softmax along ``axis`` (numerically stable: ``tape.softmax``)."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Any) -> Any:
        return F.softmax(x, axis=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """Log-softmax along ``axis`` (numerically stable: ``tape.log_softmax``)."""

    def forward(self, x: Any) -> Any:
        return F.log_softmax(x, axis=self.axis)


class Hardtanh(Module):
    """``x`` clipped to ``[min_val, max_val]``."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
        self.min_val = min_val
        self.max_val = max_val

    def forward(self, x: Any) -> Any:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Flatten(Module):
    """Merge axes ``start_dim`` to ``end_dim`` into one (by default all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x: Any) -> Any:
        shape = _shape(x)
        ndim = len(shape)
        start = self.start_dim % ndim if ndim else 0
        end = self.end_dim % ndim if ndim else 0
        if start > end:
            raise ValueError(f"{self!r}: start_dim comes after end_dim for an input of shape {shape}")
        merged = int(np.prod(shape[start : end + 1]))
        return np.reshape(x, (*shape[:start], merged, *shape[end + 1 :]))

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """In training, zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Examples
    --------
    >>> layer = Dropout(0.5, rng=np.random.default_rng(0)).eval()
    >>> layer(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        self.rng = np.random.default_rng() if rng is None else rng

    def forward(self, x: Any) -> Any:
        return F.dropout(x, self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# -- table layers (several inputs or outputs) ----------------------------------------------------------------
class Concat(Module):
    """Apply each child to the same input and concatenate their outputs along ``axis``.

    Examples
    --------
    >>> both = Concat(Identity(), Abs(), axis=-1)
    >>> both(np.array([[-1.0, 2.0]]))
    tensor([[-1.,  2.,  1.,  2.]])
    """

    def __init__(self, *modules: Module, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis
        for index, module in enumerate(modules):
            self.add_module(str(index), module)

    def forward(self, x: Any) -> Any:
        outputs = [module(x) for module in self._modules.values()]
        if not any(isinstance(output, Tensor) for output in outputs):
            outputs[0] = Tensor(outputs[0])  # so the result is a tensor even for array-only children
        return JoinTable(self.axis)(outputs)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class JoinTable(Module):
    """Concatenate a list of tensors along ``axis`` (``np.concatenate``, with errors naming the layer)."""

    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, inputs: list[Any]) -> Any:
        try:
            return np.concatenate(list(inputs), axis=self.axis)
        except ValueError as error:
            shapes = [_shape(item) for item in inputs]
            raise ValueError(
                f"{self!r}: cannot join inputs of shapes {shapes} along axis {self.axis}"
            ) from error

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


def _pair(layer: Module, inputs: Any) -> tuple[Any, Any]:
    if isinstance(inputs, list | tuple) and len(inputs) == 2:
        first, second = inputs
    else:
        raise TypeError(f"{layer!r}: expected a pair (a, b) of inputs")
    if _shape(first) != _shape(second):
        raise ValueError(f"{layer!r}: inputs of shapes {_shape(first)} and {_shape(second)} must match")
    return first, second


class DotProduct(Module):
    """The dot product of a pair of inputs along the last axis: ``(a, b) -> sum(a * b, -1)``."""

    def forward(self, *inputs: Any) -> Any:
        first, second = _pair(self, inputs if len(inputs) == 2 else inputs[0])
        return np.sum(first * second, axis=-1)


class CosineDistance(Module):
    """The cosine similarity of a pair of inputs along the last axis (torch7's ``CosineDistance``)."""

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, *inputs: Any) -> Any:
        first, second = _pair(self, inputs if len(inputs) == 2 else inputs[0])
        dot = np.sum(first * second, axis=-1)
        norms = np.sqrt(
            (np.sum(first * first, axis=-1) + self.eps) * (np.sum(second * second, axis=-1) + self.eps)
        )
        return dot / norms


class PairwiseDistance(Module):
    """The ``p``-norm of ``a - b + eps`` along the last axis, as torch's ``PairwiseDistance``."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = p
        self.eps = eps

    def forward(self, *inputs: Any) -> Any:
        first, second = _pair(self, inputs if len(inputs) == 2 else inputs[0])
        difference = np.abs(first - second + self.eps)
        return np.sum(difference**self.p, axis=-1) ** (1.0 / self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# The names of the lecture's component list (torch7's nn).
HardTanh = Hardtanh
