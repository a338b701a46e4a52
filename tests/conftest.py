"""Shared fixtures: the shared data folder, the sample photos, and models loaded once per test session."""
from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from transferlab.models.builder import LoadedModel, load_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the repository, or ``$TRANSFERLAB_SHARED``."""
    return Path(os.environ.get("TRANSFERLAB_SHARED") or REPO.parent / "shared")


@functools.cache
def _load(name: str, weights: str = "auto") -> LoadedModel:
    return load_model(name, weights)


@pytest.fixture(scope="session")
def models():
    """``models(name, weights="auto")``: a model loaded once per session (shared: do not modify it)."""
    return _load


@pytest.fixture(scope="session")
def samples(tmp_path_factory) -> dict[str, Path]:
    """The real sample photos (chelsea, coffee, astronaut, rocket, china, flower) as PNG files."""
    from transferlab.data.samples import SAMPLES, sample_paths
    return dict(zip(SAMPLES, sample_paths(tmp_path_factory.mktemp("samples"))))
