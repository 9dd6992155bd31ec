"""``numpy.fft`` on tensors (ops/fft.py): numpy's values, gradients against Wirtinger finite differences
(``tape.gradcheck``, real and complex inputs, every norm, lengths shorter and longer than the input, several
axes, double and single precision), second derivatives (``tape.gradgradcheck``) and PyTorch's gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import tape

NORMS = (None, "backward", "ortho", "forward")
RNG = np.random.default_rng(7)
REAL = RNG.standard_normal((4, 6))
COMPLEX = REAL + 1j * RNG.standard_normal((4, 6))
REAL_3D = RNG.standard_normal((3, 4, 5))
COMPLEX_3D = REAL_3D + 1j * RNG.standard_normal((3, 4, 5))


class Case(NamedTuple):
    """``numpy.fft.<function>(x, **options)`` at each of ``inputs``; ``torch`` is the same call in PyTorch
    (its ``dim`` for numpy's ``axis``), or None where PyTorch has no such function."""

    function: str
    options: dict[str, Any]
    inputs: tuple[np.ndarray, ...]
    torch: Callable[..., Any] | None = None


def _torch(name: str, **options: Any) -> Callable[..., Any]:
    return lambda torch, x, norm: getattr(torch.fft, name)(x, norm=norm, **options)


BOTH = (REAL, COMPLEX)
CASES = {
    "fft": Case("fft", {}, BOTH, _torch("fft")),
    "fft n shorter, axis 0": Case("fft", {"n": 3, "axis": 0}, BOTH, _torch("fft", n=3, dim=0)),
    "fft n longer": Case("fft", {"n": 9}, (COMPLEX,), _torch("fft", n=9)),
    "ifft": Case("ifft", {}, BOTH, _torch("ifft")),
    "ifft n shorter": Case("ifft", {"n": 4}, (COMPLEX,), _torch("ifft", n=4)),
    "ifft n longer, axis 0": Case("ifft", {"n": 7, "axis": 0}, (COMPLEX,), _torch("ifft", n=7, dim=0)),
    "rfft": Case("rfft", {}, (REAL,), _torch("rfft")),
    "rfft odd n shorter": Case("rfft", {"n": 5}, (REAL,), _torch("rfft", n=5)),
    "rfft n longer, axis 0": Case("rfft", {"n": 8, "axis": 0}, (REAL,), _torch("rfft", n=8, dim=0)),
    "irfft": Case("irfft", {}, BOTH, _torch("irfft")),
    "irfft odd n": Case("irfft", {"n": 7}, (COMPLEX,), _torch("irfft", n=7)),
    "irfft n shorter, axis 0": Case("irfft", {"n": 3, "axis": 0}, (COMPLEX,), _torch("irfft", n=3, dim=0)),
    "irfft n longer": Case("irfft", {"n": 14}, (COMPLEX,), _torch("irfft", n=14)),
    "hfft": Case("hfft", {}, BOTH, _torch("hfft")),
    "hfft odd n": Case("hfft", {"n": 5, "axis": 0}, (COMPLEX,), _torch("hfft", n=5, dim=0)),
    "ihfft": Case("ihfft", {}, (REAL,), _torch("ihfft")),
    "ihfft n longer, axis 0": Case("ihfft", {"n": 7, "axis": 0}, (REAL,), _torch("ihfft", n=7, dim=0)),
    "fft2": Case("fft2", {}, BOTH, _torch("fft2")),
    "fft2 s": Case("fft2", {"s": (3, 8)}, (COMPLEX,), _torch("fft2", s=(3, 8))),
    "ifft2 s, axes": Case(
        "ifft2", {"s": (5, 2), "axes": (1, 0)}, BOTH, _torch("ifft2", s=(5, 2), dim=(1, 0))
    ),
    "fftn": Case("fftn", {}, (COMPLEX_3D,), _torch("fftn")),
    "fftn axes": Case(
        "fftn", {"s": (2, 6), "axes": (0, 2)}, (REAL_3D,), _torch("fftn", s=(2, 6), dim=(0, 2))
    ),
    "ifftn": Case("ifftn", {"axes": (1, 2)}, (COMPLEX_3D,), _torch("ifftn", dim=(1, 2))),
    "rfft2": Case("rfft2", {}, (REAL,), _torch("rfft2")),
    "rfft2 s": Case("rfft2", {"s": (5, 3)}, (REAL,), _torch("rfft2", s=(5, 3))),
    "rfftn": Case("rfftn", {}, (REAL_3D,), _torch("rfftn")),
    "rfftn axes": Case(
        "rfftn", {"s": (4, 6), "axes": (2, 0)}, (REAL_3D,), _torch("rfftn", s=(4, 6), dim=(2, 0))
    ),
    "irfft2": Case("irfft2", {}, BOTH, _torch("irfft2")),
    "irfft2 s": Case("irfft2", {"s": (3, 7)}, (COMPLEX,), _torch("irfft2", s=(3, 7))),
    "irfftn": Case("irfftn", {}, (COMPLEX_3D,), _torch("irfftn")),
    "irfftn axes": Case(
        "irfftn", {"s": (2, 5), "axes": (2, 1)}, (COMPLEX_3D,), _torch("irfftn", s=(2, 5), dim=(2, 1))
    ),
    "fftshift": Case("fftshift", {}, BOTH),
    "fftshift axes": Case("fftshift", {"axes": 0}, (COMPLEX,)),
    "ifftshift": Case("ifftshift", {}, BOTH),
    "ifftshift axes": Case("ifftshift", {"axes": (1,)}, (REAL,)),
}
SHIFTS = ("fftshift", "ifftshift")
TRANSFORMS = [name for name, case in CASES.items() if case.function not in SHIFTS]
WITH_NORMS = [(name, norm) for name in TRANSFORMS for norm in NORMS] + [
    (name, None) for name in CASES if name not in TRANSFORMS
]


def call(name: str, norm: str | None) -> Callable[[Any], Any]:
    case = CASES[name]
    function = getattr(np.fft, case.function)
    if case.function in SHIFTS:
        return lambda x: function(x, **case.options) * x  # a product, so that the second derivative is not 0
    return lambda x: function(x, norm=norm, **case.options)


def kind(x: np.ndarray) -> str:
    return "complex" if np.iscomplexobj(x) else "real"


@pytest.mark.parametrize(("name", "norm"), WITH_NORMS)
def test_forward_is_numpys(name, norm):
    case = CASES[name]
    function = getattr(np.fft, case.function)
    options = case.options if case.function in SHIFTS else {**case.options, "norm": norm}
    for x in case.inputs:
        result = function(tape.tensor(x, requires_grad=True), **options)
        assert isinstance(result, tape.Tensor)
        np.testing.assert_array_equal(result.data, function(x, **options))
        assert result.dtype == function(x, **options).dtype


@pytest.mark.parametrize(("name", "norm"), WITH_NORMS)
def test_gradients_are_finite_differences(name, norm):
    for x in CASES[name].inputs:
        assert tape.gradcheck(call(name, norm), x), kind(x)


@pytest.mark.parametrize(("name", "norm"), WITH_NORMS)
def test_second_derivatives(name, norm):
    for x in CASES[name].inputs:
        assert tape.gradgradcheck(call(name, norm), x), kind(x)


@pytest.mark.parametrize("name", CASES)
def test_single_precision_gradients(name):
    for x in CASES[name].inputs:
        single = x.astype(np.complex64 if np.iscomplexobj(x) else np.float32)
        result = call(name, "ortho")(tape.tensor(single))
        assert result.dtype.itemsize == (8 if np.iscomplexobj(result.data) else 4)
        assert tape.gradcheck(call(name, "ortho"), single, rtol=2e-2, atol=5e-3), kind(x)


def _weights(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(3).uniform(0.5, 1.5, shape)


@pytest.mark.parametrize(("name", "norm"), [(n, m) for n in TRANSFORMS for m in NORMS if m is not None])
def test_gradients_match_torch(name, norm):
    torch = pytest.importorskip("torch")
    case = CASES[name]
    for x in case.inputs:
        ours = tape.tensor(x, requires_grad=True)
        value = call(name, norm)(ours)
        weights = _weights(value.shape)
        np.sum(np.abs(value) ** 2 * weights).backward()
        theirs = torch.tensor(x, requires_grad=True)
        value_t = case.torch(torch, theirs, norm)
        np.testing.assert_allclose(
            value.data, value_t.detach().resolve_conj().numpy(), rtol=1e-10, atol=1e-12
        )
        (value_t.abs() ** 2 * torch.tensor(weights)).sum().backward()
        np.testing.assert_allclose(
            ours.grad, theirs.grad.resolve_conj().numpy(), rtol=1e-10, atol=1e-12, err_msg=kind(x)
        )


def test_irfft_ignores_the_imaginary_parts_of_the_dc_and_nyquist_bins():
    c = tape.tensor(COMPLEX[0, :4], requires_grad=True)
    np.sum(np.fft.irfft(c) * REAL[1]).backward()
    assert c.grad[0].imag == 0 and c.grad[-1].imag == 0
    assert np.all(c.grad[1:-1].imag != 0)
    odd = tape.tensor(COMPLEX[0, :4], requires_grad=True)
    np.sum(np.fft.irfft(odd, n=7) * np.linspace(-1.0, 2.0, 7) ** 2).backward()
    assert odd.grad[0].imag == 0 and odd.grad[-1].imag != 0  # for odd n the last bin is an interior one


def test_spectral_power_gradient_is_parsevals():
    # sum |fft(x)|^2 = n sum x^2 (norm "backward"), so its gradient is 2 n x.
    x = tape.tensor(REAL[0], requires_grad=True)
    np.sum(np.abs(np.fft.fft(x)) ** 2).backward()
    np.testing.assert_allclose(x.grad, 2 * REAL.shape[1] * REAL[0], rtol=1e-12)


def test_frequencies_are_numpys_constants():
    frequencies = np.fft.fftfreq(8, d=0.5)
    assert type(frequencies) is np.ndarray and type(np.fft.rfftfreq(8)) is np.ndarray
    x = tape.tensor(REAL[0, :5], requires_grad=True)
    np.real(np.sum(np.fft.rfft(x) * np.fft.rfftfreq(5))).backward()
    assert x.grad.shape == (5,)


def test_refusals_name_the_function():
    x = tape.tensor(COMPLEX, requires_grad=True)
    with pytest.raises(
        TypeError, match=r"^numpy\.fft\.fft: out= is not supported on tape tensors while recording"
    ):
        np.fft.fft(x, out=np.empty_like(COMPLEX))
    with tape.no_grad():
        written = np.fft.fft(x, out=np.empty_like(COMPLEX))
    np.testing.assert_array_equal(written, np.fft.fft(COMPLEX))
    with pytest.raises(ValueError, match="norm"):
        np.fft.fft(x, norm="sideways")
    with pytest.raises(ValueError, match=r"^fftn: s and axes have different lengths"):
        np.fft.fftn(x, s=(2, 2), axes=(0,))
    with pytest.raises(np.exceptions.AxisError, match=r"^rfft: axis 2 is out of bounds"):
        np.fft.rfft(tape.tensor(REAL), axis=2)
