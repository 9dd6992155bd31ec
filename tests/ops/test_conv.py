"""ops/conv.py: conv1d, conv2d, max_pool2d and avg_pool2d against naive loops written here (and torch when
installed), finite differences in float64 and float32, second derivatives, the numba kernels against their
numpy twins, and the error messages."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tape
import tape.ops.conv as conv
from tape import jit
from tests.ops.opcheck import check_op
from tests.strategies import FLOAT_DTYPES, distinct_arrays


@pytest.fixture(autouse=True)
def kernels_must_compile():
    """A silent fallback to the twin would make every kernel-against-twin check compare the twin twice."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", jit.JitFallbackWarning)
        yield


def tolerance(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


# -- naive references: one output element (or window) at a time ----------------------------------------------
def naive_conv2d(x, weight, bias, stride, padding, dilation, groups):
    """``padding`` as ((top, bottom), (left, right)); computed in float64."""
    (sh, sw), ((top, bottom), (left, right)), (dh, dw) = stride, padding, dilation
    n, c_in, height, width = x.shape
    c_out, c_group, kh, kw = weight.shape
    padded = np.zeros((n, c_in, height + top + bottom, width + left + right))
    padded[:, :, top : top + height, left : left + width] = x
    ho = (height + top + bottom - dh * (kh - 1) - 1) // sh + 1
    wo = (width + left + right - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, c_out, ho, wo))
    per_group = c_out // groups
    for o in range(c_out):
        group = o // per_group
        channels = slice(group * c_group, (group + 1) * c_group)
        for i in range(ho):
            for j in range(wo):
                window = padded[
                    :,
                    channels,
                    i * sh : i * sh + dh * (kh - 1) + 1 : dh,
                    j * sw : j * sw + dw * (kw - 1) + 1 : dw,
                ]
                out[:, o, i, j] = np.sum(window * weight[o], axis=(1, 2, 3))
    if bias is not None:
        out += np.asarray(bias, np.float64)[:, None, None]
    return out


def _pool_windows(x, kernel, stride, padding):
    """Yield (i, j, window rows, window columns, Ho, Wo) for each pooling window; rows and columns
    outside ``x`` are the padding."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    height, width = x.shape[2:]
    ho = (height + 2 * ph - kh) // sh + 1
    wo = (width + 2 * pw - kw) // sw + 1
    for i in range(ho):
        for j in range(wo):
            rows = range(i * sh - ph, i * sh - ph + kh)
            cols = range(j * sw - pw, j * sw - pw + kw)
            yield i, j, rows, cols, ho, wo


def naive_max_pool2d(x, kernel, stride, padding, g=None):
    """The maxima, and (with ``g``) the input gradient: each cotangent to its window's first maximum."""
    n, c, height, width = x.shape
    out = grad = None
    for i, j, rows, cols, ho, wo in _pool_windows(x, kernel, stride, padding):
        if out is None:
            out = np.zeros((n, c, ho, wo))
            grad = np.zeros((n, c, height, width))
        for a in range(n):
            for b in range(c):
                best, where = None, None
                for r in rows:
                    for q in cols:
                        if 0 <= r < height and 0 <= q < width and (best is None or x[a, b, r, q] > best):
                            best, where = x[a, b, r, q], (r, q)
                out[a, b, i, j] = best
                if g is not None:
                    grad[a, b, where[0], where[1]] += g[a, b, i, j]
    return out if g is None else (out, grad)


def naive_avg_pool2d(x, kernel, stride, padding):
    n, c, height, width = x.shape
    out = None
    for i, j, rows, cols, ho, wo in _pool_windows(x, kernel, stride, padding):
        if out is None:
            out = np.zeros((n, c, ho, wo))
        total = np.zeros((n, c))
        for r in rows:
            for q in cols:
                if 0 <= r < height and 0 <= q < width:
                    total += x[:, :, r, q]
        out[:, :, i, j] = total / (kernel[0] * kernel[1])  # zero padding counts (count_include_pad)
    return out


