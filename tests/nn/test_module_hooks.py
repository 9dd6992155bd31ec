"""tape/nn/module.py hooks: forward pre-hooks, forward hooks and full backward hooks, against torch's."""

from __future__ import annotations

import numpy as np
import pytest

import tape
import tape.nn as nn


def linear(in_features=3, out_features=2, seed=0):
    return nn.Linear(in_features, out_features, rng=np.random.default_rng(seed))


def leaf(shape, seed=1):
    return tape.tensor(np.random.default_rng(seed).normal(size=shape), requires_grad=True)


class Pair(nn.Module):
    """Two inputs (the second optional), two outputs: the cases a single tensor does not reach."""

    def forward(self, x, y=None, scale=1.0):
        return x * 2.0 * scale, (x * y if y is not None else x) * 3.0


def test_forward_hooks_run_in_registration_order_and_replace_args_and_output():
    layer = nn.Identity()
    calls = []
    layer.register_forward_pre_hook(lambda module, args: calls.append(("pre", args)))
    layer.register_forward_pre_hook(lambda module, args: args[0] + 1.0)  # a single value: a 1-tuple
    layer.register_forward_pre_hook(lambda module, args: (args[0] * 10.0,))
    layer.register_forward_hook(lambda module, args, output: calls.append(("after", args, output)))
    layer.register_forward_hook(lambda module, args, output: output - 5.0)
    layer.register_forward_hook(lambda module, args, output: calls.append(("last", output)))
    assert layer(np.array([1.0, 2.0])).tolist() == [15.0, 25.0]
    assert calls[0][0] == "pre" and calls[0][1][0].tolist() == [1.0, 2.0]
    assert calls[1][0] == "after"
    assert calls[1][1][0].tolist() == [20.0, 30.0]  # forward hooks see the arguments forward received
    assert calls[1][2].tolist() == [20.0, 30.0]
    assert calls[2][0] == "last" and calls[2][1].tolist() == [15.0, 25.0]


def test_hooks_match_torch_order_and_replacement():
    torch = pytest.importorskip("torch")
    results = []
    for library, module in ((tape, nn.Identity()), (torch, torch.nn.Identity())):
        log = []
        module.register_forward_pre_hook(lambda m, args, log=log: log.append("pre1") or (args[0] * 2,))
        module.register_forward_pre_hook(lambda m, args, log=log: log.append("pre2") or args[0] + 1)
        module.register_forward_hook(lambda m, args, out, log=log: log.append("post1") or out * 3)
        module.register_forward_hook(lambda m, args, out, log=log: log.append("post2"))
        output = module(library.tensor([1.0, 2.0]))
        results.append((log, np.asarray(output.detach() if library is torch else output.data).tolist()))
    assert results[0] == results[1] == (["pre1", "pre2", "post1", "post2"], [9.0, 15.0])


def test_keyword_arguments_reach_forward_unchanged():
    module = Pair()
    seen = []
    module.register_forward_pre_hook(lambda m, args: seen.append(len(args)))
    first, _ = module(tape.tensor([1.0]), scale=4.0)
    assert seen == [1] and first.tolist() == [8.0]


def test_remove_twice_and_removed_hooks_never_run():
    layer = nn.Identity()
    calls = []
    first = layer.register_forward_hook(lambda module, args, output: calls.append("first"))
    second = layer.register_forward_hook(lambda module, args, output: calls.append("second"))
    layer(1.0)
    first.remove()
    first.remove()  # as torch: a no-op
    layer(1.0)
    assert calls == ["first", "second", "second"]
    second.remove()
    layer(1.0)
    assert calls == ["first", "second", "second"]
    assert not layer._forward_hooks  # the fast path again

    # A hook removed by an earlier hook of the same call does not run.
    handles = []
    layer.register_forward_pre_hook(lambda module, args: handles[0].remove())
    handles.append(layer.register_forward_pre_hook(lambda module, args: calls.append("removed")))
    layer(1.0)
    assert calls == ["first", "second", "second"]

    # The handle is a context manager.
    with layer.register_forward_hook(lambda module, args, output: output + 1.0):
        assert layer(1.0) == 2.0
    assert layer(1.0) == 1.0


