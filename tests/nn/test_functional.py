"""``tape.nn.functional`` is a module, as ``torch.nn.functional``, naming each op once."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import tape
import tape.nn as nn
import tape.nn.functional as F
import tape.nn.normalization
import tape.ops.attention
import tape.ops.conv
import tape.ops.elementwise
import tape.ops.losses
import tape.ops.nn
import tape.ops.spatial
import tape.ops.special


def test_import_tape_nn_functional_as_f_works_in_a_fresh_process():
    code = "import tape.nn.functional as F, numpy as np; print(F.relu(np.array([-1.0, 2.0])))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[0. 2.]"


def test_every_functional_form_of_the_op_families_is_there_and_is_the_same_object():
    families = (tape.ops.nn, tape.ops.losses, tape.ops.conv, tape.ops.attention, tape.ops.spatial)
    names = {name for family in families for name in family.__all__} | {"softmax", "log_softmax"}
    names |= {"group_norm", "instance_norm"}  # tape.nn.normalization's, built on tape.ops.normalization
    assert set(F.__all__) == names
    for family in families:
        for name in family.__all__:
            assert getattr(F, name) is getattr(family, name), name
    assert F.softmax is tape.ops.special.softmax is tape.softmax
    assert F.group_norm is tape.nn.normalization.group_norm
    assert nn.functional is F


def test_torch_names_are_spelled_as_in_torch():
    for name in ("relu", "gelu", "conv2d", "max_pool2d", "cross_entropy", "mse_loss", "softmax", "linear"):
        assert callable(getattr(F, name)), name


def test_tanh_is_numpys_tanh_op_not_a_second_definition():
    x = tape.tensor([0.5, -1.0], requires_grad=True)
    assert F.tanh(x).record.op is np.tanh(x).record.op is tape.ops.elementwise.tanh
