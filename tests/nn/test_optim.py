"""tape/nn/optim.py: each optimizer's trajectory against torch's (when installed) and hand-written update
rules, schedulers, gradient clipping, and optimizer state saved and restored through one .npz file."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tape
import tape.nn as nn
from tape import jit
from tape.nn import optim, optim_kernels


def _quadratic_gradients(values, step):
    """A gradient that changes with the parameter and the step (so state matters)."""
    return [np.sin(v * (1 + step)) + 0.1 * v for v in values]


CASES = {
    "sgd": (optim.SGD, "SGD", dict(lr=0.1)),
    "sgd momentum": (optim.SGD, "SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    "sgd nesterov": (optim.SGD, "SGD", dict(lr=0.1, momentum=0.8, nesterov=True)),
    "adam": (optim.Adam, "Adam", dict(lr=0.05)),
    "adam amsgrad decay": (
        optim.Adam,
        "Adam",
        dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True),
    ),
    "adamw": (optim.AdamW, "AdamW", dict(lr=0.05, weight_decay=0.1)),
    "rmsprop": (optim.RMSprop, "RMSprop", dict(lr=0.01)),
    "rmsprop centered momentum": (
        optim.RMSprop,
        "RMSprop",
        dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1),
    ),
    "rmsprop alpha momentum": (optim.RMSprop, "RMSprop", dict(lr=0.01, alpha=0.8, eps=1e-3, momentum=0.3)),
    "adagrad": (optim.Adagrad, "Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    "adagrad decay": (optim.Adagrad, "Adagrad", dict(lr=0.1, weight_decay=0.1, eps=1e-3)),
}


@pytest.mark.parametrize("fused", [True, False], ids=["kernel", "twin"])
@pytest.mark.parametrize("case", CASES)
def test_optimizers_follow_torch(case, fused, monkeypatch):
    torch = pytest.importorskip("torch")
    ours_class, torch_name, options = CASES[case]
    monkeypatch.setattr(optim_kernels, "PLAIN_SGD_MIN_SIZE", 0)  # plain SGD fuses these small ones too
    rng = np.random.default_rng(0)
    initial = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    ours = [tape.tensor(v.copy(), requires_grad=True) for v in initial]
    theirs = [torch.tensor(v.copy(), requires_grad=True) for v in initial]
    ours_optimizer = ours_class(ours, **options)
    torch_optimizer = getattr(torch.optim, torch_name)(theirs, **options)
    for step in range(5):
        grads = _quadratic_gradients([p.data for p in ours], step)
        for p, t, g in zip(ours, theirs, grads, strict=True):
            p.grad = g
            t.grad = torch.tensor(g)
        with jit.use_jit(fused):
            ours_optimizer.step()
        torch_optimizer.step()
    for p, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)


def _sgd_by_hand(p, g, state, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    g = g + weight_decay * p
    if momentum:
        if "b" not in state:
            state["b"] = g
        else:
            state["b"] = momentum * state["b"] + (1 - dampening) * g
        g = g + momentum * state["b"] if nesterov else state["b"]
    return p - lr * g


def _adam_by_hand(
    p, g, state, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False
):
    t = state["t"] = state.get("t", 0) + 1
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    m = state["m"] = betas[0] * state.get("m", 0.0) + (1 - betas[0]) * g
    v = state["v"] = betas[1] * state.get("v", 0.0) + (1 - betas[1]) * g * g
    if amsgrad:
        v = state["v_max"] = np.maximum(state.get("v_max", 0.0), v)
    return p - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(v / (1 - betas[1] ** t)) + eps)


def _rmsprop_by_hand(p, g, state, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    g = g + weight_decay * p
    v = state["v"] = alpha * state.get("v", 0.0) + (1 - alpha) * g * g
    if centered:
        mean = state["mean"] = alpha * state.get("mean", 0.0) + (1 - alpha) * g
        v = v - mean * mean
    step = g / (np.sqrt(v) + eps)
    if momentum:
        step = state["b"] = momentum * state.get("b", 0.0) + step
    return p - lr * step


def _adagrad_by_hand(
    p, g, state, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10
):
    t = state["t"] = state.get("t", 0) + 1
    g = g + weight_decay * p
    total = state["sum"] = state.get("sum", initial_accumulator_value) + g * g
    return p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(total) + eps)


RULES_BY_HAND = {
    optim.SGD: _sgd_by_hand,
    optim.Adam: _adam_by_hand,
    optim.AdamW: lambda p, g, state, weight_decay=0.01, **options: _adam_by_hand(
        p, g, state, weight_decay=weight_decay, decoupled=True, **options
    ),
    optim.RMSprop: _rmsprop_by_hand,
    optim.Adagrad: _adagrad_by_hand,
}


@pytest.mark.parametrize("fused", [True, False], ids=["kernel", "twin"])
@pytest.mark.parametrize("case", CASES)
def test_optimizers_follow_their_update_rules_by_hand(case, fused, monkeypatch):
    optimizer_class, _, options = CASES[case]
    monkeypatch.setattr(optim_kernels, "PLAIN_SGD_MIN_SIZE", 0)
    rng = np.random.default_rng(0)
    initial = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    ours = [tape.tensor(v.copy(), requires_grad=True) for v in initial]
    expected, states = [v.copy() for v in initial], [{} for _ in initial]
    optimizer = optimizer_class(ours, **options)
    rule = RULES_BY_HAND[optimizer_class]
    for step in range(5):
        grads = _quadratic_gradients(expected, step)
        for p, g in zip(ours, grads, strict=True):
            p.grad = g
        with jit.use_jit(fused):
            optimizer.step()
        expected = [rule(p, g, state, **options) for p, g, state in zip(expected, grads, states, strict=True)]
    for p, value in zip(ours, expected, strict=True):
        np.testing.assert_allclose(p.data, value, rtol=1e-10, atol=1e-12)


def test_sgd_momentum_by_hand():
    w = tape.tensor([1.0, -2.0], requires_grad=True)
    optimizer = optim.SGD([w], lr=0.5, momentum=0.9, weight_decay=0.1)
    expected, buffer = np.array([1.0, -2.0]), None
    for step in range(3):
        g = np.array([0.3, -0.1]) * (step + 1)
        w.grad = g
        optimizer.step()
        d = g + 0.1 * expected
        buffer = d if buffer is None else 0.9 * buffer + d
        expected = expected - 0.5 * buffer
    np.testing.assert_allclose(w.data, expected, rtol=1e-14)


def test_adam_by_hand_in_float32():
    w = tape.tensor(np.array([0.5, -1.5], dtype=np.float32), requires_grad=True)
    optimizer = optim.Adam([w], lr=0.1)
    m = v = np.zeros(2)
    expected = w.data.astype(np.float64)
    for t in range(1, 4):
        g = np.array([1.0, -3.0]) * t
        w.grad = g.astype(np.float32)
        optimizer.step()
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        expected = expected - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w.data, expected, rtol=1e-5)


def test_adam_and_adamw_take_one_argument_list_with_torchs_decay_defaults():
    w = tape.tensor([1.0], requires_grad=True)
    assert optim.Adam([w]).defaults["weight_decay"] == 0.0
    assert optim.AdamW([w]).defaults["weight_decay"] == 0.01
    for optimizer_class in (optim.Adam, optim.AdamW):
        positional = optimizer_class([w], 0.1, (0.8, 0.9), 1e-6, 0.5, True)
        assert positional.defaults == dict(lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.5, amsgrad=True)
        with pytest.raises(ValueError, match=f"{optimizer_class.__name__}: lr, eps and weight_decay"):
            optimizer_class([w], weight_decay=-1.0)


def test_step_skips_parameters_without_gradient_and_bumps_versions():
    a, b = tape.tensor([1.0], requires_grad=True), tape.tensor([2.0], requires_grad=True)
    y = np.sum(a * a)
    a.grad = np.array([1.0])
    optim.SGD([a, b], lr=1.0).step()
    assert a.data[0] == 0.0 and b.data[0] == 2.0
    with pytest.raises(RuntimeError):  # a record saved the old value of a
        y.backward()


def test_param_groups_and_zero_grad():
    a, b = tape.tensor([1.0], requires_grad=True), tape.tensor([1.0], requires_grad=True)
    optimizer = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    optimizer.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.5])
    optimizer.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(ValueError, match="a parameter appears in more than one group"):
        optim.SGD([{"params": [a]}, {"params": [a]}])
    with pytest.raises(TypeError, match="can only optimize tensors that require grad"):
        optim.Adam([tape.tensor([1.0])])
    with pytest.raises(ValueError, match="SGD: Nesterov momentum needs momentum > 0"):
        optim.SGD([a], nesterov=True)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (
            lambda o: optim.StepLR(o, step_size=3, gamma=0.5),
            lambda o, t: t.optim.lr_scheduler.StepLR(o, 3, 0.5),
        ),
        (lambda o: optim.ExponentialLR(o, 0.9), lambda o, t: t.optim.lr_scheduler.ExponentialLR(o, 0.9)),
        (
            lambda o: optim.CosineAnnealingLR(o, T_max=6, eta_min=0.01),
            lambda o, t: t.optim.lr_scheduler.CosineAnnealingLR(o, 6, 0.01),
        ),
    ],
)
def test_schedulers_follow_torch(ours, theirs):
    torch = pytest.importorskip("torch")
    our_optimizer = optim.SGD([tape.tensor([0.0], requires_grad=True)], lr=0.2)
    torch_optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    our_scheduler, torch_scheduler = ours(our_optimizer), theirs(torch_optimizer, torch)
    for _ in range(8):
        torch_optimizer.step()
        our_scheduler.step()
        torch_scheduler.step()
        np.testing.assert_allclose(our_scheduler.get_last_lr(), torch_scheduler.get_last_lr(), rtol=1e-12)
        assert our_optimizer.param_groups[0]["lr"] == our_scheduler.get_last_lr()[0]


def test_schedulers_follow_their_closed_forms():
    # Epoch by epoch from lr 0.2, written out rather than computed by the formula under test.
    expected = {
        "step": [0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025],
        "exponential": [0.2 * 0.9**epoch for epoch in range(10)],
        "cosine": [0.2, None, None, 0.105, None, None, 0.01, None, None, 0.105, None, None, 0.2],
    }
    build = {
        "step": lambda o: optim.StepLR(o, step_size=3, gamma=0.5),
        "exponential": lambda o: optim.ExponentialLR(o, 0.9),
        "cosine": lambda o: optim.CosineAnnealingLR(o, T_max=6, eta_min=0.01),
    }
    for name, rates in expected.items():
        optimizer = optim.SGD([tape.tensor([0.0], requires_grad=True)], lr=0.2)
        scheduler = build[name](optimizer)
        for epoch, rate in enumerate(rates):
            if rate is not None:
                assert scheduler.get_last_lr() == [pytest.approx(rate, rel=1e-12)], (name, epoch)
                assert optimizer.param_groups[0]["lr"] == pytest.approx(rate, rel=1e-12), (name, epoch)
            scheduler.step()


def test_scheduler_state_round_trips_and_a_bad_one_changes_nothing():
    def build():
        optimizer = optim.SGD([tape.tensor([0.0], requires_grad=True)], lr=0.2)
        return optim.StepLR(optimizer, step_size=2, gamma=0.5)

    trained = build()
    for _ in range(5):
        trained.step()
    resumed = build()
    resumed.load_state_dict(trained.state_dict())
    resumed.step(), trained.step()
    assert resumed.get_last_lr() == trained.get_last_lr() == [0.2 * 0.5**3]

    fresh = build()
    before = fresh.state_dict()
    bad = {
        "a string epoch": ({**trained.state_dict(), "last_epoch": "5"}, "last_epoch should be an integer"),
        "a missing entry": ({"last_epoch": 5}, "lacks 'step_size'"),
        "another scheduler's entry": ({**trained.state_dict(), "T_max": 3}, "has 'T_max', which StepLR"),
        "too many groups": ({**trained.state_dict(), "base_lrs": [0.2, 0.2]}, "base_lrs should be 1 numbers"),
        "not a mapping": ([("last_epoch", 5)], "expected a mapping"),
    }
    for name, (state, message) in bad.items():
        with pytest.raises(ValueError, match=f"^StepLR.load_state_dict: .*{message}"):
            fresh.load_state_dict(state)
            pytest.fail(name)
        assert fresh.state_dict() == before, name


def test_clip_grad_norm():
    a, b = tape.tensor([0.0, 0.0], requires_grad=True), tape.tensor([0.0], requires_grad=True)
    a.grad, b.grad = np.array([3.0, 4.0]), np.array([12.0])
    total = optim.clip_grad_norm_([a, b], max_norm=6.5)
    assert total == pytest.approx(13.0)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), np.array([3.0, 4.0, 12.0]) / 2, rtol=1e-6)
    assert optim.clip_grad_norm_([a, b], max_norm=100.0) == pytest.approx(6.5, rel=1e-6)
    np.testing.assert_allclose(a.grad, [1.5, 2.0], rtol=1e-6)  # under the limit: unchanged
    assert optim.clip_grad_norm_(a, 1.0, norm_type=math.inf) == pytest.approx(2.0, rel=1e-6)


def test_optimizer_state_survives_save_and_load(tmp_path):
    def build():
        model = nn.Linear(3, 2, rng=np.random.default_rng(1))
        return model, optim.Adam(model.parameters(), lr=0.01, amsgrad=True)

    x, target = np.random.default_rng(2).standard_normal((5, 3)), np.zeros((5, 2))

    def train(model, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            nn.MSELoss()(model(x), target).backward()
            optimizer.step()

    straight, straight_optimizer = build()
    train(straight, straight_optimizer, 6)
    first, first_optimizer = build()
    train(first, first_optimizer, 3)
    nn.save(tmp_path / "checkpoint.npz", first, first_optimizer)
    resumed, resumed_optimizer = build()
    nn.load(tmp_path / "checkpoint.npz", resumed, resumed_optimizer)
    assert resumed_optimizer.state_dict()["state"][0]["step"] == 3
    train(resumed, resumed_optimizer, 3)
    for p, q in zip(straight.parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)
    nn.save(tmp_path / "model_only.npz", first)
    with pytest.raises(KeyError, match="holds no optimizer state"):
        nn.load(tmp_path / "model_only.npz", resumed, resumed_optimizer)


def test_an_optimizer_or_scheduler_without_its_rule_says_what_to_define():
    parameter = nn.Parameter(np.ones(2))
    parameter.grad = np.ones(2)
    with pytest.raises(TypeError, match="must define _update"):
        nn.optim.Optimizer([parameter], {"lr": 0.1}).step()
    optimizer = nn.optim.SGD([parameter], lr=0.1)
    with pytest.raises(TypeError, match="must define get_lr"):
        nn.optim.LRScheduler(optimizer)
