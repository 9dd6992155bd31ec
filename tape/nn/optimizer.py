"""The base of every optimizer: ``Optimizer`` holds the parameter groups and their hyperparameters and the
per-parameter state, zeroes gradients, and saves and restores its state. Holds no update rule (those are in
``optim`` and ``lbfgs``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..anomaly import bump
from ..grad_mode import no_grad
from ..tensor import Tensor
from .optim_common import gradient_of, is_integer, is_real


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
                    grad = gradient_of(parameter)
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
        >>> from tape.nn.optim import Adam
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

    _is_real = staticmethod(is_real)
    _is_integer = staticmethod(is_integer)

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
