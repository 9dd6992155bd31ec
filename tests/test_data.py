"""tape.data: datasets, random_split, default_collate and DataLoader, checked against torch.utils.data."""

from __future__ import annotations

import warnings
from collections import namedtuple

import numpy as np
import pytest

import tape
from tape.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)


class Rows(Dataset):
    """Examples built by ``__getitem__`` (so the loader collates them one by one)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __getitem__(self, index: int):
        if not 0 <= index < self.count:
            raise IndexError(index)
        return {"x": np.full(3, float(index)), "y": index, "pair": (index, str(index))}

    def __len__(self) -> int:
        return self.count


class Unsized(Dataset):
    def __getitem__(self, index: int):
        if index >= 5:
            raise IndexError(index)
        return np.array([index, -index])


def labels_of(loader: DataLoader) -> list[list[int]]:
    return [batch[1].tolist() for batch in loader]


# -- datasets ------------------------------------------------------------------------------------------------
def test_tensor_dataset_items_are_tuples_of_rows():
    x, y = np.arange(12.0).reshape(4, 3), np.array([5, 6, 7, 8])
    dataset = TensorDataset(x, y)
    assert len(dataset) == 4
    row, label = dataset[2]
    np.testing.assert_array_equal(row, x[2])
    assert label == 7


def test_tensor_dataset_of_tensors_holds_plain_arrays():
    weights = tape.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    dataset = TensorDataset(weights, np.array([1, 2, 3]))
    row, _ = dataset[1]
    assert type(row) is np.ndarray
    np.testing.assert_array_equal(row, [2.0, 3.0])
    batches = list(DataLoader(dataset, batch_size=2))
    assert all(type(array) is np.ndarray for batch in batches for array in batch)
    np.testing.assert_array_equal(batches[0][0], weights.data[:2])


def test_a_tensor_as_the_dataset_gives_arrays():
    values = tape.tensor(np.arange(5.0), requires_grad=True)
    batches = list(DataLoader(values, batch_size=2))
    assert all(type(batch) is np.ndarray for batch in batches)
    np.testing.assert_array_equal(np.concatenate(batches), np.arange(5.0))


def test_tensor_dataset_rejects_mismatched_lengths_naming_them():
    with pytest.raises(ValueError, match=r"TensorDataset: .*lengths 4, 3"):
        TensorDataset(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="TensorDataset: expected at least one array"):
        TensorDataset()
    with pytest.raises(ValueError, match="TensorDataset: array 1 is a scalar"):
        TensorDataset(np.zeros(3), np.float64(1.0))


def test_dataset_base_class_names_what_is_missing():
    with pytest.raises(NotImplementedError, match="Unnamed: a Dataset subclass must define __getitem__"):
        type("Unnamed", (Dataset,), {})()[0]
    with pytest.raises(TypeError, match="Unsized: this dataset defines no __len__"):
        len(Unsized())


def test_subset_reads_through_its_indices():
    subset = Subset(Rows(10), [7, 2])
    assert len(subset) == 2
    assert subset[0]["y"] == 7 and subset[1]["y"] == 2
    with pytest.raises(TypeError, match="Subset: indices must be a 1-d sequence of integers"):
        Subset(Rows(10), [0.5, 1.0])


# -- random_split --------------------------------------------------------------------------------------------
def test_random_split_sizes_are_disjoint_and_cover_the_dataset():
    parts = random_split(Rows(10), [6, 3, 1], generator=np.random.default_rng(0))
    assert [len(part) for part in parts] == [6, 3, 1]
    indices = np.concatenate([part.indices for part in parts])
    assert sorted(indices.tolist()) == list(range(10))


def test_random_split_is_reproducible_with_a_generator():
    first = random_split(range(20), [0.5, 0.5], generator=np.random.default_rng(3))
    again = random_split(range(20), [0.5, 0.5], generator=np.random.default_rng(3))
    assert [list(part) for part in first] == [list(part) for part in again]


@pytest.mark.parametrize(
    "fractions", [[0.8, 0.2], [0.3, 0.3, 0.4], [1 / 3, 1 / 3, 1 / 3], [0.25, 0.25, 0.25, 0.25], [1.0, 0.0]]
)
@pytest.mark.parametrize("count", [0, 1, 7, 10, 101])
def test_random_split_fraction_sizes_match_torch(fractions, count):
    torch = pytest.importorskip("torch")
    data = pytest.importorskip("torch.utils.data")
    ours = [len(part) for part in random_split(range(count), fractions, generator=np.random.default_rng(0))]
    with warnings.catch_warnings():  # torch warns of empty splits
        warnings.simplefilter("ignore", UserWarning)
        theirs = [len(part) for part in data.random_split(range(count), fractions, torch.Generator())]
    assert ours == theirs
    assert sum(ours) == count


def test_random_split_errors():
    with pytest.raises(ValueError, match=r"random_split: lengths \[3, 3\] sum to 6, but the dataset has 10"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match=r"random_split: fractions \[0.5, 0.4\] sum to 0.9"):
        random_split(range(10), [0.5, 0.4])
    with pytest.raises(ValueError, match=r"random_split: fraction 1\.5 at index 0 is not in"):
        random_split(range(10), [1.5, -0.5])
    with pytest.raises(ValueError, match="random_split: lengths must not be negative"):
        random_split(range(10), [11, -1])
    with pytest.raises(TypeError, match=r"random_split: generator must be a numpy\.random\.Generator"):
        random_split(range(10), [5, 5], generator=np.random.RandomState(0))
    with pytest.raises(TypeError, match=r"random_split: the dataset \(Unsized\) must define __len__"):
        random_split(Unsized(), [1])


# -- default_collate -----------------------------------------------------------------------------------------
def test_collate_dicts_tuples_and_strings():
    batch = default_collate([Rows(4)[0], Rows(4)[3]])
    assert set(batch) == {"x", "y", "pair"}
    np.testing.assert_array_equal(batch["x"], [[0.0] * 3, [3.0] * 3])
    np.testing.assert_array_equal(batch["y"], [0, 3])
    assert isinstance(batch["pair"], tuple)
    np.testing.assert_array_equal(batch["pair"][0], [0, 3])
    assert batch["pair"][1] == ["0", "3"]


def test_collate_keeps_named_tuples_and_lists():
    Point = namedtuple("Point", "x y")
    points = default_collate([Point(1.0, np.zeros(2)), Point(2.0, np.ones(2))])
    assert isinstance(points, Point)
    np.testing.assert_array_equal(points.x, [1.0, 2.0])
    assert points.y.shape == (2, 2)
    lists = default_collate([[1, 2], [3, 4]])
    assert isinstance(lists, list)
    np.testing.assert_array_equal(lists[0], [1, 3])


def test_collate_stacks_tensors_data():
    items = [tape.tensor([1.0, 2.0], requires_grad=True), tape.tensor([3.0, 4.0])]
    batch = default_collate(items)
    assert type(batch) is np.ndarray
    np.testing.assert_array_equal(batch, [[1.0, 2.0], [3.0, 4.0]])


def test_collate_matches_torch_default_collate():
    torch = pytest.importorskip("torch")
    data = pytest.importorskip("torch.utils.data")
    items = [Rows(5)[i] for i in (4, 1, 2)]
    ours, theirs = default_collate(items), data.default_collate(items)
    np.testing.assert_array_equal(ours["x"], theirs["x"].numpy())
    assert ours["x"].dtype == theirs["x"].numpy().dtype
    np.testing.assert_array_equal(ours["y"], theirs["y"].numpy())
    assert ours["y"].dtype == np.dtype(str(theirs["y"].dtype).removeprefix("torch."))
    assert list(ours["pair"][1]) == list(theirs["pair"][1])
    assert isinstance(theirs["pair"][0], torch.Tensor)


def test_collate_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"default_collate: cannot stack arrays of different shapes"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError, match="default_collate: item 1 does not have the keys of item 0"):
        default_collate([{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match="default_collate: item 1 has 1 fields, but item 0 has 2"):
        default_collate([(1, 2), (3,)])
    with pytest.raises(TypeError, match=r"default_collate: .* got NoneType"):
        default_collate([None, None])
    with pytest.raises(ValueError, match="default_collate: the batch is empty"):
        default_collate([])


# -- DataLoader: batching ------------------------------------------------------------------------------------
@pytest.mark.parametrize("drop_last", [False, True])
def test_batches_and_the_last_partial_batch(drop_last):
    dataset = TensorDataset(np.arange(20.0).reshape(10, 2), np.arange(10))
    loader = DataLoader(dataset, batch_size=4, drop_last=drop_last)
    expected = [[0, 1, 2, 3], [4, 5, 6, 7]] + ([] if drop_last else [[8, 9]])
    assert labels_of(loader) == expected
    assert len(loader) == len(expected)
    for features, labels in loader:
        np.testing.assert_array_equal(features, dataset.arrays[0][labels])


@pytest.mark.parametrize("drop_last", [False, True])
def test_rows_collated_one_by_one_batch_alike(drop_last):
    loader = DataLoader(Rows(7), batch_size=3, drop_last=drop_last)
    ys = [batch["y"].tolist() for batch in loader]
    assert ys == [[0, 1, 2], [3, 4, 5]] + ([] if drop_last else [[6]])
    assert len(loader) == len(ys)


def test_fast_path_gives_what_row_collation_gives():
    rng = np.random.default_rng(1)
    dataset = TensorDataset(rng.normal(size=(23, 4)).astype(np.float32), rng.integers(0, 9, size=23))
    subset = random_split(dataset, [15, 8], generator=np.random.default_rng(2))[0]
    for source in (dataset, subset):
        fast = DataLoader(source, batch_size=5, shuffle=True, seed=4)
        rows = DataLoader(source, batch_size=5, shuffle=True, seed=4, collate_fn=default_collate)
        assert fast._gather is not None and rows._gather is None
        for got, expected in zip(fast, rows, strict=True):
            assert isinstance(got, tuple) and isinstance(expected, tuple)
            for array, reference in zip(got, expected, strict=True):
                assert array.dtype == reference.dtype
                np.testing.assert_array_equal(array, reference)


def test_a_subclass_that_overrides_getitem_is_collated_row_by_row():
    class Doubled(TensorDataset):
        def __getitem__(self, index):
            return tuple(2 * array[index] for array in self.arrays)

    loader = DataLoader(Doubled(np.arange(4)), batch_size=2)
    assert loader._gather is None
    assert [batch[0].tolist() for batch in loader] == [[0, 2], [4, 6]]


def test_a_dataset_without_len_is_read_until_index_error():
    loader = DataLoader(Unsized(), batch_size=2)
    batches = list(loader)
    assert [batch[:, 0].tolist() for batch in batches] == [[0, 1], [2, 3], [4]]
    assert len(list(DataLoader(Unsized(), batch_size=2, drop_last=True))) == 2
    with pytest.raises(TypeError, match="DataLoader: the number of batches is unknown, as Unsized"):
        len(loader)


def test_empty_dataset_gives_no_batches():
    loader = DataLoader(TensorDataset(np.zeros((0, 3))), batch_size=4, shuffle=True, seed=0)
    assert len(loader) == 0 and list(loader) == []


def test_custom_collate_fn_gets_the_examples():
    loader = DataLoader(Rows(5), batch_size=2, collate_fn=lambda items: [item["y"] for item in items])
    assert list(loader) == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 11])
@pytest.mark.parametrize("drop_last", [False, True])
def test_unshuffled_batches_match_torch(batch_size, drop_last):
    torch = pytest.importorskip("torch")
    data = pytest.importorskip("torch.utils.data")
    x, y = np.arange(30.0).reshape(10, 3), np.arange(10) * 2
    ours = DataLoader(TensorDataset(x, y), batch_size=batch_size, drop_last=drop_last)
    theirs = data.DataLoader(
        data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=batch_size,
        drop_last=drop_last,
    )
    assert len(ours) == len(theirs)
    batches = list(ours)
    assert len(batches) == len(theirs)
    for (our_x, our_y), (their_x, their_y) in zip(batches, theirs, strict=True):
        np.testing.assert_array_equal(our_x, their_x.numpy())
        np.testing.assert_array_equal(our_y, their_y.numpy())


# -- DataLoader: shuffling -----------------------------------------------------------------------------------
def test_shuffling_covers_every_index_once_per_epoch():
    loader = DataLoader(TensorDataset(np.arange(103)), batch_size=10, shuffle=True, seed=0)
    for _ in range(3):
        seen = np.concatenate([batch for (batch,) in loader])
        assert sorted(seen.tolist()) == list(range(103))


def test_shuffling_without_drop_last_keeps_a_partial_batch_and_with_it_drops_it():
    kept = DataLoader(TensorDataset(np.arange(10)), batch_size=4, shuffle=True, seed=0)
    dropped = DataLoader(TensorDataset(np.arange(10)), batch_size=4, shuffle=True, seed=0, drop_last=True)
    assert [len(batch) for (batch,) in kept] == [4, 4, 2]
    assert [len(batch) for (batch,) in dropped] == [4, 4]


def epochs(loader: DataLoader, count: int) -> list[list[int]]:
    return [np.concatenate([batch for (batch,) in loader]).tolist() for _ in range(count)]


def test_same_seed_gives_the_same_epochs_and_epochs_differ():
    first = epochs(DataLoader(TensorDataset(np.arange(50)), batch_size=8, shuffle=True, seed=7), 3)
    again = epochs(DataLoader(TensorDataset(np.arange(50)), batch_size=8, shuffle=True, seed=7), 3)
    other = epochs(DataLoader(TensorDataset(np.arange(50)), batch_size=8, shuffle=True, seed=8), 3)
    assert first == again
    assert first[0] != first[1] != first[2]
    assert first != other
    assert first[0] != list(range(50))


def test_a_generator_is_drawn_from_in_turn():
    rng = np.random.default_rng(5)
    loader = DataLoader(TensorDataset(np.arange(12)), batch_size=12, shuffle=True, generator=rng)
    assert loader.generator is rng
    reference = np.random.default_rng(5)
    for _ in range(2):
        ((batch,),) = list(loader)
        np.testing.assert_array_equal(batch, reference.permutation(12))


def test_shuffled_rows_are_collated_in_permutation_order():
    loader = DataLoader(Rows(9), batch_size=4, shuffle=True, seed=2)
    order = np.random.default_rng(2).permutation(9).tolist()
    assert [y for batch in loader for y in batch["y"].tolist()] == order


# -- DataLoader: errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"batch_size": 0}, ValueError, "DataLoader: batch_size must be at least 1, got 0"),
        ({"batch_size": -2}, ValueError, "DataLoader: batch_size must be at least 1, got -2"),
        ({"batch_size": 2.0}, TypeError, "DataLoader: batch_size must be an int, got float"),
        ({"batch_size": True}, TypeError, "DataLoader: batch_size must be an int, got bool"),
        (
            {"generator": np.random.default_rng(0), "seed": 1},
            ValueError,
            "DataLoader: give generator or seed, not both",
        ),
        ({"generator": 3}, TypeError, "DataLoader: generator must be a numpy.random.Generator, got int"),
        ({"collate_fn": "stack"}, TypeError, "DataLoader: collate_fn must be callable, got str"),
    ],
)
def test_loader_errors_name_the_argument(arguments, error, message):
    with pytest.raises(error, match=message):
        DataLoader(Rows(4), **arguments)


def test_shuffle_needs_a_dataset_with_len():
    with pytest.raises(TypeError, match="DataLoader: shuffle=True needs a dataset with __len__; Unsized"):
        DataLoader(Unsized(), shuffle=True)


# -- DistributedSampler: each rank's share, as torch.utils.data.DistributedSampler gives it -------------


@pytest.mark.parametrize(
    "examples, ranks, drop_last", [(10, 3, False), (10, 3, True), (2, 4, False), (9, 3, False)]
)
def test_distributed_sampler_matches_torch(examples, ranks, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    for rank in range(ranks):
        mine = DistributedSampler(range(examples), ranks, rank, shuffle=False, drop_last=drop_last)
        theirs = torch_data.DistributedSampler(
            range(examples), num_replicas=ranks, rank=rank, shuffle=False, drop_last=drop_last
        )
        assert list(mine) == list(theirs) and len(mine) == len(theirs)


def test_distributed_sampler_shuffles_alike_on_every_rank_and_anew_each_epoch():
    def shares(epoch: int) -> list[list[int]]:
        samplers = [DistributedSampler(range(20), 4, rank, seed=9) for rank in range(4)]
        for sampler in samplers:
            sampler.set_epoch(epoch)
        return [list(sampler) for sampler in samplers]

    first, again, second = shares(0), shares(0), shares(1)
    assert first == again  # the ranks draw the same order: their shares are disjoint
    assert sorted(index for share in first for index in share) == list(range(20))
    assert first != second


def test_the_data_loader_batches_what_the_sampler_gives():
    sampler = DistributedSampler(range(10), 2, 1, shuffle=False)
    loader = DataLoader(TensorDataset(np.arange(10) * 10), batch_size=2, sampler=sampler)
    assert len(loader) == 3
    assert [batch.tolist() for (batch,) in loader] == [[10, 30], [50, 70], [90]]
    with pytest.raises(ValueError, match="give shuffle=True or a sampler, not both"):
        DataLoader(range(10), shuffle=True, sampler=sampler)
    with pytest.raises(ValueError, match="rank must be an int from 0 to 1, got 2"):
        DistributedSampler(range(10), 2, 2)