# -- strategies ----------------------------------------------------------------------------------------------
def _int_or_tuple(draw, values):
    return values[0] if len(set(values)) == 1 and draw(st.booleans()) else tuple(values)


@st.composite
def conv_cases(draw, spatial=2, max_side=3):
    """Arguments of a small convolution in their public form, and the padding as (before, after) pairs."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    batch = draw(st.integers(0, 2))
    kernel = [draw(st.integers(1, 3)) for _ in range(spatial)]
    dilation = [draw(st.integers(1, 2)) for _ in range(spatial)]
    padding_form = draw(st.sampled_from(["int", "tuple", "valid", "same"]))
    stride = [1] * spatial if padding_form == "same" else [draw(st.integers(1, 3)) for _ in range(spatial)]
    if padding_form == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        pairs = [(total // 2, total - total // 2) for total in totals]
        padding = "same"
    elif padding_form == "valid":
        pairs, padding = [(0, 0)] * spatial, "valid"
    else:
        amounts = [draw(st.integers(0, 2))] * spatial if padding_form == "int" else None
        amounts = amounts or [draw(st.integers(0, 2)) for _ in range(spatial)]
        pairs = [(p, p) for p in amounts]
        padding = amounts[0] if padding_form == "int" else tuple(amounts)
    sizes = []
    for k, d, (before, after) in zip(kernel, dilation, pairs, strict=True):
        smallest = max(1, d * (k - 1) + 1 - before - after)
        sizes.append(draw(st.integers(smallest, smallest + max_side)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return {
        "x": rng.uniform(-1, 1, (batch, c_in, *sizes)),
        "weight": rng.uniform(-1, 1, (c_out, c_in // groups, *kernel)),
        "bias": rng.uniform(-1, 1, c_out) if draw(st.booleans()) else None,
        "stride": _int_or_tuple(draw, stride),
        "padding": padding,
        "dilation": _int_or_tuple(draw, dilation),
        "groups": groups,
        "pairs": pairs,
        "stride_tuple": tuple(stride),
        "dilation_tuple": tuple(dilation),
    }


def _cast(case, dtype):
    return {
        key: value.astype(dtype) if isinstance(value, np.ndarray) else value for key, value in case.items()
    }


@st.composite
def pool_cases(draw, dtype):
    """A small pooling problem with all-distinct inputs (no ties, so max pooling is differentiable)."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    sizes = [
        draw(st.integers(max(1, k - 2 * p), k - 2 * p + 4)) for k, p in zip(kernel, padding, strict=True)
    ]
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 2)), *sizes)
    x = draw(distinct_arrays(shape, dtype))
    kernel_arg = kernel[0] if kernel[0] == kernel[1] and draw(st.booleans()) else kernel
    return x, kernel_arg, stride, padding, kernel, stride or kernel


