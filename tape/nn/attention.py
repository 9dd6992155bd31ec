"""Attention layers: ``MultiheadAttention``, ``TransformerEncoderLayer`` and ``TransformerEncoder``, with
torch.nn's arguments, parameter names and initialization, so a torch ``state_dict`` loads unchanged.

The attention itself is one op, ``tape.ops.attention.scaled_dot_product_attention``; this file only holds
parameters, splits heads, turns torch's masks (True = masked out, or additive floats) into one additive
mask and names itself in errors. A query whose keys are all masked out gets attention output 0 and weights
0 (torch's ``MultiheadAttention`` gives nan there when it returns weights, 0 when it does not).
Random initialization and dropout take an optional ``rng`` (a ``numpy.random.Generator``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from tape.ops.attention import scaled_dot_product_attention
from tape.ops.nn import linear_op

from ..dtypes import floating
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import Dropout, LayerNorm, Linear
from .module import Module, ModuleList, Parameter

__all__ = ["MultiheadAttention", "TransformerEncoder", "TransformerEncoderLayer"]


def _data(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def _shape(x: Any) -> tuple[int, ...]:
    return np.shape(_data(x))


def _dtype(x: Any) -> np.dtype:
    return np.asarray(_data(x)).dtype


class MultiheadAttention(Module):
    """Attention over ``num_heads`` heads of ``embed_dim // num_heads`` features each, as torch's.

    Parameters ``in_proj_weight`` ``(3 E, E)`` and ``in_proj_bias`` ``(3 E,)`` project query, key and value
    (``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` instead when ``kdim`` or ``vdim`` differ from
    ``embed_dim``); ``out_proj`` is a ``Linear(E, E)``. Inputs are ``(L, N, E)``, or ``(N, L, E)`` with
    ``batch_first``, or unbatched ``(L, E)``. Dropout (``dropout``) applies to the attention weights in
    training.

    Examples
    --------
    >>> attention = MultiheadAttention(8, 2, batch_first=True, rng=np.random.default_rng(0))
    >>> x = np.ones((3, 5, 8))
    >>> output, weights = attention(x, x, x)
    >>> output.shape, weights.shape
    ((3, 5, 8), (3, 5, 5))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        batch_first: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"MultiheadAttention: embed_dim and num_heads must be positive, got {embed_dim} and "
                f"{num_heads}"
            )
        if embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1], got {dropout}")
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.rng = np.random.default_rng() if rng is None else rng
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        dtype = floating(dtype)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(np.empty((embed_dim, embed_dim), dtype=dtype))
            self.k_proj_weight = Parameter(np.empty((embed_dim, self.kdim), dtype=dtype))
            self.v_proj_weight = Parameter(np.empty((embed_dim, self.vdim), dtype=dtype))
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype, rng=self.rng)
        self.reset_parameters(self.rng)

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Initialize as torch does: Xavier-uniform projections, zero biases (``out_proj.weight`` is left
        as ``Linear`` drew it)."""
        rng = self.rng if rng is None else rng
        if self.in_proj_weight is not None:
            init.xavier_uniform_(self.in_proj_weight, rng=rng)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(weight, rng=rng)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
            f"batch_first={self.batch_first}"
        )

    @property
    def _label(self) -> str:
        """The layer as error messages name it, on one line."""
        return f"MultiheadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads})"

    # -- forward -----------------------------------------------------------------------------------------
    def _check(self, query: Any, key: Any, value: Any) -> bool:
        """Whether the inputs are batched; a ValueError naming the layer if they do not fit it."""
        shapes = {"query": _shape(query), "key": _shape(key), "value": _shape(value)}
        ndims = {len(shape) for shape in shapes.values()}
        if len(ndims) != 1 or ndims.pop() not in (2, 3):
            raise ValueError(
                f"{self._label}: query, key and value must all be 3-D (batched) or all 2-D (unbatched), "
                f"got shapes {shapes['query']}, {shapes['key']} and {shapes['value']}"
            )
        for name, size in (("query", self.embed_dim), ("key", self.kdim), ("value", self.vdim)):
            if shapes[name][-1] != size:
                raise ValueError(
                    f"{self._label}: expected {name} with last axis {size}, got shape {shapes[name]}"
                )
        batched = len(shapes["query"]) == 3
        sequence_axis = 1 if batched and self.batch_first else 0
        if shapes["key"][:-1] != shapes["value"][:-1]:
            raise ValueError(
                f"{self._label}: key of shape {shapes['key']} and value of shape {shapes['value']} must "
                "agree on every axis but the last"
            )
        if batched:
            batch_axis = 1 - sequence_axis
            if shapes["query"][batch_axis] != shapes["key"][batch_axis]:
                raise ValueError(
                    f"{self._label}: query of shape {shapes['query']} and key of shape {shapes['key']} have "
                    f"different batch sizes (axis {batch_axis})"
                )
        return batched

    def _project(self, query: Any, key: Any, value: Any, self_attention: bool) -> tuple[Any, Any, Any]:
        """Query, key and value projected, each ``(N, length, E)``."""
        e = self.embed_dim
        weight, bias = self.in_proj_weight, self.in_proj_bias
        if self_attention and weight is not None:
            packed = linear_op(query, weight, bias)
            return packed[..., :e], packed[..., e : 2 * e], packed[..., 2 * e :]
        if weight is not None:
            weights = (weight[:e], weight[e : 2 * e], weight[2 * e :])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        biases = (None,) * 3 if bias is None else (bias[:e], bias[e : 2 * e], bias[2 * e :])
        return tuple(  # type: ignore[return-value]
            linear_op(x, w, b) for x, w, b in zip((query, key, value), weights, biases, strict=True)
        )

    def _heads(self, x: Any) -> Any:
        """``(N, length, E)`` as ``(N, heads, length, head_dim)``."""
        batch, length, _ = _shape(x)
        return np.transpose(np.reshape(x, (batch, length, self.num_heads, self.head_dim)), (0, 2, 1, 3))

    def _mask(
        self, attn_mask: Any, key_padding_mask: Any, dtype: np.dtype, batch: int, length: int, source: int
    ) -> Any:
        """torch's two masks (True = masked out, or additive floats) as one additive mask broadcasting to
        ``(N, heads, L, S)``, or None."""
        combined = None
        if attn_mask is not None:
            shape = _shape(attn_mask)
            if shape == (length, source):
                mask = attn_mask
            elif shape == (batch * self.num_heads, length, source):
                mask = np.reshape(attn_mask, (batch, self.num_heads, length, source))
            else:
                raise ValueError(
                    f"{self._label}: attn_mask must have shape {(length, source)} or "
                    f"{(batch * self.num_heads, length, source)} (batch * num_heads, L, S), got {shape}"
                )
            combined = self._additive(mask, "attn_mask", dtype)
        if key_padding_mask is not None:
            shape = _shape(key_padding_mask)
            if shape != (batch, source) and not (shape == (source,) and batch == 1):
                raise ValueError(
                    f"{self._label}: key_padding_mask must have shape {(batch, source)} (batch, source "
                    f"length), got {shape}"
                )
            padding = self._additive(
                np.reshape(key_padding_mask, (batch, 1, 1, source)), "key_padding_mask", dtype
            )
            combined = padding if combined is None else combined + padding
        return combined

    def _additive(self, mask: Any, name: str, dtype: np.dtype) -> Any:
        mask_dtype = _dtype(mask)
        if mask_dtype == np.bool_:
            return np.where(_data(mask), dtype.type(-np.inf), dtype.type(0))
        if mask_dtype.kind != "f":
            raise TypeError(
                f"{self._label}: {name} must be boolean or floating point, got dtype {mask_dtype.name}"
            )
        return mask if isinstance(mask, Tensor) else np.asarray(mask, dtype=dtype)

    def forward(
        self,
        query: Any,
        key: Any,
        value: Any,
        key_padding_mask: Any = None,
        need_weights: bool = True,
        attn_mask: Any = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Any, Any]:
        """Attend from ``query`` to ``key``/``value``; return ``(output, weights)``, weights None unless
        ``need_weights``.

        ``key_padding_mask`` ``(N, S)`` and ``attn_mask`` ``(L, S)`` or ``(N * num_heads, L, S)`` are
        boolean (True = masked out) or additive floats. ``is_causal`` without ``attn_mask`` applies the
        causal mask; with ``attn_mask``, it is only torch's hint that the mask is causal, and the mask is
        used as given. The weights are averaged over heads ``(N, L, S)`` unless ``average_attn_weights`` is
        False ``(N, heads, L, S)``, and include dropout in training, as torch's.
        """
        batched = self._check(query, key, value)
        self_attention = query is key and key is value
        if not batched:
            query, key, value = (np.expand_dims(x, 1) for x in (query, key, value))
            if key_padding_mask is not None and _shape(key_padding_mask) == (_shape(key)[0],):
                key_padding_mask = np.reshape(key_padding_mask, (1, -1))
        if not self.batch_first or not batched:
            query, key, value = (np.swapaxes(x, 0, 1) for x in (query, key, value))
        batch, length, _ = _shape(query)
        source = _shape(key)[1]
        dtype = _dtype(query)
        q, k, v = (self._heads(x) for x in self._project(query, key, value, self_attention))
        mask = self._mask(attn_mask, key_padding_mask, dtype, batch, length, source)
        if is_causal and attn_mask is None:
            causal = np.where(
                np.tril(np.ones((length, source), dtype=bool)), dtype.type(0), dtype.type(-np.inf)
            )
            mask = causal if mask is None else mask + causal
        dropout_p = self.dropout if self.training else 0.0
        attended = scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout_p, rng=self.rng, need_weights=need_weights
        )
        output, weights = attended if need_weights else (attended, None)
        output = np.reshape(np.transpose(output, (0, 2, 1, 3)), (batch, length, self.embed_dim))
        output = self.out_proj(output)
        if not self.batch_first or not batched:
            output = np.swapaxes(output, 0, 1)
        if not batched:
            output = output[:, 0]
        if weights is not None:
            if average_attn_weights:
                weights = np.mean(weights, axis=1)
            if not batched:
                weights = weights[0]
        return output, weights


def _activation(activation: str | Callable[[Any], Any]) -> Callable[[Any], Any]:
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise ValueError(
        f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a callable, got {activation!r}"
    )


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block, each with dropout, a residual connection and a layer norm
    (after each block, or before it with ``norm_first``), as torch's.

    Sub-modules carry torch's names: ``self_attn``, ``linear1``, ``dropout``, ``linear2``, ``norm1``,
    ``norm2``, ``dropout1``, ``dropout2``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> layer = TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True, rng=rng)
    >>> layer(np.ones((3, 5, 8))).shape
    (3, 5, 8)
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable[[Any], Any] = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        dtype: Any = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        rng = np.random.default_rng() if rng is None else rng
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype, rng=rng
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, rng=rng)
        self.dropout = Dropout(dropout, rng=rng)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, rng=rng)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        if not bias:
            for norm in (self.norm1, self.norm2):
                norm.register_parameter("bias", None)
        self.dropout1 = Dropout(dropout, rng=rng)
        self.dropout2 = Dropout(dropout, rng=rng)
        self.activation = _activation(activation)
        self.batch_first = batch_first

    def _self_attention(self, x: Any, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> Any:
        output, _ = self.self_attn(
            x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
            is_causal=is_causal,
        )  # fmt: skip
        return self.dropout1(output)

    def _feed_forward(self, x: Any) -> Any:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(
        self, src: Any, src_mask: Any = None, src_key_padding_mask: Any = None, is_causal: bool = False
    ) -> Any:
        """Encode ``src`` (``(S, N, E)``, ``(N, S, E)`` with ``batch_first``, or ``(S, E)``); the masks are
        ``MultiheadAttention``'s ``attn_mask`` and ``key_padding_mask``."""
        x = src
        if self.norm_first:
            x = x + self._self_attention(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._self_attention(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._feed_forward(x))


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (each with its own parameters, in ``layers``), then
    ``norm`` if given, as torch's.

    Examples
    --------
    >>> layer = TransformerEncoderLayer(8, 2, dim_feedforward=16, rng=np.random.default_rng(0))
    >>> encoder = TransformerEncoder(layer, num_layers=2)
    >>> encoder(np.ones((5, 3, 8))).shape
    (5, 3, 8)
    """

    def __init__(
        self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Module | None = None
    ) -> None:
        super().__init__()
        layers = [copy.deepcopy(encoder_layer) for _ in range(num_layers)]
        # Copies of one generator would draw the same dropout masks in every layer: each gets its own.
        for layer, rng in zip(layers, encoder_layer.self_attn.rng.spawn(num_layers), strict=True):
            for module in layer.modules():
                if isinstance(module.__dict__.get("rng"), np.random.Generator):
                    module.rng = rng
        self.layers = ModuleList(layers)
        self.num_layers = num_layers
        self.add_module("norm", norm)

    def forward(
        self, src: Any, mask: Any = None, src_key_padding_mask: Any = None, is_causal: bool | None = None
    ) -> Any:
        """Run ``src`` through every layer, then ``norm``; arguments as ``TransformerEncoderLayer``'s."""
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return x if self.norm is None else self.norm(x)
