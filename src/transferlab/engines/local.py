"""The local engine: this process's cached :class:`~transferlab.features.extractor.Extractor`, written to the same
Parquet feature store as the Ray engine."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from transferlab.data.datasets import ImageDataset
from transferlab.engines import output_dims
from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import Extractor
from transferlab.features.export import write_npz
from transferlab.features.quantize import training_calibration
from transferlab.options import CALIBRATION_IMAGES
from transferlab.features.store import build_metadata, write_extraction
from transferlab.models.builder import LoadedModel


def extract_local(dataset: ImageDataset, out: str | Path, model: LoadedModel, outputs: Sequence[tuple[str, str]], *,
                  gray: str = "replicate", resize: str = "crop", runtime: str = "eager", batch_size: int = 16,
                  workers: int | None = None, device: str = "cpu", cache: str | None = None,
                  progress: bool | None = None, strict: bool = False, rows_per_file: int | None = None,
                  fmt: str = "parquet", calibration_images: int = CALIBRATION_IMAGES) -> dict:
    """Features of ``dataset`` for ``outputs`` (through the feature cache) into ``out``: a Parquet store folder
    (``fmt="parquet"``) or an .npz file (``fmt="npz"``, ``features.export``); a summary."""
    ex = Extractor(model, list(outputs), gray=gray, resize=resize, runtime=runtime, batch_size=batch_size,
                   workers=workers, device=device, cache=FeatureCache(cache) if cache else None, progress=progress,
                   calibration=training_calibration(dataset, calibration_images) if runtime == "int8" else None)
    result = ex.extract(dataset.paths)
    if result.bad and strict:
        path, reason = result.bad[0]
        raise ValueError(f"{path}: {reason} (--strict; {len(result.bad)} bad files in all)")
    dims = ({o: int(a.shape[1]) for o, a in result.features.items()} if result.ok else output_dims(ex))
    meta = build_metadata(model, ex, dataset, dims, "local")
    if fmt == "npz":
        files = [write_npz(out, dataset, result, meta, dims)]
    else:
        files = write_extraction(out, dataset, result, meta, dims, rows_per_file=rows_per_file or 50_000)
    return {"engine": "local", "format": fmt, "out": str(out), "images": len(dataset.paths), "files": len(files),
            "bad_files": [{"path": p, "reason": r} for p, r in result.bad], "computed_images": result.computed,
            "cached_images": result.cached, "seconds": round(result.seconds, 2),
            "images_per_s": round(result.images_per_s, 2), "label": model.label()}
