"""tape/nn/optim_kernels.py: each fused optimizer kernel gives its numpy twin's numbers to the last bit (every
option and every set of buffers kept, float32 and float64, several steps, size-0 and 0-d parameters), runs
exactly where it should (contiguous buffers of one dtype; plain SGD only from PLAIN_SGD_MIN_SIZE), leaves
other layouts to the twin, and the optimizer still bumps the parameter's version."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tape
import tape.nn as nn
from tape import jit
from tape.nn import optim, optim_kernels

STEPS = 3
#: Parameter shapes of every comparison: 0-d, empty, small, and one above PLAIN_SGD_MIN_SIZE.
SHAPES = [(), (0,), (5,), (48, 50)]


def _sgd_options():
    for weight_decay, momentum, dampening, nesterov in itertools.product(
        (0.0, 0.01), (0.0, 0.9), (0.0, 0.3), (False, True)
    ):
        if not nesterov or (momentum and not dampening):
            yield (
                optim.SGD,
                dict(
                    lr=0.1,
                    weight_decay=weight_decay,
                    momentum=momentum,
                    dampening=dampening,
                    nesterov=nesterov,
                ),
            )


def _all_options():
    yield from _sgd_options()
    for optimizer_class, weight_decay, amsgrad in itertools.product(
        (optim.Adam, optim.AdamW), (0.0, 0.1), (False, True)
    ):
        yield optimizer_class, dict(lr=0.05, betas=(0.8, 0.9), weight_decay=weight_decay, amsgrad=amsgrad)
    for weight_decay, momentum, centered in itertools.product((0.0, 0.1), (0.0, 0.5), (False, True)):
        yield (
            optim.RMSprop,
            dict(lr=0.01, alpha=0.9, weight_decay=weight_decay, momentum=momentum, centered=centered),
        )
    for weight_decay, lr_decay in itertools.product((0.0, 0.1), (0.0, 0.01)):
        yield (
            optim.Adagrad,
            dict(lr=0.1, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=0.1),
        )


OPTIONS = list(_all_options())
KERNEL_NAMES = {
    optim.SGD: "sgd_kernel",
    optim.Adam: "adam_kernel",
    optim.AdamW: "adam_kernel",
    optim.RMSprop: "rmsprop_kernel",
    optim.Adagrad: "adagrad_kernel",
}


def _label(case):
    optimizer_class, options = case
    return optimizer_class.__name__ + "-" + "-".join(f"{key}={value}" for key, value in options.items())


@pytest.fixture
def kernel_calls(monkeypatch):
    """Count the calls of each optimizer kernel (the fused path), by the kernel's name."""
    calls = dict.fromkeys(set(KERNEL_NAMES.values()), 0)
    for name in calls:
        original = getattr(optim_kernels, name)

        def counted(*args, name=name, original=original):
            calls[name] += 1
            return original(*args)

        counted.twin = original.twin  # the path that does not fit the kernel calls the twin directly
        monkeypatch.setattr(optim_kernels, name, counted)
    return calls


def _trajectory(optimizer_class, options, initial, gradients, use_jit):
    """Parameters and optimizer state after one step per entry of ``gradients``."""
    parameters = [tape.tensor(value, requires_grad=True) for value in initial]
    optimizer = optimizer_class(parameters, **options)
    with jit.use_jit(use_jit):
        for step_gradients in gradients:
            for parameter, gradient in zip(parameters, step_gradients, strict=True):
                parameter.grad = gradient.copy()
            optimizer.step()
    return [p.data for p in parameters], optimizer.state_dict()["state"]


def _random_problem(dtype, shapes, seed=0):
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    gradients = [[rng.standard_normal(shape).astype(dtype) for shape in shapes] for _ in range(STEPS)]
    return initial, gradients