# -- convolution: values and first derivatives ---------------------------------------------------------------
def _conv2d_call(case):
    def call(x, weight, *bias):
        return conv.conv2d(
            x,
            weight,
            bias[0] if bias else None,
            case["stride"],
            case["padding"],
            case["dilation"],
            case["groups"],
        )

    return call


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_conv2d_values_and_gradients(dtype, data):
    case = _cast(data.draw(conv_cases()), dtype)
    bias = () if case["bias"] is None else (case["bias"],)
    check_op(_conv2d_call(case), case["x"], case["weight"], *bias)
    expected = naive_conv2d(
        case["x"].astype(np.float64), case["weight"].astype(np.float64), case["bias"],
        case["stride_tuple"], case["pairs"], case["dilation_tuple"], case["groups"],
    )  # fmt: skip
    result = _conv2d_call(case)(case["x"], case["weight"], *bias)
    assert result.dtype == dtype and result.shape == expected.shape
    np.testing.assert_allclose(result, expected, **tolerance(dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_conv1d_values_and_gradients(dtype, data):
    case = _cast(data.draw(conv_cases(spatial=1)), dtype)
    bias = () if case["bias"] is None else (case["bias"],)

    def call(x, weight, *bias):
        return conv.conv1d(
            x,
            weight,
            bias[0] if bias else None,
            case["stride"],
            case["padding"],
            case["dilation"],
            case["groups"],
        )

    check_op(call, case["x"], case["weight"], *bias)
    expected = naive_conv2d(
        case["x"][:, :, None].astype(np.float64), case["weight"][:, :, None].astype(np.float64), case["bias"],
        (1, *case["stride_tuple"]), [(0, 0), *case["pairs"]], (1, *case["dilation_tuple"]), case["groups"],
    )[:, :, 0]  # fmt: skip
    result = call(case["x"], case["weight"], *bias)
    assert result.dtype == dtype and result.shape == expected.shape
    np.testing.assert_allclose(result, expected, **tolerance(dtype))


def test_conv2d_arrays_in_give_an_array_and_tensors_in_give_a_tensor():
    x, weight = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    assert type(conv.conv2d(x, weight)) is np.ndarray
    assert isinstance(conv.conv2d(tape.tensor(x), weight), tape.Tensor)


def test_float16_keeps_its_dtype_through_the_numpy_twins():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 2, 6, 6)).astype(np.float16)
    for function in (
        lambda t: conv.conv2d(t, np.ones((2, 2, 3, 3), np.float16), padding=1),
        lambda t: conv.max_pool2d(t, 2),
        lambda t: conv.avg_pool2d(t, 3, 1, 1),
    ):
        leaf = tape.tensor(x, requires_grad=True)
        out = function(leaf)
        out.sum().backward()
        assert out.dtype == np.float16 and leaf.grad.dtype == np.float16


# -- pooling: values and first derivatives -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_max_pool2d_values_and_gradients(dtype, data):
    x, kernel_arg, stride, padding, kernel, stride_tuple = data.draw(pool_cases(dtype))
    check_op(lambda t: conv.max_pool2d(t, kernel_arg, stride, padding), x)
    result = conv.max_pool2d(x, kernel_arg, stride, padding)
    g = np.random.default_rng(0).standard_normal(result.shape)
    expected, expected_grad = naive_max_pool2d(x, kernel, stride_tuple, padding, g)
    np.testing.assert_array_equal(result, expected)
    leaf = tape.tensor(x, requires_grad=True)
    conv.max_pool2d(leaf, kernel_arg, stride, padding).backward(g.astype(dtype))
    np.testing.assert_allclose(leaf.grad, expected_grad, **tolerance(dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_avg_pool2d_values_and_gradients(dtype, data):
    x, kernel_arg, stride, padding, kernel, stride_tuple = data.draw(pool_cases(dtype))
    check_op(lambda t: conv.avg_pool2d(t, kernel_arg, stride, padding), x)
    result = conv.avg_pool2d(x, kernel_arg, stride, padding)
    expected = naive_avg_pool2d(x.astype(np.float64), kernel, stride_tuple, padding)
    np.testing.assert_allclose(result, expected, **tolerance(dtype))


@pytest.mark.parametrize("use_jit", [True, False])
@pytest.mark.parametrize(("kernel", "stride", "padding"), [(3, 2, 1), (2, 2, 0)])
def test_max_pool2d_ties_send_the_gradient_to_the_first_maximum(use_jit, kernel, stride, padding):
    x = np.zeros((1, 2, 6, 6))
    x[0, 1, 1:4, 1:5] = 3.0  # a plateau: windows see several equal maxima
    leaf = tape.tensor(x, requires_grad=True)
    with jit.use_jit(use_jit):
        out = conv.max_pool2d(leaf, kernel, stride, padding)
        g = np.arange(1.0, 1.0 + out.size).reshape(out.shape)
        out.backward(g)
    _, expected = naive_max_pool2d(x, (kernel, kernel), (stride, stride), (padding, padding), g)
    np.testing.assert_array_equal(leaf.grad, expected)


@pytest.mark.parametrize("use_jit", [True, False])
def test_max_pool2d_infinite_cotangents_reach_only_the_maximum(use_jit):
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4))
    leaf = tape.tensor(x, requires_grad=True)
    g = np.array([[[[np.inf, -np.inf], [1.0, 2.0]]]])
    with jit.use_jit(use_jit):
        conv.max_pool2d(leaf, 2).backward(g)
    _, expected = naive_max_pool2d(x, (2, 2), (2, 2), (0, 0), g)
    np.testing.assert_array_equal(leaf.grad, expected)  # inf at each maximum, zeros (not NaN) elsewhere


