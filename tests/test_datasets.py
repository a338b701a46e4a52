"""Dataset layouts, case-insensitive class matching, protocols and bad layouts — on the real 15 Scene folders."""
from __future__ import annotations

import numpy as np
import pytest

from transferlab.data.datasets import DatasetError, load_dataset, make_splits


def test_15scene_fixed_split_counts_and_case_mismatched_classes(shared_dir):
    ds = load_dataset(shared_dir / "data" / "15scene")
    assert len(ds.classes) == 15
    assert (ds.split == "train").sum() == 1500 and (ds.split == "test").sum() == 2985
    assert ds.matched["Coast"] == ["Coast", "coast"] and ds.matched["livingroom"] == ["livingroom", "livingRoom"]
    for label, name in enumerate(ds.classes):  # every file sits in a folder of its own class, on both sides
        folders = {p.parent.name.casefold() for p in np.array(ds.paths)[ds.labels == label]}
        assert folders == {name.casefold()}
    assert np.bincount(ds.labels[ds.split == "train"]).tolist() == [100] * 15


def test_sorted_folder_names_would_mislabel_but_matching_does_not(tmp_path, shared_dir):
    src = sorted((shared_dir / "data" / "15scene" / "train" / "Coast").iterdir())[:2]
    for side, names in (("train", ["Beach", "alley"]), ("test", ["beach", "Alley"])):
        for n in names:
            (tmp_path / side / n).mkdir(parents=True)
            for f in src:
                (tmp_path / side / n / f.name).write_bytes(f.read_bytes())
    ds = load_dataset(tmp_path)
    # sorted() would give train [Beach, alley] and test [Alley, beach]: swapped labels
    assert ds.classes == ["alley", "Beach"]
    for label in (0, 1):
        assert {p.parent.name.casefold() for p in np.array(ds.paths)[ds.labels == label]} == {ds.classes[label].casefold()}


def test_split_folders_are_found_whatever_their_case(tmp_path, shared_dir):
    src = sorted((shared_dir / "data" / "15scene" / "train" / "Coast").iterdir())[:3]
    for side, n in (("Train", 2), ("TEST", 1)):
        (tmp_path / side / "coast").mkdir(parents=True)
        for f in src[:n]:
            (tmp_path / side / "coast" / f.name).write_bytes(f.read_bytes())
    ds = load_dataset(tmp_path)
    # the fixed split, not two classes named Train and TEST
    assert ds.classes == ["coast"] and ds.split.tolist() == ["train", "train", "test"]


def test_class_on_one_side_only_and_empty_class_are_named(tmp_path):
    (tmp_path / "train" / "forest").mkdir(parents=True)
    (tmp_path / "train" / "forest" / "a.jpg").write_bytes(b"x")
    (tmp_path / "test" / "forest").mkdir(parents=True)
    (tmp_path / "test" / "forest" / "a.jpg").write_bytes(b"x")
    (tmp_path / "train" / "Street").mkdir()
    with pytest.raises(DatasetError, match="'Street' is in train/ only"):
        load_dataset(tmp_path)
    (tmp_path / "test" / "street").mkdir()
    with pytest.raises(DatasetError, match="'Street' is empty"):
        load_dataset(tmp_path)


def test_limit_per_class_is_deterministic_first_files(shared_dir):
    a = load_dataset(shared_dir / "data" / "15scene", limit_per_class=3)
    b = load_dataset(shared_dir / "data" / "15scene", limit_per_class=3)
    assert a.paths == b.paths and len(a.paths) == 15 * 3 * 2
    assert a.paths[0] == sorted(a.paths[0].parent.iterdir())[0]


def test_random_protocol_pools_train_and_test_with_k_per_class(shared_dir):
    ds = load_dataset(shared_dir / "data" / "15scene")
    splits = make_splits(ds.labels, ds.split, "random:3", train_per_class=100, seed=0)
    assert len(splits) == 3
    for sp in splits:
        assert np.bincount(ds.labels[sp.train]).tolist() == [100] * 15
        assert len(sp.test) == 4485 - 1500 and not set(sp.train) & set(sp.test)
        assert (ds.split[sp.train] == "test").any()  # drawn from the pooled images
    assert not np.array_equal(splits[0].train, splits[1].train)
    again = make_splits(ds.labels, ds.split, "random:3", train_per_class=100, seed=0)
    assert all(np.array_equal(a.train, b.train) for a, b in zip(splits, again))
