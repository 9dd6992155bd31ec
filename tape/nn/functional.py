"""``tape.nn.functional``: the functional forms of the layers, as ``torch.nn.functional``.

>>> import numpy as np, tape.nn.functional as F
>>> F.relu(np.array([-1.0, 2.0]))
array([0., 2.])

Each function is defined once, in the op family it belongs to (``tape.ops.nn``, ``tape.ops.conv``,
``tape.ops.losses``, ``tape.ops.special``), and named here as PyTorch names it. This module computes nothing.
"""

from __future__ import annotations

from tape.ops.attention import scaled_dot_product_attention
from tape.ops.conv import avg_pool2d, conv1d, conv2d, conv_transpose2d, max_pool2d
from tape.ops.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_embedding_loss,
    cross_entropy,
    hinge_embedding_loss,
    huber_loss,
    kl_div,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from tape.ops.nn import (
    batch_norm,
    dropout,
    elu,
    embedding,
    gelu,
    hardtanh,
    layer_norm,
    leaky_relu,
    linear,
    relu,
    selu,
    sigmoid,
    softplus,
    tanh,
)
from tape.ops.spatial import adaptive_avg_pool2d, dropout2d, interpolate
from tape.ops.special import log_softmax, softmax

from .normalization import group_norm, instance_norm

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "cosine_embedding_loss",
    "cross_entropy",
    "dropout",
    "dropout2d",
    "elu",
    "embedding",
    "gelu",
    "group_norm",
    "hardtanh",
    "hinge_embedding_loss",
    "huber_loss",
    "instance_norm",
    "interpolate",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "margin_ranking_loss",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "relu",
    "scaled_dot_product_attention",
    "selu",
    "sigmoid",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tanh",
]
