"""The digits example really trains: the MLP reaches 97% test accuracy and the CNN 98%, in float32.

Each training test takes a few seconds to well under a minute on two shared cores. They need scikit-learn
(for its bundled digits) and are skipped without it; the CNN is skipped until ``tape.nn.conv`` exists.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the digits example needs scikit-learn's bundled data set")

from examples import train_digits

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SEED = 0


def test_split_is_fixed_stratified_standardised_float32() -> None:
    digits = train_digits.load_digits_split()
    again = train_digits.load_digits_split()
    np.testing.assert_array_equal(digits.x_test, again.x_test)  # the same test set every run
    assert digits.x_train.dtype == digits.x_test.dtype == np.float32
    assert digits.x_train.shape == (1437, 64) and digits.x_test.shape == (360, 64)
    assert abs(float(digits.x_train.mean())) < 1e-4 and abs(float(digits.x_train.std()) - 1) < 1e-4
    train_share = np.bincount(digits.y_train, minlength=10) / len(digits.y_train)
    test_share = np.bincount(digits.y_test, minlength=10) / len(digits.y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)  # stratified


def test_mlp_reaches_97_percent(tmp_path) -> None:
    result = train_digits.train("mlp", epochs=30, seed=SEED, out=tmp_path, verbose=False)
    assert result["test_accuracy"] >= 0.97, result["history"]["test_accuracy"]
    history = result["history"]
    assert len(history["test_accuracy"]) == 30
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]  # it learned, not a lucky start
    saved = json.loads((tmp_path / "digits_mlp.json").read_text())
    assert saved["test_accuracy"] == result["test_accuracy"]
    assert saved["dtype"] == "float32"
    if train_digits.pyplot() is not None:
        assert (tmp_path / "digits_mlp.png").read_bytes()[:8] == PNG_SIGNATURE


def test_training_keeps_float32() -> None:
    rng = np.random.default_rng(SEED)
    model = train_digits.build_model("mlp", rng)
    digits = train_digits.load_digits_split()
    loss = train_digits.nn.CrossEntropyLoss()(model(digits.x_train[:8]), digits.y_train[:8])
    loss.backward()
    assert loss.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_same_seed_same_run() -> None:
    first = train_digits.train("mlp", epochs=2, seed=3, verbose=False)
    second = train_digits.train("mlp", epochs=2, seed=3, verbose=False)
    assert first["history"]["train_loss"] == second["history"]["train_loss"]


def test_cnn_reaches_98_percent(tmp_path) -> None:
    pytest.importorskip("tape.nn.conv", reason="tape.nn.conv (Conv2d, MaxPool2d) is not in this checkout yet")
    result = train_digits.train("cnn", epochs=30, seed=SEED, out=tmp_path, verbose=False)
    assert result["test_accuracy"] >= 0.98, result["history"]["test_accuracy"]
    assert (tmp_path / "digits_cnn.json").is_file()


def test_command_line_writes_files(tmp_path, capsys) -> None:
    assert train_digits.main(["--model", "mlp", "--epochs", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "epoch   1/1" in printed and "final test accuracy" in printed
    assert (tmp_path / "digits_mlp.json").is_file()


def test_progress_bar_goes_to_stderr_and_epochs_to_stdout(capsys) -> None:
    pytest.importorskip("tqdm")
    train_digits.train("mlp", epochs=2, seed=SEED)
    printed = capsys.readouterr()
    assert [line.split()[:2] for line in printed.out.splitlines()] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert "digits mlp" in printed.err  # tqdm's bar, titled with the model


def test_trains_without_tqdm_and_without_a_bar(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` fails, as where it is not installed
    result = train_digits.train("mlp", epochs=1, seed=SEED)
    printed = capsys.readouterr()
    assert "epoch   1/1" in printed.out and printed.err == ""
    assert len(result["history"]["test_accuracy"]) == 1


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="model must be one of"):
        train_digits.train("resnet")
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        train_digits.train("mlp", epochs=0)