@pytest.mark.parametrize("use_jit", [True, False])
def test_max_pool2d_windows_of_minus_infinity_beside_padding_stay_inside(use_jit):
    x = np.full((1, 1, 4, 4), -np.inf)
    leaf = tape.tensor(x, requires_grad=True)
    with jit.use_jit(use_jit):
        out = conv.max_pool2d(leaf, 3, 2, 1)
        out.backward(np.ones(out.shape))
    assert np.all(out.data == -np.inf)
    _, expected = naive_max_pool2d(x, (3, 3), (2, 2), (1, 1), np.ones(out.shape))
    np.testing.assert_array_equal(leaf.grad, expected)  # each window's first real cell, none lost


def test_max_pool2d_propagates_nan_with_and_without_kernels():
    x = np.arange(32.0).reshape(1, 2, 4, 4)
    x[0, 0, 1, 1] = np.nan
    results, grads = [], []
    for use_jit in (True, False):
        leaf = tape.tensor(x, requires_grad=True)
        with jit.use_jit(use_jit):
            out = conv.max_pool2d(leaf, 2)
            out.backward(np.ones(out.shape))
        results.append(out.data)
        grads.append(leaf.grad)
    np.testing.assert_array_equal(results[0], results[1])
    assert np.isnan(results[0][0, 0, 0, 0]) and np.isnan(results[0]).sum() == 1
    np.testing.assert_array_equal(grads[0], grads[1])
    assert grads[0][0, 0, 1, 1] == 1 and grads[0][0, 0, :2, :2].sum() == 1  # the NaN's window: to the NaN


# -- second derivatives --------------------------------------------------------------------------------------
@settings(max_examples=6)
@given(case=conv_cases(max_side=1))
def test_conv2d_second_derivatives(case):
    bias = () if case["bias"] is None else (case["bias"],)
    assert tape.gradgradcheck(_conv2d_call(case), case["x"], case["weight"], *bias)


@settings(max_examples=4)
@given(case=conv_cases(spatial=1, max_side=2))
def test_conv1d_second_derivatives(case):
    assert tape.gradgradcheck(
        lambda x, w: conv.conv1d(
            x, w, None, case["stride"], case["padding"], case["dilation"], case["groups"]
        ),
        case["x"],
        case["weight"],
    )


@settings(max_examples=6)
@given(data=st.data())
def test_pool_second_derivatives(data):
    x, kernel_arg, stride, padding, _, _ = data.draw(pool_cases(np.float64))
    assert tape.gradgradcheck(lambda t: conv.avg_pool2d(t, kernel_arg, stride, padding), x)
    # max pooling is piecewise linear: its second derivative is the backward/gather pair, seen through x**2
    assert tape.gradgradcheck(lambda t: conv.max_pool2d(t, kernel_arg, stride, padding) ** 2, x)


def test_hessian_vector_product_of_a_conv_net_matches_finite_differences():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 6, 6))
    direction = rng.standard_normal((3, 2, 3, 3))

    def loss(weight):
        h = conv.conv2d(x, weight, padding=1, stride=(1, 2))
        return np.sum(conv.avg_pool2d(np.tanh(h), 2) ** 2) + np.sum(conv.max_pool2d(h, 2) ** 3)

    weight = rng.standard_normal((3, 2, 3, 3))
    gradient = tape.grad(loss)
    hvp = tape.grad(lambda w: np.sum(gradient(w) * direction))(weight)
    step = 1e-6
    numeric = (gradient(weight + step * direction) - gradient(weight - step * direction)) / (2 * step)
    np.testing.assert_allclose(hvp, numeric, rtol=1e-5, atol=1e-6)


