"""The cache folder: a damaged feature cache is set aside and rebuilt."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from transferlab.cli import main
from transferlab.features.cache import FeatureCache
from transferlab.features.extract import Extractor
from transferlab.registry import load_model

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
    assert out.err == "" and json.loads(out.out)["entries"] == []


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


@pytest.mark.skipif(not SCENE.is_dir(), reason=f"15 Scene not found at {SCENE}")
def test_extraction_over_a_corrupt_cache_recomputes(tmp_path, capsys):
    (tmp_path / "features.sqlite").write_bytes(b"\0" * 4096)  # e.g. a file zeroed by a crash
    paths = sorted((SCENE / "train" / "Forest").iterdir())[:2]
    ext = Extractor(load_model("vgg16", "imagenet-conv"), [("pool1", "avg")], cache=FeatureCache(tmp_path),
                    workers=0, progress=False).extract(paths)
    assert (ext.computed, ext.cached) == (2, 0) and ext.features[("pool1", "avg")].shape == (2, 64)
    _warning(capsys, tmp_path / "features.sqlite")
