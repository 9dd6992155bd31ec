"""tape/nn/lbfgs.py: L-BFGS's iterates and closure calls against torch.optim.LBFGS (when installed), on the
Rosenbrock function and on small regressions over several parameters; convergence; errors; saved state."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tape
from tape.nn.lbfgs import LBFGS


def _rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _counting_closure(optimizer, loss_of, parameters, calls):
    """A closure that zeroes the gradients, evaluates ``loss_of(*parameters)``, calls backward and counts."""

    def closure():
        calls.append(None)
        optimizer.zero_grad()
        loss = loss_of(*parameters)
        loss.backward()
        return loss

    return closure


def _follow_torch(loss_of, initial, options, steps):
    """Run tape's and torch's LBFGS side by side from ``initial``; return the largest difference of the
    iterates after any step, and the closure calls of each."""
    torch = pytest.importorskip("torch")
    ours = [tape.tensor(value.copy(), requires_grad=True) for value in initial]
    theirs = [torch.tensor(value.copy(), requires_grad=True) for value in initial]
    ours_optimizer = LBFGS(ours, **options)
    torch_optimizer = torch.optim.LBFGS(theirs, **options)
    ours_calls, torch_calls = [], []
    ours_closure = _counting_closure(ours_optimizer, loss_of, ours, ours_calls)
    torch_closure = _counting_closure(torch_optimizer, loss_of, theirs, torch_calls)
    worst = 0.0
    for _ in range(steps):
        ours_loss = ours_optimizer.step(ours_closure)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # float() of a loss that requires grad, inside torch's step
            torch_loss = torch_optimizer.step(torch_closure)
        assert float(ours_loss) == pytest.approx(float(torch_loss.detach()), rel=1e-9, abs=1e-12)
        for p, t in zip(ours, theirs, strict=True):
            worst = max(worst, float(np.max(np.abs(p.data - t.detach().numpy()), initial=0.0)))
        assert len(ours_calls) == len(torch_calls)
    return worst, len(ours_calls), len(torch_calls)


# Starting points and settings whose trajectories are not so sensitive that last-bit differences of the two
# libraries' dot products grow past 1e-10 (fixed steps of lr=1 from (-1.5, 2) wander for a while, and
# there a difference of one ulp becomes one of 1e-4 within a few steps).
ROSENBROCK_CASES = [
    ([1.5, 1.5], None, dict(lr=1, max_iter=20, history_size=100)),
    ([1.5, 1.5], None, dict(lr=1, max_iter=5, history_size=5)),
    ([1.5, 1.5], None, dict(lr=0.2, max_iter=10, history_size=10)),
    ([1.5, 1.5], None, dict(lr=0.9, max_iter=4, history_size=1)),
    ([1.5, 1.5], None, dict(lr=1, max_iter=1, history_size=10)),
    ([-1.2, 1.0], "strong_wolfe", dict(lr=1, max_iter=20, history_size=100)),
    ([0.0, 0.0], "strong_wolfe", dict(lr=1, max_iter=5, history_size=5)),
    ([0.0, 0.0], "strong_wolfe", dict(lr=0.5, max_iter=7, history_size=2)),
    ([0.0, 0.0], "strong_wolfe", dict(lr=0.2, max_iter=10, history_size=10)),
    ([1.5, 1.5], "strong_wolfe", dict(lr=0.9, max_iter=4, history_size=1)),
    ([1.5, 1.5], "strong_wolfe", dict(lr=1, max_iter=1, history_size=10)),  # max_eval 1: no line search
    # Looser tolerances and a tighter evaluation budget (the zoom's own tolerance stays 1e-9, as torch's).
    ([1.5, 1.5], None, dict(max_iter=10, max_eval=6, tolerance_grad=1e-3, tolerance_change=1e-4)),
    ([0.0, 0.0], "strong_wolfe", dict(max_iter=10, max_eval=9, tolerance_grad=1e-3, tolerance_change=1e-4)),
]


@pytest.mark.parametrize(("start", "line_search_fn", "options"), ROSENBROCK_CASES)
def test_rosenbrock_iterates_follow_torch(start, line_search_fn, options):
    worst, ours_calls, torch_calls = _follow_torch(
        lambda x: _rosenbrock(x),
        [np.array(start)],
        dict(options, line_search_fn=line_search_fn),
        steps=15,
    )
    assert worst <= 1e-10
    assert ours_calls == torch_calls


def _constant(like, array):
    """``array`` as a constant beside the parameter ``like``: a torch tensor for torch, the array for tape."""
    if type(like).__module__.startswith("torch"):
        import torch

        return torch.as_tensor(array)
    return array


def _log_one_plus_exp(z):
    if type(z).__module__.startswith("torch"):
        return (1 + z.exp()).log()
    return np.log(1 + np.exp(z))


def _least_squares_data():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((20, 3))
    targets = features @ rng.standard_normal((3, 2)) + 0.1 * rng.standard_normal((20, 2))
    return features, targets


def _least_squares(weights, bias, scale, unused):
    # Three parameters of shapes (3, 2), (2,) and (); the fourth takes no part, so its gradient stays None
    # (a zero gradient to L-BFGS).
    features, targets = (_constant(weights, array) for array in _least_squares_data())
    residual = features @ weights + bias - targets
    return (residual**2).sum() / 20 + 0.01 * (weights**2).sum() + (scale - 0.3) ** 2


def _logistic(weights, bias):
    rng = np.random.default_rng(1)
    features = rng.standard_normal((40, 4))
    labels = (features[:, 0] - features[:, 2] + 0.5 * rng.standard_normal(40) > 0).astype(float)
    features, labels = _constant(weights, features), _constant(weights, labels)
    logits = features @ weights + bias
    # log(1 + exp(z)) - y z, with a small ridge penalty so that the minimum exists
    return (_log_one_plus_exp(logits) - labels * logits).mean() + 0.01 * (weights**2).sum()


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize(
    "options",
    [dict(lr=1, max_iter=20, history_size=100), dict(lr=0.3, max_iter=6, history_size=2)],
    ids=["defaults", "short"],
)
def test_least_squares_over_several_parameters_follows_torch(line_search_fn, options):
    rng = np.random.default_rng(2)
    initial = [rng.standard_normal((3, 2)), rng.standard_normal(2), np.array(0.5), rng.standard_normal(3)]
    worst, ours_calls, torch_calls = _follow_torch(
        _least_squares, initial, dict(options, line_search_fn=line_search_fn), steps=6
    )
    assert worst <= 1e-10
    assert ours_calls == torch_calls


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_logistic_regression_follows_torch(line_search_fn):
    initial = [np.zeros(4), np.array(0.0)]
    worst, ours_calls, torch_calls = _follow_torch(
        _logistic, initial, dict(lr=1, max_iter=10, history_size=5, line_search_fn=line_search_fn), steps=5
    )
    assert worst <= 1e-10
    assert ours_calls == torch_calls


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_converges_to_the_minimum_of_rosenbrock(line_search_fn):
    x = tape.tensor([-1.2, 1.0], requires_grad=True)
    optimizer = LBFGS([x], line_search_fn=line_search_fn, max_iter=100, history_size=10)
    closure = _counting_closure(optimizer, _rosenbrock, [x], [])
    for _ in range(10):
        optimizer.step(closure)
    np.testing.assert_allclose(x.data, [1.0, 1.0], atol=1e-5)
    assert float(_rosenbrock(x)) < 1e-10


def test_step_returns_the_first_loss_and_counts_evaluations():
    x = tape.tensor([1.5, 1.5], requires_grad=True)
    optimizer = LBFGS([x], max_iter=4)
    calls = []
    closure = _counting_closure(optimizer, _rosenbrock, [x], calls)
    assert float(optimizer.step(closure)) == pytest.approx(float(_rosenbrock(tape.tensor([1.5, 1.5]))))
    state = optimizer.state[id(x)]
    # Fixed steps: one call before the iterations and one after each but the last.
    assert len(calls) == state["func_evals"] == 4
    assert state["n_iter"] == 4


def test_stops_at_once_where_the_gradient_is_below_tolerance():
    x = tape.tensor([1.0, 1.0], requires_grad=True)
    optimizer = LBFGS([x])
    calls = []
    optimizer.step(_counting_closure(optimizer, _rosenbrock, [x], calls))
    assert len(calls) == 1
    np.testing.assert_array_equal(x.data, [1.0, 1.0])


def test_step_counts_as_an_in_place_write():
    x = tape.tensor([1.5, 1.5], requires_grad=True)
    optimizer = LBFGS([x], max_iter=2)
    recorded = (x * x).sum()
    optimizer.step(_counting_closure(optimizer, _rosenbrock, [x], []))
    with pytest.raises(RuntimeError, match="changed in place"):
        recorded.backward()


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_state_dict_round_trip_resumes_the_same_iterates(line_search_fn):
    def fresh(values):
        parameters = [tape.tensor(v.copy(), requires_grad=True) for v in values]
        optimizer = LBFGS(parameters, max_iter=3, history_size=4, line_search_fn=line_search_fn)
        return parameters, optimizer

    rng = np.random.default_rng(3)
    initial = [rng.standard_normal((3, 2)), rng.standard_normal(2), np.array(0.5), rng.standard_normal(3)]
    parameters, optimizer = fresh(initial)
    closure = _counting_closure(optimizer, _least_squares, parameters, [])
    for _ in range(2):
        optimizer.step(closure)
    saved = optimizer.state_dict()
    resumed_parameters, resumed = fresh([p.data for p in parameters])
    resumed.load_state_dict(saved)
    resumed_closure = _counting_closure(resumed, _least_squares, resumed_parameters, [])
    for _ in range(3):
        optimizer.step(closure)
        resumed.step(resumed_closure)
        for p, q in zip(parameters, resumed_parameters, strict=True):
            np.testing.assert_array_equal(p.data, q.data)
    assert resumed.state[id(resumed_parameters[0])]["n_iter"] == optimizer.state[id(parameters[0])]["n_iter"]


def test_state_dict_is_a_copy():
    x = tape.tensor([1.5, 1.5], requires_grad=True)
    optimizer = LBFGS([x], max_iter=3)
    closure = _counting_closure(optimizer, _rosenbrock, [x], [])
    optimizer.step(closure)
    saved = optimizer.state_dict()
    before = [d.copy() for d in saved["state"][0]["old_dirs"]]
    optimizer.step(closure)
    for kept, now in zip(before, saved["state"][0]["old_dirs"], strict=True):
        np.testing.assert_array_equal(kept, now)


def test_load_state_dict_refuses_a_bad_state_and_changes_nothing():
    x = tape.tensor([1.5, 1.5], requires_grad=True)
    optimizer = LBFGS([x], max_iter=3)
    optimizer.step(_counting_closure(optimizer, _rosenbrock, [x], []))
    saved = optimizer.state_dict()
    state_before = optimizer.state_dict()
    broken = {**saved, "state": {0: {**saved["state"][0], "d": np.zeros(5), "unknown": 1}}}
    with pytest.raises(ValueError, match=r"'d' has shape \(5,\), expected \(2,\).*'unknown' is not one"):
        optimizer.load_state_dict(broken)
    wrong_search = {**saved, "param_groups": [{**saved["param_groups"][0], "line_search_fn": "armijo"}]}
    with pytest.raises(ValueError, match=r"line_search_fn should be None .* got 'armijo'"):
        optimizer.load_state_dict(wrong_search)
    np.testing.assert_array_equal(optimizer.state_dict()["state"][0]["d"], state_before["state"][0]["d"])
    assert optimizer.param_groups[0]["line_search_fn"] is None


def test_several_parameter_groups_are_refused():
    a = tape.tensor([1.0], requires_grad=True)
    b = tape.tensor([2.0], requires_grad=True)
    with pytest.raises(ValueError, match="LBFGS: takes one parameter group, got 2"):
        LBFGS([{"params": [a]}, {"params": [b], "lr": 0.1}])
    optimizer = LBFGS([a])
    with pytest.raises(ValueError, match="one parameter group and already has it"):
        optimizer.add_param_group({"params": [b]})


def test_step_needs_a_closure():
    x = tape.tensor([1.0], requires_grad=True)
    optimizer = LBFGS([x])
    with pytest.raises(TypeError, match=r"LBFGS\.step: needs a closure .* got None"):
        optimizer.step()
    with pytest.raises(TypeError, match="needs a closure"):
        optimizer.step(3.0)


def test_unknown_line_search_and_bad_settings_are_refused():
    x = tape.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"line_search_fn should be None .* or 'strong_wolfe', got 'wolfe'"):
        LBFGS([x], line_search_fn="wolfe")
    with pytest.raises(ValueError, match="lr should be a non-negative number, got -1"):
        LBFGS([x], lr=-1)
    with pytest.raises(ValueError, match="history_size should be a positive integer, got 0"):
        LBFGS([x], history_size=0)


def test_complex_parameters_are_refused():
    z = tape.tensor(np.array([1 + 1j]), requires_grad=True)
    with pytest.raises(TypeError, match="parameters must be real"):
        LBFGS([z])
