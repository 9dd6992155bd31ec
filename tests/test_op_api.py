"""The public op-definition API: Op, the op decorator and the lecture's gate style."""

from __future__ import annotations

import numpy as np
import pytest

import tape


class MultiplyGate:
    """The lecture's gate, as written there (with ``self``)."""

    def forward(self, x, y):
        z = x * y
        self.x = x  # must keep these around!
        self.y = y
        return z

    def backward(self, dz):
        dx = self.y * dz  # [dz/dx * dL/dz]
        dy = self.x * dz  # [dz/dy * dL/dz]
        return [dx, dy]


def test_lecture_multiply_gate_runs_on_tensors():
    multiply = tape.gate(MultiplyGate)
    x = tape.tensor(-2.0, requires_grad=True)
    y = tape.tensor(5.0, requires_grad=True)
    z = multiply(x, y)
    assert z.item() == -10.0
    z.backward()
    assert (x.grad, y.grad) == (5.0, -2.0)


def test_gate_broadcasts_and_composes_with_builtin_ops():
    multiply = tape.gate(MultiplyGate)
    rng = np.random.default_rng(0)
    assert tape.gradcheck(lambda a, b: np.tanh(multiply(a, b)).sum(), rng.random((3, 4)), rng.random(4))


def test_each_gate_call_keeps_its_own_saved_values():
    multiply = tape.gate(MultiplyGate)
    x = tape.tensor(2.0, requires_grad=True)
    first = multiply(x, tape.tensor(3.0))
    second = multiply(x, tape.tensor(7.0))
    (first + second).backward()
    assert x.grad == 10.0


def test_gate_refuses_higher_order():
    multiply = tape.gate(MultiplyGate)
    x = tape.tensor(2.0, requires_grad=True)
    with pytest.raises(TypeError, match="MultiplyGate: a gate's backward runs on arrays"):
        multiply(x, x).backward(create_graph=True)


def test_gate_returning_wrong_number_of_cotangents_is_an_error():
    class Broken(MultiplyGate):
        def backward(self, dz):
            return [dz]

    x = tape.tensor(2.0, requires_grad=True)
    with pytest.raises(ValueError, match=r"Broken\.backward returned 1 cotangents for 2 inputs"):
        tape.gate(Broken)(x, x).backward()


def test_op_with_per_argument_vjps():
    hyp = tape.Op(np.hypot, lambda g, out, x, y: g * x / out, lambda g, out, x, y: g * y / out, name="hyp")
    rng = np.random.default_rng(1)
    assert tape.gradcheck(lambda a, b: hyp(a, b), rng.random((2, 3)) + 0.5, rng.random((3,)) + 0.5)


def test_op_decorator_and_defvjp():
    @tape.op
    def logcosh(x):
        return np.log(np.cosh(x))

    logcosh.defvjp(lambda g, out, x: g * np.tanh(x))
    assert tape.gradcheck(logcosh, np.linspace(-2, 2, 7))
    assert repr(logcosh) == "<Op logcosh>"


def test_joint_backward():
    def sincos_backward(g, out, x, y):
        return [g * np.cos(x) * y, g * np.sin(x)]

    sin_times = tape.Op(lambda x, y: np.sin(x) * y, name="sin_times", backward=sincos_backward)
    rng = np.random.default_rng(2)
    assert tape.gradcheck(sin_times, rng.random(5), rng.random(5))


def test_op_called_on_arrays_returns_arrays():
    square = tape.Op(np.square, lambda g, out, x: 2 * g * x)
    result = square(np.array([1.0, 2.0]))
    assert type(result) is np.ndarray


def test_op_without_vjp_fails_at_forward_time():
    no_vjp = tape.Op(np.cbrt, name="my_cbrt")
    x = tape.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="my_cbrt: argument 0 requires grad but my_cbrt has no gradient"):
        no_vjp(x)
    with tape.no_grad():
        assert no_vjp(x).data[0] == 1.0
    assert no_vjp(x.detach()).data[0] == 1.0


def test_op_with_vjp_only_for_some_arguments():
    scale = tape.Op(lambda x, s: x * s, lambda g, out, x, s: g * s, None, name="scale")
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    s = tape.tensor(3.0, requires_grad=True)
    scale(x, s.detach()).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    with pytest.raises(TypeError, match="scale: argument 1 requires grad"):
        scale(x, s)


def test_vjp_returning_an_impossible_shape_is_reported():
    bad = tape.Op(lambda x: x * 2, lambda g, out, x: np.ones(7), name="bad")
    x = tape.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"bad: the VJP for argument 0 returned shape \(7,\).*\(3,\)"):
        bad(x).sum().backward()


def test_giving_vjps_and_backward_together_is_an_error():
    with pytest.raises(TypeError, match="either one VJP per argument or a joint backward"):
        tape.Op(np.sin, lambda g, out, x: g, backward=lambda g, out, x: [g])


def test_op_with_several_outputs():
    def split_halves(x):
        half = x.shape[0] // 2
        return x[:half].copy(), x[half:].copy()

    def split_backward(g, out, x):
        return [np.concatenate(g)]

    halves = tape.Op(split_halves, name="halves", backward=split_backward)
    x = tape.tensor(np.arange(4.0), requires_grad=True)
    first, _ = halves(x)
    (first * 2).sum().backward()  # only the first output is used: the second gets zeros
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 0.0, 0.0])
