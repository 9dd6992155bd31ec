"""Data loading for training loops, as ``torch.utils.data`` has it: datasets, splits and a batching loader.

``DataLoader`` turns a dataset into a stream of mini-batches, shuffled with a ``numpy.random.Generator``
so that a seed fixes every epoch's order. A ``TensorDataset`` (or a ``Subset`` of one) is batched by
indexing its arrays with each batch's indices at once, not row by row.

This module never records on the tape: tensors given to a dataset are read through their data, and every
batch is a plain numpy array. Make a tensor of a batch (``tape.tensor(x)``) where the model needs one.
A sampler (``DistributedSampler``: each rank's share of the examples, for data-parallel training) may
choose the order instead of ``shuffle``. Worker processes and iterable-style datasets are not here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from .tensor import Tensor

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

__all__ = [
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "Subset",
    "TensorDataset",
    "default_collate",
    "random_split",
]


class Dataset(Generic[T_co]):
    """A map-style dataset: ``dataset[i]`` is the ``i``-th example, ``len(dataset)`` how many there are.

    Subclasses define ``__getitem__`` and, so that a ``DataLoader`` can shuffle them and count batches,
    ``__len__``. Without ``__len__``, a loader reads ``dataset[0], dataset[1], ...`` until ``IndexError``.

    Examples
    --------
    >>> class Squares(Dataset):
    ...     def __getitem__(self, index):
    ...         return index * index
    ...     def __len__(self):
    ...         return 4
    >>> [Squares()[i] for i in range(4)]
    [0, 1, 4, 9]
    """

    def __getitem__(self, index: int) -> T_co:
        raise NotImplementedError(f"{type(self).__name__}: a Dataset subclass must define __getitem__")

    def __len__(self) -> int:
        raise TypeError(
            f"{type(self).__name__}: this dataset defines no __len__; define it to shuffle or count batches"
        )


def _has_len(dataset: Any) -> bool:
    method = getattr(type(dataset), "__len__", None)
    return method is not None and method is not Dataset.__len__


class TensorDataset(Dataset[tuple[Any, ...]]):
    """Arrays (or tape tensors) of examples along their first axis; item ``i`` is the tuple of their rows.

    Tensors are held as their read-only data, so the dataset shares their memory and records nothing.

    Parameters
    ----------
    *arrays : numpy arrays or tape tensors
        At least one, all of the same length along the first axis.

    Examples
    --------
    >>> import numpy as np
    >>> features, labels = np.arange(6.0).reshape(3, 2), np.array([0, 1, 0])
    >>> dataset = TensorDataset(features, labels)
    >>> len(dataset), dataset[1]
    (3, (array([2., 3.]), np.int64(1)))
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset: expected at least one array, got none")
        held = tuple(array.data if isinstance(array, Tensor) else np.asarray(array) for array in arrays)
        for position, array in enumerate(held):
            if array.ndim == 0:
                raise ValueError(
                    f"TensorDataset: array {position} is a scalar; each array needs a first axis of examples"
                )
        lengths = [len(array) for array in held]
        if len(set(lengths)) > 1:
            raise ValueError(
                "TensorDataset: arrays must have the same length along the first axis, got lengths "
                + ", ".join(str(length) for length in lengths)
            )
        self.arrays = held

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return tuple(array[index] for array in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])


