"""What every engine implements: a dataset's features for a run's settings written to ``out``, and the summary
of what that cost."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from transferlab.config import RunConfig
from transferlab.data.datasets import ImageDataset


@dataclass
class EngineRun:
    """What an engine did: where it wrote, the images it listed and those it could not read, what it cost, and the
    engine's own details (the Ray cluster, the cache hits)."""

    engine: str
    out: str
    images: int
    bad: list[tuple[str, str]]
    seconds: float  # all of it, from the call to the checked store
    images_per_s: float
    details: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The JSON summary ``transferlab extract --json`` prints."""
        return {"engine": self.engine, "out": self.out, "images": self.images,
                "bad_files": [{"path": p, "reason": r} for p, r in self.bad], "seconds": round(self.seconds, 2),
                "images_per_s": round(self.images_per_s, 2), **self.details}


class Engine(ABC):
    """An extraction engine. ``extract`` reads ``cfg``'s network, weights, preprocessing, runtime, batching and
    device; ``outputs`` are its (layer, pooling) pairs; ``fmt`` is ``parquet`` (a store folder) or ``npz``."""

    name: ClassVar[str]

    @abstractmethod
    def extract(self, dataset: ImageDataset, out: str | Path, cfg: RunConfig, outputs: Sequence[tuple[str, str]], *,
                fmt: str = "parquet", rows_per_file: int | None = None) -> EngineRun:
        """Features of every image of ``dataset`` into ``out``; bad files are listed (fatal with ``cfg.strict``,
        after the store is written)."""


def refuse_strict(run: EngineRun, strict: bool) -> EngineRun:
    """``run``, or with ``strict`` and a bad file, one line naming the first (what was written is kept)."""
    if run.bad and strict:
        path, reason = run.bad[0]
        raise ValueError(f"{path}: {reason} (--strict; {len(run.bad)} bad files in all; {run.out} was written)")
    return run
