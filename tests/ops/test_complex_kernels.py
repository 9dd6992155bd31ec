"""ops/complex_kernels.py: the fused VJP of ``abs`` at complex values agrees with its numpy twin everywhere
(special values included), and ``abs`` of a large complex tensor differentiates as a small one does."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tape
import tape.ops.complex_kernels as complex_kernels
from tape import jit

COMPLEX_DTYPES = [np.complex128, np.complex64]


@pytest.fixture(autouse=True)
def kernel_must_compile():
    with warnings.catch_warnings():
        warnings.simplefilter("error", jit.JitFallbackWarning)
        yield


def test_every_kernel_of_the_module_is_tested_here():
    registered = {name for name in jit.kernels() if name.startswith("tape.ops.complex_kernels.")}
    assert registered == {complex_kernels.abs_vjp_kernel.name}


def random_complex(size, dtype, seed=0):
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.uniform(-30, 30, size))
    z = (rng.standard_normal(size) + 1j * rng.standard_normal(size)) * scale
    return z.astype(dtype), rng.standard_normal(size).astype(np.finfo(dtype).dtype)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
@pytest.mark.parametrize("size", [0, 1, 1000])
def test_kernel_matches_its_twin(size, dtype):
    z, g = random_complex(size, dtype)
    with jit.use_jit(True):
        result = complex_kernels.abs_vjp_kernel(g, z)
    assert complex_kernels.abs_vjp_kernel.signatures(), "the compiled kernel did not run"
    expected = complex_kernels.abs_vjp_kernel.twin(g, z)
    assert result.dtype == dtype and result.shape == (size,)
    rtol = 1e-6 if dtype == np.complex64 else 1e-14
    np.testing.assert_allclose(result, expected, rtol=rtol, atol=0)


def test_kernel_matches_its_twin_at_zeros_infinities_nan_and_extremes():
    """Every pair of special real and imaginary parts: the squares that overflow, underflow or are NaN
    take the hypot loop, and the products follow numpy's complex multiplication (0 * inf is NaN)."""
    special = np.array([0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan, 1e-300, 1e-170, 5e-324, 1e300, 1e160])
    re, im = np.repeat(special, special.size), np.tile(special, special.size)
    z = np.empty(re.size, np.complex128)
    z.real, z.imag = re, im  # (re + 1j * im would turn inf * 1j into nan + inf j)
    g = np.tile([1.0, -3.0, 0.5], z.size)[: z.size]
    with np.errstate(all="ignore"):
        with jit.use_jit(True):
            result = complex_kernels.abs_vjp_kernel(g, z)
        expected = complex_kernels.abs_vjp_kernel.twin(g, z)
    np.testing.assert_allclose(result, expected, rtol=1e-14, atol=0, equal_nan=True)


@pytest.mark.parametrize("use_jit", [True, False])
@pytest.mark.parametrize("layout", ["C", "transposed", "strided", "broadcast g", "float32 g", "0-d"])
def test_wrapper_gives_the_twin_for_any_layout(layout, use_jit):
    shape = {"0-d": (), "strided": (4, 10)}.get(layout, (4, 5))
    z, g = random_complex(int(np.prod(shape)), np.complex128, seed=1)
    z, g = z.reshape(shape), g.reshape(shape)
    if layout == "transposed":
        z, g = z.T, g.T
    elif layout == "strided":
        z, g = z[:, ::2], g[:, ::2]
    elif layout == "broadcast g":
        g = np.broadcast_to(g[:1, :1], g.shape)
    elif layout == "float32 g":
        g = g.astype(np.float32)
    with jit.use_jit(use_jit):
        result = complex_kernels.abs_vjp(g, z)
    expected = complex_kernels.abs_vjp_kernel.twin(g, z)
    assert result.shape == expected.shape and result.dtype == expected.dtype
    np.testing.assert_allclose(result, expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES)
def test_abs_of_a_large_complex_tensor_has_the_gradient_of_pytorch_convention(dtype):
    """The kernel path (a large plain array) gives what the formula g * z / |z| gives, zeros included."""
    z, g = random_complex(5000, dtype, seed=2)
    z[::7] = 0
    x = tape.tensor(z, requires_grad=True)
    np.abs(x).backward(gradient=g)
    magnitude = np.abs(z)
    expected = np.where(magnitude == 0, 0, g * z / np.where(magnitude == 0, 1, magnitude))
    np.testing.assert_allclose(x.grad, expected, rtol=1e-5 if dtype == np.complex64 else 1e-13)


def test_abs_of_a_large_complex_tensor_differentiates_twice():
    """With create_graph the VJP takes its numpy expression on tensors, which records."""
    z, _ = random_complex(5000, np.complex128, seed=3)
    z /= np.abs(z).max()
    first = tape.grad(lambda t: (np.abs(t) ** 3).sum())
    second = tape.grad(lambda t: np.real(first(t) * np.conj(first(t))).sum())
    # |d/dz (|z|^3)|^2 = (3|z|^2)^2 = 9|z|^4 summed; its gradient is 36 |z|^2 z in PyTorch's convention.
    np.testing.assert_allclose(second(z), 36 * np.abs(z) ** 2 * z, rtol=1e-10, atol=1e-12)