class Subset(Dataset[T_co]):
    """The examples of ``dataset`` at ``indices``, in that order.

    Parameters
    ----------
    dataset : Dataset or sequence
        The dataset to take examples from.
    indices : sequence of int
        Positions in ``dataset``; ``subset[i]`` is ``dataset[indices[i]]``.

    Examples
    --------
    >>> subset = Subset(["a", "b", "c", "d"], [3, 0])
    >>> len(subset), subset[0], subset[1]
    (2, 'd', 'a')
    """

    def __init__(self, dataset: Dataset[T_co] | Sequence[T_co], indices: Sequence[int] | np.ndarray) -> None:
        positions = np.asarray(indices)
        if positions.size == 0:
            positions = positions.astype(np.intp)
        if positions.ndim != 1 or positions.dtype.kind not in "iu":
            raise TypeError(
                "Subset: indices must be a 1-d sequence of integers, got an array of shape "
                f"{positions.shape} and dtype {positions.dtype}"
            )
        self.dataset = dataset
        self.indices = positions.astype(np.intp, copy=False)

    def __getitem__(self, index: int) -> T_co:
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(
    dataset: Dataset[T] | Sequence[T],
    lengths: Sequence[int | float],
    generator: np.random.Generator | None = None,
) -> list[Subset[T]]:
    """Split ``dataset`` at random into disjoint subsets of the given lengths, as ``torch.utils.data``.

    Parameters
    ----------
    dataset : Dataset or sequence
        A dataset with ``__len__``.
    lengths : sequence of int or float
        Integer lengths summing to ``len(dataset)``, or fractions in [0, 1] summing to 1. Fractions are
        rounded down, and the examples left over are handed out one each to the subsets in turn.
    generator : numpy.random.Generator, optional
        The source of the permutation; a freshly seeded one if not given.

    Returns
    -------
    list of Subset
        One per length, in the order of ``lengths``.

    Examples
    --------
    >>> import numpy as np
    >>> train, test = random_split(range(10), [0.8, 0.2], generator=np.random.default_rng(0))
    >>> len(train), len(test), sorted([*train, *test]) == list(range(10))
    (8, 2, True)
    """
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(
            f"random_split: generator must be a numpy.random.Generator, got {type(generator).__name__}; "
            "make one with np.random.default_rng(seed)"
        )
    if not _has_len(dataset):
        raise TypeError(f"random_split: the dataset ({type(dataset).__name__}) must define __len__")
    total = len(dataset)
    counts = _split_counts(lengths, total)
    order = (generator if generator is not None else np.random.default_rng()).permutation(total)
    bounds = np.cumsum([0, *counts])
    return [Subset(dataset, order[start:stop]) for start, stop in itertools.pairwise(bounds)]


