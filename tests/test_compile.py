"""``tape.compile``: a replay gives the eager numbers to the bit, reads what it must afresh on every call,
records again when the signature or a guard changes, and refuses what a recorded program cannot repeat.

Every op family is also compiled and compared with eager by ``tests/ops/opcheck.check_op``.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import tape
from tape import nn


def values_and_grads(f, *arrays, cotangent_seed=0):
    leaves = [tape.tensor(a, requires_grad=True) if a.dtype.kind in "fc" else a for a in arrays]
    out = f(*leaves)
    cotangent = np.random.default_rng(cotangent_seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(cotangent)
    return [out.numpy().copy(), *(leaf.grad for leaf in leaves if isinstance(leaf, tape.Tensor))]


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def mixed(x, w, b):
    h = np.tanh(x @ w + b)
    z = np.where(h > 0, h * 2.0, np.exp(h)) / (1 + h**2)
    return np.sum(np.maximum(z, 0.1) * np.sin(x[:, :1]), axis=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_replays_agree_with_eager_at_new_values(dtype):
    """To the bit with JIT off (each op's own code); to rounding with fused kernels."""
    rng = np.random.default_rng(0)
    compiled = tape.compile(mixed)
    for _ in range(3):
        arrays = [rng.standard_normal(s).astype(dtype) for s in ((5, 3), (3, 4), (4,))]
        eager = values_and_grads(mixed, *arrays)
        for mine, theirs in zip(values_and_grads(compiled, *arrays), eager, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
        with tape.jit.disabled():
            assert_same(values_and_grads(compiled, *arrays), values_and_grads(mixed, *arrays))
    assert compiled.recordings == 1
    if tape.jit.DEFAULT_ENABLED:
        assert compiled.programs()[0].regions  # (tanh, the comparison, multiply and exp are fused)


def test_a_new_signature_records_again_and_the_cache_is_bounded():
    compiled = tape.compile(lambda x: np.sum(x * x), cache_size=2)
    with pytest.warns(tape.compiled.RecordingWarning, match="a new signature"):  # more recordings than kept
        for n in (2, 3, 2, 4, 2, 3):
            compiled(tape.tensor(np.ones(n), requires_grad=True))
    # 2 and 3 are recorded; 2 is reused; 4 drops 3 (least recently used); 2 is reused; 3 is recorded again.
    assert compiled.recordings == 4
    compiled(np.ones(2, dtype=np.float32))
    compiled(tape.tensor(np.ones(2)))  # requires_grad is part of the signature
    assert compiled.recordings == 6


def test_python_numbers_and_static_arguments_are_part_of_the_signature():
    compiled = tape.compile(lambda x, k, axis: np.sum(x * k, axis=axis), static_argnums=2)
    x = tape.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    np.testing.assert_array_equal(compiled(x, 2.0, 0).numpy(), [6.0, 10.0, 14.0])
    np.testing.assert_array_equal(compiled(x, 3.0, 0).numpy(), [9.0, 15.0, 21.0])
    np.testing.assert_array_equal(compiled(x, 3.0, 1).numpy(), [9.0, 36.0])
    assert compiled.recordings == 3


def test_pytrees_in_and_out():
    def f(params, x):
        return {"y": np.tanh(x @ params["w"]), "norms": [np.sum(params["w"] ** 2), 3]}

    compiled = tape.compile(f)
    w = tape.tensor(np.random.default_rng(1).standard_normal((3, 2)), requires_grad=True)
    x = np.random.default_rng(2).standard_normal((4, 3))
    out = compiled({"w": w}, x)
    assert out["norms"][1] == 3
    (np.sum(out["y"]) + out["norms"][0]).backward()
    mine, w.grad = w.grad, None
    eager = f({"w": w}, x)
    (np.sum(eager["y"]) + eager["norms"][0]).backward()
    np.testing.assert_array_equal(mine, w.grad)


def test_tensors_read_from_enclosing_scopes_are_inputs_read_on_every_call():
    w = tape.tensor(np.ones(3), requires_grad=True)
    compiled = tape.compile(lambda x: np.sum(np.sin(x * w)))
    x = np.array([0.1, 0.2, 0.3])
    compiled(x).backward()
    np.testing.assert_allclose(w.grad, np.cos(x * 1.0) * x)
    with tape.no_grad():
        w -= 0.5  # the update is seen by the next replay
    w.grad = None
    value = compiled(x)
    value.backward()
    np.testing.assert_allclose(float(value), np.sum(np.sin(x * 0.5)))
    np.testing.assert_allclose(w.grad, np.cos(x * 0.5) * x)
    assert compiled.recordings == 1


def test_a_guard_on_captured_tensors_records_again():
    w = tape.tensor(np.ones(3), requires_grad=True)
    compiled = tape.compile(lambda x: np.sum(x * w))
    compiled(np.ones(3))
    w.requires_grad_(False)
    assert not compiled(np.ones(3)).requires_grad
    assert compiled.recordings == 2


def test_a_plain_array_changed_after_the_call_does_not_change_the_gradient():
    w = tape.tensor(np.ones(3), requires_grad=True)
    x = np.array([1.0, 2.0, 3.0])
    compiled = tape.compile(lambda w, x: np.sum((w * x) ** 2))
    compiled(w, x)  # recorded
    loss = compiled(w, x)
    x[:] = 100.0
    loss.backward()
    np.testing.assert_array_equal(w.grad, 2 * np.array([1.0, 2.0, 3.0]) ** 2)


def test_a_captured_plain_array_is_read_afresh_and_kept_for_backward():
    data = np.array([1.0, 2.0, 3.0])
    w = tape.tensor(np.ones(3), requires_grad=True)
    compiled = tape.compile(lambda w: np.sum((w * data) ** 2))
    compiled(w)
    data[:] = [2.0, 2.0, 2.0]  # a data loader refilling its buffer
    loss = compiled(w)
    np.testing.assert_array_equal(float(loss), 12.0)
    data[:] = 100.0
    loss.backward()
    np.testing.assert_array_equal(w.grad, [8.0, 8.0, 8.0])


def test_results_share_no_memory_with_arguments_or_with_each_other():
    compiled = tape.compile(lambda x: (x.T, np.exp(x), x))
    x = tape.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    compiled(x)
    transposed, _, same = compiled(x)
    assert same is x
    assert not np.may_share_memory(transposed.numpy(), x.numpy())
    compiled_pair = tape.compile(lambda x: (np.exp(x), np.exp(x).T))
    first, second = compiled_pair(x)
    assert not np.may_share_memory(first.numpy(), second.numpy())


def test_a_result_changed_in_place_is_refused_by_backward():
    compiled = tape.compile(lambda x: np.exp(x))
    x = tape.tensor(np.ones(3), requires_grad=True)
    y = compiled(x)
    with tape.no_grad():
        y += 1
    with pytest.raises(RuntimeError, match="changed in place"):
        np.sum(y).backward()


def test_under_no_grad_nothing_is_recorded():
    compiled = tape.compile(lambda x: np.tanh(x))
    x = tape.tensor(np.ones(3), requires_grad=True)
    with tape.no_grad():
        y = compiled(x)
    assert not y.requires_grad
    assert compiled(np.ones(3)).__class__ is np.ndarray  # plain in, plain out, as the eager function


@pytest.mark.parametrize("transform", ["grad", "hessian", "jacobian", "hvp", "jvp"])
def test_transforms_of_a_compiled_function_agree_with_eager(transform):
    def f(x):
        return np.sum(np.sin(x) * np.exp(x / 3)) if transform != "jacobian" else np.tanh(x) * x

    x = np.random.default_rng(3).standard_normal(4)
    v = np.random.default_rng(4).standard_normal(4)
    compiled = tape.compile(f)
    run = {
        "grad": lambda g: tape.grad(g)(x),
        "hessian": lambda g: tape.hessian(g)(x),
        "jacobian": lambda g: tape.jacobian(g)(x),
        "hvp": lambda g: tape.hvp(g, (x,), (v,))[0],
        "jvp": lambda g: tape.jvp(g, (x,), (v,))[1],
    }[transform]
    np.testing.assert_allclose(run(compiled), run(f), rtol=1e-13, atol=1e-15)


def test_gradgradcheck_through_a_compiled_function():
    compiled = tape.compile(lambda x, y: np.sum(np.tanh(x @ y) ** 2))
    rng = np.random.default_rng(5)
    assert tape.gradgradcheck(compiled, rng.standard_normal((2, 3)), rng.standard_normal((3, 2)))


def test_complex_inputs_follow_the_eager_convention():
    def f(z):
        return np.sum(np.abs(np.exp(z) * z) ** 2)

    z = np.array([0.3 + 0.4j, -1.0 + 0.2j])
    assert_same(
        [tape.grad(tape.compile(f))(z)],
        [tape.grad(f)(z)],
    )


def test_a_compiled_function_inside_another():
    inner = tape.compile(lambda x: np.tanh(x) * 2)
    outer = tape.compile(lambda x: np.sum(inner(x) ** 2))
    x = np.array([0.1, -0.5, 2.0])
    np.testing.assert_array_equal(tape.grad(outer)(x), tape.grad(lambda x: np.sum((np.tanh(x) * 2) ** 2))(x))


def mlp(seed, dropout=0.0):
    rng = np.random.default_rng(seed)
    layers = [nn.Linear(4, 16, rng=rng), nn.ReLU(), nn.Linear(16, 3, rng=rng)]
    if dropout:
        layers.insert(2, nn.Dropout(dropout, rng=np.random.default_rng(seed + 1)))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_training_a_compiled_model_matches_eager_to_the_bit(dropout):
    rng = np.random.default_rng(6)
    x, labels = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    trained = []
    for compiled in (False, True):
        model = mlp(7, dropout)

        def loss_fn(x, labels, model=model):
            return nn.functional.cross_entropy(model(x), labels)

        step = tape.compile(loss_fn) if compiled else loss_fn
        optimizer = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        losses = []
        for _ in range(5):
            optimizer.zero_grad()
            loss = step(x, labels)
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
        trained.append((losses, [p.numpy().copy() for p in model.parameters()]))
    assert trained[0][0] == trained[1][0]
    for eager, replayed in zip(trained[0][1], trained[1][1], strict=True):
        np.testing.assert_array_equal(eager, replayed)


def test_dropout_draws_a_new_mask_on_every_call():
    model = tape.compile(mlp(8, dropout=0.5))
    x = tape.tensor(np.ones((64, 4)))
    first, second = model(x).numpy().copy(), model(x).numpy().copy()
    assert not np.array_equal(first, second)


def test_switching_a_module_to_eval_mode_records_again():
    model = mlp(9, dropout=0.5)
    compiled = tape.compile(model)
    x = tape.tensor(np.ones((16, 4)))
    compiled(x)
    model.eval()
    np.testing.assert_array_equal(compiled(x).numpy(), model(x).numpy())
    assert compiled.recordings == 2


def test_each_thread_records_on_its_own():
    compiled = tape.compile(lambda x: np.sum(np.cos(x) ** 2))
    results = {}

    def run(n):
        x = np.linspace(0, 1, n)
        results[n] = (tape.grad(compiled)(x), tape.grad(lambda x: np.sum(np.cos(x) ** 2))(x))

    threads = [threading.Thread(target=run, args=(n,)) for n in (3, 5, 7, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for mine, eager in results.values():
        np.testing.assert_array_equal(mine, eager)


# -- what a trace cannot see ----------------------------------------------------------------------------
REFUSED = {
    "if on a value": (lambda x: x * 2 if np.sum(x) > 0 else x, "bool"),
    "float": (lambda x: x * float(x[0]), "float"),
    "item": (lambda x: x * x[0].item(), "item"),
    "asarray": (lambda x: x * np.asarray(x), "asarray"),
    "tolist": (lambda x: x * len(x.tolist()), "tolist"),
    "index": (lambda x: x[: x[0].astype(np.int64)], "int"),
    "new tensor": (lambda x: x * tape.tensor(x), "new tensor"),
    "in place into an argument": (lambda x: x.__iadd__(1.0), "did not make"),
    "in place with another view": (lambda x: _write_with_a_view(x), "other views"),
    "in place, another dtype": (lambda x: _write_another_dtype(x), "float64 values into a float32"),
    "backward inside": (lambda x: tape.grad(lambda y: np.sum(y**2))(x), "backward"),
    "global random": (lambda x: x * np.random.random(x.shape), "random numbers"),
    "hook": (lambda x: (x * 2).register_hook(lambda g: g), "hook"),
}


def _write_with_a_view(x):
    y = x * 1.0
    first = y[:1]
    y[1] = 0.0  # first still reads the old buffer in a replay: refused
    return first * y


def _write_another_dtype(x):
    y = tape.zeros(2, dtype=np.float32)
    y += x  # float64 sums cast into float32
    return y


@pytest.mark.parametrize("case", REFUSED)
def test_what_a_replay_could_not_repeat_is_refused_while_recording(case):
    function, words = REFUSED[case]
    x = tape.tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(tape.TraceError, match=words):
        tape.compile(function)(x * 1.0)
    assert tape.grad_mode.state.tracer is None  # the thread records normally again
    assert np.sum(x * 2).requires_grad


def test_an_optimizer_step_inside_is_refused():
    model = mlp(10)
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1)

    def train_step(x):
        loss = np.sum(model(x) ** 2)
        for p in model.parameters():
            p.grad = np.ones(p.shape)
        optimizer.step()
        return loss

    with pytest.raises(tape.TraceError, match="changed a tensor"):
        tape.compile(train_step)(np.ones((2, 4)))


def test_batch_norm_statistics_in_training_mode_are_refused():
    model = nn.Sequential(nn.Linear(3, 4, rng=np.random.default_rng(0)), nn.BatchNorm1d(4))
    with pytest.raises(tape.TraceError, match="running statistics"):
        tape.compile(model)(tape.tensor(np.ones((5, 3))))
    model.eval()
    x = tape.tensor(np.random.default_rng(1).standard_normal((5, 3)))
    np.testing.assert_array_equal(tape.compile(model)(x).numpy(), model(x).numpy())


def test_the_program_can_be_read():
    compiled = tape.compile(lambda x, w: np.sum(np.tanh(x @ w)))
    program = compiled.program(np.ones((2, 3)), tape.tensor(np.ones((3, 4)), requires_grad=True))
    text = str(program)
    assert "matmul" in text and "tanh" in text and "float64[2, 4]" in text
    assert "def forward" in program.forward_source and "def backward" in program.backward_source


def test_bad_arguments():
    with pytest.raises(TypeError, match="expected a function"):
        tape.compile(3)
    with pytest.raises(ValueError, match="cache_size"):
        tape.compile(np.sin, cache_size=0)
    with pytest.raises(ValueError, match="static_argnums"):
        tape.compile(lambda x: x, static_argnums=3)(np.ones(2))
    with pytest.raises(TypeError, match="hashable"):
        tape.compile(lambda x, s: x, static_argnums=1)(np.ones(2), [1])


def test_a_view_of_a_plain_array_read_by_backward_is_kept_as_a_copy():
    w = tape.tensor(np.ones((2, 3)), requires_grad=True)
    x, constant = np.arange(6.0).reshape(2, 3), np.arange(4.0).reshape(2, 2)
    compiled = tape.compile(lambda w, x: np.sum((w @ x.T) @ constant.T))
    compiled(w, x)
    loss = compiled(w, x)
    expected = tape.grad(lambda w: np.sum((w @ x.T) @ constant.T))(w.numpy().copy())
    x[...], constant[...] = -100.0, 7.0  # after the forward, before the backward
    loss.backward()
    np.testing.assert_array_equal(w.grad, expected)


def test_rebinding_a_name_the_function_reads_records_again():
    w = tape.tensor(np.ones(3), requires_grad=True)
    compiled = tape.compile(lambda x: np.sum(x * w))
    x = np.array([1.0, 2.0, 3.0])
    assert float(compiled(x)) == 6.0
    w = tape.tensor(np.full(3, 2.0), requires_grad=True)  # a functional update rebinds the closure's name
    assert float(compiled(x)) == 12.0
    assert compiled.recordings == 2


SCALE = 2.0


def scaled(x):
    return np.sum(x * SCALE)


def test_rebinding_a_global_records_again():
    global SCALE
    compiled = tape.compile(scaled)
    assert float(compiled(np.ones(2))) == 4.0
    SCALE = 3.0
    try:
        assert float(compiled(np.ones(2))) == 6.0
    finally:
        SCALE = 2.0
    assert compiled.recordings == 2


def test_replacing_a_module_parameter_records_again():
    model = mlp(11)
    compiled = tape.compile(model)
    x = tape.tensor(np.ones((2, 4)))
    compiled(x)
    model[0].weight = nn.Parameter(np.zeros((16, 4)))
    np.testing.assert_array_equal(compiled(x).numpy(), model(x).numpy())
    assert compiled.recordings == 2


def writes(x, w):
    y = np.tanh(x @ w)
    y[:, 0] = 0.5  # into a value the function made
    y[1:] *= np.cos(x[1:, :1])  # through a view of it
    buffer = tape.zeros(y.shape[1])  # a tensor made inside: a fresh copy on every replay
    buffer[0] = np.sum(y)
    return np.sum(y**2) + np.sum(buffer * 3.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_writes_into_values_the_function_made_are_replayed(dtype):
    rng = np.random.default_rng(12)
    compiled = tape.compile(writes)
    for _ in range(3):
        arrays = [rng.standard_normal(s).astype(dtype) for s in ((4, 3), (3, 2))]
        eager = values_and_grads(writes, *arrays)
        for mine, theirs in zip(values_and_grads(compiled, *arrays), eager, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
        with tape.jit.disabled():
            assert_same(values_and_grads(compiled, *arrays), eager)
    assert compiled.recordings == 1


def test_a_write_into_a_tensor_from_outside_is_refused():
    state = tape.zeros(3)

    def accumulate(x):
        state[...] = x  # a side effect on the caller's tensor: a replay would not make it
        return x * 2.0

    with pytest.raises(tape.TraceError, match="did not make"):
        tape.compile(accumulate)(tape.tensor(np.ones(3), requires_grad=True))


HIDDEN = tape.tensor(np.ones(2), requires_grad=True)


def _layer(x):
    return x * HIDDEN


def test_rebinding_a_name_a_helper_reads_records_again():
    global HIDDEN
    compiled = tape.compile(lambda x: np.sum(_layer(x) + (lambda y: y * HIDDEN)(x)))
    assert float(compiled(np.ones(2))) == 4.0
    saved, HIDDEN = HIDDEN, tape.tensor(np.full(2, 3.0), requires_grad=True)
    try:
        assert float(compiled(np.ones(2))) == 12.0
    finally:
        HIDDEN = saved
    assert compiled.recordings == 2


def test_a_tensor_made_inside_is_a_fresh_constant_even_when_read_before_a_write():
    def f(x):
        buffer = tape.zeros(3)
        before = np.sum(x + buffer)  # read before the write: zeros
        buffer[0] = 2.0
        return before + np.sum(x * buffer)

    compiled = tape.compile(f)
    x = np.array([1.0, 2.0, 3.0])
    for _ in range(3):  # each replay starts again from zeros
        np.testing.assert_array_equal(tape.grad(compiled)(x), tape.grad(f)(x))
        assert float(compiled(x)) == 8.0
    assert compiled.recordings == 2  # (a tensor that requires grad, and a plain array: two signatures)


STEP = 0


def counted(x):
    return x * (STEP + 1.0)


def test_a_function_that_keeps_recording_says_why_once():
    global STEP
    compiled = tape.compile(counted, cache_size=2)
    try:
        with pytest.warns(
            tape.compiled.RecordingWarning, match="recorded 3 times, the last for the name 'STEP'"
        ):
            for STEP in range(3):  # a global that changes on every call
                assert float(compiled(np.ones(1))[0]) == STEP + 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            STEP = 7
            compiled(np.ones(1))  # (said once)
    finally:
        STEP = 0


QUERIES = {  # an index or mask asked of the data, then used: each replay must ask again
    "argmax write": lambda a: _written_at(a, np.argmax(a)),
    "argmin read": lambda a: a[np.argmin(a)] * a,
    "argsort": lambda a: a[np.argsort(a)] * np.arange(4.0),
    "isclose": lambda a: np.where(np.isclose(a, 1.0), 0.0, a),
    "any": lambda a: np.where(np.any(a > 4.0), a * 2.0, a * 3.0),
    "searchsorted": lambda a: a[np.searchsorted(np.array([0.5, 1.5]), a[0:1])] * a,
    "count_nonzero": lambda a: a * np.count_nonzero(a > 1.0),
}


def _written_at(a, index):
    y = a * 1.0
    y[index] = 0.0
    return y


@pytest.mark.parametrize("name", QUERIES)
def test_queries_of_the_data_are_asked_again_on_each_call(name):
    f = QUERIES[name]
    compiled = tape.compile(f)
    for data in ([3.0, 1.0, 2.0, 0.2], [1.0, 5.0, 2.0, 0.3], [0.4, 1.0, 0.1, 9.0]):
        x, y = tape.tensor(data, requires_grad=True), tape.tensor(data, requires_grad=True)
        out, expected = compiled(x), f(y)
        np.testing.assert_array_equal(out.data, expected.data)
        np.sum(out * np.arange(1.0, 5.0)).backward()
        np.sum(expected * np.arange(1.0, 5.0)).backward()
        np.testing.assert_array_equal(x.grad, y.grad)


SHAPES_FROM_VALUES = {
    "nonzero": (lambda a: np.sum(a[np.nonzero(a > 0.5)] ** 2), r"np\.nonzero of the function's values"),
    "mask": (lambda a: np.sum(a[a > 0.5] ** 2), r"an index by a mask computed from the function's values"),
    "compress": (lambda a: np.sum(np.compress(a > 0.5, a)), r"np\.compress's condition took the values"),
    "extract": (lambda a: np.sum(np.extract(a > 0.5, a)), r"np\.extract's condition took the values"),
}


@pytest.mark.parametrize("name", SHAPES_FROM_VALUES)
def test_a_shape_that_depends_on_the_values_is_refused(name):
    f, message = SHAPES_FROM_VALUES[name]
    with pytest.raises(tape.TraceError, match=message):
        tape.compile(f)(tape.tensor([3.0, 1.0, 2.0, 0.2], requires_grad=True))
    np.testing.assert_allclose(f(tape.tensor([3.0, 1.0, 2.0, 0.2])).data, f(np.array([3.0, 1.0, 2.0, 0.2])))
