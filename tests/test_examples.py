"""The examples really train.

The digits: the MLP reaches 97% test accuracy and the CNN 98%, in float32. Each training test takes a few
seconds to well under a minute on two shared cores. They need scikit-learn (for its bundled digits) and are
skipped without it; the CNN is skipped until ``tape.nn.conv`` exists.

The character-level language model on the lecture's text: short LSTM and Transformer runs (150 steps of
16-character windows) beat the unigram baseline on the validation text by half a bit per character, the
Transformer's mask keeps it causal, and a seed fixes a run. Each takes a few seconds.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from examples import char_lm, train_digits

needs_sklearn = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None,
    reason="the digits example needs scikit-learn's bundled data set",
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SEED = 0


@needs_sklearn
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


@needs_sklearn
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


@needs_sklearn
def test_training_keeps_float32() -> None:
    rng = np.random.default_rng(SEED)
    model = train_digits.build_model("mlp", rng)
    digits = train_digits.load_digits_split()
    loss = train_digits.nn.CrossEntropyLoss()(model(digits.x_train[:8]), digits.y_train[:8])
    loss.backward()
    assert loss.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


@needs_sklearn
def test_same_seed_same_run() -> None:
    first = train_digits.train("mlp", epochs=2, seed=3, verbose=False)
    second = train_digits.train("mlp", epochs=2, seed=3, verbose=False)
    assert first["history"]["train_loss"] == second["history"]["train_loss"]


@needs_sklearn
def test_cnn_reaches_98_percent(tmp_path) -> None:
    pytest.importorskip("tape.nn.conv", reason="tape.nn.conv (Conv2d, MaxPool2d) is not in this checkout yet")
    result = train_digits.train("cnn", epochs=30, seed=SEED, out=tmp_path, verbose=False)
    assert result["test_accuracy"] >= 0.98, result["history"]["test_accuracy"]
    assert (tmp_path / "digits_cnn.json").is_file()


@needs_sklearn
def test_command_line_writes_files(tmp_path, capsys) -> None:
    assert train_digits.main(["--model", "mlp", "--epochs", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "epoch   1/1" in printed and "final test accuracy" in printed
    assert (tmp_path / "digits_mlp.json").is_file()


@needs_sklearn
def test_progress_bar_goes_to_stderr_and_epochs_to_stdout(capsys) -> None:
    pytest.importorskip("tqdm")
    train_digits.train("mlp", epochs=2, seed=SEED)
    printed = capsys.readouterr()
    assert [line.split()[:2] for line in printed.out.splitlines()] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert "digits mlp" in printed.err  # tqdm's bar, titled with the model


@needs_sklearn
def test_trains_without_tqdm_and_without_a_bar(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` fails, as where it is not installed
    result = train_digits.train("mlp", epochs=1, seed=SEED)
    printed = capsys.readouterr()
    assert "epoch   1/1" in printed.out and printed.err == ""
    assert len(result["history"]["test_accuracy"]) == 1


@needs_sklearn
def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="model must be one of"):
        train_digits.train("resnet")
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        train_digits.train("mlp", epochs=0)


# -- the character-level language model ----------------------------------------------------------------------
# Short windows and a few dozen steps: seconds per run, long enough to learn the lecture's common characters.
SHORT = {"steps": 150, "seq_len": 16, "sample_length": 60, "verbose": False}


def test_lecture_ships_and_splits_90_10_with_a_unigram_baseline() -> None:
    text = char_lm.lecture_path().read_text(encoding="utf-8")
    assert "Gradientes para Dados Multidimensionais" in text
    corpus = char_lm.split_corpus(text)
    assert corpus.vocabulary == "".join(sorted(set(text)))
    assert len(corpus.train) == int(0.9 * len(text))
    assert corpus.decode(np.concatenate([corpus.train, corpus.validation])) == text
    # The training frequencies (add-one) scored on the validation characters, counted here by hand.
    counts = collections.Counter(corpus.decode(corpus.train))
    total = len(corpus.train) + len(corpus.vocabulary)
    expected = -sum(math.log2((counts[c] + 1) / total) for c in corpus.decode(corpus.validation))
    assert char_lm.unigram_bits(corpus) == pytest.approx(expected / len(corpus.validation))
    assert 4.0 < char_lm.unigram_bits(corpus) < math.log2(len(corpus.vocabulary))


def test_lstm_beats_the_unigram_baseline_in_a_short_run() -> None:
    result = char_lm.train("lstm", seed=SEED, **SHORT)
    history = result["history"]
    assert result["validation_bits"] < result["baseline_bits"] - 0.5, history["validation_bits"]
    assert history["train_bits"][-1] < 0.75 * history["train_bits"][0]
    assert result["dtype"] == "float32"
    assert len(result["sample"]) == 60 and set(result["sample"]) <= set(result["vocabulary"])


def test_transformer_beats_the_unigram_baseline_in_a_short_run() -> None:
    result = char_lm.train("transformer", seed=SEED, **SHORT)
    history = result["history"]
    assert result["validation_bits"] < result["baseline_bits"] - 0.5, history["validation_bits"]
    assert history["train_bits"][-1] < 0.75 * history["train_bits"][0]
    assert len(result["sample"]) == 60 and set(result["sample"]) <= set(result["vocabulary"])


def test_transformer_is_causal_and_float32() -> None:
    settings = char_lm.Settings(seq_len=12, embedding=16, width=16, heads=2, layers=2)
    model = char_lm.CharTransformer(20, settings, np.random.default_rng(SEED))
    model.eval()
    rng = np.random.default_rng(1)
    indices = rng.integers(0, 20, (3, 12))
    changed = indices.copy()
    changed[:, 7:] = rng.integers(0, 20, (3, 5))  # a different future from position 7 on
    with char_lm.tape.no_grad():
        before, after = np.asarray(model(indices)), np.asarray(model(changed))
    assert before.dtype == np.float32
    np.testing.assert_array_equal(before[:, :7], after[:, :7])  # the past never sees the future
    assert not np.allclose(before[:, 7:], after[:, 7:])


def test_char_lm_same_seed_same_run() -> None:
    quick = {**SHORT, "steps": 6, "seq_len": 8, "sample_length": 30}
    first = char_lm.train("transformer", seed=3, **quick)
    second = char_lm.train("transformer", seed=3, **quick)
    other = char_lm.train("transformer", seed=4, **quick)
    assert first["history"]["train_bits"] == second["history"]["train_bits"]
    assert first["history"]["validation_bits"] == second["history"]["validation_bits"]
    assert first["sample"] == second["sample"]
    assert first["history"]["train_bits"] != other["history"]["train_bits"]


def test_char_lm_command_line_prints_the_summary(tmp_path, capsys) -> None:
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    arguments = [str(text), "--steps", "4", "--seq-len", "8", "--sample", "25", "--prompt", "the "]
    assert char_lm.main(arguments) == 0
    printed = capsys.readouterr().out
    assert "step     4/4" in printed
    assert "bits/char on validation, unigram baseline" in printed


def test_char_lm_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="model must be one of"):
        char_lm.train("gru")
    with pytest.raises(ValueError, match="not in the text's vocabulary"):
        char_lm.train("lstm", prompt="\N{SNOWMAN}", steps=1)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        char_lm.train("lstm", steps=0)
    with pytest.raises(ValueError, match="windows of at most 8"):
        char_lm.CharTransformer(5, char_lm.Settings(seq_len=8, width=8, heads=2), np.random.default_rng(0))(
            np.zeros((1, 9), dtype=np.int64)
        )


# -- digits, data-parallel over MPI ------------------------------------------------------------------------

needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None, reason='the DDP example needs mpi4py: pip install "tape[mpi]"'
)


@needs_sklearn
@needs_mpi
def test_digits_ddp_on_two_ranks_learns_as_one_process_does():
    beside = Path(sys.executable).parent / "mpiexec"  # the mpich wheel's, beside the interpreter
    launcher = str(beside) if beside.exists() else shutil.which("mpiexec")
    if launcher is None:
        pytest.skip('the DDP example needs MPICH\'s mpiexec: pip install "tape[mpi]"')
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [launcher, "-n", "2", sys.executable, "-m", "examples.train_digits_ddp", "--epochs", "3"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len([line for line in lines if line.startswith("epoch")]) == 3  # printed by rank 0 alone
    accuracy = float(lines[-1].split("final test accuracy ")[1].split("%")[0])
    assert lines[-1].startswith("mlp on 2 ranks") and accuracy > 93.0  # one process after 3 epochs: ~95%


@needs_sklearn
@needs_mpi
def test_digits_ddp_on_one_rank_is_the_single_process_run():
    from examples import train_digits_ddp  # here, not above: it imports tape.distributed, hence mpi4py

    result = train_digits_ddp.train(epochs=3, verbose=False)
    assert result["ranks"] == 1 and result["test_accuracy"] > 0.93
