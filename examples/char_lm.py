"""Train a character-level language model on the lecture's own text with ``tape.nn`` and measure it in bits.

python -m examples.char_lm                                  # the LSTM on the lecture kept in tape/corpus
python -m examples.char_lm --model transformer              # the small causal Transformer
python -m examples.char_lm notes.txt --steps 2000           # any UTF-8 text, trained longer
python -m examples.char_lm --sample 400 --temperature 0.6 --prompt "# Redes"

The text (by default the lecture on backpropagation, in Portuguese, shipped as ``tape/corpus/lecture.txt``)
gives the vocabulary, its distinct characters, and is split once: the first 90% to train on, the last 10%
to validate on. Two models, float32 throughout:

- ``lstm``: Embedding → LSTM → Linear, with dropout on the LSTM's input and output;
- ``transformer``: Embedding plus learned positions → TransformerEncoder (pre-norm layers, causal mask) →
  LayerNorm → Linear.

The lecture is short (about 6,400 characters), so both models could learn the training part by heart;
dropout is what keeps the validation score falling for the whole default run.

Both learn to predict every next character of windows of ``--seq-len`` characters, drawn in shuffled
minibatches by ``tape.data.DataLoader``, with Adam, gradient clipping and a cosine learning-rate schedule.
Every validation character is scored from the ``--seq-len`` characters before it (the first ones from the
end of the training text), and the score is reported in bits per character: the cross-entropy in nats
divided by ln 2. The baseline is the unigram model, the training set's character frequencies (add-one
smoothed, so that no character is impossible) scored on the same validation characters. At the end the
model writes ``--sample`` characters after ``--prompt``, drawn at ``--temperature``. One ``--seed`` fixes
the initial weights, the batches, dropout and the sample. The matrix products are small, so BLAS runs
on ``--threads`` threads, one by default (through threadpoolctl, when it is installed). A progress bar runs
on stderr when tqdm is installed. This file only uses tape's public API; it changes nothing in tape.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

import tape
import tape.nn as nn
from benchmarks.console import command_line, progress_bar
from tape.data import DataLoader, TensorDataset

MODELS = ("lstm", "transformer")
VALIDATION_FRACTION = 0.1
DEFAULT_PROMPT = "# Gradientes"
DTYPE = np.float32


@dataclass(frozen=True)
class Settings:
    """Hyperparameters of one model's training run (``width``: the LSTM's hidden size, or the
    Transformer's model size; ``layers`` and ``heads`` as ``nn.LSTM`` and ``nn.TransformerEncoder`` take
    them)."""

    steps: int = 600
    seq_len: int = 64
    batch_size: int = 32
    lr: float = 5e-3
    clip: float = 1.0
    embedding: int = 32
    width: int = 128
    layers: int = 1
    heads: int = 4
    dropout: float = 0.0
    evaluations: int = 6


DEFAULT_SETTINGS = {
    "lstm": Settings(dropout=0.3),
    "transformer": Settings(lr=2e-3, embedding=64, width=64, layers=2, dropout=0.3),
}


# -- the text ------------------------------------------------------------------------------------------------
def lecture_path() -> Path:
    """The lecture's text as installed with tape (``tape/corpus/lecture.txt``), the default corpus.

    Examples
    --------
    >>> lecture_path().name
    'lecture.txt'
    """
    return Path(str(resources.files("tape") / "corpus" / "lecture.txt"))


@dataclass(frozen=True)
class Corpus:
    """A text as character indices into ``vocabulary`` (its distinct characters, sorted), split into a
    training part and the validation part that follows it."""

    vocabulary: str
    train: np.ndarray
    validation: np.ndarray

    def encode(self, text: str) -> np.ndarray:
        """The indices of the characters of ``text``; a ValueError names any not in the vocabulary."""
        index = {character: position for position, character in enumerate(self.vocabulary)}
        missing = sorted(set(text) - set(index))
        if missing:
            raise ValueError(f"char_lm: the characters {missing} are not in the text's vocabulary")
        return np.array([index[character] for character in text], dtype=np.int64)

    def decode(self, indices: Sequence[int] | np.ndarray) -> str:
        """The characters at ``indices``."""
        return "".join(self.vocabulary[int(position)] for position in indices)


def split_corpus(text: str, validation_fraction: float = VALIDATION_FRACTION) -> Corpus:
    """The vocabulary of ``text`` and its indices, the first ``1 - validation_fraction`` to train on.

    Examples
    --------
    >>> corpus = split_corpus("abracadabra" * 10)
    >>> corpus.vocabulary, len(corpus.train), len(corpus.validation), corpus.decode(corpus.validation[:4])
    ('abcdr', 99, 11, 'abra')
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"split_corpus: validation_fraction must be in (0, 1), got {validation_fraction}")
    vocabulary = "".join(sorted(set(text)))
    boundary = int(len(text) * (1 - validation_fraction))
    if boundary < 2 or len(text) - boundary < 1:
        raise ValueError(f"split_corpus: a text of {len(text)} characters is too short to split")
    indices = Corpus(vocabulary, np.empty(0, np.int64), np.empty(0, np.int64)).encode(text)
    return Corpus(vocabulary, indices[:boundary], indices[boundary:])


