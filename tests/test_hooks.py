"""tape/hooks.py through Tensor: register_hook, retain_grad and the warning on a non-leaf's .grad, against
PyTorch's behaviour (when installed) and closed forms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tape
from tape.hooks import queue_callback


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


# -- register_post_accumulate_grad_hook and queue_callback ----------------------------------------------


def test_a_post_accumulate_hook_sees_the_final_grad_as_in_torch():
    torch = torch_or_skip()
    values, inputs = np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([1.0, -2.0])
    seen = []
    w = tape.tensor(values, requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.copy()))
    # w is used twice, far apart on the tape: the hook must wait for both uses.
    np.sum(np.tanh(tape.tensor(inputs) @ w) ** 2 + np.sum(w * w)).backward()

    torch_seen = []
    tw = torch.tensor(values, requires_grad=True)
    tw.register_post_accumulate_grad_hook(lambda t: torch_seen.append(t.grad.clone()))
    (torch.tanh(torch.tensor(inputs) @ tw) ** 2 + (tw * tw).sum()).sum().backward()
    assert len(seen) == len(torch_seen) == 1
    np.testing.assert_allclose(seen[0], torch_seen[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad, seen[0], rtol=0)


def test_a_post_accumulate_hook_runs_as_soon_as_the_gradient_is_final():
    events = []
    x = tape.tensor([1.0, -1.0])
    w1 = tape.tensor(np.eye(2), requires_grad=True)
    w2 = tape.tensor(np.eye(2) * 2, requires_grad=True)
    hidden = x @ w1
    hidden.register_hook(lambda g: events.append("gradient of hidden"))
    w1.register_post_accumulate_grad_hook(lambda t: events.append("w1 final"))
    w2.register_post_accumulate_grad_hook(lambda t: events.append("w2 final"))
    np.sum(np.sin(np.tanh(hidden) @ w2)).backward()
    # w2 is used after hidden was made, so its gradient is final before hidden's is even computed.
    assert events == ["w2 final", "gradient of hidden", "w1 final"]


def test_a_post_accumulate_hook_sees_what_earlier_backwards_accumulated_and_the_leaf_hooks_made():
    seen = []
    w = tape.tensor([1.0, 2.0], requires_grad=True)
    w.register_hook(lambda g: g * 10)
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.copy()))
    np.sum(w * 3).backward()
    np.sum(w * 3).backward()
    np.testing.assert_array_equal(seen[0], [30.0, 30.0])
    np.testing.assert_array_equal(seen[1], [60.0, 60.0])  # accumulated, as .grad is


def test_post_accumulate_hooks_run_in_order_of_registration_and_are_removable():
    calls = []
    w = tape.tensor([1.0], requires_grad=True)
    first = w.register_post_accumulate_grad_hook(lambda t: calls.append("first"))
    w.register_post_accumulate_grad_hook(lambda t: calls.append("second"))
    np.sum(w * 2).backward()
    first.remove()
    np.sum(w * 2).backward()
    assert calls == ["first", "second", "second"]


def test_post_accumulate_hooks_do_not_run_for_the_transforms_or_for_leaves_no_gradient_reached():
    calls = []
    w = tape.tensor([1.0, 2.0], requires_grad=True)
    unused = tape.tensor([3.0], requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: calls.append("w"))
    unused.register_post_accumulate_grad_hook(lambda t: calls.append("unused"))
    (found,) = tape.gradients(np.sum(w * 5), [w])  # leaves .grad alone, as torch.autograd.grad does
    np.testing.assert_array_equal(found, [5.0, 5.0])
    assert calls == [] and w.grad is None
    np.sum(w * 5).backward()
    assert calls == ["w"] and unused.grad is None


def test_a_post_accumulate_hook_on_the_root_or_without_records_runs_at_the_end():
    calls = []
    w = tape.tensor(2.0, requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: calls.append(float(t.grad)))
    w.backward()
    assert calls == [1.0]


def test_post_accumulate_hooks_are_refused_where_no_grad_accumulates():
    w = tape.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only leaves accumulate a \.grad"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="does not require grad"):
        tape.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(TypeError, match="expected a callable taking the tensor, got int"):
        w.register_post_accumulate_grad_hook(3)  # type: ignore[arg-type]


def test_a_queued_callback_runs_once_after_every_grad_is_set():
    seen = []
    w1 = tape.tensor([1.0, 2.0], requires_grad=True)
    w2 = tape.tensor([3.0], requires_grad=True)

    def queue_once(tensor):
        if not seen:
            seen.append("queued")
            queue_callback(lambda: seen.append((w1.grad.copy(), w2.grad.copy())))

    w1.register_post_accumulate_grad_hook(queue_once)
    w2.register_post_accumulate_grad_hook(queue_once)
    np.sum(w1 * w2).backward()
    assert len(seen) == 2
    np.testing.assert_array_equal(seen[1][0], [3.0, 3.0])
    np.testing.assert_array_equal(seen[1][1], [3.0])


def test_queue_callback_outside_backward_is_refused():
    with pytest.raises(RuntimeError, match="no backward is running"):
        queue_callback(lambda: None)
    with pytest.raises(TypeError, match="expected a callable"):
        queue_callback(None)  # type: ignore[arg-type]


def test_a_backward_that_fails_drops_its_callbacks_and_the_next_one_works():
    calls = []
    x = tape.tensor([1.0], requires_grad=True)
    y = x * 2

    def fail(g):
        queue_callback(lambda: calls.append("ran"))
        raise ValueError("hook failed")

    handle = y.register_hook(fail)
    with pytest.raises(ValueError, match="hook failed"):
        np.sum(y).backward(retain_graph=True)
    handle.remove()
    np.sum(y).backward()
    assert calls == [] and x.grad is not None


def _hooked(x):
    y = 2 * x
    y.register_hook(lambda g: g * 10)
    return 3 * y


HOOKED_FORWARD_MODE = {
    "jvp": lambda: tape.jvp(_hooked, (np.ones(2),), (np.ones(2),)),
    "jacfwd": lambda: tape.jacfwd(_hooked)(np.ones(2)),
    "jacobian_operator": lambda: tape.jacobian_operator(_hooked, np.ones(2)) @ np.ones(2),
    "hvp": lambda: tape.hvp(lambda x: np.sum(_hooked(x) ** 2), (np.ones(2),), (np.ones(2),)),
    "jvp nested (reverse mode)": lambda: tape.grad(
        lambda a: np.sum(tape.jvp(lambda x: _hooked(x) * a, (np.ones(2),), (np.ones(2),))[1])
    )(1.0),
}


@pytest.mark.parametrize("name", HOOKED_FORWARD_MODE)
def test_forward_mode_refuses_tensor_hooks_on_every_path(name):
    # A hook changes cotangents; J v has none to change, so it would depend on the path: refused on each.
    with pytest.raises(RuntimeError, match=r"a tensor made by 'multiply' has a hook"):
        HOOKED_FORWARD_MODE[name]()
    np.testing.assert_array_equal(tape.grad(lambda x: np.sum(_hooked(x)))(np.ones(2)), [60.0, 60.0])
