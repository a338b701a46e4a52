"""The Parquet feature store: schema, provenance metadata, round-trip whole and in chunks, the local engine's
``transferlab extract``, and SGD over chunks. No Ray needed (pyarrow only)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from transferlab.cli.main import main  # noqa: E402
from transferlab.data.datasets import ImageDataset, load_dataset  # noqa: E402
from transferlab.features.extractor import ExtractedFeatures, file_hash  # noqa: E402
from transferlab.features.store import (FORMAT, META_KEY, FeatureStore, feature_column, load_features,  # noqa: E402
                                        prepare_out, write_extraction)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRANSFERLAB_SHARED") or ROOT.parent / "shared")
SCENE = SHARED / "data" / "15scene"

OUTPUTS = [("pool3", "avg"), ("pool5", "max")]
DIMS = {("pool3", "avg"): 4, ("pool5", "max"): 3}


def _meta(classes):
    return {"format": FORMAT, "classes": classes,
            "outputs": [{"layer": layer, "pool": pool, "column": feature_column(layer, pool), "dim": DIMS[(layer, pool)],
                         "spec": {"layer": layer, "pool": pool, "model": "m"}} for layer, pool in OUTPUTS],
            "provenance": {"model": "m", "weights_sha256": "abc", "engine": "local"}}


@pytest.fixture
def synthetic(tmp_path):
    """Seven small files (one bad) in a train/test layout, and a made-up extraction of them."""
    paths, labels, split = [], [], []
    for i in range(7):
        p = tmp_path / "img" / f"{i}.jpg"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(f"image {i}".encode())
        paths.append(p)
        labels.append(i % 2)
        split.append("train" if i < 4 else "test")
    ds = ImageDataset(tmp_path / "img", ["a", "b"], paths, np.array(labels), np.array(split))
    rng = np.random.default_rng(0)
    ok = [0, 1, 2, 4, 5, 6]  # image 3 is bad
    feats = {o: rng.standard_normal((len(ok), DIMS[o])).astype(np.float32) for o in OUTPUTS}
    ext = ExtractedFeatures(feats, ok, [(str(paths[3]), "not an image")], computed=6, cached=0, seconds=1.0)
    return ds, ext


def test_round_trip_whole_and_chunks(tmp_path, synthetic):
    ds, ext = synthetic
    out = prepare_out(tmp_path / "store")
    files = write_extraction(out, ds, ext, _meta(ds.classes), DIMS, rows_per_file=3)
    assert len(files) == 3  # 7 rows, 3 per shard

    schema = pq.read_schema(files[0])
    assert schema.field("features:pool3:avg").type == pa.list_(pa.float32(), 4)
    assert schema.field("features:pool5:max").type == pa.list_(pa.float32(), 3)
    for name in ("index", "path", "hash", "label", "class_name", "split", "error"):
        assert name in schema.names
    meta = json.loads(schema.metadata[META_KEY])
    assert meta["provenance"]["weights_sha256"] == "abc" and meta["classes"] == ["a", "b"]

    store = FeatureStore(out)
    assert store.num_rows == 7 and store.outputs == OUTPUTS and store.dims == DIMS
    assert store.bad() == [(os.path.abspath(ds.paths[3]), "not an image")]
    table = store.read()
    assert table.num_rows == 7 and table["features:pool3:avg"].null_count == 1

    got = load_features(out)  # good rows, dataset order
    assert got.paths == [os.path.abspath(ds.paths[i]) for i in ext.ok]
    assert got.hashes == [file_hash(ds.paths[i]) for i in ext.ok]
    assert got.labels.tolist() == ds.labels[ext.ok].tolist()
    assert got.split.tolist() == ds.split[ext.ok].tolist()
    for o in OUTPUTS:
        assert got.features[o].dtype == np.float32
        assert np.array_equal(got.features[o], ext.features[o])  # bit for bit

    only = load_features(out, outputs=[("pool5", "max")])
    assert list(only.features) == [("pool5", "max")]
    with pytest.raises(KeyError, match="no features for layer fc7"):
        load_features(out, outputs=[("fc7", "avg")])

    chunks = list(store.iter_chunks(batch_size=2, split="train"))
    assert all(len(c) <= 2 for c in chunks)
    rows = np.concatenate([c.index for c in chunks])
    assert sorted(rows.tolist()) == [0, 1, 2]  # train rows without the bad image 3
    x = np.concatenate([c.features[("pool3", "avg")] for c in chunks])
    order = np.argsort(rows)
    assert np.array_equal(x[order], ext.features[("pool3", "avg")][:3])


def test_prepare_out_refuses_an_existing_store(tmp_path, synthetic):
    ds, ext = synthetic
    out = prepare_out(tmp_path / "store")
    write_extraction(out, ds, ext, _meta(ds.classes), DIMS)
    with pytest.raises(ValueError, match="already holds 1 Parquet shards"):
        prepare_out(out)
    prepare_out(out, overwrite=True)
    assert not list(out.glob("*.parquet"))


def test_not_a_store(tmp_path):
    with pytest.raises(ValueError, match="no Parquet feature store"):
        FeatureStore(tmp_path)
    pq.write_table(pa.table({"x": [1]}), tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="not a transferlab feature shard"):
        FeatureStore(tmp_path)


def test_shards_of_different_extractions_are_refused(tmp_path, synthetic):
    ds, ext = synthetic
    write_extraction(prepare_out(tmp_path / "s"), ds, ext, _meta(ds.classes), DIMS)
    meta = _meta(ds.classes)
    meta["outputs"][0]["spec"] = {"layer": "pool3", "pool": "avg", "model": "other"}
    (tmp_path / "s2").mkdir()
    write_extraction(tmp_path / "s2", ds, ext, meta, DIMS)
    (tmp_path / "s2" / "part-00000.parquet").rename(tmp_path / "s" / "part-00001.parquet")
    with pytest.raises(ValueError, match="another extraction"):
        FeatureStore(tmp_path / "s")


@pytest.mark.skipif(not SCENE.is_dir(), reason="15 Scene not found under ../shared (TRANSFERLAB_SHARED)")
def test_local_engine_writes_the_store_run_reads(tmp_path, capsys, feature_cache, models):
    """``transferlab extract`` (local engine) on a real subset: the store holds the Extractor's exact features,
    the provenance, and what ``run`` and the streaming SGD need."""
    from transferlab.experiment import assemble
    from transferlab.features.cache import FeatureCache
    from transferlab.features.extractor import Extractor
    from transferlab.classify.streaming import train_sgd

    out, cache = tmp_path / "features", Path(feature_cache)
    args = ["extract", "--data", str(SCENE), "--limit-per-class", "1", "--model", "efficientnet_lite0",
            "--weights", "imagenet", "--layer", "block3", "block5", "--pool", "avg", "--out", str(out),
            "--cache", str(cache), "--quiet", "--workers", "0"]
    assert main(args) == 0
    assert "30 images (0 bad)" in capsys.readouterr().out
    assert main(args) == 2  # the store exists: no silent append
    assert "already holds" in capsys.readouterr().err

    stored = load_features(out)
    ds = load_dataset(SCENE, 1)
    assert stored.classes == ds.classes and len(stored.paths) == 30
    assert stored.paths == [os.path.abspath(p) for p in ds.paths]
    assert stored.labels.tolist() == ds.labels.tolist() and stored.split.tolist() == ds.split.tolist()
    model = models("efficientnet_lite0", "imagenet")
    outputs = [("block3", "avg"), ("block5", "avg")]
    ext = Extractor(model, outputs, workers=0, cache=FeatureCache(cache), progress=False).extract(ds.paths)
    assert ext.computed == 0  # all from the cache (the command filled what it lacked)
    for o in outputs:
        assert np.array_equal(stored.features[o], ext.features[o])
    prov = stored.provenance
    assert prov["engine"] == "local" and prov["weights_sha256"] == model.weights_id
    assert prov["gray"] == "replicate" and prov["resize"] == "crop" and prov["dataset"]["images"] == 30
    assert stored.specs[("block5", "avg")] == ext.specs[("block5", "avg")]

    x = assemble(stored, outputs, slice(None), True)  # what run does with ExtractedFeatures
    assert x.shape == (30, sum(ext.features[o].shape[1] for o in outputs))

    res = train_sgd(out, epochs=3, chunk_rows=7)
    assert res["train_rows"] == 15 and res["test_rows"] == 15
    # measured 0.2667 (4 of the 15 test images, seeded SGD over chunks of 7 rows, 3 epochs; Zen 3); chance 0.067
    assert res["accuracy"] >= 0.2 and len(res["confusion_matrix"]) == 15
