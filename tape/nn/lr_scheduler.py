"""Learning-rate schedulers, as torch.optim.lr_scheduler's: the ``LRScheduler`` base, ``StepLR``,
``ExponentialLR``, ``CosineAnnealingLR``, ``LambdaLR``, ``OneCycleLR`` and ``ReduceLROnPlateau``.

They are reached as ``tape.nn.optim.StepLR`` and so on. A
scheduler only writes hyperparameters into the optimizer's ``param_groups``; it never touches parameters,
gradients or optimizer state.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .optim_common import is_integer, is_real

if TYPE_CHECKING:
    from .optimizer import Optimizer

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "StepLR",
]


# -- learning-rate schedulers --------------------------------------------------------------------------------
class LRScheduler:
    """Base class: ``step()`` once per epoch sets each group's ``lr`` from ``get_lr()``.

    The initial learning rates are kept in each group as ``initial_lr``.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        raise TypeError(
            f"{type(self).__name__} must define get_lr(): the learning rate of each parameter group"
        )

    def step(self) -> None:
        """Advance one epoch and set the learning rates."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last ``step``."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """The schedule's settings and position (``last_epoch``, ``base_lrs``, ...), not the optimizer."""
        return {
            key: list(value) if isinstance(value, list) else value
            for key, value in self.__dict__.items()
            if key != "optimizer"
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned, from a scheduler of the same kind over as many groups.

        Everything is checked first, so a failed load changes nothing: the entries must be this
        scheduler's own, integers where it holds integers, numbers where it holds numbers, and lists of
        one number per parameter group where it holds lists. Raises ``ValueError`` naming each entry that
        does not fit.

        Examples
        --------
        >>> import tape
        >>> from tape.nn.optim import SGD, StepLR
        >>> scheduler = StepLR(SGD([tape.tensor([0.0], requires_grad=True)], lr=1.0), step_size=2)
        >>> scheduler.load_state_dict({**scheduler.state_dict(), "last_epoch": "3"})
        Traceback (most recent call last):
        ...
        ValueError: StepLR.load_state_dict: last_epoch should be an integer, got '3'
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {type(state_dict).__name__}")
        own = self.state_dict()
        problems = [f"lacks {key!r}" for key in own if key not in state_dict]
        problems += [
            f"has {key!r}, which {type(self).__name__} does not hold" for key in state_dict if key not in own
        ]
        for key in own.keys() & state_dict.keys():
            value, current = state_dict[key], own[key]
            if isinstance(current, list):
                if not isinstance(value, list | tuple) or len(value) != len(current):
                    problems.append(f"{key} should be {len(current)} numbers (one per group), got {value!r}")
                elif not all(is_real(item) for item in value):
                    problems.append(f"{key} should hold numbers, got {value!r}")
            elif isinstance(current, bool):
                if not isinstance(value, bool | np.bool_):
                    problems.append(f"{key} should be a bool, got {value!r}")
            elif isinstance(current, int) and not is_integer(value):
                problems.append(f"{key} should be an integer, got {value!r}")
            elif isinstance(current, float) and not is_real(value):
                problems.append(f"{key} should be a number, got {value!r}")
        if problems:
            raise ValueError(f"{where}: " + "; ".join(problems))
        for key in own:
            value = state_dict[key]
            self.__dict__[key] = list(value) if isinstance(own[key], list) else value


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    Examples
    --------
    >>> import tape
    >>> from tape.nn.optim import SGD, StepLR
    >>> optimizer = SGD([tape.tensor([0.0], requires_grad=True)], lr=1.0)
    >>> scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
    >>> for _ in range(3): scheduler.step()
    >>> scheduler.get_last_lr()
    [0.5]
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """``eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2``: a half cosine from the base rate down to
    ``eta_min`` over ``T_max`` epochs (and back up after, as torch's closed form)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:  # noqa: N803
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


def _per_group(where: str, name: str, value: Any, optimizer: Optimizer) -> list[Any]:
    """``value`` once per parameter group: a list or tuple of one value per group, or a single value."""
    groups = len(optimizer.param_groups)
    if isinstance(value, list | tuple):
        if len(value) != groups:
            raise ValueError(
                f"{where}: expected one {name} per parameter group ({groups}), got {len(value)}: {value!r}"
            )
        return list(value)
    return [value] * groups


class LambdaLR(LRScheduler):
    """Set each group's learning rate to its initial one times ``lr_lambda(epoch)``.

    ``lr_lambda`` is one function of the epoch for every group, or a list with one function per group.
    ``state_dict`` holds the position and, for a lambda that is a callable object (not a plain function),
    that object's ``__dict__``, as torch's does; the functions themselves are not saved.

    Examples
    --------
    >>> import tape
    >>> from tape.nn.optim import SGD
    >>> optimizer = SGD([tape.tensor([0.0], requires_grad=True)], lr=1.0)
    >>> scheduler = LambdaLR(optimizer, lambda epoch: 0.5**epoch)
    >>> for _ in range(3): scheduler.step()
    >>> scheduler.get_last_lr()
    [0.125]
    """

    # Kept out of the instance ``__dict__``, whose entries the base class saves and restores as numbers: the
    # lambdas are functions, and their saved form (``state_dict()["lr_lambdas"]``) is checked here instead.
    __slots__ = ("_restoring", "lr_lambdas")

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        lambdas = _per_group("LambdaLR", "lr_lambda", lr_lambda, optimizer)
        for index, function in enumerate(lambdas):
            if not callable(function):
                raise TypeError(
                    f"LambdaLR: lr_lambda {index} should be a function of the epoch, got "
                    f"{type(function).__name__}"
                )
        self.lr_lambdas: list[Callable[[int], float]] = lambdas
        self._restoring = False
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [
            base * lr_lambda(self.last_epoch)
            for lr_lambda, base in zip(self.lr_lambdas, self.base_lrs, strict=True)
        ]

    def state_dict(self) -> dict[str, Any]:
        """The position (``last_epoch``, ``base_lrs``, ...) and, under ``lr_lambdas``, the ``__dict__`` of
        each lambda that is a callable object (None for a plain function)."""
        state = super().state_dict()
        if self._restoring:  # the base class's load_state_dict compares with the entries it restores
            return state
        state["lr_lambdas"] = [
            None if isinstance(function, types.FunctionType) else dict(vars(function))
            for function in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned; a saved lambda ``__dict__`` updates this scheduler's
        lambda object. Checks everything first, as ``LRScheduler.load_state_dict``."""
        where = "LambdaLR.load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {type(state_dict).__name__}")
        saved = state_dict.get("lr_lambdas")
        if not isinstance(saved, list | tuple) or len(saved) != len(self.lr_lambdas):
            raise ValueError(
                f"{where}: lr_lambdas should be {len(self.lr_lambdas)} entries (one per group, each None or "
                f"a lambda object's __dict__), got {saved!r}"
            )
        for index, (entry, function) in enumerate(zip(saved, self.lr_lambdas, strict=True)):
            if entry is not None and (
                not isinstance(entry, Mapping) or isinstance(function, types.FunctionType)
            ):
                raise ValueError(
                    f"{where}: lr_lambdas[{index}] should be None for a plain function or a mapping for a "
                    f"callable object, got {entry!r} for a {type(function).__name__}"
                )
        self._restoring = True
        try:
            super().load_state_dict({key: value for key, value in state_dict.items() if key != "lr_lambdas"})
        finally:
            self._restoring = False
        for entry, function in zip(saved, self.lr_lambdas, strict=True):
            if entry is not None:
                vars(function).update(entry)


