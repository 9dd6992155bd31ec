"""tape.nn: a torch.nn-style layer library on tape tensors — modules, layers, losses, optimizers, init.

>>> import numpy as np, tape.nn as nn
>>> model = nn.Sequential(nn.Linear(2, 8, rng=np.random.default_rng(0)), nn.ReLU(), nn.Linear(8, 2))
>>> optimizer = nn.optim.SGD(model.parameters(), lr=0.1)
>>> loss = nn.CrossEntropyLoss()(model(np.ones((4, 2))), np.array([0, 1, 0, 1]))
>>> loss.backward(); optimizer.step()

The functional forms live in ``ops.nn`` (activations, linear, dropout, embedding, norms) and
``ops.losses``, re-exported here as ``tape.nn.functional``. Importing this package compiles nothing.
"""

import tape.ops.conv as _conv_ops
import tape.ops.losses as _losses_ops
import tape.ops.nn as _nn_ops
import tape.ops.special as _special

from . import init, optim
from .conv import AvgPool2d, Conv1d, Conv2d, MaxPool2d
from .layers import (
    ELU,
    GELU,
    SELU,
    Abs,
    Add,
    AddConstant,
    BatchNorm1d,
    BatchNormalization,
    CMul,
    Concat,
    CosineDistance,
    DotProduct,
    Dropout,
    Embedding,
    Flatten,
    HardTanh,
    Hardtanh,
    Identity,
    JoinTable,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    Mul,
    PairwiseDistance,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from .losses import (
    BCECriterion,
    BCELoss,
    BCEWithLogitsLoss,
    ClassNLLCriterion,
    CosineEmbeddingCriterion,
    CosineEmbeddingLoss,
    CrossEntropyCriterion,
    CrossEntropyLoss,
    DistKLDivCriterion,
    HingeEmbeddingCriterion,
    HingeEmbeddingLoss,
    HuberLoss,
    KLDivLoss,
    L1Criterion,
    L1Loss,
    MarginRankingCriterion,
    MarginRankingLoss,
    MSECriterion,
    MSELoss,
    NLLLoss,
    SmoothL1Criterion,
    SmoothL1Loss,
)
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential, load, save


class functional:
    """The functional forms: ``tape.nn.functional.relu(x)``, ``tape.nn.functional.cross_entropy(...)``."""


for _module in (_nn_ops, _losses_ops, _conv_ops):
    for _name in _module.__all__:
        setattr(functional, _name, staticmethod(getattr(_module, _name)))
functional.softmax = staticmethod(_special.softmax)
functional.log_softmax = staticmethod(_special.log_softmax)

__all__ = [
    "ELU",
    "GELU",
    "SELU",
    "Abs",
    "Add",
    "AddConstant",
    "AvgPool2d",
    "BCECriterion",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNormalization",
    "CMul",
    "ClassNLLCriterion",
    "Concat",
    "Conv1d",
    "Conv2d",
    "CosineDistance",
    "CosineEmbeddingCriterion",
    "CosineEmbeddingLoss",
    "CrossEntropyCriterion",
    "CrossEntropyLoss",
    "DistKLDivCriterion",
    "DotProduct",
    "Dropout",
    "Embedding",
    "Flatten",
    "HardTanh",
    "Hardtanh",
    "HingeEmbeddingCriterion",
    "HingeEmbeddingLoss",
    "HuberLoss",
    "Identity",
    "JoinTable",
    "KLDivLoss",
    "L1Criterion",
    "L1Loss",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSECriterion",
    "MSELoss",
    "MarginRankingCriterion",
    "MarginRankingLoss",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "Mul",
    "NLLLoss",
    "PairwiseDistance",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SmoothL1Criterion",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Tanh",
    "functional",
    "init",
    "load",
    "optim",
    "save",
]