def test_hooks_inside_sequential_children_fire_in_call_order():
    model = nn.Sequential(linear(3, 4), nn.ReLU(), linear(4, 2, seed=2))
    order = []
    for name, child in model.named_children():
        child.register_forward_pre_hook(lambda module, args, name=name: order.append(f"pre {name}"))
        child.register_forward_hook(lambda module, args, output, name=name: order.append(f"post {name}"))
        child.register_full_backward_hook(lambda module, gi, go, name=name: order.append(f"backward {name}"))
    model(leaf((5, 3))).sum().backward()
    assert order == [
        "pre 0", "post 0", "pre 1", "post 1", "pre 2", "post 2",
        "backward 2", "backward 1", "backward 0",
    ]  # fmt: skip


def test_backward_hook_matches_torch_linear():
    torch = pytest.importorskip("torch")
    ours = linear(3, 2)
    theirs = torch.nn.Linear(3, 2, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))
    x = np.random.default_rng(3).normal(size=(4, 3))
    seed = np.random.default_rng(4).normal(size=(4, 2))
    for input_requires_grad in (True, False):
        seen_ours, seen_theirs = [], []
        ours.register_full_backward_hook(lambda m, gi, go, seen=seen_ours: seen.append((gi, go)))
        theirs.register_full_backward_hook(lambda m, gi, go, seen=seen_theirs: seen.append((gi, go)))
        x_ours = tape.tensor(x, requires_grad=input_requires_grad)
        x_theirs = torch.tensor(x, requires_grad=input_requires_grad)
        (ours(x_ours) * seed).sum().backward()
        with pytest.warns(UserWarning) if not input_requires_grad else _nothing():
            (theirs(x_theirs) * torch.tensor(seed)).sum().backward()
        ((grad_in, *_), (grad_out,)) = seen_ours[0]
        ((their_in, *_), (their_out,)) = seen_theirs[0]
        assert len(seen_ours) == len(seen_theirs) == 1
        assert len(seen_ours[0][0]) == len(seen_theirs[0][0]) == 1
        np.testing.assert_allclose(grad_out, their_out.numpy(), rtol=1e-12)
        if input_requires_grad:
            np.testing.assert_allclose(grad_in, their_in.numpy(), rtol=1e-12)
            np.testing.assert_allclose(x_ours.grad, x_theirs.grad.numpy(), rtol=1e-12)
        else:
            assert grad_in is None and their_in is None
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-12)
        ours._backward_hooks.clear(), theirs._backward_hooks.clear()
        ours.zero_grad(), theirs.zero_grad()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def test_backward_hook_several_inputs_and_outputs_match_torch():
    torch = pytest.importorskip("torch")

    class TorchPair(torch.nn.Module):
        def forward(self, x, y=None, scale=1.0):
            return x * 2.0 * scale, (x * y if y is not None else x) * 3.0

    x, y = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    seen = {}
    for library, module in ((tape, Pair()), (torch, TorchPair())):
        log = seen[library.__name__] = []
        module.register_full_backward_hook(lambda m, gi, go, log=log: log.append((gi, go)))
        x_in = library.tensor(x, requires_grad=True)
        y_in = library.tensor(y, requires_grad=False)  # a tensor that needs no grad: None in grad_input
        first, second = module(x_in, y_in, 5.0)
        (first * 7.0 + second).sum().backward()
    (ours_in, ours_out), (theirs_in, theirs_out) = seen["tape"][0], seen["torch"][0]
    assert len(ours_in) == len(theirs_in) == 3
    assert ours_in[1] is None and ours_in[2] is None and theirs_in[2] is None
    # torch hands zeros for a tensor input that needs no grad when another one does; tape hands None.
    np.testing.assert_array_equal(theirs_in[1].numpy(), [0.0, 0.0])
    np.testing.assert_allclose(ours_in[0], theirs_in[0].numpy())
    for ours, theirs in zip(ours_out, theirs_out, strict=True):
        np.testing.assert_allclose(ours, theirs.numpy())


