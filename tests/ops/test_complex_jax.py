"""Complex gradients against JAX, up to the conjugate: for a real loss of complex z, JAX's ``grad`` returns
dL/dx - i dL/dy, the conjugate of PyTorch's and tape's ``.grad`` (dL/dx + i dL/dy). Runs when JAX is
installed; PyTorch and finite differences check the same functions in test_complex_parts.py."""

from __future__ import annotations

import types

import numpy as np
import pytest

import tape
from tests.ops.test_complex_parts import FUNCTIONS, Z

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy
# The torch spelling of each function, run on jax.numpy: only ``tensor`` is named differently.
JAX_AS_TORCH = types.SimpleNamespace(
    **{name: getattr(jnp, name) for name in dir(jnp) if not name.startswith("_")}
)
JAX_AS_TORCH.tensor = jnp.asarray


@pytest.mark.parametrize("name", FUNCTIONS)
def test_complex_gradients_are_the_conjugates_of_jaxs(name):
    ours, spelled_for_torch = FUNCTIONS[name]
    z = tape.tensor(Z, requires_grad=True)
    value = ours(z)
    np.sum(np.abs(value) ** 2 + np.real(value)).backward()

    def loss(values):
        value = spelled_for_torch(JAX_AS_TORCH, values)
        return jnp.sum(jnp.abs(value) ** 2 + jnp.real(value))

    theirs = np.asarray(jax.grad(loss)(jnp.asarray(Z)))
    np.testing.assert_allclose(z.grad, np.conj(theirs), rtol=1e-12, atol=1e-12)


def test_abs_squared_at_one_plus_two_i():
    z = tape.tensor([1 + 2j], requires_grad=True)
    np.sum(np.abs(z) ** 2).backward()
    theirs = jax.grad(lambda v: jnp.sum(jnp.abs(v) ** 2))(jnp.asarray([1 + 2j]))
    np.testing.assert_array_equal(np.asarray(theirs), [2 - 4j])
    np.testing.assert_array_equal(z.grad, np.conj(np.asarray(theirs)))


def test_fft_loss_against_jax():
    signal = np.random.default_rng(0).standard_normal((3, 16)) + 1j * np.random.default_rng(
        1
    ).standard_normal((3, 16))
    weights = np.linspace(0.5, 1.5, 16)
    z = tape.tensor(signal, requires_grad=True)
    np.sum(weights * np.abs(np.fft.fft(z, norm="ortho", axis=-1)) ** 2 + np.real(np.fft.ifft(z))).backward()

    def loss(values):
        spectrum = jnp.fft.fft(values, norm="ortho", axis=-1)
        return jnp.sum(weights * jnp.abs(spectrum) ** 2 + jnp.real(jnp.fft.ifft(values)))

    theirs = np.asarray(jax.grad(loss)(jnp.asarray(signal)))
    np.testing.assert_allclose(z.grad, np.conj(theirs), rtol=1e-12, atol=1e-12)
