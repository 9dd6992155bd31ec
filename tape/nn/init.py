"""Parameter initializers, as torch.nn.init's: each fills a tensor in place (unrecorded) and returns it.

Every random initializer takes an optional ``rng`` (a ``numpy.random.Generator``) for reproducible
weights; without one a fresh default generator is used.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..grad_mode import no_grad
from ..tensor import Tensor

__all__ = [
    "calculate_gain",
    "kaiming_normal_",
    "kaiming_uniform_",
    "layer_default_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def _fill(tensor: Tensor, values: Any) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: expected a tensor, got {type(tensor).__name__}")
    with no_grad():
        tensor[...] = np.asarray(values).astype(tensor.dtype, copy=False)  # in place, bumps the version
    return tensor


def _generator(rng: np.random.Generator | None) -> np.random.Generator:
    return np.random.default_rng() if rng is None else rng


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain torch recommends for ``nonlinearity`` (scales the initializers' spread).

    Examples
    --------
    >>> calculate_gain("relu")
    1.4142135623730951
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "identity")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape`` ``(out, in, *kernel)``, as torch computes them."""
    if len(shape) < 2:
        raise ValueError(f"init: fan in and fan out need at least 2 axes, got shape {shape}")
    receptive_field = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive_field, shape[0] * receptive_field


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, rng: np.random.Generator | None = None
) -> Tensor:
    """Fill with values drawn uniformly from ``[a, b)``.

    Examples
    --------
    >>> import tape
    >>> t = uniform_(tape.zeros(3), -1, 1, rng=np.random.default_rng(0))
    >>> bool(np.all(np.abs(t.data) <= 1))
    True
    """
    return _fill(tensor, _generator(rng).uniform(a, b, size=tensor.shape))


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, rng: np.random.Generator | None = None
) -> Tensor:
    """Fill with values drawn from a normal distribution."""
    return _fill(tensor, _generator(rng).normal(mean, std, size=tensor.shape))


# Acklam's rational approximation of the standard normal quantile (relative error below 1.2e-9): the
# central region's numerator and denominator, then the tails', highest power first.
_QUANTILE_CENTRAL = (
    (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
     -3.066479806614716e01, 2.506628277459239e00),
    (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
     -1.328068155288572e01, 1.0),
)  # fmt: skip
_QUANTILE_TAIL = (
    (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
     4.374664141464968e00, 2.938163982698783e00),
    (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00, 1.0),
)  # fmt: skip
_QUANTILE_SPLIT = 0.02425


def _normal_quantile(probability: np.ndarray) -> np.ndarray:
    """The standard normal quantile of each probability in (0, 1), elementwise."""
    p = np.asarray(probability, dtype=np.float64)
    out = np.empty_like(p)
    central = (p >= _QUANTILE_SPLIT) & (p <= 1 - _QUANTILE_SPLIT)
    q = p[central] - 0.5
    r = q * q
    out[central] = q * np.polyval(_QUANTILE_CENTRAL[0], r) / np.polyval(_QUANTILE_CENTRAL[1], r)
    for side, tail in ((1.0, p < _QUANTILE_SPLIT), (-1.0, p > 1 - _QUANTILE_SPLIT)):
        # The upper tail mirrors the lower one: quantile(p) = -quantile(1 - p).
        q = np.sqrt(-2 * np.log(p[tail] if side > 0 else 1 - p[tail]))
        out[tail] = side * np.polyval(_QUANTILE_TAIL[0], q) / np.polyval(_QUANTILE_TAIL[1], q)
    return out


