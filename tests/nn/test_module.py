"""tape/nn/module.py: parameter registration, traversal, modes, state_dict round trips through one .npz file,
load errors that list the keys, and the nested repr."""

from __future__ import annotations

import numpy as np
import pytest

import tape
import tape.nn as nn


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 4, rng=np.random.default_rng(0))
        self.norm = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 2, rng=np.random.default_rng(1))
        self.scale = nn.Parameter(np.ones(1))
        self.note = "not registered"

    def forward(self, x):
        return self.out(nn.functional.relu(self.norm(self.hidden(x)))) * self.scale


def test_parameter_is_a_tensor_that_requires_grad():
    p = nn.Parameter(np.zeros(3, dtype=np.float32))
    assert isinstance(p, tape.Tensor) and p.requires_grad and p.dtype == np.float32
    np.sum(p * 2.0).backward()
    np.testing.assert_array_equal(p.grad, [2.0, 2.0, 2.0])
    with pytest.raises(TypeError, match="Parameter: expected floating-point data, got dtype int64"):
        nn.Parameter(np.arange(3))


def test_registration_and_traversal():
    model = TwoLayer()
    names = [name for name, _ in model.named_parameters()]
    assert names == [
        "scale",
        "hidden.weight",
        "hidden.bias",
        "norm.weight",
        "norm.bias",
        "out.weight",
        "out.bias",
    ]
    assert [type(m).__name__ for m in model.children()] == ["Linear", "BatchNorm1d", "Linear"]
    assert len(list(model.modules())) == 4
    assert model.note == "not registered"
    assert [name for name, _ in model.named_buffers()] == [
        "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"
    ]  # fmt: skip
    shared = nn.Linear(2, 2)
    assert len(list(nn.Sequential(shared, shared).parameters())) == 2  # a shared layer counts once
    model.hidden = nn.Identity()  # re-assigning replaces the registration
    assert "hidden.weight" not in dict(model.named_parameters())
    del model.scale
    assert "scale" not in dict(model.named_parameters())


def test_modes_and_zero_grad():
    model = TwoLayer()
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    np.sum(model(np.ones((5, 3)))).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_round_trip_through_npz(tmp_path):
    source, target = TwoLayer(), TwoLayer()
    source(np.random.default_rng(2).standard_normal((6, 3)))  # moves the running statistics
    with tape.no_grad():
        target.out.weight[...] = 0.0
    path = tmp_path / "model.npz"
    nn.save(path, source)
    nn.load(path, target)
    for (name, expected), (_, actual) in zip(
        source.state_dict().items(), target.state_dict().items(), strict=True
    ):
        np.testing.assert_array_equal(actual, expected, err_msg=name)
    x = np.random.default_rng(3).standard_normal((4, 3))
    source.eval(), target.eval()
    np.testing.assert_array_equal(source(x).data, target(x).data)


def test_load_errors_list_keys_and_shapes(tmp_path):
    model = TwoLayer()
    state = model.state_dict()
    del state["out.bias"]
    state["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['out.bias'\], unexpected keys \['extra'\]"):
        model.load_state_dict(state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert (missing, unexpected) == (["out.bias"], ["extra"])
    wrong = model.state_dict()
    wrong["hidden.weight"] = np.zeros((5, 3))
    before = model.hidden.weight.data.copy()
    with pytest.raises(ValueError, match=r"hidden.weight: expected shape \(4, 3\), got \(5, 3\)"):
        model.load_state_dict(wrong)
    np.testing.assert_array_equal(model.hidden.weight.data, before)  # nothing written
    path = tmp_path / "small.npz"
    nn.save(path, nn.Linear(3, 4))
    with pytest.raises(KeyError, match="missing keys"):
        nn.load(path, model)


def test_loading_bumps_the_version_so_stale_records_refuse_backward():
    layer = nn.Linear(2, 2)
    y = np.sum(layer(np.ones((1, 2))) ** 2)
    layer.load_state_dict(nn.Linear(2, 2).state_dict())
    with pytest.raises(RuntimeError):
        y.backward()


def test_containers():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)]).append(nn.Tanh())
    assert len(layers) == 3 and isinstance(layers[-1], nn.Tanh) and len(list(layers.parameters())) == 4
    heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
    heads["b"] = nn.Linear(2, 3)
    assert list(heads) == ["a", "b"] and "b" in heads and len(list(heads.parameters())) == 4
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    x = np.ones((4, 2))
    np.testing.assert_allclose(model(x).data, model[2](model[1](model[0](x))).data)
    assert len(model[:2]) == 2
    named = nn.Sequential({"first": nn.Identity()})
    assert [name for name, _ in named.named_children()] == ["first"]