def unigram_bits(corpus: Corpus) -> float:
    """Bits per character of the validation text under the training text's character frequencies, each
    count plus one so that a character unseen in training is not impossible.

    Examples
    --------
    >>> round(unigram_bits(split_corpus("ab" * 50)), 4)  # two equally frequent characters: one bit
    1.0
    """
    counts = np.bincount(corpus.train, minlength=len(corpus.vocabulary)) + 1.0
    log_probabilities = np.log2(counts / counts.sum())
    return float(-np.mean(log_probabilities[corpus.validation]))


# -- the models ----------------------------------------------------------------------------------------------
class CharLSTM(nn.Module):
    """Embedding → LSTM → Linear: logits ``(N, L, vocabulary)`` of the character after each of ``(N, L)``,
    with dropout (``settings.dropout``) on the LSTM's input and output in training.

    Examples
    --------
    >>> model = CharLSTM(10, Settings(embedding=4, width=8), np.random.default_rng(0))
    >>> model(np.zeros((2, 5), dtype=np.int64)).shape
    (2, 5, 10)
    """

    def __init__(self, vocabulary_size: int, settings: Settings, rng: np.random.Generator) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, settings.embedding, dtype=DTYPE, rng=rng)
        self.dropout = nn.Dropout(settings.dropout, rng=rng)
        self.lstm = nn.LSTM(
            settings.embedding,
            settings.width,
            num_layers=settings.layers,
            batch_first=True,
            dropout=settings.dropout if settings.layers > 1 else 0.0,
            dtype=DTYPE,
            rng=rng,
        )
        self.head = nn.Linear(settings.width, vocabulary_size, dtype=DTYPE, rng=rng)

    def forward(self, indices: np.ndarray) -> Any:
        output, _ = self.lstm(self.dropout(self.embedding(indices)))
        return self.head(self.dropout(output))


class CharTransformer(nn.Module):
    """Embedding plus learned positions → causal TransformerEncoder → LayerNorm → Linear, for windows of at
    most ``settings.seq_len`` characters.

    Examples
    --------
    >>> model = CharTransformer(10, Settings(seq_len=6, width=8, heads=2), np.random.default_rng(0))
    >>> model(np.zeros((2, 5), dtype=np.int64)).shape
    (2, 5, 10)
    """

    def __init__(self, vocabulary_size: int, settings: Settings, rng: np.random.Generator) -> None:
        super().__init__()
        width = settings.width
        self.embedding = nn.Embedding(vocabulary_size, width, dtype=DTYPE, rng=rng)
        self.position = nn.Embedding(settings.seq_len, width, dtype=DTYPE, rng=rng)
        nn.init.normal_(self.position.weight, std=0.1, rng=rng)  # small next to the characters' vectors
        layer = nn.TransformerEncoderLayer(
            width,
            settings.heads,
            dim_feedforward=4 * width,
            dropout=settings.dropout,
            batch_first=True,
            norm_first=True,
            dtype=DTYPE,
            rng=rng,
        )
        self.encoder = nn.TransformerEncoder(layer, settings.layers)
        self.norm = nn.LayerNorm(width, dtype=DTYPE)
        self.head = nn.Linear(width, vocabulary_size, dtype=DTYPE, rng=rng)

    def forward(self, indices: np.ndarray) -> Any:
        length = indices.shape[1]
        if length > self.position.num_embeddings:
            raise ValueError(
                f"CharTransformer: windows of at most {self.position.num_embeddings} characters, got {length}"
            )
        x = self.embedding(indices) + self.position(np.arange(length))
        future = np.triu(np.ones((length, length), dtype=bool), k=1)  # True: may not be attended to
        return self.head(self.norm(self.encoder(x, mask=future)))