def _normal_cdf(x: float) -> float:
    """Phi(x), accurate far into the lower tail (through erfc, without cancellation)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    rng: np.random.Generator | None = None,
) -> Tensor:
    """Fill with values drawn from ``N(mean, std^2)`` truncated to ``[a, b]`` (the bounds are absolute,
    not in units of ``std``), by inverting the normal distribution function, as torch does.

    A window far in the upper tail is sampled as the mirror of one in the lower tail, so the draw stays
    accurate even when ``mean`` lies many ``std`` outside ``[a, b]``.

    Examples
    --------
    >>> import tape
    >>> t = trunc_normal_(tape.zeros(1000), std=0.02, a=-0.04, b=0.04, rng=np.random.default_rng(0))
    >>> bool(np.all(np.abs(t.data) <= 0.04)), round(float(np.std(t.data)), 3)
    (True, 0.017)
    """
    if not std > 0:
        raise ValueError(f"trunc_normal_: std should be positive, got {std}")
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    low, high = (a - mean) / std, (b - mean) / std
    mirrored = low > 0  # the window lies above the mean: draw its mirror image below instead
    if mirrored:
        low, high = -high, -low
    cdf_low, cdf_high = _normal_cdf(low), _normal_cdf(high)
    uniform = _generator(rng).uniform(size=tensor.shape)
    standard = _normal_quantile(cdf_low + uniform * (cdf_high - cdf_low))
    standard = np.clip(-standard if mirrored else standard, (a - mean) / std, (b - mean) / std)
    return _fill(tensor, np.clip(mean + std * standard, a, b))


def orthogonal_(tensor: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix times ``gain``, as torch's: the tensor is seen as a matrix of
    ``shape[0]`` rows (its other axes flattened, as for a convolution's weight), whose rows (when there
    are fewer rows than columns) or columns are orthonormal.

    The matrix is the Q of the QR decomposition of a standard normal draw, with the signs that make the
    diagonal of R positive, so that it is uniformly (Haar) distributed.

    Examples
    --------
    >>> import tape
    >>> w = orthogonal_(tape.zeros((3, 5)), gain=2.0, rng=np.random.default_rng(0))
    >>> np.allclose(w.data @ w.data.T, 4 * np.eye(3))
    True
    """
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: needs a tensor of at least 2 axes, got shape {tensor.shape}")
    if tensor.size == 0:
        return tensor
    rows = tensor.shape[0]
    columns = tensor.size // rows
    draw = _generator(rng).standard_normal((rows, columns))
    if rows < columns:
        draw = draw.T
    q, r = np.linalg.qr(draw)
    q *= np.sign(np.diagonal(r))
    if rows < columns:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape))


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros."""
    return _fill(tensor, np.zeros(tensor.shape))


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones."""
    return _fill(tensor, np.ones(tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """Glorot uniform: ``U(-b, b)`` with ``b = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, rng)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, rng: np.random.Generator | None = None) -> Tensor:
    """Glorot normal: ``N(0, std^2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(tensor.shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(tensor.shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    rng: np.random.Generator | None = None,
) -> Tensor:
    """He uniform: ``U(-b, b)`` with ``b = gain * sqrt(3 / fan)`` (``a`` is the leaky-ReLU slope).

    Examples
    --------
    >>> import tape
    >>> w = kaiming_uniform_(tape.zeros((3, 4)), a=math.sqrt(5), rng=np.random.default_rng(0))
    >>> bool(np.all(np.abs(w.data) <= 0.5))  # with a=sqrt(5), b = 1/sqrt(fan_in)
    True
    """
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, rng)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    rng: np.random.Generator | None = None,
) -> Tensor:
    """He normal: ``N(0, std^2)`` with ``std = gain / sqrt(fan)``."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), rng)


def layer_default_(
    weight: Tensor, bias: Tensor | None = None, rng: np.random.Generator | None = None
) -> None:
    """torch's default initialisation of a linear or convolution layer: ``weight`` by
    ``kaiming_uniform_(a=sqrt(5))``, ``bias`` uniform in ``±1/sqrt(fan_in)`` of the weight (one ``rng``).

    Examples
    --------
    >>> import tape
    >>> w, b = tape.tensor(np.zeros((3, 4)), requires_grad=True), tape.tensor(np.zeros(3), requires_grad=True)
    >>> layer_default_(w, b, rng=np.random.default_rng(0))
    >>> bool(np.all(np.abs(b.numpy()) <= 0.5))
    True
    """
    rng = _generator(rng)
    kaiming_uniform_(weight, a=math.sqrt(5), rng=rng)
    if bias is not None:
        fan_in, _ = fans(weight.shape)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound, rng=rng)
