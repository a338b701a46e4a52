"""``extract --format npz``: the .npz file holds what the Parquet store holds (bit for bit, on real 15 Scene
images), ``run --features`` reads both to the same result, and a damaged or foreign file gets one line."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from transferlab.cli.main import main  # noqa: E402
from transferlab.data.datasets import ImageDataset  # noqa: E402
from transferlab.features.export import is_npz, load_npz, load_stored, stored_outputs, write_npz  # noqa: E402
from transferlab.features.extractor import ExtractedFeatures, file_hash  # noqa: E402
from transferlab.features.store import FORMAT, feature_column  # noqa: E402

OUTPUTS = [("block5", "avg"), ("block5", "max"), ("avgpool", "avg"), ("avgpool", "max")]


@pytest.fixture(scope="module")
def both(shared_dir, tmp_path_factory, feature_cache):
    """The same real extraction (2 images per class and split: 60) written in both formats."""
    tmp = tmp_path_factory.mktemp("export")
    args = ["extract", "--data", str(shared_dir / "data" / "15scene"), "--limit-per-class", "2", "--model",
            "efficientnet_lite0", "--weights", "imagenet", "--layer", "block5", "avgpool", "--pool", "avg", "max",
            "--cache", feature_cache, "--quiet", "--workers", "0"]
    assert main(args + ["--out", str(tmp / "store")]) == 0
    assert main(args + ["--format", "npz", "--out", str(tmp / "feats")]) == 0  # .npz appended
    return tmp, tmp / "store", tmp / "feats.npz"


def test_npz_holds_what_the_parquet_store_holds(both):
    tmp, store, npz = both
    assert is_npz(npz) and not is_npz(store)
    assert stored_outputs(npz) == stored_outputs(store) == OUTPUTS
    a, b = load_stored(store), load_stored(npz)
    assert len(b.paths) == 60 and b.paths == a.paths and b.hashes == a.hashes and b.classes == a.classes
    assert b.paths[0] == os.path.abspath(b.paths[0]) and b.hashes[0] == file_hash(b.paths[0])
    for name in ("labels", "split", "index"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=name)
    assert set(b.split) == {"train", "test"} and b.labels.max() == 14
    for o in OUTPUTS:
        assert b.features[o].dtype == np.float32 and b.features[o].shape[0] == 60
        np.testing.assert_array_equal(b.features[o], a.features[o])  # bit for bit
    assert b.specs == a.specs and b.bad == a.bad == []
    def steady(prov):  # what describes the numbers: not the date, nor the load average when each was written
        versions = {**prov["versions"], "machine": {**prov["versions"]["machine"], "load_average": None}}
        return {k: v for k, v in prov.items() if k != "date"} | {"versions": versions}

    assert steady(b.provenance) == steady(a.provenance)
    assert b.provenance["model"] == "efficientnet_lite0" and b.provenance["engine"] == "local"

    with np.load(npz, allow_pickle=False) as f:  # plain numpy reads it, without pickle
        assert f[feature_column("avgpool", "avg")].shape == (60, 1280)
        assert f["classes"].tolist() == a.classes and f["labels"].tolist() == a.labels.tolist()
        meta = json.loads(str(f["metadata"]))
    assert meta["format"] == FORMAT and meta["provenance"]["weights_sha256"] == a.provenance["weights_sha256"]


def test_run_reads_npz_and_parquet_to_the_same_result(both):
    tmp, store, npz = both
    results = {}
    for name, src in (("parquet", store), ("npz", npz)):
        out = tmp / f"run-{name}"
        assert main(["run", "--features", str(src), "--layer", "avgpool", "--out", str(out), "--quiet"]) == 0
        results[name] = json.loads((out / "result.json").read_text())
    p, n = results["parquet"], results["npz"]
    assert n["accuracy"] == p["accuracy"] > 0.6  # measured 0.90 on these 30 test images (chance 0.067)
    assert n["runs"][0]["confusion_matrix"] == p["runs"][0]["confusion_matrix"]
    assert n["feature_dim"] == 1280 and n["provenance"]["feature_store"] == str(npz)


def test_npz_lists_bad_images_and_keeps_good_rows_only(tmp_path):
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.jpg")
        paths[-1].write_bytes(f"image {i}".encode())
    ds = ImageDataset(tmp_path, ["a", "b"], paths, np.array([0, 1, 0, 1]), np.array(["train"] * 2 + ["test"] * 2))
    feats = np.arange(6, dtype=np.float32).reshape(3, 2)
    ext = ExtractedFeatures({("pool5", "avg"): feats}, [0, 2, 3], [(str(paths[1]), "not an image")], 3, 0, 1.0)
    meta = {"format": FORMAT, "classes": ["a", "b"], "provenance": {"model": "m"},
            "outputs": [{"layer": "pool5", "pool": "avg", "column": "features:pool5:avg", "dim": 2, "spec": {}}]}
    got = load_npz(write_npz(tmp_path / "f.npz", ds, ext, meta, {("pool5", "avg"): 2}))
    assert got.paths == [os.path.abspath(paths[i]) for i in (0, 2, 3)] and got.labels.tolist() == [0, 0, 1]
    assert got.index.tolist() == [0, 2, 3] and got.split.tolist() == ["train", "test", "test"]
    np.testing.assert_array_equal(got.features[("pool5", "avg")], feats)
    assert got.bad == [(os.path.abspath(paths[1]), "not an image")]
    with pytest.raises(KeyError, match="has no features for layer fc7 pooled avg; it has pool5/avg"):
        load_npz(tmp_path / "f.npz", [("fc7", "avg")])


def test_damaged_or_foreign_npz_gets_one_line_naming_the_file(both, tmp_path, capsys):
    _, _, npz = both
    cut = tmp_path / "cut.npz"
    cut.write_bytes(npz.read_bytes()[:5000])
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    text = tmp_path / "text.npz"
    text.write_text("not numpy")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, metadata=np.array([{"format": FORMAT}], dtype=object))  # reading it would unpickle
    for bad in (cut, foreign, text, pickled):
        assert main(["run", "--features", str(bad), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert str(bad) in err and "not a readable transferlab .npz feature file" in err and "\n" not in err, err


def test_extract_npz_refuses_to_overwrite_and_the_ray_engine(both, capsys):
    tmp, _, npz = both
    args = ["extract", "--data", "unused", "--layer", "avgpool", "--format", "npz", "--out", str(npz)]
    assert main(args) == 2 and "exists; give another --out or --overwrite" in capsys.readouterr().err
    assert main(args + ["--engine", "ray"]) == 2 and "--format npz writes one file" in capsys.readouterr().err
