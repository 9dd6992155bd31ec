"""tape/hooks.py through Tensor: register_hook, retain_grad and the warning on a non-leaf's .grad, against
PyTorch's behaviour (when installed) and closed forms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tape


def torch_or_skip():
    return pytest.importorskip("torch")


def test_a_hook_replaces_the_gradient_flowing_back_as_in_torch():
    torch = torch_or_skip()
    values = np.array([0.5, -1.0, 2.0])
    x = tape.tensor(values, requires_grad=True)
    y = np.sin(x) * 2
    y.register_hook(lambda g: g * np.arange(1.0, 4.0))
    np.sum(y**2).backward()

    tx = torch.tensor(values, requires_grad=True)
    ty = torch.sin(tx) * 2
    ty.register_hook(lambda g: g * torch.arange(1.0, 4.0, dtype=torch.float64))
    (ty**2).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)


def test_hooks_run_in_order_of_registration_and_none_keeps_the_gradient():
    seen = []
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.register_hook(lambda g: seen.append(("first", g.copy())))
    y.register_hook(lambda g: g + 1)
    y.register_hook(lambda g: seen.append(("third", g.copy())))
    np.sum(y).backward()
    assert [name for name, _ in seen] == ["first", "third"]
    np.testing.assert_array_equal(seen[0][1], [1.0, 1.0])
    np.testing.assert_array_equal(seen[1][1], [2.0, 2.0])
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_a_leaf_hook_changes_what_reaches_grad_and_the_transforms():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g + 1)
    np.sum(x * 2).backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])  # torch gives the same (2 + 1)
    (found,) = tape.gradients(np.sum(x * 5), [x])
    np.testing.assert_array_equal(found, [6.0, 6.0])


def test_a_removed_hook_is_not_called_and_removing_twice_does_nothing():
    calls = []
    x = tape.tensor([1.0], requires_grad=True)
    y = x * 2
    handle = y.register_hook(lambda g: calls.append(g))
    handle.remove()
    handle.remove()
    np.sum(y).backward()
    assert calls == []
    np.testing.assert_array_equal(x.grad, [2.0])


def test_a_hook_on_a_tensor_backward_does_not_reach_is_not_called():
    calls = []
    x = tape.tensor([1.0], requires_grad=True)
    unused = x * 7
    unused.register_hook(lambda g: calls.append(g))
    np.sum(x * 2).backward()
    assert calls == []


@pytest.mark.parametrize(
    "returned, error, message",
    [
        (lambda g: g[:1], ValueError, r"shape \(1,\) and dtype float64 for a gradient of shape \(2,\)"),
        (lambda g: g.astype(np.float32), ValueError, "dtype float32 for a gradient of shape"),
        (lambda g: [1.0, 2.0], TypeError, "returned list; it must return None or an array of shape"),
    ],
    ids=["shape", "dtype", "type"],
)
def test_a_hook_returning_the_wrong_gradient_is_an_error(returned, error, message):
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = np.exp(x)
    y.register_hook(returned)
    with pytest.raises(error, match=message) as raised:
        np.sum(y).backward()
    assert "made by 'exp'" in str(raised.value)


def test_a_wrong_leaf_hook_is_an_error_too():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g.reshape(2, 1))
    with pytest.raises(ValueError, match="hook of a leaf tensor returned a gradient of shape"):
        np.sum(x * 2).backward()


def test_hooks_need_a_tensor_that_requires_grad_and_a_callable():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tape.tensor([1.0]).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="expected a callable"):
        tape.tensor([1.0], requires_grad=True).register_hook(3)
    with pytest.raises(RuntimeError, match="retain_grad: the tensor does not require grad"):
        tape.tensor([1.0]).retain_grad()


def test_retain_grad_keeps_and_accumulates_a_non_leaf_gradient_as_torch():
    torch = torch_or_skip()
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    assert y.retains_grad and not x.retains_grad
    np.sum(y * y).backward(retain_graph=True)
    np.testing.assert_array_equal(y.grad, [6.0, 12.0])
    np.sum(y * y).backward()

    tx = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    ty = tx * 3
    ty.retain_grad()
    (ty * ty).sum().backward(retain_graph=True)
    (ty * ty).sum().backward()
    np.testing.assert_array_equal(y.grad, ty.grad.numpy())
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


@pytest.mark.parametrize("retain_first", [True, False])
def test_retain_grad_keeps_the_gradient_after_the_other_hooks(retain_first):
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    if retain_first:
        y.retain_grad()
    y.register_hook(lambda g: g * 10)
    if not retain_first:
        y.retain_grad()
    np.sum(y).backward()
    np.testing.assert_array_equal(y.grad, [10.0, 10.0])  # torch: the same in either order
    np.testing.assert_array_equal(x.grad, [30.0, 30.0])


def test_retained_grad_is_a_copy_the_user_may_change():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    y.retain_grad()
    np.sum(y).backward()
    y.grad[0] = 100.0
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_reading_grad_of_a_non_leaf_warns_unless_it_is_retained():
    x = tape.tensor([1.0], requires_grad=True)
    y = x * 2
    np.sum(y).backward(retain_graph=True)
    with pytest.warns(UserWarning, match="not a leaf.*retain_grad"):
        assert y.grad is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is not None
        y.retain_grad()
        assert y.grad is None  # retained, not yet computed: no warning
        assert tape.tensor([1.0]).grad is None


def test_hooks_run_under_create_graph_and_are_differentiated_again():
    torch = torch_or_skip()
    values = np.array([0.3, -0.7])

    x = tape.tensor(values, requires_grad=True)
    y = x**3
    y.register_hook(lambda g: g * y)  # depends on x: the second derivative sees it
    (first,) = tape.gradients(np.sum(y), [x], create_graph=True)
    (second,) = tape.gradients(np.sum(first), [x])

    tx = torch.tensor(values, requires_grad=True)
    ty = tx**3
    ty.register_hook(lambda g: g * ty)
    (tfirst,) = torch.autograd.grad(ty.sum(), [tx], create_graph=True)
    (tsecond,) = torch.autograd.grad(tfirst.sum(), [tx])
    np.testing.assert_allclose(np.asarray(first.numpy()), tfirst.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(second, tsecond.numpy(), rtol=1e-12)


def test_a_hook_on_one_output_of_an_op_with_several():
    torch = torch_or_skip()
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    x = tape.tensor(a, requires_grad=True)
    values, _ = np.linalg.eigh(x)
    values.register_hook(lambda g: g * np.array([1.0, 5.0]))
    np.sum(values).backward()

    tx = torch.tensor(a, requires_grad=True)
    tvalues, _ = torch.linalg.eigh(tx)
    tvalues.register_hook(lambda g: g * torch.tensor([1.0, 5.0], dtype=torch.float64))
    tvalues.sum().backward()
    np.testing.assert_allclose(x.grad, np.tril(tx.grad.numpy()) + np.tril(tx.grad.numpy(), -1), atol=1e-12)


def test_a_hook_sees_the_gradient_of_the_value_it_was_registered_on():
    # In place after registering: the hook fires with the gradient of the old value, as in torch.
    torch = torch_or_skip()
    seen, tseen = [], []
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    y.register_hook(lambda g: seen.append(g.copy()))
    y *= 3
    np.sum(y * y).backward()

    tx = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    ty = tx * 1
    ty.register_hook(lambda g: tseen.append(g.clone()))
    ty *= 3
    (ty * ty).sum().backward()
    np.testing.assert_array_equal(seen[0], tseen[0].numpy())
    np.testing.assert_array_equal(x.grad, tx.grad.numpy())


def test_jacobian_refuses_a_graph_with_hooks_rather_than_skip_them():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="hooks do not run in the batched sweep"):

        def f(v):
            y = v * 2
            y.register_hook(lambda g: g)
            return y

        tape.jacobian(f)(np.array([1.0, 2.0]))
    assert x.grad is None


def test_grad_fn_names_the_op_and_leads_to_the_inputs_records_and_leaves():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    w = tape.tensor([3.0, 4.0], requires_grad=True)
    y = np.sin(x) * w
    assert x.grad_fn is None and x.is_leaf and not y.is_leaf
    assert y.grad_fn.name == "multiply"
    (sin_node, sin_index), (leaf, leaf_index) = y.grad_fn.next_functions
    assert sin_node.name == "sin" and sin_index is None
    assert leaf is w and leaf_index is None
    assert sin_node.next_functions == ((x, None),)
    assert (y * 2.0).grad_fn.next_functions == ((y.grad_fn, None),)  # a constant is not an input
    np.sum(y).backward()
    assert y.grad_fn.next_functions == ()  # released by backward
