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


def test_vjp_result_larger_than_any_broadcast_is_refused_not_summed():
    # (5, 2) sums to the input's shape (2,), but the forward never broadcast x: the output is (2,) too.
    myop = tape.Op(lambda x: x * 2, lambda g, out, x: np.ones((5, 2)) * g, name="myop")
    x = tape.tensor(np.ones(2), requires_grad=True)
    message = (
        r"^myop: the VJP for argument 0 returned shape \(5, 2\), which is not the argument's shape "
        r"\(2,\) nor one it was broadcast to in the output \(2,\)$"
    )
    with pytest.raises(ValueError, match=message):
        myop(x).sum().backward()
    assert x.grad is None


def test_vjp_returning_a_jacobian_instead_of_its_product_is_refused():
    # The classic slip: the Jacobian (2, 2) of an elementwise op where g times it was due.
    scale = tape.Op(lambda x: 3 * x, lambda g, out, x: 3 * np.eye(2), name="scale")
    x = tape.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match=r"^scale: the VJP for argument 0 returned shape \(2, 2\)"):
        scale(x).sum().backward()


def test_vjp_may_return_the_shape_its_input_was_broadcast_to():
    # Elementwise VJPs return the output's shape; an input broadcast along some axes has them summed.
    product = tape.Op(np.multiply, lambda g, out, x, y: g * y, lambda g, out, x, y: g * x, name="product")
    x = tape.tensor(np.arange(3.0).reshape(3, 1), requires_grad=True)
    y = tape.tensor(np.arange(4.0), requires_grad=True)
    product(x, y).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((3, 1), 6.0))
    np.testing.assert_array_equal(y.grad, np.full(4, 3.0))
    # A VJP may also return less than the output: here y's cotangent summed over part of the broadcast.
    partial = tape.Op(
        lambda x, y: x * y,
        lambda g, out, x, y: g * y,
        lambda g, out, x, y: (g * x).sum(axis=0),
        name="partial",
    )
    x = tape.tensor(np.ones((2, 3, 4)), requires_grad=True)
    y = tape.tensor(np.ones((1, 4)), requires_grad=True)
    partial(x, y).sum().backward()
    np.testing.assert_array_equal(y.grad, np.full((1, 4), 6.0))


def test_batched_vjp_of_the_wrong_shape_is_refused_in_jacobian():
    # Marked batched, so jacobian hands it every row at once: (rows, 2) in, (rows, 5, 2) out.
    spread = tape.Op(
        lambda x: x * 2, lambda g, out, x: np.stack([g] * 5, axis=-2), name="spread", batched=True
    )
    message = (
        r"^spread: the batched \(with 2 rows in front\) VJP for argument 0 returned shape \(5, 2\), which "
        r"is not the argument's shape \(2,\) nor one it was broadcast to in the output \(2,\)$"
    )
    with pytest.raises(ValueError, match=message):
        tape.jacobian(spread)(np.ones(2))
    unbatched = tape.Op(lambda x: x * 2, lambda g, out, x: np.stack([g] * 5), name="unbatched")
    with pytest.raises(ValueError, match=r"^unbatched: the VJP for argument 0 returned shape \(5, 2\)"):
        tape.jacobian(unbatched)(np.ones(2))


def test_an_error_in_the_forward_is_raised_as_it_was_with_the_op_noted():
    with pytest.raises(TypeError) as plain:
        np.array([1.0]) + "a"
    with pytest.raises(TypeError, match=r"^ufunc 'add' did not contain a loop") as recorded:
        tape.tensor([1.0]) + "a"
    assert type(recorded.value) is type(plain.value)
    assert recorded.value.args == plain.value.args
    assert recorded.value.__notes__ == ["add: array arguments of shapes (1,); dtypes float64"]


class PairError(ValueError):
    """An exception whose constructor takes two arguments: it cannot be rebuilt from its message."""

    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code = code


def test_a_users_exception_from_the_forward_is_the_same_object_with_a_note():
    raised = []

    def refuse(x, y):
        error = PairError(7, "no")
        raised.append(error)
        raise error

    pair = tape.Op(refuse, lambda g, out, x, y: g, lambda g, out, x, y: g, name="pair")
    x = tape.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(PairError) as caught:
        pair(x, np.ones(3, dtype=np.float32))
    error = caught.value
    assert error is raised[0]
    assert error.args == (7, "no") and error.code == 7
    assert error.__cause__ is None
    assert error.__notes__ == ["pair: array arguments of shapes (2, 3), (3,); dtypes float64, float32"]
    assert "refuse" in [frame.name for frame in caught.traceback]  # the forward's own frame is kept


def test_an_error_that_already_names_the_op_gets_no_note():
    def check(x):
        raise ValueError("strict: x must be positive")

    strict = tape.Op(check, lambda g, out, x: g, name="strict")
    with pytest.raises(ValueError, match=r"^strict: x must be positive$") as caught:
        strict(tape.tensor([-1.0], requires_grad=True))
    assert not hasattr(caught.value, "__notes__")


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