def _assert_same(ours, theirs, dtype):
    """The kernel does the twin's operations in the twin's order and dtype: the same bits (NaN for NaN)."""
    (our_values, our_state), (their_values, their_state) = ours, theirs
    for mine, twin in zip(our_values, their_values, strict=True):
        assert mine.dtype == dtype
        np.testing.assert_array_equal(mine, twin)
    assert our_state.keys() == their_state.keys()
    for index, state in our_state.items():
        assert state.keys() == their_state[index].keys()
        for name, value in state.items():
            np.testing.assert_array_equal(value, their_state[index][name], err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", OPTIONS, ids=_label)
def test_the_kernel_gives_the_twins_numbers(case, dtype, kernel_calls):
    optimizer_class, options = case
    initial, gradients = _random_problem(dtype, SHAPES)
    twin = _trajectory(optimizer_class, options, initial, gradients, use_jit=False)
    name = KERNEL_NAMES[optimizer_class]
    calls_with_jit_off = kernel_calls[name]
    fused = _trajectory(optimizer_class, options, initial, gradients, use_jit=True)
    _assert_same(fused, twin, dtype)
    kernel = jit.kernels()[f"tape.nn.optim_kernels.{name}"]
    assert not kernel.failed and kernel.signatures()  # the compiled code ran, not a fallback to the twin
    # Plain SGD fuses only the parameter above PLAIN_SGD_MIN_SIZE; every other rule fuses every parameter.
    plain = optimizer_class is optim.SGD and not options["momentum"] and not options["weight_decay"]
    expected = STEPS * (1 if plain else len(SHAPES))
    assert kernel_calls[name] - calls_with_jit_off == expected


#: For each kernel: which of its state buffers it always takes (True) and which may be None, and scalars.
FLAT_ARGUMENTS = {
    "sgd_kernel": ((False,), (0.1, 0.01, 0.9, 0.7, False, False)),
    "adam_kernel": ((True, True, False), (0.8, 0.2, 0.9, 0.1, 1e-8, 0.1, 0.0, 0.3, 0.5)),
    "rmsprop_kernel": ((True, False, False), (0.01, 0.9, 0.1, 1e-8, 0.1, 0.5)),
    "adagrad_kernel": ((True,), (0.1, 0.1, 1e-10)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", FLAT_ARGUMENTS)
def test_the_kernels_agree_with_their_twins_on_random_flat_buffers(name, dtype):
    kernel = getattr(optim_kernels, name)
    required, scalars = FLAT_ARGUMENTS[name]
    # Every set of buffers the kernel may be given (each optional one given or None) compiles a loop.
    buffer_sets = list(itertools.product(*((True,) if always else (True, False) for always in required)))
    rng = np.random.default_rng(3)
    for given, size in itertools.product(buffer_sets, (0, 1, 37)):
        value, grad = rng.standard_normal((2, size)).astype(dtype)
        buffers = list(np.abs(rng.standard_normal((len(given), size))).astype(dtype))
        if name == "rmsprop_kernel":
            buffers[1] *= 0.1  # the running mean gradient, small enough for s - a^2 > 0
        state = [buffer if kept else None for buffer, kept in zip(buffers, given, strict=True)]
        ours = [value.copy(), grad, *(None if b is None else b.copy() for b in state)]
        theirs = [value.copy(), grad, *(None if b is None else b.copy() for b in state)]
        with jit.use_jit(True):
            kernel(*ours, *scalars)
        kernel.twin(*theirs, *scalars)
        for mine, twin in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(mine, twin, err_msg=f"{name}, buffers {given}, size {size}")
    assert not kernel.failed
    assert len(kernel.signatures()) >= len(buffer_sets)  # one compiled loop per set of buffers at least


@pytest.mark.parametrize(
    "case",
    [
        (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (optim.AdamW, dict(lr=0.05, amsgrad=True)),
        (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1)),
        (optim.Adagrad, dict(lr=0.1, lr_decay=0.01)),
    ],
    ids=_label,
)
def test_other_layouts_and_dtypes_take_the_twin_and_agree(case, kernel_calls):
    optimizer_class, options = case
    name = KERNEL_NAMES[optimizer_class]
    rng = np.random.default_rng(1)
    start = rng.standard_normal((30, 20))
    gradient = rng.standard_normal((20, 30))
    reference = nn.Parameter(start.T.copy())  # C-contiguous: the kernel
    transposed = nn.Parameter(start.copy().T)  # a view in Fortran order, as a user may build one
    strided = nn.Parameter(start.T.copy())  # C-contiguous, but handed a strided gradient
    narrow = nn.Parameter(start.T.astype(np.float32))  # float32, handed a float64 gradient
    wide_gradient = np.zeros((20, 60))
    wide_gradient[:, ::2] = gradient
    optimizers = [optimizer_class([p], **options) for p in (reference, transposed, strided, narrow)]
    with jit.use_jit(True):
        for _ in range(STEPS):
            reference.grad, transposed.grad = gradient.copy(), gradient.copy()
            strided.grad, narrow.grad = wide_gradient[:, ::2], gradient.copy()
            for optimizer in optimizers:
                optimizer.step()
    assert kernel_calls[name] == STEPS  # the reference only
    assert not transposed.data.flags.c_contiguous
    np.testing.assert_allclose(transposed.data, reference.data, rtol=1e-12)
    np.testing.assert_allclose(strided.data, reference.data, rtol=1e-12)
    assert narrow.dtype == np.float32
    np.testing.assert_allclose(narrow.data, reference.data, rtol=1e-4, atol=1e-5)


def test_plain_sgd_takes_the_kernel_from_its_threshold(kernel_calls, monkeypatch):
    monkeypatch.setattr(optim_kernels, "PLAIN_SGD_MIN_SIZE", 8)
    small, large = (tape.tensor(np.ones(n), requires_grad=True) for n in (7, 8))
    optimizer = optim.SGD([small, large], lr=0.5)
    small.grad, large.grad = np.ones(7), np.ones(8)
    with jit.use_jit(True):
        optimizer.step()
    assert kernel_calls["sgd_kernel"] == 1
    np.testing.assert_array_equal(np.concatenate([small.data, large.data]), np.full(15, 0.5))


@pytest.mark.parametrize("use_jit", [True, False])
def test_a_fused_step_bumps_the_parameters_version(use_jit):
    w = tape.tensor(np.ones(4), requires_grad=True)
    y = np.sum(w * w)  # saves w for its backward
    w.grad = np.ones(4)
    with jit.use_jit(use_jit):
        optim.Adam([w], lr=0.1).step()
    assert np.all(w.data < 1)
    with pytest.raises(RuntimeError):
        y.backward()


def test_sgd_with_momentum_needs_its_buffer():
    with pytest.raises(ValueError, match="momentum needs a momentum_buffer"):
        optim_kernels.sgd(np.ones(3), np.ones(3), None, lr=0.1, momentum=0.9)
