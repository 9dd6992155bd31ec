"""tape/nn/lr_scheduler.py and tape/nn/clip.py: each scheduler's learning rates (and cycled momenta) step by
step against torch's, their state saved and restored, their errors; clip_grad_value_ against torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tape
from tape.nn import optim

TOLERANCE = dict(rtol=1e-12, atol=1e-15)


def _pair(torch, lrs=(0.2, 0.05), momentum=0.9, optimizer="SGD", **options):
    """Our optimizer and torch's, with one dummy parameter per group and the same settings."""
    ours = getattr(optim, optimizer)(
        [{"params": [tape.tensor([0.0], requires_grad=True)], "lr": lr} for lr in lrs],
        **({"momentum": momentum} if optimizer == "SGD" else {}),
        **options,
    )
    theirs = getattr(torch.optim, optimizer)(
        [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs],
        **({"momentum": momentum} if optimizer == "SGD" else {}),
        **options,
    )
    return ours, theirs


def _assert_same_rates(ours, theirs, our_optimizer, torch_optimizer, step):
    np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), **TOLERANCE, err_msg=f"step {step}")
    np.testing.assert_allclose(
        [g["lr"] for g in our_optimizer.param_groups],
        [g["lr"] for g in torch_optimizer.param_groups],
        **TOLERANCE,
        err_msg=f"step {step}",
    )


class Halving:
    """A lambda with state, which LambdaLR saves (its __dict__) as torch's does."""

    def __init__(self, every: int) -> None:
        self.every = every

    def __call__(self, epoch: int) -> float:
        return 0.5 ** (epoch // self.every)


LAMBDAS = {
    "one for all groups": lambda epoch: 0.95**epoch * (1 + math.sin(epoch)),
    "one per group": [lambda epoch: 1 / (1 + epoch), lambda epoch: 0.9 ** (epoch % 7)],
    "callable object": Halving(4),
}


@pytest.mark.parametrize("case", LAMBDAS)
def test_lambda_lr_follows_torch(case):
    torch = pytest.importorskip("torch")
    our_optimizer, torch_optimizer = _pair(torch)
    ours = optim.LambdaLR(our_optimizer, LAMBDAS[case])
    theirs = torch.optim.lr_scheduler.LambdaLR(torch_optimizer, LAMBDAS[case])
    for step in range(60):
        _assert_same_rates(ours, theirs, our_optimizer, torch_optimizer, step)
        torch_optimizer.step()
        ours.step(), theirs.step()


ONE_CYCLE = {
    "cos": dict(max_lr=1.0, total_steps=50),
    "linear": dict(max_lr=[1.0, 0.3], total_steps=50, anneal_strategy="linear"),
    "cos three phase": dict(max_lr=0.5, total_steps=47, three_phase=True, pct_start=0.25),
    "linear three phase": dict(max_lr=0.5, total_steps=60, three_phase=True, anneal_strategy="linear"),
    "epochs": dict(max_lr=2.0, epochs=7, steps_per_epoch=9, div_factor=10.0, final_div_factor=100.0),
    "momentum lists": dict(max_lr=1.0, total_steps=30, base_momentum=[0.8, 0.7], max_momentum=(0.9, 0.99)),
    "no momentum cycling": dict(max_lr=1.0, total_steps=30, cycle_momentum=False, pct_start=0.5),
    "all rise": dict(max_lr=1.0, total_steps=20, pct_start=1.0),
}


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("case", ONE_CYCLE)
def test_one_cycle_lr_follows_torch(case, optimizer):
    torch = pytest.importorskip("torch")
    our_optimizer, torch_optimizer = _pair(torch, optimizer=optimizer)
    ours = optim.OneCycleLR(our_optimizer, **ONE_CYCLE[case])
    theirs = torch.optim.lr_scheduler.OneCycleLR(torch_optimizer, **ONE_CYCLE[case])
    key = "betas" if optimizer == "Adam" else "momentum"
    for step in range(ours.total_steps):
        _assert_same_rates(ours, theirs, our_optimizer, torch_optimizer, step)
        np.testing.assert_allclose(
            np.array([g[key] for g in our_optimizer.param_groups], dtype=float),
            np.array([g[key] for g in torch_optimizer.param_groups], dtype=float),
            **TOLERANCE,
        )
        torch_optimizer.step()
        if step < ours.total_steps - 1:
            ours.step(), theirs.step()
    assert ours.total_steps == theirs.total_steps


def test_one_cycle_lr_moves_adam_beta1_and_keeps_beta2():
    optimizer = optim.Adam([tape.tensor([0.0], requires_grad=True)], betas=(0.5, 0.97))
    scheduler = optim.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)
    assert optimizer.param_groups[0]["betas"] == (0.95, 0.97)
    for _ in range(3):
        scheduler.step()
    beta1, beta2 = optimizer.param_groups[0]["betas"]
    assert 0.85 <= beta1 < 0.95 and beta2 == 0.97


