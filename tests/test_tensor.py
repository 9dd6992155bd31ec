"""Tensor: construction, attributes, conversion, operators and dtype rules."""

from __future__ import annotations

import numpy as np
import pytest

import tape


def test_tensor_copies_data_and_keeps_dtype():
    data = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    t = tape.tensor(data, requires_grad=True)
    data[0, 0] = 100.0
    assert t.data[0, 0] == 0.0
    assert t.dtype == np.float32
    assert (t.shape, t.ndim, t.size) == ((2, 3), 2, 6)
    assert t.requires_grad and t.is_leaf and t.grad is None


def test_tensor_from_python_values_uses_numpy_defaults():
    assert tape.tensor([1.0, 2.0]).dtype == np.float64
    assert tape.tensor([1, 2]).dtype == np.int64
    assert tape.tensor(3.0).shape == ()
    assert tape.tensor([1.0], dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("data", [[1, 2, 3], [True, False]])
def test_integer_and_boolean_tensors_cannot_require_grad(data):
    with pytest.raises(
        TypeError, match=r"only floating-point tensors can require grad, got dtype (int64|bool)"
    ):
        tape.tensor(data, requires_grad=True)
    t = tape.tensor(data)
    with pytest.raises(TypeError, match="requires_grad_"):
        t.requires_grad_()


def test_conversions():
    t = tape.tensor([[1.5, 2.0], [3.0, 4.0]], requires_grad=True)
    assert np.asarray(t.detach(), dtype=np.float32).dtype == np.float32
    assert np.shares_memory(np.asarray(t.detach()), t.data)
    for convert in (np.asarray, np.array, lambda t: np.zeros(2).__setitem__(slice(None), t[0])):
        with pytest.raises(TypeError, match="would drop its gradient"):
            convert(t)  # numpy would copy the values and lose the gradient
    with tape.no_grad():
        assert np.asarray(t, dtype=np.float32).dtype == np.float32
        assert np.shares_memory(np.asarray(t), t.data) and not np.asarray(t).flags.writeable
    assert np.shares_memory(t.numpy(), t.data) and not t.numpy().flags.writeable
    assert t.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert t[0, 0].item() == 1.5
    assert float(t[0, 0]) == 1.5 and int(t[1, 1]) == 4
    assert len(t) == 2
    rows = list(t)
    assert len(rows) == 2 and isinstance(rows[0], tape.Tensor)
    np.testing.assert_array_equal(rows[1].data, [3.0, 4.0])
    with pytest.raises(TypeError, match="0-d"):
        iter(tape.tensor(1.0))


def test_iteration_rows_carry_gradient():
    t = tape.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    total = sum(row.sum() * (k + 1) for k, row in enumerate(t))
    total.backward()
    np.testing.assert_array_equal(t.grad, [[1.0, 1.0], [2.0, 2.0]])


def test_repr_is_readable():
    assert repr(tape.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(tape.tensor([1.0], dtype=np.float32, requires_grad=True)) == (
        "tensor([1.], dtype=float32, requires_grad=True)"
    )
    x = tape.tensor([1.0], requires_grad=True)
    assert repr(x * 2) == "tensor([2.], op=multiply)"


def test_detach_shares_data_and_cuts_history():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.is_leaf
    z = x * 2
    assert np.shares_memory(z.detach().data, z.data)


def test_comparisons_give_untracked_booleans():
    x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for result in (x < 2, x <= 2, x > 2, x >= 2, x == 2, x != 2, np.greater(x, 2)):
        assert result.dtype == np.bool_
        assert not result.requires_grad
    np.testing.assert_array_equal((x > 1.5).data, [False, True, True])


def test_tensors_hash_by_identity():
    a, b = tape.tensor([1.0]), tape.tensor([1.0])
    assert len({a, b}) == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_scalars_do_not_promote(dtype):
    x = tape.tensor([1.0, 2.0], dtype=dtype, requires_grad=True)
    for y in (x * 2.5, 2.5 * x, x + 1, x / 3.0, x**2, 1.0 - x, np.sin(x) * 0.5):
        assert y.dtype == dtype
    (x * 2.5).sum().backward()
    assert x.grad.dtype == dtype


def test_float32_with_float64_tensor_promotes_and_gradients_keep_input_dtypes():
    a = tape.tensor([1.0, 2.0], dtype=np.float32, requires_grad=True)
    b = tape.tensor([3.0, 4.0], dtype=np.float64, requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad, [3.0, 4.0])


def test_all_operators_record_and_match_numpy():
    rng = np.random.default_rng(0)
    a_data, b_data = rng.uniform(0.5, 2.0, (3, 4)), rng.uniform(0.5, 2.0, (4,))
    a = tape.tensor(a_data, requires_grad=True)
    b = tape.tensor(b_data, requires_grad=True)
    cases = {
        "+": (a + b, a_data + b_data),
        "-": (a - b, a_data - b_data),
        "*": (a * b, a_data * b_data),
        "/": (a / b, a_data / b_data),
        "**": (a**b, a_data**b_data),
        "@": (a @ b, a_data @ b_data),
        "r+": (1.0 + a, 1.0 + a_data),
        "r-": (1.0 - a, 1.0 - a_data),
        "r*": (2.0 * a, 2.0 * a_data),
        "r/": (2.0 / a, 2.0 / a_data),
        "r**": (2.0**a, 2.0**a_data),
        "r@": (a_data.T @ a, a_data.T @ a_data),
        "neg": (-a, -a_data),
        "pos": (+a, +a_data),
        "abs": (abs(a - 1.0), abs(a_data - 1.0)),
        "//": (a // b, a_data // b_data),
        "%": (a % b, a_data % b_data),
    }
    for name, (result, expected) in cases.items():
        assert isinstance(result, tape.Tensor), name
        np.testing.assert_allclose(result.data, expected, err_msg=name)
        assert result.requires_grad, name


def test_ndarray_on_the_left_defers_to_tensor():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([3.0, 4.0]) * x
    assert isinstance(y, tape.Tensor) and y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_plain_data_leaks_no_gradient_silently():
    x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    leaks = {
        "a list of tensors given to np.sum": lambda: np.sum([x[i] ** 2 for i in range(3)]),
        "a list mixing a tensor and a float": lambda: np.mean([x[0], 1.0]),
        "np.r_": lambda: np.r_[x, x],
        "np.c_": lambda: np.c_[x, x],
        "np.array": lambda: np.array(x),
    }
    for name, leak in leaks.items():
        with pytest.raises(TypeError, match="converted to a plain numpy array while recording"):
            leak()
            pytest.fail(f"{name} returned plain data")
    with tape.no_grad():
        assert np.sum([x[i] ** 2 for i in range(3)]) == 14.0
    assert np.sum([x.detach()[i] ** 2 for i in range(3)]) == 14.0
    assert repr(x) == "tensor([1., 2., 3.], requires_grad=True)"  # printing does not convert


def test_object_results_and_complex_results_of_ops_without_a_complex_rule_are_refused():
    w = tape.tensor([1.0, -2.0], requires_grad=True)
    with pytest.raises(TypeError, match=r"^multiply: gives object values .* object arrays hold no gradient"):
        w * np.array([3.0, 3.0], dtype=object)
    with pytest.raises(TypeError, match=r"^maximum: complex tensors that require grad are not supported"):
        np.maximum(w * 1j, 0)
    pair = tape.Op(lambda x: (x * 2.0, x * 1j), backward=lambda g, out, x: [g[0] * 2.0], name="pair")
    with pytest.raises(TypeError, match=r"^pair: complex tensors that require grad are not supported"):
        pair(w)
    # A holomorphic op records complex results: w * 1j is differentiable (tests/ops/test_complex_parts.py).
    np.sum(np.abs(w * 1j)).backward()
    np.testing.assert_array_equal(w.grad, [1.0, -1.0])
    # The explicit exits keep working, and so does a tensor that does not require grad.
    np.testing.assert_array_equal((w.detach() * 1j).data, [1j, -2j])
    with tape.no_grad():
        np.testing.assert_array_equal(np.maximum(w * 1j, 0).data, np.maximum(np.array([1j, -2j]), 0))
    np.testing.assert_array_equal((tape.tensor([1.0]) * 1j).data, [1j])
    # Integer and boolean results carry no gradient by definition: they stay allowed.
    assert (w > 0).dtype == np.bool_ and not (w > 0).requires_grad


def test_scipy_functions_that_do_not_dispatch_are_refused():
    special = pytest.importorskip("scipy.special")
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="converted to a plain numpy array while recording"):
        special.logsumexp(x)


def test_float_and_int_need_a_single_element():
    with pytest.raises(TypeError, match=r"^float\(\) of a tensor of shape \(2,\): only a single-element"):
        float(tape.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"^int\(\) of a tensor of shape \(2, 1\)"):
        int(tape.tensor([[1], [2]]))
    assert float(tape.tensor([[2.5]], requires_grad=True)) == 2.5  # an explicit exit, as .item()


def test_real_imag_and_conj_attributes_differentiate_as_numpy_functions_do():
    values = np.array([1 + 2j, 3 - 1j])
    z = tape.tensor(values, requires_grad=True)
    (z.real**2 + 3 * z.imag + np.abs(z.conj() - 1j)).sum().backward()
    w = np.conj(values) - 1j
    # PyTorch's convention: dL/dx + i dL/dy; d|conj(z) - i|/dz in it is conj(w / |w|).
    expected = 2 * values.real + 3j + np.conj(w / np.abs(w))
    np.testing.assert_allclose(z.grad, expected, rtol=1e-12)
    assert z.conjugate().record.op.name == "conjugate"


def test_real_and_imag_of_a_real_tensor():
    x = tape.tensor([1.0, -2.0], requires_grad=True)
    assert x.real is x
    np.testing.assert_array_equal(x.imag.data, [0.0, 0.0])
    (x.imag * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


@pytest.mark.parametrize("part", ["real", "imag"])
def test_assigning_a_part_is_refused(part):
    z = tape.tensor([1 + 2j])
    with pytest.raises(TypeError, match=rf"Tensor.{part} cannot be assigned"):
        setattr(z, part, 3.0)
