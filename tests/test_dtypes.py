"""The default floating dtype (tape/dtypes.py): float64 unless set, used by constructors and new layers."""

from __future__ import annotations

import numpy as np
import pytest

import tape
import tape.nn as nn


@pytest.fixture
def float32_default():
    tape.set_default_dtype(np.float32)
    yield
    tape.set_default_dtype(np.float64)


def test_the_default_is_numpys_float64():
    assert tape.get_default_dtype() == np.float64
    assert tape.zeros(2).dtype == np.float64
    assert nn.Linear(2, 3).weight.dtype == np.float64


@pytest.mark.usefixtures("float32_default")
def test_constructors_and_python_floats_take_the_default():
    assert tape.get_default_dtype() == np.float32
    made = {
        "zeros": tape.zeros((2, 3)),
        "ones": tape.ones(2),
        "full of a float": tape.full(2, 0.5),
        "randn": tape.randn(2, seed=0),
        "rand": tape.rand(2, seed=0),
        "arange of floats": tape.arange(0.0, 1.0, 0.5),
        "tensor of Python floats": tape.tensor([[1.0, 2.0]]),
    }
    assert {name: t.dtype for name, t in made.items()} == dict.fromkeys(made, np.dtype(np.float32))


@pytest.mark.usefixtures("float32_default")
def test_data_with_a_dtype_of_its_own_keeps_it():
    assert tape.tensor(np.ones(2)).dtype == np.float64
    assert tape.tensor(tape.tensor(np.ones(2))).dtype == np.float64
    assert tape.tensor(np.float64(1.0)).dtype == np.float64
    assert tape.tensor([1, 2]).dtype == np.int64
    assert tape.arange(3).dtype == np.int64
    assert tape.full(2, 1).dtype.kind == "i"
    assert tape.zeros(2, dtype=np.float64).dtype == np.float64


@pytest.mark.usefixtures("float32_default")
def test_layers_made_under_a_float32_default_train_in_float32():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.ReLU(), nn.Linear(4, 2))
    assert {p.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    loss = nn.CrossEntropyLoss()(model(x), np.array([0, 1, 0, 1, 1]))
    assert loss.dtype == np.float32
    loss.backward()
    assert {p.grad.dtype for p in model.parameters()} == {np.dtype(np.float32)}


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.complex128, "U3"])
def test_only_a_floating_dtype_can_be_the_default(dtype):
    with pytest.raises(TypeError, match=r"^set_default_dtype: expected a floating dtype .*, got "):
        tape.set_default_dtype(dtype)
    assert tape.get_default_dtype() == np.float64
