"""Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad), learning-rate schedulers and ``clip_grad_norm_``.

Each ``step`` reads ``p.grad`` and updates the parameter's array in place on plain arrays (the optimizer's
state is plain arrays too), then bumps the parameter's version counter so that a record still holding the
old value refuses to run backward. The built-in rules live in ``optim_kernels``: one pass of a numba kernel
over the parameter, its gradient and its state where that pays, numpy expressions otherwise. They are
torch's documented rules, so the same hyperparameters give the same trajectory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..anomaly import bump
from ..grad_mode import no_grad
from ..tensor import Tensor
from . import optim_kernels

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "Optimizer",
    "RMSprop",
    "StepLR",
    "clip_grad_norm_",
]


def _gradient(parameter: Tensor) -> np.ndarray | None:
    grad = parameter.grad
    if grad is None:
        return None
    return grad._data if isinstance(grad, Tensor) else np.asarray(grad)


class Optimizer:
    """Base class: holds ``param_groups`` (lists of parameters with their hyperparameters) and per-parameter
    ``state``; subclasses define ``defaults`` and ``_update``.

    ``params`` is an iterable of tensors, or of dicts ``{"params": [...], "lr": ...}`` for groups with
    their own hyperparameters.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: dict[int, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group of parameters; hyperparameters it does not name take the defaults."""
        parameters = list(group["params"])
        for parameter in parameters:
            if not isinstance(parameter, Tensor) or not parameter.requires_grad:
                raise TypeError(f"{type(self).__name__}: can only optimize tensors that require grad")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in parameters):
            raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group")
        self.param_groups.append({**self.defaults, **group, "params": parameters})

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``.grad = None``)."""
        for group in self.param_groups:
            for parameter in group["params"]:
                parameter.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient, in place."""
        with no_grad():
            for group in self.param_groups:
                for parameter in group["params"]:
                    grad = _gradient(parameter)
                    if grad is None:
                        continue
                    state = self.state.setdefault(id(parameter), {})
                    update = self._update(parameter._data, grad, state, group)
                    if update is None:
                        # The rule wrote into the parameter's buffer itself: bump its version as an
                        # in-place tensor operation does, so that records holding the old value notice.
                        bump(parameter._vc)
                    else:
                        parameter -= update

    def _update(
        self, value: np.ndarray, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> np.ndarray | None:
        """The step of one parameter: the array to subtract from ``value``, or None after writing the new
        value into ``value`` itself (the built-in rules do, in one fused pass)."""
        raise TypeError(
            f"{type(self).__name__} must define _update(value, grad, state, group): the step of one parameter"
        )

    def _indexed(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        """The state (arrays and step counts, keyed by each parameter's position) and the hyperparameters."""
        positions = {id(p): index for index, p in enumerate(self._indexed())}
        state = {
            positions[key]: {
                name: (value.copy() if isinstance(value, np.ndarray) else value) for name, value in s.items()
            }
            for key, s in self.state.items()
            if key in positions
        }
        groups = []
        for group in self.param_groups:
            entry = {key: value for key, value in group.items() if key != "params"}
            entry["params"] = [positions[id(p)] for p in group["params"]]
            groups.append(entry)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned (for an optimizer built over the same parameters).

        Everything is checked before anything changes, so a failed load leaves the state and the
        hyperparameters as they were. The groups must have this optimizer's sizes and every hyperparameter
        of ``defaults``, of the same kind; a parameter's state must hold every entry the rule keeps (those
        a first step creates), its arrays of the parameter's shape and of a dtype that casts to the
        parameter's under numpy's ``same_kind`` rule (never complex into real). Raises ``ValueError``
        naming the parameter and the entry otherwise.

        Examples
        --------
        >>> import tape
        >>> w = tape.tensor([1.0, 2.0], requires_grad=True)
        >>> optimizer = Adam([w], lr=0.1)
        >>> broken = {"state": {0: {"step": 3, "exp_avg": np.zeros(2)}}, "param_groups": [
        ...     {**optimizer.param_groups[0], "params": [0]}]}
        >>> optimizer.load_state_dict(broken)
        Traceback (most recent call last):
        ...
        ValueError: Adam.load_state_dict: state of parameter 0 lacks 'exp_avg_sq' (the rule keeps ...)...
        >>> optimizer.state
        {}
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(f"{where}: expected a mapping with 'state' and 'param_groups'")
        groups = state_dict["param_groups"]
        owners = self._saved_owners(groups)
        group_of = {id(p): index for index, group in enumerate(self.param_groups) for p in group["params"]}
        updates, problems = [], []
        for index, saved in enumerate(groups):
            update = {key: value for key, value in saved.items() if key != "params"}
            for key, default in self.defaults.items():
                value = update.get(key)
                if key not in update:
                    problems.append(f"group {index} lacks {key!r}")
                elif isinstance(default, bool):
                    if not isinstance(value, bool | np.bool_):
                        problems.append(f"group {index}: {key} should be a bool, got {value!r}")
                elif isinstance(default, int | float):
                    if not self._is_real(value):
                        problems.append(f"group {index}: {key} should be a number, got {value!r}")
                elif isinstance(default, tuple):
                    if not isinstance(value, list | tuple) or len(value) != len(default):
                        problems.append(
                            f"group {index}: {key} should be {len(default)} numbers, got {value!r}"
                        )
                    else:
                        update[key] = tuple(value)
            updates.append(update)
        saved_state = state_dict["state"]
        if not isinstance(saved_state, Mapping):
            raise ValueError(f"{where}: 'state' should be a mapping, got {type(saved_state).__name__}")
        new_state: dict[int, dict[str, Any]] = {}
        layouts: dict[tuple[Any, ...], dict[str, str | None] | None] = {}
        for index, saved in saved_state.items():
            position = (
                int(index) if isinstance(index, int | np.integer | str) and str(index).isdigit() else None
            )
            if position not in owners or not isinstance(saved, Mapping):
                problems.append(f"state {index!r}: no parameter of the saved groups has this position")
                continue
            parameter = owners[position]
            group_index = group_of[id(parameter)]
            group = {**self.param_groups[group_index], **updates[group_index]}
            key = (parameter.dtype, parameter.ndim, group_index)
            if key not in layouts:
                layouts[key] = self._state_layout(parameter, group)
            layout = layouts[key] or {}
            restored = {}
            for name, value in saved.items():
                value, problem = self._restored_entry(value, layout.get(name), parameter)
                if problem is None:
                    restored[name] = value
                else:
                    problems.append(f"state {name!r} of parameter {position}: {problem}")
            lacking = sorted(set(layout) - set(saved)) if saved else []
            if lacking and not self._steps_from(parameter, group, restored):
                problems.append(
                    f"state of parameter {position} lacks {', '.join(map(repr, lacking))} "
                    f"(the rule keeps {', '.join(sorted(layout))})"
                )
            new_state[id(parameter)] = restored
        if problems:
            raise ValueError(f"{where}: " + "; ".join(problems) + "; nothing was loaded")
        self.state = new_state
        for update, own in zip(updates, self.param_groups, strict=True):
            own.update(update)

    def _saved_owners(self, groups: Any) -> dict[int, Tensor]:
        """Each position of saved ``param_groups`` with the parameter of this optimizer it stands for."""
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(groups, list | tuple) or not all(
            isinstance(g, Mapping) and isinstance(g.get("params"), list | tuple) for g in groups
        ):
            raise ValueError(f"{where}: 'param_groups' should be a list of groups, each with a list 'params'")
        if len(groups) != len(self.param_groups) or any(
            len(saved["params"]) != len(own["params"])
            for saved, own in zip(groups, self.param_groups, strict=True)
        ):
            raise ValueError(
                f"{where}: the saved groups have sizes {[len(g['params']) for g in groups]}, "
                f"this optimizer's {[len(g['params']) for g in self.param_groups]}"
            )
        owners: dict[int, Tensor] = {}
        for saved, own in zip(groups, self.param_groups, strict=True):
            for position, parameter in zip(saved["params"], own["params"], strict=True):
                if (
                    not isinstance(position, int | np.integer)
                    or isinstance(position, bool)
                    or position in owners
                ):
                    raise ValueError(f"{where}: saved position {position!r} is not an integer or comes twice")
                owners[int(position)] = parameter
        return owners

    def _steps_from(self, parameter: Tensor, group: dict[str, Any], state: dict[str, Any]) -> bool:
        """Whether the rule can step from ``state`` (an entry it adds when missing, such as amsgrad's
        maximum after amsgrad was switched on, may be absent): tried on a one-element scratch copy."""
        scratch = np.zeros((1,) * parameter.ndim, dtype=parameter.dtype)
        copied = {
            name: np.zeros_like(scratch) if isinstance(value, np.ndarray) else value
            for name, value in state.items()
        }
        try:
            self._update(scratch, np.zeros_like(scratch), copied, dict(group))
        except Exception:
            return False
        return True

    def _state_layout(self, parameter: Tensor, group: dict[str, Any]) -> dict[str, str | None] | None:
        """The entries a parameter's state holds after a step with ``group``'s hyperparameters, each as
        "array", "integer", "real" or None (anything else): found by running the rule once on a one-element
        scratch array of the parameter's dtype. None when the rule cannot run so (the layout is unknown)."""
        scratch = np.zeros((1,) * parameter.ndim, dtype=parameter.dtype)
        state: dict[str, Any] = {}
        try:
            self._update(scratch, np.zeros_like(scratch), state, dict(group))
        except Exception:
            return None
        kinds: dict[str, str | None] = {}
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                kinds[name] = "array"
            elif self._is_integer(value):
                kinds[name] = "integer"
            else:
                kinds[name] = "real" if self._is_real(value) else None
        return kinds

    @staticmethod
    def _is_real(value: Any) -> bool:
        return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool | np.bool_
        )

    @staticmethod
    def _is_integer(value: Any) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)

    @staticmethod
    def _restored_entry(value: Any, kind: str | None, parameter: Tensor) -> tuple[Any, str | None]:
        """One saved state entry as the optimizer keeps it (an array of the parameter's dtype, or a Python
        number), or what is wrong with it. ``kind`` is what the rule keeps there, None when not known."""
        if isinstance(value, np.ndarray | np.generic):
            if value.dtype.hasobject or value.dtype.kind not in "biufc":
                return None, f"expected numbers, got dtype {value.dtype}"
            if value.dtype.kind == "c" and parameter.dtype.kind != "c":
                return None, f"complex values ({value.dtype}) do not fit a real {parameter.dtype} parameter"
        if kind == "array" or (kind is None and isinstance(value, np.ndarray) and value.ndim > 0):
            if not isinstance(value, np.ndarray | np.generic):
                return None, f"expected an array, got {type(value).__name__}"
            if value.shape != parameter.shape:
                return None, f"has shape {value.shape}, the parameter {parameter.shape}"
            if not np.can_cast(value.dtype, parameter.dtype, casting="same_kind"):
                return (
                    None,
                    f"dtype {value.dtype} does not cast to {parameter.dtype} under numpy's same_kind rule",
                )
            return np.array(value, dtype=parameter.dtype, copy=True), None
        if isinstance(value, np.ndarray | np.generic) and np.ndim(value) == 0:
            value = value.item()
        if kind == "integer" and not Optimizer._is_integer(value):
            return None, f"expected an integer, got {value!r}"
        if kind == "real" and not Optimizer._is_real(value):
            return None, f"expected a real number, got {value!r}"
        return value, None

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            lines.extend(f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params")
        return "\n".join([*lines, ")"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (heavy-ball or Nesterov) and weight decay.

    ``g = grad + weight_decay * p``; with momentum ``b = momentum * b + (1 - dampening) * g`` (``b = g`` at
    the first step) and ``g = g + momentum * b`` (Nesterov) or ``g = b``; then ``p -= lr * g``.

    Examples
    --------
    >>> import tape
    >>> w = tape.tensor([1.0], requires_grad=True)
    >>> w.grad = np.array([2.0])
    >>> SGD([w], lr=0.1).step()
    >>> w.data
    array([0.8])
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                f"SGD: lr, momentum and weight_decay must be non-negative, got {lr}, {momentum}, "
                f"{weight_decay}"
            )
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov
        )
        super().__init__(params, defaults)

    def _update(self, value, grad, state, group):
        momentum, buffer, first_step = group["momentum"], state.get("momentum_buffer"), False
        if momentum and buffer is None:
            buffer = state["momentum_buffer"] = np.empty_like(value)  # filled with the first gradient
            first_step = True
        optim_kernels.sgd(
            value,
            grad,
            buffer,
            group["lr"],
            group["weight_decay"],
            momentum,
            group["dampening"],
            group["nesterov"],
            first_step,
        )


class Adam(Optimizer):
    """Adam: running means of the gradient and its square, bias-corrected.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, ``p -= lr * m_hat / (sqrt(v_hat) + eps)`` with
    ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``; ``amsgrad`` uses the running maximum of ``v``.
    ``weight_decay`` (0 when None) adds ``weight_decay * p`` to the gradient (L2); for decoupled decay use
    ``AdamW``.
    """

    _decoupled = False
    #: The ``weight_decay`` of ``weight_decay=None``: 0 here, 0.01 for AdamW, as torch's.
    _default_weight_decay = 0.0

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | None = None,
        amsgrad: bool = False,
    ) -> None:
        if weight_decay is None:
            weight_decay = self._default_weight_decay
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: lr, eps and weight_decay must be non-negative")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _update(self, value, grad, state, group):
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(value)
            state["exp_avg_sq"] = np.zeros_like(value)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(value)
        state["step"] += 1
        optim_kernels.adam(
            value,
            grad,
            state["exp_avg"],
            state["exp_avg_sq"],
            state["max_exp_avg_sq"] if group["amsgrad"] else None,
            state["step"],
            group["lr"],
            group["betas"],
            group["eps"],
            group["weight_decay"],
            self._decoupled,
        )


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p -= lr * weight_decay * p`` besides the Adam step.

    Takes Adam's arguments; ``weight_decay`` is 0.01 when None (the default), as torch's.

    Examples
    --------
    >>> import tape
    >>> w = tape.tensor([1.0], requires_grad=True)
    >>> w.grad = np.array([0.0])
    >>> optimizer = AdamW([w], lr=0.1)
    >>> optimizer.step()
    >>> optimizer.param_groups[0]["weight_decay"], w.data  # 1 - 0.1 * 0.01
    (0.01, array([0.999]))
    """

    _decoupled = True
    _default_weight_decay = 1e-2


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square of it.

    ``v = alpha v + (1 - alpha) g^2``; ``centered`` subtracts the square of the running mean gradient;
    ``p -= lr * g / (sqrt(v) + eps)``, or through a momentum buffer when ``momentum > 0``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or momentum < 0 or alpha < 0:
            raise ValueError("RMSprop: lr, alpha, eps, weight_decay and momentum must be non-negative")
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered
        )
        super().__init__(params, defaults)

    def _update(self, value, grad, state, group):
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(value)
        if group["momentum"] and "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(value)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = np.zeros_like(value)
        state["step"] += 1
        optim_kernels.rmsprop(
            value,
            grad,
            state["square_avg"],
            state["grad_avg"] if group["centered"] else None,
            state.get("momentum_buffer"),
            group["lr"],
            group["alpha"],
            group["eps"],
            group["weight_decay"],
            group["momentum"],
        )


class Adagrad(Optimizer):
    """Adagrad: divide by the root of the summed squared gradients.

    ``lr_t = lr / (1 + (t - 1) lr_decay)``, ``s += g^2``, ``p -= lr_t * g / (sqrt(s) + eps)``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        if lr < 0 or lr_decay < 0 or weight_decay < 0 or initial_accumulator_value < 0 or eps < 0:
            raise ValueError(
                "Adagrad: lr, lr_decay, weight_decay, initial_accumulator_value and eps must be >= 0"
            )
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        super().__init__(params, defaults)

    def _update(self, value, grad, state, group):
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(value, group["initial_accumulator_value"])
        state["step"] += 1
        optim_kernels.adagrad(
            value,
            grad,
            state["sum"],
            state["step"],
            group["lr"],
            group["lr_decay"],
            group["weight_decay"],
            group["eps"],
        )


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
                elif not all(Optimizer._is_real(item) for item in value):
                    problems.append(f"{key} should hold numbers, got {value!r}")
            elif isinstance(current, bool):
                if not isinstance(value, bool | np.bool_):
                    problems.append(f"{key} should be a bool, got {value!r}")
            elif isinstance(current, int) and not Optimizer._is_integer(value):
                problems.append(f"{key} should be an integer, got {value!r}")
            elif isinstance(current, float) and not Optimizer._is_real(value):
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


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0) -> float:
    """Scale the gradients in place so that their joint ``norm_type``-norm is at most ``max_norm``.

    Returns the norm before clipping. Parameters without a gradient are skipped.

    Examples
    --------
    >>> import tape
    >>> w = tape.tensor([0.0, 0.0], requires_grad=True)
    >>> w.grad = np.array([3.0, 4.0])
    >>> clip_grad_norm_([w], 1.0), np.round(w.grad, 4)
    (5.0, array([0.6, 0.8]))
    """
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [_gradient(p) for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    else:
        total = float(sum(float(np.sum(np.abs(g) ** norm_type)) for g in grads) ** (1.0 / norm_type))
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1:
        for parameter in parameters:
            if parameter.grad is not None:
                parameter.grad = _gradient(parameter) * parameter.dtype.type(coefficient)
    return total