# -- against torch -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_conv_matches_torch(dtype, data):
    torch = pytest.importorskip("torch")
    spatial = data.draw(st.sampled_from([1, 2]))
    case = _cast(data.draw(conv_cases(spatial=spatial)), dtype)
    ours_function = conv.conv2d if spatial == 2 else conv.conv1d
    theirs_function = torch.nn.functional.conv2d if spatial == 2 else torch.nn.functional.conv1d
    settings_ = (case["stride"], case["padding"], case["dilation"], case["groups"])
    leaves = [
        tape.tensor(case[k], requires_grad=True) for k in ("x", "weight", "bias") if case[k] is not None
    ]
    theirs_leaves = [
        torch.tensor(case[k], requires_grad=True) for k in ("x", "weight", "bias") if case[k] is not None
    ]
    ours = ours_function(*leaves[:2], leaves[2] if len(leaves) == 3 else None, *settings_)
    theirs = theirs_function(*theirs_leaves[:2], theirs_leaves[2] if len(leaves) == 3 else None, *settings_)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **tolerance(dtype))
    g = np.random.default_rng(0).standard_normal(ours.shape).astype(dtype)
    ours.backward(g)
    theirs.backward(torch.from_numpy(g))
    for leaf, their_leaf in zip(leaves, theirs_leaves, strict=True):
        np.testing.assert_allclose(leaf.grad, their_leaf.grad.numpy(), **tolerance(dtype))


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(data=st.data())
def test_pools_match_torch(name, dtype, data):
    torch = pytest.importorskip("torch")
    x, kernel_arg, stride, padding, _, _ = data.draw(pool_cases(dtype))
    if data.draw(st.booleans()):  # ties too: torch sends the gradient to the first maximum as well
        x = np.round(x, 0)
    leaf, their_leaf = tape.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours = getattr(conv, name)(leaf, kernel_arg, stride, padding)
    theirs = getattr(torch.nn.functional, name)(their_leaf, kernel_arg, stride, padding)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), **tolerance(dtype))
    g = np.random.default_rng(0).standard_normal(ours.shape).astype(dtype)
    ours.backward(g)
    theirs.backward(torch.from_numpy(g))
    np.testing.assert_allclose(leaf.grad, their_leaf.grad.numpy(), **tolerance(dtype))


def test_max_pool2d_nan_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(32.0).reshape(1, 2, 4, 4)
    x[0, 0, 0, 1] = np.nan
    np.testing.assert_array_equal(conv.max_pool2d(x, 2), torch.nn.functional.max_pool2d(torch.tensor(x), 2))