def test_gradients_unchanged_by_a_hook_that_returns_none():
    x = np.random.default_rng(5).normal(size=(2, 3))
    grads = []
    for hooked in (False, True):
        model = nn.Sequential(linear(3, 4), nn.Tanh(), linear(4, 1, seed=1))
        if hooked:
            for child in model:
                child.register_full_backward_hook(lambda module, gi, go: None)
        x_in = tape.tensor(x, requires_grad=True)
        model(x_in).sum().backward()
        grads.append([x_in.grad, *(p.grad for p in model.parameters())])
    for plain, hooked in zip(*grads, strict=True):
        np.testing.assert_allclose(plain, hooked, rtol=1e-14)


def test_replacing_grad_input_changes_what_reaches_earlier_layers():
    x = np.random.default_rng(6).normal(size=(5, 3))
    grads = []
    for factor in (None, 3.0):
        model = nn.Sequential(linear(3, 4), nn.ReLU(), linear(4, 2, seed=1))
        if factor is not None:
            model[2].register_full_backward_hook(lambda module, gi, go, k=factor: (gi[0] * k,))
        model(tape.tensor(x)).sum().backward()  # the input needs no grad: the first layer's weights do
        grads.append((model[0].weight.grad, model[2].weight.grad))
    (first_plain, last_plain), (first_scaled, last_scaled) = grads
    np.testing.assert_allclose(first_scaled, 3.0 * first_plain, rtol=1e-12)
    np.testing.assert_allclose(last_scaled, last_plain, rtol=1e-12)  # the layer's own weights: unchanged
    assert np.abs(first_plain).sum() > 0


def test_replacing_grad_input_matches_torch():
    torch = pytest.importorskip("torch")
    ours = linear(3, 2)
    theirs = torch.nn.Linear(3, 2, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))
    ours.register_full_backward_hook(lambda m, gi, go: (gi[0] * 2.0 + 1.0,))
    theirs.register_full_backward_hook(lambda m, gi, go: (gi[0] * 2.0 + 1.0,))
    x = np.random.default_rng(7).normal(size=(4, 3))
    x_ours, x_theirs = tape.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    np.tanh(ours(np.sin(x_ours))).sum().backward()
    torch.tanh(theirs(torch.sin(x_theirs))).sum().backward()
    np.testing.assert_allclose(x_ours.grad, x_theirs.grad.numpy(), rtol=1e-12)


def test_none_in_a_replacement_stops_the_gradient():
    layer = linear(3, 2)
    layer.register_full_backward_hook(lambda module, gi, go: (None,))
    x = leaf((2, 3))
    upstream = x * 1.0
    layer(upstream).sum().backward()
    assert x.grad is None
    assert layer.weight.grad is not None


def test_wrong_replacements_raise_clear_errors():
    layer = linear(3, 2)
    handle = layer.register_full_backward_hook(lambda module, gi, go: (np.ones((3, 2)),))
    with pytest.raises(ValueError, match=r"Linear: .*grad_input\[0\] of shape \(3, 2\), .* shape \(4, 3\)"):
        layer(leaf((4, 3))).sum().backward()
    handle.remove()
    handle = layer.register_full_backward_hook(lambda module, gi, go: (gi[0], gi[0]))
    with pytest.raises(ValueError, match="Linear: a full backward hook returned 2 gradients for 1 "):
        layer(leaf((4, 3))).sum().backward()
    handle.remove()
    layer.register_full_backward_hook(lambda module, gi, go: (np.ones((4, 3)),))
    with pytest.raises(ValueError, match="no input of this call requires grad"):
        layer(tape.tensor(np.ones((4, 3)))).sum().backward()


def test_backward_hooks_registered_after_the_call_or_removed_before_backward_do_not_run():
    layer = linear()
    calls = []
    removed = layer.register_full_backward_hook(lambda module, gi, go: calls.append("removed"))
    kept = layer.register_full_backward_hook(lambda module, gi, go: calls.append("kept"))
    output = layer(leaf((2, 3)))
    layer.register_full_backward_hook(lambda module, gi, go: calls.append("late"))
    removed.remove()
    output.sum().backward()
    assert calls == ["kept"]
    kept.remove()


