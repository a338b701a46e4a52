"""Shared fixtures: the shared data folder, the sample photos, models loaded once per test session, one feature
cache for the whole run, and temporary caches seeded with the weight packages already fetched (no test downloads
anything)."""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

from transferlab.files import cache_dir
from transferlab.models.builder import LoadedModel, load_model
from transferlab.models.registry import get_spec

REPO = Path(__file__).resolve().parents[1]
# the weights the tests load, whose packages every temporary cache is seeded with
TEST_WEIGHTS = (("vgg16", "imagenet-conv"), ("alexnet", "imagenet-conv"), ("efficientnet_lite0", "imagenet"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository, or ``$TRANSFERLAB_SHARED``."""
    return Path(os.environ.get("TRANSFERLAB_SHARED") or REPO.parent / "shared")


@functools.cache
def _load(name: str, weights: str = "auto") -> LoadedModel:
    return load_model(name, weights)


@pytest.fixture(scope="session")
def models():
    """``models(name, weights="auto")``: a model loaded once per session (shared: do not modify it — no gray mode
    but replicate, no weight changes; a test that adapts a network loads its own)."""
    return _load


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory) -> str:
    """One feature cache folder for every test that only reads features: features are keyed by content (image
    bytes, weights, layer, pooling, preprocessing), so the subsets of 15 Scene that the test files use overlap and
    each feature is computed once per run. Tests that count computed or cached images use caches of their own."""
    return str(tmp_path_factory.mktemp("features"))


@functools.cache
def _packages() -> Path:
    """The user cache's weight packages, fetched there once if a fresh machine lacks them."""
    for name, tag in TEST_WEIGHTS:
        get_spec(name).get_weights(tag).weights_path()
    return cache_dir() / "packages"


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    """``$TRANSFERLAB_CACHE`` pointed at an empty temporary folder (ONNX exports, samples… go there), except for
    its ``packages``: links to the user cache's weight packages, so that loading weights reads them, offline."""
    packages = _packages()
    root = tmp_path / "cache"
    (root / "packages").mkdir(parents=True)
    for entry in packages.iterdir():
        (root / "packages" / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(root))
    return root


@pytest.fixture
def hide(monkeypatch):
    """``hide(*modules)``: those top-level packages, with every submodule, fail to import for the rest of the test
    (``ModuleNotFoundError``, as when they are not installed)."""
    def hide(*modules: str) -> None:
        for top in modules:
            for name in [m for m in sys.modules if m == top or m.startswith(top + ".")] + [top]:
                monkeypatch.setitem(sys.modules, name, None)
    return hide


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> dict[str, Path]:
    """The real sample photos (chelsea, coffee, astronaut, rocket, china, flower) as PNG files."""
    from transferlab.data.samples import SAMPLES, sample_paths
    return dict(zip(SAMPLES, sample_paths(tmp_path_factory.mktemp("samples"))))