# -- kernels against their twins -----------------------------------------------------------------------------
@st.composite
def window_geometry(draw):
    """(kh, kw, sh, sw, pt, pl, dh, dw, height, width, ho, wo) of a small convolution or pool."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pt, pl = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    height = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * pt), 8))
    width = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pl), 8))
    ho = (height + 2 * pt - dh * (kh - 1) - 1) // sh + 1
    wo = (width + 2 * pl - dw * (kw - 1) - 1) // sw + 1
    return kh, kw, sh, sw, pt, pl, dh, dw, height, width, ho, wo


def _agree(kernel, arguments, dtype, exact=False):
    with jit.use_jit(True):
        compiled = kernel(*arguments)
    twin = kernel.twin(*arguments)
    for ours, theirs in zip(*(r if isinstance(r, tuple) else (r,) for r in (compiled, twin)), strict=True):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        if exact:
            np.testing.assert_array_equal(ours, theirs)
        else:
            np.testing.assert_allclose(ours, theirs, **tolerance(dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@given(geometry=window_geometry(), seed=st.integers(0, 2**32 - 1), ties=st.booleans())
def test_kernels_agree_with_their_twins(dtype, geometry, seed, ties):
    kh, kw, sh, sw, pt, pl, dh, dw, height, width, ho, wo = geometry
    rng = np.random.default_rng(seed)
    n, c = 2, 3
    columns = rng.uniform(-1, 1, (n, c * kh * kw, ho * wo)).astype(dtype)
    _agree(conv.col2im, (columns, c, height, width, kh, kw, sh, sw, pt, pl, dh, dw, ho, wo), dtype)
    # pooling has no dilation: its geometry is the same with dh = dw = 1
    ho = (height + 2 * pt - kh) // sh + 1
    wo = (width + 2 * pl - kw) // sw + 1
    x = rng.uniform(-1, 1, (n, c, height, width))
    x = (np.round(x) if ties else x).astype(dtype)  # rounded: many equal values, ties broken alike
    _agree(conv.max_pool_forward, (x, kh, kw, sh, sw, pt, pl, ho, wo), dtype, exact=True)
    out = conv.max_pool_forward.twin(x, kh, kw, sh, sw, pt, pl, ho, wo)
    g = rng.uniform(-1, 1, (n, c, ho, wo)).astype(dtype)
    _agree(conv.max_pool_backward, (g, x, out, kh, kw, sh, sw, pt, pl), dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 7, 9)])
def test_max_pool_kernels_on_2x2_windows_agree_with_their_twins(dtype, shape):
    rng = np.random.default_rng(11)
    for values in (rng.uniform(-1, 1, shape), np.round(rng.uniform(-1, 1, shape))):  # with ties too
        x = values.astype(dtype)
        ho, wo = shape[2] // 2, shape[3] // 2
        _agree(conv.max_pool_forward, (x, 2, 2, 2, 2, 0, 0, ho, wo), dtype, exact=True)
        out = conv.max_pool_forward.twin(x, 2, 2, 2, 2, 0, 0, ho, wo)
        g = rng.uniform(-1, 1, out.shape).astype(dtype)
        _agree(conv.max_pool_backward, (g, x, out, 2, 2, 2, 2, 0, 0), dtype)


def _layouts(array):
    """The same values C-ordered, Fortran-ordered and as a strided (non-contiguous) view."""
    doubled = np.zeros((*array.shape[:-1], 2 * array.shape[-1]), array.dtype)
    doubled[..., ::2] = array
    return {"C": array, "F": np.asfortranarray(array), "strided": doubled[..., ::2]}


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_kernels_and_twins_agree_through_the_ops(dtype, layout):
    rng = np.random.default_rng(7)
    x = _layouts(rng.standard_normal((3, 4, 11, 9)).astype(dtype))[layout]
    weight = _layouts(rng.standard_normal((6, 2, 3, 3)).astype(dtype))[layout]
    bias = rng.standard_normal(6).astype(dtype)

    def network(x, weight, bias):
        h = conv.conv2d(x, weight, bias, stride=(1, 2), padding=1, dilation=(2, 1), groups=2)
        h = conv.max_pool2d(h, 3, 2, 1) + conv.max_pool2d(np.maximum(h, 0), 2)[..., :1, :1]
        return np.sum(conv.avg_pool2d(h, 2, 1, 1) ** 2)

    results = []
    for use_jit in (True, False):
        leaves = [tape.tensor(value, requires_grad=True) for value in (x, weight, bias)]
        with jit.use_jit(use_jit):
            value = network(*leaves)
            value.backward()
        results.append([value.data] + [leaf.grad for leaf in leaves])
    for ours, theirs in zip(*results, strict=True):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, theirs, **tolerance(dtype))


# -- errors --------------------------------------------------------------------------------------------------
ERRORS = [
    (lambda: conv.conv2d(np.zeros((3, 28, 28)), np.zeros((8, 3, 3, 3))),
     ValueError, r"conv2d: expected input of shape \(N, C_in, H, W\), got shape \(3, 28, 28\)"),
    (lambda: conv.conv2d(np.zeros((1, 3, 8, 8)), np.zeros((8, 3, 3))),
     ValueError, r"conv2d: expected weight of shape \(C_out, C_in / groups, kH, kW\), got shape \(8, 3, 3\)"),
    (lambda: conv.conv2d(np.zeros((64, 3, 28, 28)), np.zeros((8, 1, 3, 3))),
     ValueError, r"input of shape \(64, 3, 28, 28\) has 3 channels, but weight of shape \(8, 1, 3, 3\) with "
     r"groups=1 expects 1"),
    (lambda: conv.conv2d(np.zeros((1, 4, 8, 8)), np.zeros((3, 2, 3, 3)), groups=2),
     ValueError, r"3 output channels .* not divisible by groups=2"),
    (lambda: conv.conv2d(np.zeros((1, 1, 8, 8)), np.zeros((2, 1, 3, 3)), np.zeros(3)),
     ValueError, r"conv2d: bias must have shape \(2,\), got \(3,\)"),
    (lambda: conv.conv2d(np.zeros((1, 1, 8, 8)), np.zeros((2, 1, 3, 3)), stride=0),
     ValueError, r"conv2d: stride must be a positive int or a pair of them, got 0"),
    (lambda: conv.conv2d(np.zeros((1, 1, 8, 8)), np.zeros((2, 1, 3, 3)), padding=(1, -1)),
     ValueError, r"conv2d: padding must be a non-negative int or a pair of them, got \(1, -1\)"),
    (lambda: conv.conv2d(np.zeros((1, 1, 8, 8)), np.zeros((2, 1, 3, 3)), padding="full"),
     ValueError, r"conv2d: padding must be an int, a tuple, 'valid' or 'same', got 'full'"),
    (lambda: conv.conv2d(np.zeros((1, 1, 8, 8)), np.zeros((2, 1, 3, 3)), stride=2, padding="same"),
     ValueError, r"conv2d: padding='same' needs stride 1, got stride \(2, 2\)"),
    (lambda: conv.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((2, 1, 3, 3)), dilation=2),
     ValueError, r"conv2d: the \(dilated\) kernel of size \(5, 5\) is larger than the padded input of size "
     r"\(4, 4\)"),
    (lambda: conv.conv2d(np.zeros((1, 1, 8, 8), np.int64), np.zeros((2, 1, 3, 3))),
     TypeError, r"conv2d: expected a floating-point input, got dtype int64"),
    (lambda: conv.conv1d(np.zeros((1, 2, 8, 8)), np.zeros((2, 2, 3))),
     ValueError, r"conv1d: expected input of shape \(N, C_in, L\), got shape \(1, 2, 8, 8\)"),
    (lambda: conv.conv1d(np.zeros((1, 2, 8)), np.zeros((2, 2, 3)), stride=(1, 1)),
     ValueError, r"conv1d: stride must be a positive int or a 1-tuple, got \(1, 1\)"),
    (lambda: conv.max_pool2d(np.zeros((3, 8, 8)), 2),
     ValueError, r"max_pool2d: expected input of shape \(N, C, H, W\), got shape \(3, 8, 8\)"),
    (lambda: conv.max_pool2d(np.zeros((1, 1, 8, 8)), 3, padding=2),
     ValueError, r"max_pool2d: padding must be at most half the kernel size, got padding=\(2, 2\) for "
     r"kernel_size=\(3, 3\)"),
    (lambda: conv.avg_pool2d(np.zeros((1, 1, 8, 8)), 0),
     ValueError, r"avg_pool2d: kernel_size must be a positive int or a pair of them, got 0"),
    (lambda: conv.avg_pool2d(np.zeros((1, 1, 2, 8)), 3),
     ValueError, r"avg_pool2d: the kernel \(3, 3\) is larger than the padded input \(2, 8\)"),
    (lambda: conv.max_pool2d(np.zeros((1, 1, 8, 8), np.int32), 2),
     TypeError, r"max_pool2d: expected a floating-point input, got dtype int32"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "match"), ERRORS, ids=range(len(ERRORS)))
def test_errors_say_what_was_expected_and_what_was_given(call, error, match):
    with pytest.raises(error, match=match):
        call()
