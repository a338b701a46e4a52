"""The local engine: this process's cached :class:`~transferlab.features.extractor.Extractor`, written to the same
Parquet feature store as the Ray engine (or to one .npz file)."""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from transferlab.config import RunConfig
from transferlab.data.datasets import ImageDataset
from transferlab.engines.base import Engine, EngineRun, refuse_strict
from transferlab.features.export import write_npz
from transferlab.features.extractor import Extractor
from transferlab.features.store import build_metadata, write_extraction
from transferlab.models.builder import load_run_model
from transferlab.models.loaded import LoadedModel


class LocalEngine(Engine):
    """Extraction in this process, through the feature cache. ``model``: a network already loaded (a user's
    module) instead of the one ``cfg`` names."""

    name = "local"

    def __init__(self, model: LoadedModel | None = None):
        self.model = model

    def extract(self, dataset: ImageDataset, out: str | Path, cfg: RunConfig, outputs: Sequence[tuple[str, str]], *,
                fmt: str = "parquet", rows_per_file: int | None = None) -> EngineRun:
        t0 = time.perf_counter()
        model = self.model or load_run_model(cfg)
        ex = Extractor.from_run(cfg, model, list(outputs), dataset)
        result = ex.extract(dataset.paths)
        dims = ({o: int(a.shape[1]) for o, a in result.features.items()} if result.ok else ex.output_dims())
        meta = build_metadata(model, ex, dataset, dims, self.name)
        if fmt == "npz":
            files = [write_npz(out, dataset, result, meta, dims)]
        else:
            files = write_extraction(out, dataset, result, meta, dims, rows_per_file=rows_per_file or 50_000)
        run = EngineRun(self.name, str(out), len(dataset.paths), result.bad, time.perf_counter() - t0,
                        result.images_per_s, {"format": fmt, "files": len(files), "computed_images": result.computed,
                                              "cached_images": result.cached, "label": model.label()})
        return refuse_strict(run, cfg.strict)
