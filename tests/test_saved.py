"""tape/saved.py and tape/reads.py: a record keeps exactly what its VJPs read, and nothing a caller changes
afterwards (a plain array, an index, a keyword argument, an array wrapped by ``tape.Tensor``, a detached
view) alters the gradient: either the record holds its own copy, or the write is refused or counted."""

from __future__ import annotations

import numpy as np
import pytest

import tape
import tape.nn as nn
import tape.nn.functional as F
from tape.reads import EVERYTHING, OUTPUT, values_read
from tape.saved import KEEP_SMALLER_THAN, ShapeOnly


def test_values_read_are_told_from_the_vjp_code():
    assert values_read(lambda g, out, x, y: g * y) == {1}
    assert values_read(lambda g, out, x: g * out) == {OUTPUT}
    assert values_read(lambda g, out, x, y: g) == frozenset()

    def captured_by_an_inner_function(g, out, x, y):
        def scale():
            return x

        return g * scale()

    assert values_read(captured_by_an_inner_function) == {0}
    # What cannot be told from the code counts as read: never wrong, only stricter.
    assert values_read(lambda g, out, *args: g * args[0]) is EVERYTHING
    assert values_read(lambda g, out, x, y: g * locals()["y"]) is EVERYTHING
    assert values_read(np.multiply) is EVERYTHING


def test_a_plain_array_a_vjp_reads_is_copied_when_recorded():
    w = tape.tensor([1.0, 1.0], requires_grad=True)
    c = np.array([1.0, 2.0])
    y = np.sum(w * c)
    c[:] = 100.0  # after the record was made
    y.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0])


def test_a_reused_batch_buffer_does_not_change_the_gradient():
    layer = nn.Linear(3, 2, rng=np.random.default_rng(0))
    batch = np.arange(12.0).reshape(4, 3)
    expected = batch.sum(axis=0)
    loss = np.sum(layer(batch))
    batch[:] = 0.0  # a data loader refilling its buffer before backward
    loss.backward()
    np.testing.assert_array_equal(layer.weight.grad, np.stack([expected, expected]))


def test_an_index_array_and_a_keyword_array_are_copied_when_recorded():
    x = tape.tensor(np.arange(4.0), requires_grad=True)
    index = np.array([0, 0, 3])
    y = x[index]
    index[:] = 1
    y.backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 0.0, 1.0])

    logits = tape.tensor(np.zeros((2, 3)), requires_grad=True)
    weight, target = np.array([1.0, 2.0, 3.0]), np.array([0, 2])
    loss = F.cross_entropy(logits, target, weight=weight, reduction="sum")
    weight[:], target[:] = 10.0, 1
    loss.backward()
    expected = np.full((2, 3), 1 / 3) * np.array([[1.0], [3.0]])
    expected[0, 0] -= 1.0
    expected[1, 2] -= 3.0
    np.testing.assert_allclose(logits.grad, expected, rtol=1e-12)


def test_tensor_of_an_array_is_a_copy():
    array = np.array([1.0, 2.0])
    x = tape.Tensor(array, requires_grad=True)
    y = np.sum(x**3)
    array[0] = 50.0
    y.backward()
    np.testing.assert_array_equal(x.grad, [3.0, 12.0])
    np.testing.assert_array_equal(x.data, [1.0, 2.0])


def test_a_detached_view_shares_the_version_and_refuses_plain_writes():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    y = np.sum(x**3)
    with pytest.raises(ValueError, match="read-only"):
        np.asarray(x.detach())[0] = 50.0
    detached = x.detach()
    with tape.no_grad():
        detached[0] = 50.0  # counted on the shared version counter
    with pytest.raises(RuntimeError, match=r"^power: its input 0 \(a tensor of shape \(2,\), float64\)"):
        y.backward()


def test_writes_to_values_no_vjp_reads_are_free_and_those_values_are_not_kept():
    x = tape.tensor(np.ones(KEEP_SMALLER_THAN), requires_grad=True)
    c = np.full(KEEP_SMALLER_THAN, 2.0)
    h = x * 1.0
    y = h * c  # multiply's gradient for h reads c alone
    assert isinstance(y._record.args[0], ShapeOnly)
    with tape.no_grad():
        h[0] = 7.0
    np.sum(y).backward()
    np.testing.assert_array_equal(x.grad, c)


def test_a_refusal_names_both_lines_in_anomaly_mode_and_says_how_to_see_them_otherwise():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1.0
    b = a * a
    a[0] = 5.0
    with pytest.raises(RuntimeError, match=r"run it under `with tape.detect_anomaly\(\):`"):
        b.sum().backward()
    with tape.detect_anomaly():
        assert tape.is_detecting_anomaly()
        a = x * 1.0
        b = a * a  # recorded here
        a[0] = 5.0  # changed here
    assert not tape.is_detecting_anomaly()
    with pytest.raises(RuntimeError) as caught:
        b.sum().backward()
    message = str(caught.value)
    assert "reads it to compute its gradient" in message
    assert "test_saved.py" in message and "b = a * a  # recorded here" in message
    assert "a[0] = 5.0  # changed here" in message