class OneCycleLR(LRScheduler):
    """The 1cycle policy: the learning rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps``, then anneals to ``initial_lr / final_div_factor``; ``step()`` once per
    batch.

    Give ``total_steps``, or ``epochs`` and ``steps_per_epoch``. ``anneal_strategy`` is ``'cos'`` or
    ``'linear'``. With ``three_phase`` the rate goes back down to the initial one over a second
    ``pct_start`` before the final anneal. ``max_lr`` (and the momenta) may be lists, one per group.

    With ``cycle_momentum`` (the default, as torch's) the momentum moves the opposite way, between
    ``max_momentum`` and ``base_momentum``: the group's ``momentum`` (SGD, RMSprop) or the first of its
    ``betas`` (Adam, AdamW). An optimizer with neither (Adagrad) needs ``cycle_momentum=False``.

    Examples
    --------
    >>> import tape
    >>> from tape.nn.optim import SGD
    >>> optimizer = SGD([tape.tensor([0.0], requires_grad=True)], lr=0.1, momentum=0.9)
    >>> scheduler = OneCycleLR(optimizer, max_lr=1.0, total_steps=10)
    >>> rates = [scheduler.get_last_lr()[0]]
    >>> for _ in range(9):
    ...     scheduler.step()
    ...     rates.append(scheduler.get_last_lr()[0])
    >>> [round(rate, 4) for rate in rates]
    [0.04, 0.52, 1.0, 0.9505, 0.8117, 0.6113, 0.3887, 0.1883, 0.0495, 0.0]
    >>> round(optimizer.param_groups[0]["momentum"], 4)
    0.95
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.85,
        max_momentum: float | Sequence[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        def positive_integer(name: str, value: Any) -> int:
            if not is_integer(value) or value <= 0:
                raise ValueError(f"OneCycleLR: {name} should be a positive integer, got {value!r}")
            return int(value)

        if total_steps is not None:
            self.total_steps = positive_integer("total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = positive_integer("epochs", epochs) * positive_integer(
                "steps_per_epoch", steps_per_epoch
            )
        else:
            raise ValueError(
                "OneCycleLR: give total_steps, or both epochs and steps_per_epoch "
                f"(got total_steps={total_steps}, epochs={epochs}, steps_per_epoch={steps_per_epoch})"
            )
        if not is_real(pct_start) or not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start should be a number in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: anneal_strategy should be 'cos' or 'linear', got {anneal_strategy!r}"
            )
        self.pct_start = float(pct_start)
        self.anneal_strategy = anneal_strategy
        self.three_phase = bool(three_phase)
        max_lrs = _per_group("OneCycleLR", "max_lr", max_lr, optimizer)
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs, strict=True):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = "betas" in optimizer.defaults
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and not self.use_beta1:
                raise ValueError(
                    f"OneCycleLR: {type(optimizer).__name__} has neither momentum nor betas to cycle; "
                    "pass cycle_momentum=False"
                )
            max_momenta = _per_group("OneCycleLR", "max_momentum", max_momentum, optimizer)
            base_momenta = _per_group("OneCycleLR", "base_momentum", base_momentum, optimizer)
            if last_epoch == -1:
                for group, top, bottom in zip(optimizer.param_groups, max_momenta, base_momenta, strict=True):
                    self._set_momentum(group, top)
                    group["max_momentum"] = top
                    group["base_momentum"] = bottom
        super().__init__(optimizer, last_epoch)

    def _phases(self) -> list[tuple[float, str, str, str, str]]:
        """Each phase as (last step, lr key at its start, at its end, momentum key at its start, at its end),
        the keys naming entries of a parameter group."""
        steps, pct = self.total_steps, self.pct_start
        rise = ("initial_lr", "max_lr", "max_momentum", "base_momentum")
        if self.three_phase:
            return [
                (float(pct * steps) - 1, *rise),
                (float(2 * pct * steps) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        return [
            (float(pct * steps) - 1, *rise),
            (steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
        ]

    def _anneal(self, start: float, end: float, fraction: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def _set_momentum(self, group: dict[str, Any], momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(
                f"OneCycleLR: stepped {step} times, past total_steps={self.total_steps}; "
                "build the scheduler with more total_steps (or epochs)"
            )
        phases = self._phases()
        rates = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for index, (end, lr_from, lr_to, momentum_from, momentum_to) in enumerate(phases):
                if step <= end or index == len(phases) - 1:
                    fraction = (step - start) / (end - start)
                    rates.append(self._anneal(group[lr_from], group[lr_to], fraction))
                    if self.cycle_momentum:
                        self._set_momentum(
                            group, self._anneal(group[momentum_from], group[momentum_to], fraction)
                        )
                    break
                start = end
        return rates

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned, checked as ``LRScheduler.load_state_dict`` (and the
        anneal strategy named as the constructor takes it)."""
        if isinstance(state_dict, Mapping) and state_dict.get("anneal_strategy", "cos") not in (
            "cos",
            "linear",
        ):
            raise ValueError(
                "OneCycleLR.load_state_dict: anneal_strategy should be 'cos' or 'linear', got "
                f"{state_dict['anneal_strategy']!r}"
            )
        super().load_state_dict(state_dict)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` when a metric has stopped improving for ``patience`` epochs.

    ``step(metric)`` once per epoch. In ``mode='min'`` a metric improves when it falls below the best so far
    by more than ``threshold`` (relative: ``best * (1 - threshold)``, or absolute: ``best - threshold``,
    per ``threshold_mode``); ``'max'`` mirrors this. After a reduction, ``cooldown`` epochs pass before bad
    epochs count again. No group goes below its ``min_lr`` (one number, or one per group), and a change
    smaller than ``eps`` is not made.

    Examples
    --------
    >>> import tape
    >>> from tape.nn.optim import SGD
    >>> optimizer = SGD([tape.tensor([0.0], requires_grad=True)], lr=1.0)
    >>> scheduler = ReduceLROnPlateau(optimizer, patience=1, factor=0.5)
    >>> for loss in [3.0, 2.0, 2.0, 2.0, 2.0]:
    ...     scheduler.step(loss)
    >>> scheduler.get_last_lr()
    [0.5]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] | tuple[float, ...] = 0,
        eps: float = 1e-8,
    ) -> None:
        # As torch's, this scheduler does not run the base initializer: it sets no rate until a metric comes.
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor should be < 1.0, got {factor}")
        self._check_modes("ReduceLROnPlateau", mode, threshold_mode)
        self.optimizer = optimizer
        self.factor = float(factor)
        if isinstance(min_lr, list | tuple):
            self.default_min_lr: float | None = None
        else:
            self.default_min_lr = float(min_lr)
        self.min_lrs = [float(rate) for rate in _per_group("ReduceLROnPlateau", "min_lr", min_lr, optimizer)]
        self.patience = int(patience)
        self.cooldown = int(cooldown)
        self.eps = float(eps)
        self.mode = mode
        self.threshold = float(threshold)
        self.threshold_mode = threshold_mode
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.best = self._worst()
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @staticmethod
    def _check_modes(where: str, mode: Any, threshold_mode: Any) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"{where}: mode should be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{where}: threshold_mode should be 'rel' or 'abs', got {threshold_mode!r}")

    def _worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def get_lr(self) -> list[float]:
        """The learning rates now set (this scheduler changes them only in ``step(metric)``)."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self, metrics: float) -> None:
        """Take the epoch's metric (a number, or a one-element array or tensor) and reduce the learning
        rates if it has not improved for more than ``patience`` epochs."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    @property
    def in_cooldown(self) -> bool:
        """Whether the scheduler is waiting out its cooldown after a reduction."""
        return self.cooldown_counter > 0

    def _is_better(self, current: float, best: float) -> bool:
        if self.threshold_mode == "rel":
            if self.mode == "min":
                return current < best * (1.0 - self.threshold)
            return current > best * (self.threshold + 1.0)
        if self.mode == "min":
            return current < best - self.threshold
        return current > best + self.threshold

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups, min_lrs "
                    f"{len(self.min_lrs)} (a group was added after the scheduler was built); set min_lrs "
                    "to one rate per group"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, floor in zip(groups, self.min_lrs, strict=True):
            old = float(group["lr"])
            new = max(old * self.factor, floor)
            if old - new > self.eps:
                group["lr"] = new

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned, checked as ``LRScheduler.load_state_dict`` (and the modes
        named as the constructor takes them)."""
        if isinstance(state_dict, Mapping):
            self._check_modes(
                "ReduceLROnPlateau.load_state_dict",
                state_dict.get("mode", self.mode),
                state_dict.get("threshold_mode", self.threshold_mode),
            )
        super().load_state_dict(state_dict)