def test_repr_is_nested_like_torch():
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Dropout(0.25)))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3)\n"
        "  (1): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Dropout(p=0.25)\n"
        "  )\n"
        ")"
    )
    assert repr(nn.Linear(2, 3, bias=False)) == "Linear(in_features=2, out_features=3, bias=False)"


def test_module_without_init_or_forward():
    class Forgetful(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(np.ones(1))

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) before assigning"):
        Forgetful()
    with pytest.raises(TypeError, match="Module must define forward"):
        nn.Module()(1)


# -- dtypes: a layer computes in its parameters' dtype, and says so when given another ---------------------
@pytest.mark.parametrize(
    "layer, shape",
    [
        (nn.Linear(3, 2), (4, 3)),
        (nn.Conv2d(1, 2, 3), (2, 1, 5, 5)),
        (nn.LayerNorm(3), (2, 3)),
        (nn.BatchNorm1d(3), (4, 3)),
        (nn.CMul(3), (2, 3)),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, nn.Module) else "",
)
def test_an_input_of_another_floating_dtype_is_refused_naming_both(layer, shape):
    x = np.ones(shape, dtype=np.float32)
    name = type(layer).__name__
    message = (
        rf"^{name}: input 0 is float32 but the parameters are float64; "
        r"convert the input .*\.to\(np\.float32\)\)$"
    )
    for given in (x, tape.tensor(x)):
        with pytest.raises(TypeError, match=message):
            layer(given)
    assert layer.float()(x).dtype == np.float32
    assert layer.double()(x.astype(np.float64)).dtype == np.float64


def test_integer_inputs_and_parameter_free_modules_are_not_dtype_checked():
    assert nn.Embedding(5, 2)(np.array([1, 3])).dtype == np.float64
    assert nn.ReLU()(np.ones(2, dtype=np.float32)).dtype == np.float32
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"^Linear: input 0 is float32"):
        model(np.ones((1, 2), dtype=np.float32))  # the container passes it on; its layer refuses


def test_to_converts_parameters_gradients_and_floating_buffers_in_place():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    parameters = list(model.parameters())
    optimizer = nn.optim.SGD(model.parameters(), lr=0.1)
    np.sum(model(np.ones((4, 3)))).backward()
    assert model.to(np.float32) is model
    assert list(model.parameters()) == parameters  # the same objects: the optimizer still holds them
    assert {p.dtype for p in parameters} == {p.grad.dtype for p in parameters} == {np.dtype(np.float32)}
    norm = model[1]
    assert norm.running_mean.dtype == norm.running_var.dtype == np.float32
    assert norm.num_batches_tracked.dtype == np.int64
    optimizer.step()
    assert {p.dtype for p in parameters} == {np.dtype(np.float32)}


def test_a_record_made_before_to_refuses_backward():
    layer = nn.Linear(2, 2)
    loss = np.sum(layer(np.ones((1, 2))))
    layer.float()
    with pytest.raises(RuntimeError, match="was changed in place after"):
        loss.backward()


@pytest.mark.parametrize("dtype", [np.int32, np.bool_])
def test_to_takes_floating_dtypes_only(dtype):
    with pytest.raises(TypeError, match=r"^Linear.to: expected a floating dtype"):
        nn.Linear(2, 2).to(dtype)


def test_a_module_whose_parameters_are_all_none_takes_either_float_dtype():
    # affine=False leaves weight and bias registered as None: no dtype to match, so none is imposed.
    for dtype in (np.float32, np.float64):
        out = nn.BatchNorm1d(3, affine=False)(np.arange(12, dtype=dtype).reshape(4, 3))
        assert out.dtype == dtype
