"""Feature extraction: layers, pooling, gray modes, the cache (hits, partial hits, resume after a kill), bad files."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from transferlab.data.datasets import load_dataset
from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import Extractor
from transferlab.models.pooling import Pool
from transferlab.models.builder import load_model


@pytest.fixture(scope="module")
def vgg16(models):
    return models("vgg16", "imagenet-conv")


@pytest.fixture(scope="module")
def scene(shared_dir):
    return load_dataset(shared_dir / "data" / "15scene", limit_per_class=2)


def test_pooling_shapes():
    x = torch.rand(2, 8, 6, 6)
    assert Pool("avg")(x).shape == (2, 8) and Pool("max")(x).shape == (2, 8)
    assert Pool("avgmax")(x).shape == (2, 16) and Pool("flatten")(x).shape == (2, 288)
    assert Pool("spp:1,2,4")(x).shape == (2, 8 * (1 + 4 + 16))
    assert torch.equal(Pool("avg")(torch.rand(2, 5)).shape and Pool("avg")(v := torch.rand(2, 5)), v)
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        Pool("median")


def test_several_layers_in_one_pass_match_separate_passes(scene, tmp_path, vgg16):
    paths = scene.paths[:4]
    both = Extractor(vgg16, [("pool3", "avg"), ("relu4_1", "max")],
                     cache=FeatureCache(tmp_path / "a"), workers=0).extract(paths)
    one = Extractor(vgg16, [("relu4_1", "max")],
                    cache=FeatureCache(tmp_path / "b"), workers=0).extract(paths)
    assert both.features[("pool3", "avg")].shape == (4, 256)
    np.testing.assert_allclose(both.features[("relu4_1", "max")], one.features[("relu4_1", "max")], rtol=1e-5)


def test_conv_output_is_read_before_the_inplace_relu(scene, vgg16):
    model = vgg16
    x = model.preprocess.pixels(__import__("transferlab.data.images", fromlist=["load_image"]).load_image(scene.paths[0]))
    out = model.net.forward_layers(x[None], ["conv1_1", "relu1_1"])
    assert (out["conv1_1"] < 0).any()  # a conv output has negative values …
    torch.testing.assert_close(out["relu1_1"], out["conv1_1"].clamp(min=0))  # … that the ReLU then zeroes


def test_replicate_and_conv1_sum_give_the_same_features(scene, tmp_path, vgg16):
    paths = scene.paths[::4][:6]
    feats = {}
    for mode in ("replicate", "conv1-sum", "conv1-mean"):  # the folded modes change the network: their own copy
        model = vgg16 if mode == "replicate" else load_model("vgg16", "imagenet-conv")
        ext = Extractor(model, [("conv1_1", "avg"), ("pool5", "avg")], gray=mode,
                        cache=FeatureCache(tmp_path), workers=0).extract(paths)
        feats[mode] = ext.features
    for o in (("conv1_1", "avg"), ("pool5", "avg")):
        ref = feats["replicate"][o]
        assert np.abs(feats["conv1-sum"][o] - ref).max() <= 1e-4 * np.abs(ref).max()
        assert np.abs(feats["conv1-mean"][o] - ref).max() > 1e-2 * np.abs(ref).max()  # the naive variant differs


def test_cache_hit_partial_hit_and_setting_change(scene, tmp_path, vgg16):
    cache = FeatureCache(tmp_path)
    model = vgg16
    first = Extractor(model, [("pool2", "avg")], cache=cache, workers=0).extract(scene.paths[:6])
    assert (first.computed, first.cached) == (6, 0)
    again = Extractor(model, [("pool2", "avg")], cache=cache, workers=0).extract(scene.paths[:6])
    assert (again.computed, again.cached) == (0, 6)
    np.testing.assert_array_equal(again.features[("pool2", "avg")], first.features[("pool2", "avg")])
    more = Extractor(model, [("pool2", "avg")], cache=cache, workers=0).extract(scene.paths[:9])
    assert (more.computed, more.cached) == (3, 6)
    other = Extractor(model, [("pool2", "max")], cache=cache, workers=0).extract(scene.paths[:9])
    assert (other.computed, other.cached) == (9, 0)
    keys = {e["spec"]["pool"]: e["images"] for e in cache.info()}
    assert keys == {"avg": 9, "max": 9}


# pool1: two of VGG16's convolutions; what the kill and concurrency tests check is the cache, not the network
KILL_SCRIPT = """
import sys
from transferlab.data.datasets import load_dataset
from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import Extractor
from transferlab.models.builder import load_model
ds = load_dataset(sys.argv[1], limit_per_class=2)
Extractor(load_model("vgg16", "imagenet-conv"), [("pool1", "avg")], cache=FeatureCache(sys.argv[2]),
          batch_size=4, workers=1, progress=False).extract(ds.paths)
