"""Loss modules: each holds its settings (``reduction``, weights, margins) and calls ``ops.losses``.

The torch names (``MSELoss``, ``CrossEntropyLoss``, ...) are the classes; the names of the lecture's torch7
list (``MSECriterion``, ``CrossEntropyCriterion``, ``BCECriterion``, ...) are aliases of them.
"""

from __future__ import annotations

from typing import Any

from . import functional as F
from .module import Module

__all__ = [
    "BCECriterion",
    "BCELoss",
    "BCEWithLogitsLoss",
    "ClassNLLCriterion",
    "CosineEmbeddingCriterion",
    "CosineEmbeddingLoss",
    "CrossEntropyCriterion",
    "CrossEntropyLoss",
    "DistKLDivCriterion",
    "HingeEmbeddingCriterion",
    "HingeEmbeddingLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Criterion",
    "L1Loss",
    "MSECriterion",
    "MSELoss",
    "MarginRankingCriterion",
    "MarginRankingLoss",
    "NLLLoss",
    "SmoothL1Criterion",
    "SmoothL1Loss",
]


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error. ``MSELoss()(input, target)``.

    Examples
    --------
    >>> import numpy as np
    >>> float(MSELoss()(np.array([1.0, 3.0]), np.array([1.0, 1.0])))
    2.0
    """

    def forward(self, input: Any, target: Any) -> Any:
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error."""

    def forward(self, input: Any, target: Any) -> Any:
        return F.l1_loss(input, target, self.reduction)


class SmoothL1Loss(_Loss):
    """Quadratic below ``beta``, linear above (see ``ops.losses.smooth_l1_loss``)."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input: Any, target: Any) -> Any:
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class HuberLoss(_Loss):
    """Quadratic below ``delta``, linear above (see ``ops.losses.huber_loss``)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: Any, target: Any) -> Any:
        return F.huber_loss(input, target, self.reduction, self.delta)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities."""

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = weight

    def forward(self, input: Any, target: Any) -> Any:
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits (sigmoid included, stable)."""

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.weight = weight
        self.pos_weight = pos_weight

    def forward(self, input: Any, target: Any) -> Any:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits against class indices or class probabilities (softmax included).

    Examples
    --------
    >>> import numpy as np
    >>> round(float(CrossEntropyLoss()(np.zeros((1, 4)), np.array([2]))), 6)  # log(4)
    1.386294
    """

    def __init__(
        self,
        weight: Any = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(reduction)
        self.weight = weight
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Any, target: Any) -> Any:
        return F.cross_entropy(
            input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing
        )


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities against class indices."""

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = weight
        self.ignore_index = ignore_index

    def forward(self, input: Any, target: Any) -> Any:
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class KLDivLoss(_Loss):
    """KL divergence of a target distribution from log-probabilities (``'batchmean'`` is the true KL)."""

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input: Any, target: Any) -> Any:
        return F.kl_div(input, target, self.reduction, self.log_target)


class HingeEmbeddingLoss(_Loss):
    """``x`` for similar pairs (label 1), ``max(0, margin - x)`` for dissimilar ones (label -1)."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input: Any, target: Any) -> Any:
        return F.hinge_embedding_loss(input, target, self.margin, self.reduction)


class CosineEmbeddingLoss(_Loss):
    """``1 - cos`` for similar pairs, ``max(0, cos - margin)`` for dissimilar ones."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1: Any, input2: Any, target: Any) -> Any:
        return F.cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)


class MarginRankingLoss(_Loss):
    """``max(0, -y (x1 - x2) + margin)``."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1: Any, input2: Any, target: Any) -> Any:
        return F.margin_ranking_loss(input1, input2, target, self.margin, self.reduction)


# The names of the lecture's component list (torch7's nn criteria).
MSECriterion = MSELoss
L1Criterion = L1Loss
SmoothL1Criterion = SmoothL1Loss
BCECriterion = BCELoss
CrossEntropyCriterion = CrossEntropyLoss
ClassNLLCriterion = NLLLoss
DistKLDivCriterion = KLDivLoss
HingeEmbeddingCriterion = HingeEmbeddingLoss
CosineEmbeddingCriterion = CosineEmbeddingLoss
MarginRankingCriterion = MarginRankingLoss