# Plateaus, a rise, a slow improvement below the relative threshold, and long runs that hit min_lr.
METRICS = [
    *[5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 2.9999, 2.9999, 2.5, 2.5, 2.5, 2.6, 2.7, 2.8],
    *[2.0 - 0.01 * k for k in range(10)],
    *[1.9] * 30,
    *[1.0, 1.0, 2.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
]
PLATEAU = {
    "defaults": dict(),
    "patience and factor": dict(patience=2, factor=0.5),
    "cooldown and min_lr": dict(patience=1, factor=0.3, cooldown=3, min_lr=0.01),
    "min_lr per group": dict(patience=0, factor=0.5, min_lr=[0.02, 0.001]),
    "absolute threshold": dict(patience=2, threshold=0.05, threshold_mode="abs", cooldown=1),
    "max mode": dict(mode="max", patience=2, factor=0.7, cooldown=2),
    "max mode absolute": dict(mode="max", patience=1, threshold=0.2, threshold_mode="abs"),
    "large eps": dict(patience=0, factor=0.9, eps=0.01),
}


@pytest.mark.parametrize("case", PLATEAU)
def test_reduce_lr_on_plateau_follows_torch(case):
    torch = pytest.importorskip("torch")
    our_optimizer, torch_optimizer = _pair(torch)
    ours = optim.ReduceLROnPlateau(our_optimizer, **PLATEAU[case])
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_optimizer, **PLATEAU[case])
    _assert_same_rates(ours, theirs, our_optimizer, torch_optimizer, -1)
    rates = set()
    for step, metric in enumerate(METRICS):
        torch_optimizer.step()
        ours.step(metric), theirs.step(metric)
        _assert_same_rates(ours, theirs, our_optimizer, torch_optimizer, step)
        assert (ours.best, ours.num_bad_epochs, ours.cooldown_counter, ours.last_epoch) == (
            theirs.best,
            theirs.num_bad_epochs,
            theirs.cooldown_counter,
            theirs.last_epoch,
        ), step
        rates.add(ours.get_last_lr()[0])
    assert len(rates) > 1, "the metric sequence should cause at least one reduction"


def test_reduce_lr_on_plateau_takes_arrays_and_tensors_and_stops_at_min_lr():
    optimizer = optim.SGD([tape.tensor([0.0], requires_grad=True)], lr=1.0)
    scheduler = optim.ReduceLROnPlateau(optimizer, patience=0, factor=0.1, min_lr=0.05)
    for metric in [np.float32(1.0), np.array(1.0), tape.tensor(1.0), 1.0, 1.0]:
        scheduler.step(metric)
    assert scheduler.get_last_lr() == [0.05] == [optimizer.param_groups[0]["lr"]]


def _build(kind):
    optimizer = optim.SGD(
        [{"params": [tape.tensor([0.0], requires_grad=True)], "lr": lr} for lr in (0.2, 0.05)], momentum=0.9
    )
    if kind == "lambda":
        return optim.LambdaLR(optimizer, [Halving(3), lambda epoch: 0.9**epoch])
    if kind == "one cycle":
        return optim.OneCycleLR(optimizer, max_lr=1.0, total_steps=20, three_phase=True)
    return optim.ReduceLROnPlateau(optimizer, patience=1, cooldown=1, factor=0.5)


def _advance(scheduler, steps, start):
    for step in range(start, start + steps):
        if isinstance(scheduler, optim.ReduceLROnPlateau):
            scheduler.step(METRICS[step])
        else:
            scheduler.step()