def build_model(kind: str, vocabulary_size: int, settings: Settings, rng: np.random.Generator) -> nn.Module:
    """The float32 ``lstm`` or ``transformer`` of the module docstring, initialised from ``rng``."""
    if kind == "lstm":
        return CharLSTM(vocabulary_size, settings, rng)
    if kind == "transformer":
        return CharTransformer(vocabulary_size, settings, rng)
    raise ValueError(f"build_model: model must be one of {MODELS}, got {kind!r}")


# -- training, evaluation and sampling -----------------------------------------------------------------------
def windows(indices: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of ``seq_len`` characters and, shifted by one, the characters that follow them.

    Examples
    --------
    >>> inputs, targets = windows(np.arange(5), 3)
    >>> inputs.tolist(), targets.tolist()
    ([[0, 1, 2], [1, 2, 3]], [[1, 2, 3], [2, 3, 4]])
    """
    both = np.lib.stride_tricks.sliding_window_view(indices, seq_len + 1)
    return np.ascontiguousarray(both[:, :-1]), np.ascontiguousarray(both[:, 1:])


def _nats(logits: Any, targets: np.ndarray) -> Any:
    """Mean cross-entropy in nats of ``logits`` ``(..., C)`` against ``targets`` ``(...)``."""
    classes = np.shape(logits)[-1]
    return nn.functional.cross_entropy(np.reshape(logits, (-1, classes)), np.reshape(targets, -1))


def validation_bits(model: nn.Module, corpus: Corpus, seq_len: int, batch_size: int = 256) -> float:
    """Bits per character of the validation text, each character predicted from the ``seq_len`` before it
    (the first ones from the end of the training text), in evaluation mode."""
    stream = np.concatenate([corpus.train[-seq_len:], corpus.validation])
    contexts = np.lib.stride_tricks.sliding_window_view(stream[:-1], seq_len)
    was_training = model.training
    model.eval()
    nats = 0.0
    with tape.no_grad():
        for start in range(0, len(contexts), batch_size):
            batch = contexts[start : start + batch_size]
            targets = corpus.validation[start : start + batch_size]
            nats += float(_nats(model(batch)[:, -1], targets)) * len(batch)
    model.train(was_training)
    return nats / len(contexts) / math.log(2)


def sample(
    model: nn.Module,
    corpus: Corpus,
    prompt: str,
    length: int,
    seq_len: int,
    temperature: float = 0.8,
    rng: np.random.Generator | None = None,
) -> str:
    """``length`` characters written after ``prompt``, each drawn from the model's distribution given the
    last ``seq_len`` characters, sharpened by ``temperature`` (0: always the likeliest).

    Examples
    --------
    >>> corpus = split_corpus("abracadabra" * 10)
    >>> model = CharLSTM(len(corpus.vocabulary), Settings(embedding=4, width=8), np.random.default_rng(0))
    >>> text = sample(model, corpus, "abra", 12, seq_len=8, rng=np.random.default_rng(0))
    >>> len(text), set(text) <= set(corpus.vocabulary)
    (12, True)
    """
    if temperature < 0:
        raise ValueError(f"sample: temperature must be at least 0, got {temperature}")
    if not prompt:
        raise ValueError("sample: the prompt must hold at least one character")
    rng = np.random.default_rng() if rng is None else rng
    indices = list(corpus.encode(prompt))
    was_training = model.training
    model.eval()
    with tape.no_grad():
        for _ in range(length):
            context = np.array(indices[-seq_len:], dtype=np.int64)[None]
            logits = np.asarray(model(context)[0, -1], dtype=np.float64)
            if temperature == 0:
                indices.append(int(np.argmax(logits)))
                continue
            scaled = logits / temperature
            probabilities = np.exp(scaled - scaled.max())
            indices.append(int(rng.choice(len(probabilities), p=probabilities / probabilities.sum())))
    model.train(was_training)
    return corpus.decode(indices[len(prompt) :])


def blas_threads(count: int | None) -> contextlib.AbstractContextManager[Any]:
    """numpy's BLAS and MKL limited to ``count`` threads inside the returned context, through threadpoolctl
    when it is installed; no limit when ``count`` is None or threadpoolctl is missing.

    The products here are small (a batch of 32 by a few hundred), so more threads cost more in waking them
    than they save, most of all on a shared machine.
    """
    if count is None:
        return contextlib.nullcontext()
    try:
        import threadpoolctl
    except ImportError:
        return contextlib.nullcontext()
    tape.ops.mkl.gemms()  # loaded now, so that the limit reaches it
    return threadpoolctl.threadpool_limits(limits=count, user_api="blas")


def _forever(loader: DataLoader) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:  # a new shuffle each pass
        yield from loader


def train(
    model: str = "lstm",
    text: str | Path | None = None,
    *,
    steps: int | None = None,
    seq_len: int | None = None,
    seed: int = 0,
    sample_length: int = 200,
    prompt: str = DEFAULT_PROMPT,
    temperature: float = 0.8,
    threads: int | None = 1,
    settings: Settings | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Train ``model`` ("lstm" or "transformer") on the text at ``text`` (default: the lecture) and return
    its history, its validation bits per character, the unigram baseline's and a sample.

    ``steps`` and ``seq_len`` override the model's defaults (``DEFAULT_SETTINGS``, or ``settings``).
    ``seed`` fixes the initial weights, the order of the batches, dropout and the sample. ``threads`` limits
    numpy's BLAS and MKL (see ``blas_threads``; None: no limit). ``verbose`` prints one line per evaluation
    and shows a progress bar on stderr.

    Examples
    --------
    >>> result = train("lstm", steps=2, seq_len=8, sample_length=5, verbose=False)
    >>> result["steps"], len(result["sample"]), result["baseline_bits"] > 5
    (2, 5, True)
    """
    if model not in MODELS:
        raise ValueError(f"train: model must be one of {MODELS}, got {model!r}")
    settings = settings or DEFAULT_SETTINGS[model]
    overrides = {name: value for name, value in (("steps", steps), ("seq_len", seq_len)) if value is not None}
    settings = replace(settings, **overrides)
    for name in ("steps", "seq_len", "batch_size"):
        if getattr(settings, name) < 1:
            raise ValueError(f"train: {name} must be at least 1, got {getattr(settings, name)}")
    if sample_length < 0:
        raise ValueError(f"train: sample_length must not be negative, got {sample_length}")
    path = lecture_path() if text is None else Path(text).expanduser()
    corpus = split_corpus(path.read_text(encoding="utf-8"))
    corpus.encode(prompt)  # refuse a prompt the model cannot read before training, not after
    inputs, targets = windows(corpus.train, settings.seq_len)
    if len(inputs) < settings.batch_size:
        raise ValueError(
            f"train: the training text ({len(corpus.train)} characters) holds {len(inputs)} windows of "
            f"{settings.seq_len}, fewer than a batch of {settings.batch_size}; shorten --seq-len"
        )

    with blas_threads(threads):
        init_rng, batch_rng, sample_rng = np.random.default_rng(seed).spawn(3)
        network = build_model(model, len(corpus.vocabulary), settings, init_rng)
        optimizer = nn.optim.Adam(network.parameters(), lr=settings.lr)
        scheduler = nn.optim.CosineAnnealingLR(optimizer, T_max=settings.steps)
        loader = DataLoader(
            TensorDataset(inputs, targets),
            batch_size=settings.batch_size,
            shuffle=True,
            drop_last=True,
            generator=batch_rng,
        )
        baseline = unigram_bits(corpus)
        every = max(1, -(-settings.steps // max(1, settings.evaluations)))
        history: dict[str, list[float]] = {"step": [], "train_bits": [], "validation_bits": [], "seconds": []}
        started = time.perf_counter()
        nats_since, steps_since = 0.0, 0
        network.train()
        batches = _forever(loader)
        with progress_bar(settings.steps, f"char_lm {model}", enabled=verbose) as bar:
            for step in range(1, settings.steps + 1):
                x, y = next(batches)
                optimizer.zero_grad()
                loss = _nats(network(x), y)
                loss.backward()
                nn.optim.clip_grad_norm_(network.parameters(), settings.clip)
                optimizer.step()
                scheduler.step()
                nats_since += float(loss)
                steps_since += 1
                bar.set_postfix_str(f"loss {float(loss) / math.log(2):.2f} bits/char", refresh=False)
                bar.update()
                if step % every and step != settings.steps:
                    continue
                history["step"].append(step)
                history["train_bits"].append(nats_since / steps_since / math.log(2))
                history["validation_bits"].append(validation_bits(network, corpus, settings.seq_len))
                history["seconds"].append(time.perf_counter() - started)
                nats_since, steps_since = 0.0, 0
                if verbose:
                    bar.clear()  # the line goes to stdout; wipe the bar first so they do not mix
                    print(
                        f"step {step:5d}/{settings.steps}  train {history['train_bits'][-1]:.3f}  "
                        f"validation {history['validation_bits'][-1]:.3f} bits/char  "
                        f"(unigram {baseline:.3f})  ({history['seconds'][-1]:.1f} s)",
                        flush=True,
                    )
        seconds = time.perf_counter() - started
        text_sample = sample(
            network, corpus, prompt, sample_length, settings.seq_len, temperature=temperature, rng=sample_rng
        )
    return {
        "model": model,
        "seed": seed,
        "steps": settings.steps,
        "settings": asdict(settings),
        "text": str(path),
        "vocabulary": corpus.vocabulary,
        "train_characters": len(corpus.train),
        "validation_characters": len(corpus.validation),
        "dtype": np.dtype(DTYPE).name,
        "parameters": int(sum(p.size for p in network.parameters())),
        "validation_bits": history["validation_bits"][-1],
        "baseline_bits": baseline,
        "seconds": seconds,
        "history": history,
        "prompt": prompt,
        "temperature": temperature,
        "sample": text_sample,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, train, print the bits per character, the baseline's and a sample."""
    parser = command_line("python -m examples.char_lm", __doc__)
    parser.add_argument("text", nargs="?", default=None, help="a UTF-8 text file (default: the lecture)")
    parser.add_argument("--model", choices=MODELS, default="lstm", help="which network (default lstm)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 600)")
    parser.add_argument("--seq-len", type=int, default=None, help="characters per window (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="weights, batches, dropout, sample (default 0)")
    parser.add_argument("--sample", type=int, default=200, help="characters to write (default 200)")
    parser.add_argument(
        "--prompt", default=DEFAULT_PROMPT, help=f"text to continue (default {DEFAULT_PROMPT!r})"
    )
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default 0.8)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads, 0: no limit (default 1)")
    options = parser.parse_args(argv)
    result = train(
        options.model,
        options.text,
        steps=options.steps,
        seq_len=options.seq_len,
        seed=options.seed,
        sample_length=options.sample,
        prompt=options.prompt,
        temperature=options.temperature,
        threads=options.threads or None,
    )
    print(f"\n{result['prompt']}{result['sample']}\n")
    print(
        f"{result['model']}: {result['validation_bits']:.3f} bits/char on validation, unigram baseline "
        f"{result['baseline_bits']:.3f}; {result['steps']} steps, {result['parameters']:,} parameters, "
        f"{result['seconds']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
