"""Features for other tools: one NumPy ``.npz`` file besides the Parquet store, and the one reader of both that
``run --features`` uses (``load_stored``).

An ``.npz`` file (``transferlab extract --format npz``) holds plain arrays only — ``np.load(path)`` reads it
without pickle — for the good images, rows in dataset order:

    features:<layer>:<pool>   float32 (N, D), one array per (layer, pooling) output
    index      int64 (N,)   position of the image in the extraction's listing
    paths      str (N,)     the image files (absolute)
    hashes     str (N,)     their content hashes (the feature cache's keys)
    labels     int64 (N,)   class index into ``classes``
    split      str (N,)     'train' | 'test' | '' (no fixed split)
    classes    str (C,)     the class names
    bad_paths, bad_reasons  str (B,)   the images that could not be used, and why
    metadata   str ()       JSON: the record a Parquet store keeps in its schema metadata (format, classes, the
                            outputs with their feature specs, and the provenance)
"""
from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from transferlab.files import atomic_path

from transferlab.features.store import (
    FORMAT,
    FeatureStore,
    StoredFeatures,
    extraction_rows,
    feature_column,
    load_features,
    select_outputs,
)

ROW_ARRAYS = ("index", "paths", "hashes", "labels", "split")


def is_npz(path: str | Path) -> bool:
    """A ``.npz`` name, or a file that starts as a zip archive does (an .npz renamed)."""
    path = Path(path)
    if path.suffix == ".npz":
        return True
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def prepare_npz(out: str | Path, overwrite: bool = False) -> Path:
    """The .npz file to write (``.npz`` appended to a name without it); an existing one is an error unless
    ``overwrite``."""
    out = Path(out)
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    if out.is_dir():
        raise ValueError(f"{out}: is a folder; give a file name for --format npz")
    if out.exists() and not overwrite:
        raise ValueError(f"{out}: exists; give another --out or --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def write_npz(out: str | Path, dataset, extraction, meta: dict, dims: dict[tuple[str, str], int],
              hashes: dict[int, str] | None = None) -> Path:
    """Write the local engine's result (``Extractor.extract`` of ``dataset.paths``) as one .npz file, whole or
    not at all (written aside, then renamed)."""
    rows = extraction_rows(dataset, extraction, hashes)
    good = [i for i, e in enumerate(rows["error"]) if not e]
    assert good == list(extraction.ok), "features rows must follow the listing"
    outputs = [(o["layer"], o["pool"]) for o in meta["outputs"]]
    arrays = {feature_column(*o): np.asarray(extraction.features[o], dtype=np.float32).reshape(len(good), dims[o])
              for o in outputs}
    bad = [i for i, e in enumerate(rows["error"]) if e]
    arrays.update(
        index=np.asarray(rows["index"], dtype=np.int64)[good],
        paths=np.array([rows["path"][i] for i in good], dtype=str),
        hashes=np.array([rows["hash"][i] for i in good], dtype=str),
        labels=np.asarray(rows["label"], dtype=np.int64)[good],
        split=np.array([rows["split"][i] for i in good], dtype=str),
        classes=np.array(meta["classes"], dtype=str),
        bad_paths=np.array([rows["path"][i] for i in bad], dtype=str),
        bad_reasons=np.array([rows["error"][i] for i in bad], dtype=str),
        metadata=np.array(json.dumps(meta, sort_keys=True, default=str)))
    out = Path(out)
    with atomic_path(out) as tmp, open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
        np.savez(f, **arrays)
    return out


class NpzError(ValueError):
    """A file that is not a readable transferlab .npz feature file; the message names it and says why."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: not a readable transferlab .npz feature file ({' '.join(problem.split())})")


def _npz_error(path: Path, error: Exception) -> NpzError:
    return error if isinstance(error, NpzError) else NpzError(path, f"{type(error).__name__}: {error}")


def _npz_meta(f, path: Path) -> dict:
    if "metadata" not in f.files:
        raise NpzError(path, "no 'metadata' array")
    meta = json.loads(str(f["metadata"]))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise NpzError(path, f"format {meta.get('format') if isinstance(meta, dict) else None!r}, "
                               f"expected {FORMAT!r}")
    return meta


def _open_npz(path: Path):
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise NpzError(path, "not a zip archive, which np.savez writes")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise _npz_error(path, e) from None


def npz_outputs(path: str | Path) -> list[tuple[str, str]]:
    """The (layer, pool) outputs an .npz file holds."""
    path = Path(path)
    with _open_npz(path) as f:
        try:
            return [(o["layer"], o["pool"]) for o in _npz_meta(f, path)["outputs"]]
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
            raise _npz_error(path, e) from None


def load_npz(path: str | Path, outputs: Sequence[tuple[str, str]] | None = None) -> StoredFeatures:
    """Read an .npz feature file (the outputs asked for, default all) as ``load_features`` reads a store."""
    path = Path(path)
    with _open_npz(path) as f:
        try:
            meta = _npz_meta(f, path)
            held = [(o["layer"], o["pool"]) for o in meta["outputs"]]
            outputs = select_outputs(path, held, outputs)
            rows = {k: f[k] for k in ROW_ARRAYS}
            features = {o: f[feature_column(*o)] for o in outputs}
            bad = list(zip(f["bad_paths"].tolist(), f["bad_reasons"].tolist()))
        except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as e:
            raise _npz_error(path, e) from None
        except KeyError as e:
            if "has no features for layer" in str(e):
                raise
            raise NpzError(path, f"missing {e}") from None
    n = len(rows["paths"])
    dims = {(o["layer"], o["pool"]): int(o["dim"]) for o in meta["outputs"]}
    for o, a in features.items():
        if a.dtype != np.float32 or a.shape != (n, dims[o]):
            raise NpzError(path, f"{feature_column(*o)} is {a.dtype} {a.shape}, expected float32 ({n}, {dims[o]})")
    if any(len(rows[k]) != n for k in ROW_ARRAYS):
        raise NpzError(path, "its row arrays differ in length")
    specs = {(o["layer"], o["pool"]): o["spec"] for o in meta["outputs"]}
    return StoredFeatures(classes=list(meta["classes"]), paths=rows["paths"].tolist(), hashes=rows["hashes"].tolist(),
                          labels=rows["labels"].astype(np.int64), split=rows["split"].astype(str),
                          index=rows["index"], features=features, provenance=dict(meta["provenance"]),
                          specs={o: specs[o] for o in outputs}, bad=sorted(bad))


def stored_outputs(path: str | Path) -> list[tuple[str, str]]:
    """The (layer, pool) outputs of a feature file of either format."""
    return npz_outputs(path) if is_npz(path) else FeatureStore(path).outputs


def load_stored(path: str | Path, outputs: Sequence[tuple[str, str]] | None = None) -> StoredFeatures:
    """Features written by ``transferlab extract`` in either format: an .npz file or a Parquet store."""
    return load_npz(path, outputs) if is_npz(path) else load_features(path, outputs)