def _split_counts(lengths: Sequence[int | float], total: int) -> list[int]:
    if any(isinstance(length, bool) or not isinstance(length, int | float) for length in lengths):
        raise TypeError(f"random_split: lengths must be ints or floats, got {list(lengths)}")
    if all(isinstance(length, int) for length in lengths):
        counts = [int(length) for length in lengths]
        if any(count < 0 for count in counts):
            raise ValueError(f"random_split: lengths must not be negative, got {counts}")
        if sum(counts) != total:
            raise ValueError(
                f"random_split: lengths {counts} sum to {sum(counts)}, but the dataset has {total} examples"
            )
        return counts
    for position, fraction in enumerate(lengths):
        if not 0 <= fraction <= 1:
            raise ValueError(f"random_split: fraction {fraction} at index {position} is not in [0, 1]")
    if not math.isclose(sum(lengths), 1):
        raise ValueError(f"random_split: fractions {list(lengths)} sum to {sum(lengths)}, not 1")
    counts = [math.floor(total * fraction) for fraction in lengths]
    for turn in range(total - sum(counts)):
        counts[turn % len(counts)] += 1
    return counts


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of examples into one batch along a new first axis, as torch's ``default_collate``.

    Numpy arrays, tape tensors (their data) and numbers are stacked into numpy arrays; dicts, tuples
    (named ones too) and lists are collated field by field and keep their type; strings are kept as a list.

    Parameters
    ----------
    batch : sequence
        The examples, all of the same structure.

    Examples
    --------
    >>> import numpy as np
    >>> default_collate([{"x": np.zeros(2), "y": 0}, {"x": np.ones(2), "y": 1}])
    {'x': array([[0., 0.],
           [1., 1.]]), 'y': array([0, 1])}
    """
    if len(batch) == 0:
        raise ValueError("default_collate: the batch is empty")
    first = batch[0]
    if isinstance(first, Tensor | np.ndarray):
        return _stack([item.data if isinstance(item, Tensor) else item for item in batch])
    if isinstance(first, int | float | complex | np.generic):
        return np.array(batch)
    if isinstance(first, str | bytes):
        return list(batch)
    if isinstance(first, Mapping):
        keys = set(first)
        for position, item in enumerate(batch):
            if not isinstance(item, Mapping) or set(item) != keys:
                raise ValueError(
                    f"default_collate: item {position} does not have the keys of item 0 ({sorted(keys)})"
                )
        return {key: default_collate([item[key] for item in batch]) for key in first}
    if isinstance(first, Sequence):
        for position, item in enumerate(batch):
            if len(item) != len(first):
                raise ValueError(
                    f"default_collate: item {position} has {len(item)} fields, but item 0 has {len(first)}"
                )
        fields = [default_collate(column) for column in zip(*batch, strict=True)]
        if isinstance(first, tuple):
            return type(first)(*fields) if hasattr(first, "_fields") else tuple(fields)
        return fields
    raise TypeError(
        "default_collate: examples must be numpy arrays, tensors, numbers, strings, dicts, tuples or lists, "
        f"got {type(first).__name__}; pass a collate_fn to the DataLoader for other types"
    )


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    try:
        return np.stack(arrays)
    except ValueError:
        shapes = sorted({array.shape for array in arrays})
        raise ValueError(
            f"default_collate: cannot stack arrays of different shapes {shapes}; "
            "make the examples one shape or pass a collate_fn to the DataLoader"
        ) from None


def _gather(dataset: Any) -> Callable[[np.ndarray], Any] | None:
    """A function from batch indices to the collated batch by one fancy index per array, if there is one.

    Only for an array, a TensorDataset or a Subset of one of these, whose ``__getitem__`` is not
    overridden: then ``array[indices]`` is what collating the rows would give.
    """
    if isinstance(dataset, np.ndarray) and dataset.ndim > 0:

        def gather_array(indices: np.ndarray) -> np.ndarray:
            return dataset[indices]

        return gather_array
    if isinstance(dataset, TensorDataset) and type(dataset).__getitem__ is TensorDataset.__getitem__:
        arrays = dataset.arrays

        def gather_rows(indices: np.ndarray) -> tuple[np.ndarray, ...]:
            return tuple(array[indices] for array in arrays)

        return gather_rows
    if isinstance(dataset, Subset) and type(dataset).__getitem__ is Subset.__getitem__:
        inner = _gather(dataset.dataset)
        if inner is None:
            return None
        positions = dataset.indices

        def gather_subset(indices: np.ndarray) -> Any:
            return inner(positions[indices])

        return gather_subset
    return None


class DataLoader:
    """Iterate over a dataset in mini-batches, optionally shuffled anew each epoch.

    Parameters
    ----------
    dataset : Dataset, sequence, numpy array or tape tensor
        Indexed with ``dataset[i]``; it needs ``__len__`` to shuffle and for ``len(loader)``.
    batch_size : int
        Examples per batch, at least 1.
    shuffle : bool
        Draw a new permutation of the examples at the start of each epoch.
    drop_last : bool
        Leave out the last batch when it has fewer than ``batch_size`` examples.
    generator : numpy.random.Generator, optional
        The source of the permutations. Epochs draw from it in turn, so two loaders made with generators
        in the same state give the same sequence of epochs.
    seed : int, optional
        Make the generator with ``np.random.default_rng(seed)``; give ``generator`` or ``seed``, not both.
    collate_fn : callable, optional
        Makes a batch from a list of examples; ``default_collate`` if not given.
    sampler : iterable of int, optional
        The indices of each epoch's examples, in order (iterated anew each epoch; ``len(sampler)`` of
        them), instead of ``shuffle``: a ``DistributedSampler`` for data-parallel training.

    Examples
    --------
    >>> import numpy as np
    >>> loader = DataLoader(TensorDataset(np.arange(5)), batch_size=2)
    >>> len(loader), [batch for (batch,) in loader]
    (3, [array([0, 1]), array([2, 3]), array([4])])
    """

    def __init__(
        self,
        dataset: Dataset[Any] | Sequence[Any] | np.ndarray | Tensor,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: np.random.Generator | None = None,
        seed: int | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        sampler: Iterable[int] | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(f"DataLoader: batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        if shuffle and not _has_len(dataset):
            raise TypeError(
                f"DataLoader: shuffle=True needs a dataset with __len__; {type(dataset).__name__} has none"
            )
        if generator is not None and seed is not None:
            raise ValueError("DataLoader: give generator or seed, not both (the seed would be ignored)")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(
                f"DataLoader: generator must be a numpy.random.Generator, got {type(generator).__name__}; "
                "make one with np.random.default_rng(seed), or pass seed="
            )
        if sampler is not None and shuffle:
            raise ValueError(
                "DataLoader: give shuffle=True or a sampler, not both (the sampler chooses the order; "
                "DistributedSampler shuffles by itself)"
            )
        if sampler is not None and not hasattr(sampler, "__iter__"):
            raise TypeError(
                f"DataLoader: sampler must be an iterable of indices, got {type(sampler).__name__}"
            )
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        # A tensor is read through its data, so that indexing it records nothing.
        self.dataset = dataset.data if isinstance(dataset, Tensor) else dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator if generator is not None else np.random.default_rng(seed)
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        self._gather = _gather(self.dataset) if collate_fn is None else None
        self.sampler = sampler

    def __len__(self) -> int:
        if self.sampler is not None:
            return _batch_count(len(self.sampler), self.batch_size, self.drop_last)  # type: ignore[arg-type]
        if not _has_len(self.dataset):
            raise TypeError(
                f"DataLoader: the number of batches is unknown, as {type(self.dataset).__name__} has no "
                "__len__"
            )
        return _batch_count(len(self.dataset), self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[Any]:
        if self.sampler is not None:
            return self._batches(np.fromiter(iter(self.sampler), dtype=np.intp))
        if not _has_len(self.dataset):
            return self._read_in_turn()
        examples = len(self.dataset)
        order = self.generator.permutation(examples) if self.shuffle else np.arange(examples)
        return self._batches(order)

    def _batches(self, order: np.ndarray) -> Iterator[Any]:
        end = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, end, self.batch_size):
            indices = order[start : start + self.batch_size]
            if self._gather is not None:
                yield self._gather(indices)
            else:
                yield self.collate_fn([self.dataset[index] for index in indices.tolist()])

    def _read_in_turn(self) -> Iterator[Any]:
        # iter() of an object with __getitem__ and no __iter__ reads indices 0, 1, ... until IndexError.
        examples: list[Any] = []
        for example in iter(self.dataset):
            examples.append(example)
            if len(examples) == self.batch_size:
                yield self.collate_fn(examples)
                examples = []
        if examples and not self.drop_last:
            yield self.collate_fn(examples)


def _batch_count(examples: int, batch_size: int, drop_last: bool) -> int:
    return examples // batch_size if drop_last else -(-examples // batch_size)


class DistributedSampler:
    """The indices of one rank's share of a dataset, for ``DataLoader(..., sampler=...)``: each of the
    ``num_replicas`` ranks gets every ``num_replicas``-th index of one order, the same on every rank.

    With ``shuffle``, the order is a permutation drawn from ``seed`` and the epoch (``set_epoch``), so every
    rank draws the same one and each epoch a new one. The ranks get equally many indices (a rank with
    fewer examples would skip the last collective step and leave the others waiting): without
    ``drop_last``, the order is padded with its own first indices up to a multiple of ``num_replicas``;
    with it, the tail that does not divide evenly is left out. These are torch's semantics.

    Parameters
    ----------
    dataset : sized
        Only its length is read.
    num_replicas, rank : int
        How many ranks share the data, and which one this is (``tape.distributed.DistributedSampler``
        fills them in from the world).
    shuffle : bool
        Draw a new order each epoch (else the natural order).
    seed : int
        The seed of the orders; the same on every rank.
    drop_last : bool
        Leave out the tail instead of padding.

    Examples
    --------
    >>> sampler = DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False)
    >>> list(sampler), len(sampler)  # the order 0..4 padded with 0, every second index from 1
    ([1, 3, 0], 3)
    >>> sampler.set_epoch(1)  # a new order next epoch, when shuffling
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int,
        rank: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if (
            isinstance(num_replicas, bool)
            or not isinstance(num_replicas, int | np.integer)
            or num_replicas < 1
        ):
            raise ValueError(f"DistributedSampler: num_replicas must be a positive int, got {num_replicas!r}")
        if isinstance(rank, bool) or not isinstance(rank, int | np.integer) or not 0 <= rank < num_replicas:
            raise ValueError(
                f"DistributedSampler: rank must be an int from 0 to {num_replicas - 1}, got {rank!r}"
            )
        if not _has_len(dataset):
            raise TypeError(
                f"DistributedSampler: the dataset needs __len__; {type(dataset).__name__} has none"
            )
        self.examples = len(dataset)
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        if drop_last:
            self.num_samples = self.examples // self.num_replicas
        else:
            self.num_samples = -(-self.examples // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order ``iter`` gives next (call it at the start of each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.examples)
        else:
            order = np.arange(self.examples)
        if self.total_size > len(order) and len(order) > 0:
            order = np.resize(order, self.total_size)  # repeats the order from its start
        order = order[: self.total_size]
        return iter(order[self.rank :: self.num_replicas].tolist())
