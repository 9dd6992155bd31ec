"""L-BFGS: a limited-memory quasi-Newton optimizer that re-evaluates the loss through a closure.

All parameters are seen as one flat vector; the history of steps and gradient changes, the search
direction and the line search work on that vector in plain numpy, and each new point is written into the
parameters' buffers in place (bumping their version counters, as ``Optimizer.step`` does). The iterations,
the fixed step, the strong-Wolfe line search and its cubic interpolation are torch.optim.LBFGS's, so the same
closure from the same start gives the same iterates and the same number of closure calls. This file holds
only the optimizer: it must not change the ``Optimizer`` base or the other rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..anomaly import bump
from ..grad_mode import enable_grad, no_grad
from ..tensor import Tensor
from .optimizer import Optimizer

__all__ = ["LBFGS"]

LINE_SEARCHES = (None, "strong_wolfe")

# The bracket width (times the largest |d_i|) below which the zoom phase stops. torch's LBFGS does not pass
# its tolerance_change to the line search, which keeps this default; so does this one.
_ZOOM_TOLERANCE = 1e-9

# The state the optimizer keeps between steps (under its first parameter), each entry with its kind.
_STATE_KINDS = {
    "func_evals": "integer",
    "n_iter": "integer",
    "d": "vector",
    "t": "real",
    "old_dirs": "vectors",
    "old_stps": "vectors",
    "ro": "reals",
    "H_diag": "real",
    "prev_flat_grad": "vector",
    "prev_loss": "real",
}


def _cubic_minimum(
    x1: float,
    f1: float,
    g1: float,
    x2: float,
    f2: float,
    g2: float,
    bounds: tuple[float, float] | None = None,
) -> float:
    """The minimizer of the cubic through ``(x1, f1)`` and ``(x2, f2)`` with slopes ``g1`` and ``g2``,
    clipped to ``bounds`` (the interval between the points by default); the middle of the bounds when the
    cubic has no minimum.

    Examples
    --------
    >>> float(_cubic_minimum(0.0, 0.0, -1.0, 2.0, 0.0, 1.0))  # (x - 1)^2 / 2 - 1/2
    1.0
    """
    if bounds is not None:
        low, high = bounds
    else:
        low, high = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square < 0:
        return (low + high) / 2.0
    d2 = np.sqrt(d2_square)
    if x1 <= x2:
        minimum = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        minimum = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    # Python's min and max, not np.clip: they keep a nan minimum as nan, as the reference does.
    return min(max(minimum, low), high)


def _strong_wolfe(
    evaluate: Callable[[Any], tuple[float, np.ndarray]],
    t: Any,
    d: np.ndarray,
    f: float,
    g: np.ndarray,
    gtd: Any,
    max_ls: int,
    c1: float = 1e-4,
    c2: float = 0.9,
) -> tuple[float, np.ndarray, Any, int]:
    """A step length along ``d`` that meets the strong Wolfe conditions, from the trial length ``t``.

    ``evaluate(t)`` gives the loss and the flat gradient at ``x + t d``; ``f``, ``g`` and ``gtd`` are the
    loss, the gradient and the slope ``g . d`` at ``x``. Brackets an acceptable length (extrapolating by
    cubic interpolation), then zooms in on it; at most ``max_ls`` evaluations after the first. Returns the
    loss and gradient at the chosen length, the length, and the number of evaluations.
    """
    d_norm = np.abs(d).max()
    f_new, g_new = evaluate(t)
    evaluations = 1
    gtd_new = g_new.dot(d)

    # Bracketing: grow the step until the interval [t_prev, t] holds an acceptable length.
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    iterations = 0
    bracket: list[Any] = []
    bracket_f: list[float] = []
    bracket_g: list[np.ndarray] = []
    bracket_gtd: list[Any] = []
    while iterations < max_ls:
        if f_new > (f + c1 * t * gtd) or (iterations > 1 and f_new >= f_prev):
            bracket, bracket_f, bracket_g = [t_prev, t], [f_prev, f_new], [g_prev, g_new]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f, bracket_g = [t_prev, t], [f_prev, f_new], [g_prev, g_new]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        shortest, longest = t + 0.01 * (t - t_prev), t * 10
        t_prev, t = t, _cubic_minimum(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, (shortest, longest))
        f_prev, g_prev, gtd_prev = f_new, g_new, gtd_new
        f_new, g_new = evaluate(t)
        evaluations += 1
        gtd_new = g_new.dot(d)
        iterations += 1
    if iterations >= max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # Zoom: shrink the bracket around the lowest point until a length meets both conditions.
    insufficient_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and iterations < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < _ZOOM_TOLERANCE:
            break
        t = _cubic_minimum(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # A trial too near an end of the bracket (twice in a row, or outside it) moves a tenth of the
        # bracket's width inside, so that the bracket keeps shrinking.
        margin = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < margin:
            if insufficient_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - margin
                else:
                    t = min(bracket) + margin
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = evaluate(t)
        evaluations += 1
        gtd_new = g_new.dot(d)
        iterations += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low]:
            # No sufficient decrease, or not below the lowest point: the trial becomes the high end.
            bracket[high], bracket_f[high], bracket_g[high], bracket_gtd[high] = t, f_new, g_new, gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low], bracket_g[low], bracket_gtd[low] = t, f_new, g_new, gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evaluations


class LBFGS(Optimizer):
    """L-BFGS, torch.optim.LBFGS's algorithm: ``step(closure)`` runs up to ``max_iter`` iterations.

    Each iteration moves along ``d = -H g``, where ``H`` is the inverse-Hessian estimate built from the last
    ``history_size`` pairs of steps and gradient changes (the two-loop recursion, scaled by ``s.y / y.y``;
    a pair with ``s.y <= 1e-10`` is skipped). The step is ``lr`` (``min(1, 1 / |g|_1) * lr`` on the very
    first iteration), or the length a strong-Wolfe line search finds from it when
    ``line_search_fn="strong_wolfe"``. A step stops early once ``max_eval`` closure calls are spent, the
    largest gradient entry is at most ``tolerance_grad``, or the step or the loss changes by less than
    ``tolerance_change``. The history is kept between steps.

    ``closure()`` must zero the gradients, compute the loss, call ``backward`` on it and return it; it runs
    with recording on. Parameters without a gradient count as having a zero one. There is one parameter
    group only, and the parameters are real. ``step`` returns the loss of the closure's first call.

    Examples
    --------
    >>> import tape
    >>> x = tape.tensor([3.0, -2.0], requires_grad=True)
    >>> optimizer = LBFGS([x], line_search_fn="strong_wolfe")
    >>> def closure():
    ...     optimizer.zero_grad()
    ...     loss = np.sum((x - np.array([1.0, 2.0])) ** 2)
    ...     loss.backward()
    ...     return loss
    >>> float(optimizer.step(closure))
    20.0
    >>> np.round(x.data, 6)
    array([1., 2.])
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        params = list(params)
        if params and isinstance(params[0], dict) and len(params) > 1:
            raise ValueError(
                f"LBFGS: takes one parameter group, got {len(params)}; it has no per-group options, so "
                "pass every parameter in one list (or one group)"
            )
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )
        problems = self._hyperparameter_problems(defaults)
        if problems:
            raise ValueError("LBFGS: " + "; ".join(problems))
        super().__init__(params, defaults)

    @staticmethod
    def _hyperparameter_problems(group: Mapping[str, Any]) -> list[str]:
        problems = []
        if group.get("line_search_fn") not in LINE_SEARCHES:
            given = group.get("line_search_fn")
            problems.append(f"line_search_fn should be None (a fixed step) or 'strong_wolfe', got {given!r}")
        for name in ("max_iter", "max_eval", "history_size"):
            value = group.get(name)
            if not Optimizer._is_integer(value) or value < 1:
                problems.append(f"{name} should be a positive integer, got {value!r}")
        for name in ("lr", "tolerance_grad", "tolerance_change"):
            value = group.get(name)
            if not Optimizer._is_real(value) or not value >= 0:
                problems.append(f"{name} should be a non-negative number, got {value!r}")
        return problems

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add the one parameter group; a second is refused (L-BFGS has no per-group options)."""
        if self.param_groups:
            raise ValueError(
                "LBFGS: takes one parameter group and already has it; it has no per-group options, so "
                "build it over every parameter at once"
            )
        parameters = list(group["params"])
        for parameter in parameters:
            if isinstance(parameter, Tensor) and parameter.dtype.kind == "c":
                raise TypeError(f"LBFGS: parameters must be real, got one of dtype {parameter.dtype}")
        super().add_param_group(group)

    # -- the parameters as one flat vector ----------------------------------------------------------------
    def _parameters(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def _flat_values(self) -> np.ndarray:
        return np.concatenate([p._data.reshape(-1) for p in self._parameters()])

    def _flat_grad(self) -> np.ndarray:
        pieces = []
        for parameter in self._parameters():
            grad = parameter.grad
            if grad is None:
                pieces.append(np.zeros(parameter.size, dtype=parameter.dtype))
            else:
                pieces.append(np.asarray(grad._data if isinstance(grad, Tensor) else grad).reshape(-1))
        return np.concatenate(pieces)

    def _write(self, flat: np.ndarray, step_size: Any = None) -> None:
        """Set the parameters to ``flat``, or add ``step_size * flat`` to them, in place."""
        offset = 0
        for parameter in self._parameters():
            value = parameter._data
            segment = flat[offset : offset + value.size].reshape(value.shape)
            if step_size is None:
                value[...] = segment
            else:
                value += step_size * segment
            bump(parameter._vc)
            offset += value.size

    def _evaluate(self, closure: Callable[[], Any]) -> tuple[Any, float, np.ndarray]:
        with enable_grad():
            loss = closure()
        return loss, float(loss), self._flat_grad()

    # -- the step -----------------------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Run up to ``max_iter`` L-BFGS iterations; return the loss the closure gave first.

        ``closure()`` must zero the gradients, compute the loss, call ``backward`` and return the loss.
        """
        if closure is None or not callable(closure):
            raise TypeError(
                "LBFGS.step: needs a closure that zeroes the gradients, computes the loss, calls backward on "
                f"it and returns it (L-BFGS evaluates the loss several times per step); got {closure!r}"
            )
        if len(self.param_groups) != 1:
            raise ValueError(f"LBFGS.step: expected one parameter group, got {len(self.param_groups)}")
        group = self.param_groups[0]
        with no_grad():
            return self._iterate(closure, group)

    def _iterate(self, closure: Callable[[], Any], group: dict[str, Any]) -> Any:
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]
        # The state is global; it is kept under the first parameter, as torch keeps it.
        state = self.state.setdefault(id(self._parameters()[0]), {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        first_loss, loss, flat_grad = self._evaluate(closure)
        evaluations = 1
        state["func_evals"] += 1
        if np.abs(flat_grad).max() <= tolerance_grad:
            return first_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag = state.get("H_diag")  # noqa: N806 (the name of the reference and of the literature)
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        iteration = 0
        while iteration < max_iter:
            iteration += 1
            state["n_iter"] += 1

            # The direction: steepest descent at first, then the two-loop recursion over the history.
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1  # noqa: N806
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y.dot(s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / y.dot(y)  # noqa: N806
                alphas = [0.0] * len(old_dirs)
                q = -flat_grad
                for i in range(len(old_dirs) - 1, -1, -1):
                    alphas[i] = old_stps[i].dot(q) * ro[i]
                    q += -alphas[i] * old_dirs[i]
                d = q * H_diag
                for i in range(len(old_dirs)):
                    beta = old_dirs[i].dot(d) * ro[i]
                    d += (alphas[i] - beta) * old_stps[i]

            prev_flat_grad = flat_grad.copy()
            prev_loss = loss

            # The step length's first guess (smaller on the very first iteration), and the slope along d.
            t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * lr if state["n_iter"] == 1 else lr
            gtd = flat_grad.dot(d)
            if gtd > -tolerance_change:
                break

            step_evaluations = 0
            if group["line_search_fn"] == "strong_wolfe":
                start = self._flat_values()

                def evaluate(length: Any, start: np.ndarray = start, d: np.ndarray = d) -> tuple[float, Any]:
                    self._write(d, length)
                    _, value, gradient = self._evaluate(closure)
                    self._write(start)
                    return value, gradient

                loss, flat_grad, t, step_evaluations = _strong_wolfe(
                    evaluate, t, d, loss, flat_grad, gtd, max_ls=max_eval - evaluations
                )
                self._write(d, t)
                converged = np.abs(flat_grad).max() <= tolerance_grad
            else:
                self._write(d, t)
                converged = False
                if iteration != max_iter:
                    # The last iteration's point is not evaluated: the next step's first call does it.
                    _, loss, flat_grad = self._evaluate(closure)
                    converged = np.abs(flat_grad).max() <= tolerance_grad
                    step_evaluations = 1
            evaluations += step_evaluations
            state["func_evals"] += step_evaluations

            if iteration == max_iter or evaluations >= max_eval or converged:
                break
            if np.abs(d * t).max() <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break

        state.update(
            d=d,
            t=t,
            old_dirs=old_dirs,
            old_stps=old_stps,
            ro=ro,
            H_diag=H_diag,
            prev_flat_grad=prev_flat_grad,
            prev_loss=prev_loss,
        )
        return first_loss

    # -- saving and restoring -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The state (under position 0, the first parameter, as torch keeps it) and the hyperparameters.

        Examples
        --------
        >>> import tape
        >>> optimizer = LBFGS([tape.tensor([1.0], requires_grad=True)])
        >>> optimizer.state_dict()["param_groups"][0]["max_eval"]
        25
        """
        saved = super().state_dict()
        saved["state"] = {
            position: {name: _copied(value) for name, value in entries.items()}
            for position, entries in saved["state"].items()
        }
        return saved

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned, for an L-BFGS over parameters of the same sizes.

        Everything is checked first, so a failed load changes nothing. The state may hold only the entries
        L-BFGS keeps (``n_iter``, ``d``, ``old_dirs``, ...), its vectors as long as all the parameters
        together, under position 0. Raises ``ValueError`` naming what does not fit.

        Examples
        --------
        >>> import tape
        >>> optimizer = LBFGS([tape.tensor([1.0, 2.0], requires_grad=True)])
        >>> saved = optimizer.state_dict()
        >>> saved["state"] = {0: {"n_iter": 1, "d": np.zeros(3)}}
        >>> optimizer.load_state_dict(saved)
        Traceback (most recent call last):
        ...
        ValueError: LBFGS.load_state_dict: state 'd' has shape (3,), expected (2,) (all the parameters...
        """
        where = "LBFGS.load_state_dict"
        if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(f"{where}: expected a mapping with 'state' and 'param_groups'")
        groups = state_dict["param_groups"]
        self._saved_owners(groups)
        problems = [problem for group in groups for problem in self._hyperparameter_problems(group)]
        saved_state = state_dict["state"]
        if not isinstance(saved_state, Mapping):
            raise ValueError(f"{where}: 'state' should be a mapping, got {type(saved_state).__name__}")
        size = sum(p.size for p in self._parameters())
        dtype = np.result_type(*(p.dtype for p in self._parameters()))
        restored: dict[str, Any] = {}
        for position, entries in saved_state.items():
            if position not in (0, "0") or not isinstance(entries, Mapping):
                problems.append(f"state {position!r}: L-BFGS keeps its state under position 0 only")
                continue
            for name, value in entries.items():
                value, problem = _restored(name, value, size, dtype)
                if problem is None:
                    restored[name] = value
                else:
                    problems.append(problem)
        lengths = {name: len(restored[name]) for name in ("old_dirs", "old_stps", "ro") if name in restored}
        if len(set(lengths.values())) > 1:
            problems.append(f"old_dirs, old_stps and ro should be as long as each other, got {lengths}")
        if restored and "n_iter" in restored and restored["n_iter"] > 0:
            lacking = sorted(set(_STATE_KINDS) - set(restored))
            if lacking:
                problems.append(f"state lacks {', '.join(map(repr, lacking))} (kept after a first iteration)")
        if problems:
            raise ValueError(f"{where}: " + "; ".join(problems) + "; nothing was loaded")
        super().load_state_dict({"state": {}, "param_groups": groups})
        self.state = {id(self._parameters()[0]): restored} if restored else {}


def _copied(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def _restored(name: str, value: Any, size: int, dtype: np.dtype) -> tuple[Any, str | None]:
    """One saved state entry as L-BFGS keeps it, or what is wrong with it."""
    kind = _STATE_KINDS.get(name)
    if kind is None:
        return None, f"state {name!r} is not one L-BFGS keeps ({', '.join(_STATE_KINDS)})"
    if value is None and kind != "integer":
        return None, None
    if kind == "integer":
        if not Optimizer._is_integer(value) or value < 0:
            return None, f"state {name!r} should be a non-negative integer, got {value!r}"
        return int(value), None
    if kind == "real":
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if not Optimizer._is_real(value) or not math.isfinite(value):
            return None, f"state {name!r} should be a finite real number, got {value!r}"
        return value, None
    if kind == "reals":
        if not isinstance(value, list | tuple) or not all(Optimizer._is_real(item) for item in value):
            return None, f"state {name!r} should be a list of real numbers, got {value!r}"
        return list(value), None
    vectors = [value] if kind == "vector" else value
    if not isinstance(vectors, list | tuple):
        return None, f"state {name!r} should be a list of arrays, got {type(value).__name__}"
    for vector in vectors:
        if not isinstance(vector, np.ndarray) or vector.dtype.kind not in "biuf":
            return None, f"state {name!r} should hold real arrays, got {vector!r}"
        if vector.shape != (size,):
            return None, (
                f"state {name!r} has shape {vector.shape}, expected ({size},) (all the parameters' "
                "elements, flattened)"
            )
    copies = [np.array(vector, dtype=dtype, copy=True) for vector in vectors]
    return (copies[0] if kind == "vector" else copies), None