@pytest.mark.parametrize("kind", ["lambda", "one cycle", "plateau"])
def test_scheduler_state_round_trips(kind):
    straight = _build(kind)
    _advance(straight, 14, 0)
    first = _build(kind)
    _advance(first, 7, 0)
    saved = first.state_dict()
    resumed = _build(kind)
    resumed.optimizer.load_state_dict(first.optimizer.state_dict())
    if kind == "lambda":
        resumed.lr_lambdas[0].every = 99  # restored from the saved state
    resumed.load_state_dict(saved)
    assert resumed.state_dict() == saved
    _advance(resumed, 7, 7)
    assert resumed.get_last_lr() == straight.get_last_lr()
    assert resumed.state_dict() == straight.state_dict()
    if kind == "lambda":
        assert saved["lr_lambdas"] == [{"every": 3}, None]
        assert resumed.lr_lambdas[0].every == 3


BAD_STATES = {
    "lambda": {
        "lambdas missing": (
            lambda s: {k: v for k, v in s.items() if k != "lr_lambdas"},
            "lr_lambdas should be 2",
        ),
        "lambdas of another length": (lambda s: {**s, "lr_lambdas": [None]}, "lr_lambdas should be 2"),
        "state for a plain function": (
            lambda s: {**s, "lr_lambdas": [None, {"a": 1}]},
            r"lr_lambdas\[1\] should be None for a plain function",
        ),
        "a string epoch": (lambda s: {**s, "last_epoch": "3"}, "last_epoch should be an integer"),
        "not a mapping": (lambda s: list(s.items()), "expected a mapping"),
    },
    "one cycle": {
        "unknown strategy": (lambda s: {**s, "anneal_strategy": "step"}, "anneal_strategy should be 'cos'"),
        "a float step count": (lambda s: {**s, "total_steps": 20.5}, "total_steps should be an integer"),
    },
    "plateau": {
        "unknown mode": (lambda s: {**s, "mode": "mean"}, "mode should be 'min' or 'max', got 'mean'"),
        "unknown threshold mode": (lambda s: {**s, "threshold_mode": "pct"}, "threshold_mode should be"),
        "min_lrs of another length": (lambda s: {**s, "min_lrs": [0.0]}, "min_lrs should be 2 numbers"),
    },
}


@pytest.mark.parametrize("kind, case", [(kind, case) for kind, cases in BAD_STATES.items() for case in cases])
def test_a_bad_scheduler_state_is_refused_and_changes_nothing(kind, case):
    trained = _build(kind)
    _advance(trained, 5, 0)
    fresh = _build(kind)
    before = fresh.state_dict()
    change, message = BAD_STATES[kind][case]
    name = type(fresh).__name__
    with pytest.raises(ValueError, match=f"^{name}.load_state_dict: .*{message}"):
        fresh.load_state_dict(change(trained.state_dict()))
    assert fresh.state_dict() == before
    if kind == "lambda":
        assert fresh.lr_lambdas[0].every == 3


def _optimizer(groups=1, kind=optim.SGD):
    return kind([{"params": [tape.tensor([0.0], requires_grad=True)]} for _ in range(groups)], lr=0.1)