def test_backward_hooks_add_nothing_without_recording():
    layer = linear()
    calls = []
    layer.register_full_backward_hook(lambda module, gi, go: calls.append(1))
    with tape.no_grad():
        output = layer(leaf((2, 3)))
    assert not output.requires_grad and calls == []


def test_backward_hooks_refuse_outputs_they_cannot_follow():
    class ToDict(nn.Module):
        def forward(self, x):
            return {"y": x * 2.0}

    module = ToDict()
    module.register_full_backward_hook(lambda m, gi, go: None)
    with pytest.raises(TypeError, match=r"ToDict: full backward hooks need forward .* got dict"):
        module(leaf((2,)))


def test_backward_hook_in_a_jacobian_sees_each_row():
    layer = linear(3, 2)
    rows = []
    values = lambda g: np.array(g.data if isinstance(g, tape.Tensor) else g)  # jacobian sweeps on tensors
    layer.register_full_backward_hook(lambda module, gi, go: rows.append((values(gi[0]), values(go[0]))))
    x = tape.tensor(np.random.default_rng(8).normal(size=3))
    jac = tape.jacobian(lambda x: layer(x))(x)
    np.testing.assert_allclose(jac.data, layer.weight.data, rtol=1e-12)
    assert len(rows) == 2
    for row, (grad_in, grad_out) in enumerate(rows):
        np.testing.assert_allclose(grad_out, np.eye(2)[row])
        np.testing.assert_allclose(grad_in, layer.weight.data[row], rtol=1e-12)


def test_state_and_checkpoints_do_not_see_hooks(tmp_path):
    source, target = linear(seed=0), linear(seed=9)
    for module in (source, target):
        module.register_forward_pre_hook(lambda m, args: None)
        module.register_forward_hook(lambda m, args, output: None)
        module.register_full_backward_hook(lambda m, gi, go: None)
    assert list(source.state_dict()) == ["weight", "bias"]
    nn.save(tmp_path / "model.npz", source)
    nn.load(tmp_path / "model.npz", target)
    np.testing.assert_array_equal(target.weight.data, source.weight.data)
    assert target.load_state_dict(source.state_dict()) == ([], [])
    assert "_forward_hooks" not in dict(source.named_parameters())
    assert len(target._forward_hooks) == len(target._forward_pre_hooks) == len(target._backward_hooks) == 1


def test_a_full_backward_hook_runs_under_create_graph_and_is_differentiated_again():
    # Doubling grad_input doubles the first derivative with respect to the input. The second sweep passes
    # through the module's forward again, so the hook fires again there and doubles once more: the second
    # derivative of sum(first ** 2) is 4 x 2 = 8 times the plain one, as torch gives (checked: 2x and 8x).
    def second_derivative(hooked: bool) -> np.ndarray:
        layer = nn.Linear(3, 2, rng=np.random.default_rng(0))
        seen = []
        if hooked:

            def double(module, grad_input, grad_output):
                seen.append(type(grad_output[0]))
                return (grad_input[0] * 2.0,)

            layer.register_full_backward_hook(double)
        x = tape.tensor(np.array([[0.3, -0.2, 0.5]]), requires_grad=True)
        (first,) = tape.gradients(np.sum(np.tanh(layer(x)) ** 2), [x], create_graph=True)
        (second,) = tape.gradients(np.sum(first**2), [x])
        if hooked:  # recorded gradients under create_graph, plain ones in the second sweep
            assert seen == [tape.Tensor, np.ndarray]
        return np.asarray(first.numpy()), second

    first_plain, second_plain = second_derivative(False)
    first_hooked, second_hooked = second_derivative(True)
    np.testing.assert_allclose(first_hooked, 2 * first_plain, rtol=1e-12)
    np.testing.assert_allclose(second_hooked, 8 * second_plain, rtol=1e-12)