"""


def _rows(cache_dir) -> int:
    try:
        with sqlite3.connect(cache_dir / "features.sqlite", timeout=30) as db:
            return db.execute("SELECT COUNT(*) FROM features").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


# the same extraction, which waits (for ever) once its second batch is committed: the test kills it there, with the
# decoding worker still running, whatever this machine's speed
PAUSING_SCRIPT = """
import sys
from transferlab.features.cache import FeatureCache
put = FeatureCache.put
committed = [0]
def put_then_wait(self, rows):
    put(self, rows)
    committed[0] += len(next(iter(rows.values()))[1])
    if committed[0] >= 8:
        sys.stdin.readline()
FeatureCache.put = put_then_wait
""" + KILL_SCRIPT


def test_killed_run_keeps_its_batches_and_resumes_to_the_same_features(shared_dir, tmp_path, vgg16):
    data = shared_dir / "data" / "15scene"
    proc = subprocess.Popen([sys.executable, "-c", PAUSING_SCRIPT, str(data), str(tmp_path / "killed")],
                            stdin=subprocess.PIPE)
    deadline = time.time() + 240
    while _rows(tmp_path / "killed") < 8 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None  # still running: waiting after its second batch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _rows(tmp_path / "killed") == 8  # the two committed batches, whole
    ds = load_dataset(data, limit_per_class=2)
    resumed = Extractor(vgg16, [("pool1", "avg")],
                        cache=FeatureCache(tmp_path / "killed"), batch_size=4, workers=0).extract(ds.paths)
    assert (resumed.cached, resumed.computed) == (8, 52)
    straight = Extractor(vgg16, [("pool1", "avg")],
                         cache=FeatureCache(tmp_path / "straight"), batch_size=4, workers=0).extract(ds.paths)
    np.testing.assert_allclose(resumed.features[("pool1", "avg")], straight.features[("pool1", "avg")], rtol=1e-5,
                               atol=1e-6)


def test_bad_files_are_reported_skipped_and_counted(shared_dir, tmp_path, vgg16):
    good = sorted((shared_dir / "data" / "15scene" / "train" / "Forest").iterdir())[:3]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for f in good:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image")
    (folder / "cut.jpg").write_bytes(good[0].read_bytes()[:2000])
    paths = sorted(folder.iterdir())
    ext = Extractor(vgg16, [("pool1", "avg")], cache=FeatureCache(tmp_path / "c"), workers=0).extract(paths)
    reasons = {p.split("/")[-1]: r for p, r in ext.bad}
    assert set(reasons) == {"empty.jpg", "notes.jpg", "cut.jpg"}
    assert "empty" in reasons["empty.jpg"] and "not an image" in reasons["notes.jpg"]
    assert "truncated" in reasons["cut.jpg"] or "unreadable" in reasons["cut.jpg"]
    assert len(ext.ok) == 3 and ext.features[("pool1", "avg")].shape == (3, 64)


def test_identical_files_are_computed_once_and_both_get_their_features(scene, tmp_path, vgg16):
    src = scene.paths[0]
    twins = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    for t in twins:
        t.write_bytes(src.read_bytes())
    paths = [twins[0], scene.paths[1], twins[1]]
    ext = Extractor(vgg16, [("pool1", "avg")], cache=FeatureCache(tmp_path / "c"), workers=0).extract(paths)
    f = ext.features[("pool1", "avg")]
    assert ext.computed == 2 and ext.ok == [0, 1, 2]
    np.testing.assert_array_equal(f[0], f[2])
    assert not np.array_equal(f[0], f[1])


def test_two_runs_sharing_one_cache_at_once_do_not_corrupt_it(shared_dir, tmp_path, vgg16):
    data = shared_dir / "data" / "15scene"
    script = KILL_SCRIPT.replace("limit_per_class=2", "limit_per_class=1")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(data), str(tmp_path / "shared")]) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    ds = load_dataset(data, limit_per_class=1)
    again = Extractor(vgg16, [("pool1", "avg")], cache=FeatureCache(tmp_path / "shared"), workers=0).extract(ds.paths)
    solo = Extractor(vgg16, [("pool1", "avg")], cache=FeatureCache(tmp_path / "solo"), workers=0).extract(ds.paths)
    assert again.computed == 0 and _rows(tmp_path / "shared") == 30
    np.testing.assert_allclose(again.features[("pool1", "avg")], solo.features[("pool1", "avg")], rtol=1e-5, atol=1e-6)