@pytest.mark.parametrize(
    "build, error, message",
    [
        (
            lambda: optim.LambdaLR(_optimizer(2), [lambda e: 1.0]),
            ValueError,
            r"one lr_lambda per .* \(2\), got 1",
        ),
        (
            lambda: optim.LambdaLR(_optimizer(), 0.5),
            TypeError,
            "lr_lambda 0 should be a function of the epoch",
        ),
        (lambda: optim.OneCycleLR(_optimizer(), 1.0), ValueError, "give total_steps, or both epochs"),
        (lambda: optim.OneCycleLR(_optimizer(), 1.0, epochs=3), ValueError, "give total_steps, or both"),
        (
            lambda: optim.OneCycleLR(_optimizer(), 1.0, total_steps=0),
            ValueError,
            "total_steps should be a pos",
        ),
        (
            lambda: optim.OneCycleLR(_optimizer(), 1.0, epochs=2, steps_per_epoch=2.5),
            ValueError,
            "steps_per_ep",
        ),
        (
            lambda: optim.OneCycleLR(_optimizer(), 1.0, 10, pct_start=1.5),
            ValueError,
            r"pct_start .* \[0, 1\]",
        ),
        (
            lambda: optim.OneCycleLR(_optimizer(), 1.0, 10, anneal_strategy="exp"),
            ValueError,
            "'cos' or 'linear'",
        ),
        (lambda: optim.OneCycleLR(_optimizer(2), [1.0], 10), ValueError, r"one max_lr per .* \(2\), got 1"),
        (
            lambda: optim.OneCycleLR(_optimizer(kind=optim.Adagrad), 1.0, 10),
            ValueError,
            "Adagrad has neither momentum nor betas to cycle; pass cycle_momentum=False",
        ),
        (
            lambda: optim.ReduceLROnPlateau(_optimizer(), mode="mean"),
            ValueError,
            "mode should be 'min' or 'max'",
        ),
        (lambda: optim.ReduceLROnPlateau(_optimizer(), threshold_mode="x"), ValueError, "'rel' or 'abs'"),
        (
            lambda: optim.ReduceLROnPlateau(_optimizer(), factor=1.0),
            ValueError,
            r"factor should be < 1.0, got",
        ),
        (
            lambda: optim.ReduceLROnPlateau(_optimizer(2), min_lr=[0.1]),
            ValueError,
            "one min_lr per parameter",
        ),
    ],
)
def test_scheduler_errors_say_what_was_expected(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_one_cycle_lr_refuses_to_step_past_total_steps():
    scheduler = optim.OneCycleLR(_optimizer(), max_lr=1.0, total_steps=3, cycle_momentum=False)
    scheduler.step(), scheduler.step(), scheduler.step()  # steps 1..3: the last lands on total_steps
    with pytest.raises(ValueError, match="OneCycleLR: stepped 4 times, past total_steps=3"):
        scheduler.step()


def test_one_cycle_lr_works_with_adagrad_without_momentum_cycling():
    optimizer = _optimizer(kind=optim.Adagrad)
    scheduler = optim.OneCycleLR(optimizer, max_lr=1.0, total_steps=4, cycle_momentum=False)
    assert scheduler.get_last_lr() == [pytest.approx(1.0 / 25)]
    assert "momentum" not in optimizer.param_groups[0] and "betas" not in optimizer.param_groups[0]


def test_reduce_lr_on_plateau_with_a_new_group_and_min_lr_per_group_says_what_to_fix():
    optimizer = _optimizer()
    scheduler = optim.ReduceLROnPlateau(optimizer, patience=0, min_lr=[0.0])
    optimizer.add_param_group({"params": [tape.tensor([0.0], requires_grad=True)]})
    scheduler.step(1.0)
    with pytest.raises(RuntimeError, match="has 2 parameter groups, min_lrs 1"):
        scheduler.step(1.0)
    shared = optim.ReduceLROnPlateau(optimizer, patience=0, min_lr=0.001)
    optimizer.add_param_group({"params": [tape.tensor([0.0], requires_grad=True)]})
    shared.step(1.0), shared.step(1.0)
    assert shared.min_lrs == [0.001] * 3


# -- clip_grad_value_ ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("clip_value", [0.0, 0.3, 1.5, 100.0])
def test_clip_grad_value_follows_torch(clip_value, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(shape).astype(dtype) for shape in [(3, 4), (5,), ()]]
    ours = [tape.tensor(np.zeros(g.shape, dtype), requires_grad=True) for g in grads]
    theirs = [
        torch.zeros(g.shape, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True) for g in grads
    ]
    without_grad = tape.tensor([1.0], requires_grad=True)
    for p, t, g in zip(ours, theirs, grads, strict=True):
        p.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
    assert optim.clip_grad_value_([*ours, without_grad], clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, t, g in zip(ours, theirs, grads, strict=True):
        assert p.grad.dtype == g.dtype and p.grad.shape == g.shape
        np.testing.assert_array_equal(p.grad, t.grad.numpy())
    assert without_grad.grad is None


def test_clip_grad_value_takes_one_tensor_leaves_the_old_array_and_refuses_a_negative_limit():
    w = tape.tensor([0.0, 0.0], requires_grad=True)
    original = np.array([-5.0, 0.25])
    w.grad = original
    optim.clip_grad_value_(w, 1.0)
    np.testing.assert_array_equal(w.grad, [-1.0, 0.25])
    np.testing.assert_array_equal(original, [-5.0, 0.25])
    w.grad = tape.tensor([3.0, -3.0])
    optim.clip_grad_value_([w], 2)
    np.testing.assert_array_equal(w.grad, [2.0, -2.0])
    with pytest.raises(
        ValueError, match="clip_grad_value_: clip_value should be a non-negative number, got -1"
    ):
        optim.clip_grad_value_([w], -1.0)
