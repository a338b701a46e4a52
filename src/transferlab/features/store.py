"""The Parquet feature store: one format that every extraction engine writes and ``run``/``study`` can read.

A store is a folder of Parquet shards (``*.parquet``) with the same schema: one row per input image —

    index       int64    position of the image in the extraction's listing (dataset order)
    path        string   the image file (absolute)
    hash        string   content hash of the file (``features.extractor.file_hash``)
    label       int32    class index into ``classes`` (in the metadata)
    class_name  string
    split       string   'train' | 'test' | '' (no fixed split)
    error       string   '' for a good image, else why the file could not be used (its features are null)
    features:<layer>:<pool>   fixed_size_list<float32>[D], one column per (layer, pooling) output

and, in the schema metadata (key ``transferlab``), a JSON record: format version, classes, the outputs
(layer, pool, column, dim, feature spec) and the provenance (model, weights sha256, preprocessing, gray mode,
runtime, engine, dataset, library versions). Every image of the listing appears exactly once, bad ones with
their reason, so a row count check is a completeness check.

Shards are read whole (``load_features``: what ``run`` needs, rows in dataset order) or in chunks
(``FeatureStore.iter_chunks``) for classifiers that learn incrementally (``transferlab.classify.streaming``).
Only ``pyarrow`` is needed (the ``ray`` extra, or ``pip install pyarrow``); it is imported lazily.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferlab.extras import require
from transferlab.features.extractor import file_hash, numerics_record
from transferlab.provenance import library_versions as core_versions

FORMAT = "transferlab-features/1"
META_KEY = b"transferlab"
BASE_COLUMNS = ("index", "path", "hash", "label", "class_name", "split", "error")


def _pa(module: str = "pyarrow"):
    """``pyarrow`` (or one of its modules), or one line naming the extra that installs it."""
    return require(module, "the Parquet feature store")


def feature_column(layer: str, pool: str) -> str:
    return f"features:{layer}:{pool}"


def select_outputs(path, held: Sequence[tuple[str, str]], wanted: Sequence[tuple[str, str]] | None):
    """The (layer, pool) outputs ``wanted`` (default: all ``held``), each checked to be held by the file ``path``."""
    wanted = list(held) if wanted is None else [tuple(o) for o in wanted]
    for o in wanted:
        if o not in held:
            have = ", ".join(f"{layer}/{pool}" for layer, pool in held)
            raise KeyError(f"{path} has no features for layer {o[0]} pooled {o[1]}; it has {have}")
    return wanted


def store_schema(outputs: Sequence[tuple[str, str]], dims: dict[tuple[str, str], int], meta: dict | None = None):
    """The Arrow schema of a store; ``meta`` (JSON-serialisable) goes into the schema metadata."""
    pa = _pa()
    fields = [pa.field("index", pa.int64()), pa.field("path", pa.string()), pa.field("hash", pa.string()),
              pa.field("label", pa.int32()), pa.field("class_name", pa.string()), pa.field("split", pa.string()),
              pa.field("error", pa.string())]
    fields += [pa.field(feature_column(*o), pa.list_(pa.float32(), int(dims[o]))) for o in outputs]
    metadata = {META_KEY: json.dumps(meta, sort_keys=True, default=str).encode()} if meta is not None else None
    return pa.schema(fields, metadata=metadata)


def make_table(schema, *, index, paths, hashes, labels, class_names, split, errors,
               features: dict[tuple[str, str], np.ndarray], outputs: Sequence[tuple[str, str]]):
    """Rows as an Arrow table of ``schema``. ``features[o]`` has one row per input row; rows whose ``errors``
    entry is non-empty get a null feature vector (their values are ignored)."""
    pa = _pa()
    n = len(paths)
    bad = np.array([bool(e) for e in errors], dtype=bool)
    cols = {"index": pa.array(np.asarray(index, dtype=np.int64)), "path": pa.array([str(p) for p in paths], pa.string()),
            "hash": pa.array(list(hashes), pa.string()), "label": pa.array(np.asarray(labels, dtype=np.int32)),
            "class_name": pa.array(list(class_names), pa.string()), "split": pa.array(list(split), pa.string()),
            "error": pa.array(list(errors), pa.string())}
    for o in outputs:
        dim = schema.field(feature_column(*o)).type.list_size
        a = np.ascontiguousarray(features[o], dtype=np.float32).reshape(n, dim)
        cols[feature_column(*o)] = pa.FixedSizeListArray.from_arrays(
            pa.array(a.reshape(-1)), dim, mask=pa.array(bad) if bad.any() else None)
    return pa.Table.from_pydict(cols, schema=schema)


def library_versions() -> dict:
    v = core_versions()
    try:
        import pyarrow

        v["pyarrow"] = pyarrow.__version__
    except ImportError:  # pragma: no cover
        pass
    return v


def build_metadata(model, extractor, dataset, dims: dict[tuple[str, str], int], engine: str,
                   extra: dict | None = None) -> dict:
    """The store's metadata record: what the numbers are (specs, dims), where they came from (provenance).

    ``model`` is the LoadedModel, ``extractor`` the ``features.extractor.Extractor`` that defines the numbers
    (its outputs, gray mode, preprocessing, runtime and specs), ``dataset`` the ImageDataset listed."""
    outputs = [{"layer": layer, "pool": pool, "column": feature_column(layer, pool), "dim": int(dims[(layer, pool)]),
                "spec": extractor.specs[(layer, pool)]} for layer, pool in extractor.outputs]
    return {
        "format": FORMAT, "classes": list(dataset.classes), "outputs": outputs,
        "provenance": {**model.provenance(), "label": model.label(), "gray": extractor.gray,
                       "resize": extractor.preprocess.mode, "runtime": extractor.runtime,
                       **numerics_record(extractor.specs), "engine": engine,
                       "dataset": dataset.describe(), "versions": library_versions(),
                       "date": time.strftime("%Y-%m-%d %H:%M:%S"), **(extra or {})},
    }


def prepare_out(out: str | Path, overwrite: bool = False) -> Path:
    """Create the store folder; an existing store there is an error unless ``overwrite`` (then its shards go). A
    missing pyarrow is said here, before any extraction."""
    _pa("pyarrow.parquet")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    shards = sorted(out.glob("*.parquet")) if out.is_dir() else []
    if shards and not overwrite:
        raise ValueError(f"{out}: already holds {len(shards)} Parquet shards; give another --out or --overwrite")
    for s in shards:
        s.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def dataset_rows(dataset, indices: Sequence[int] | None = None) -> dict:
    """The listing columns (index, absolute path, label, class name, split) of ``dataset``'s images."""
    idx = range(len(dataset.paths)) if indices is None else indices
    return {"index": [int(i) for i in idx],
            "path": [os.path.abspath(dataset.paths[i]) for i in idx],
            "label": [int(dataset.labels[i]) for i in idx],
            "class_name": [dataset.classes[int(dataset.labels[i])] for i in idx],
            "split": [str(dataset.split[i]) for i in idx]}


def extraction_rows(dataset, extraction, hashes: dict[int, str] | None = None) -> dict:
    """Every listed image of ``dataset`` as a row (``dataset_rows`` plus content hash and error: '' for a good
    image, else why it could not be used) for a result of ``Extractor.extract(dataset.paths)``; what each export
    format writes. ``hashes`` (index → content hash) saves re-reading files whose hash is known."""
    rows = dataset_rows(dataset)
    pos = {i: r for r, i in enumerate(extraction.ok)}
    reasons = {os.path.abspath(p): reason for p, reason in extraction.bad}
    hashes = dict(hashes or {})
    rows["error"], rows["hash"] = [], []
    for i in range(len(rows["path"])):
        rows["error"].append("" if i in pos else reasons.get(rows["path"][i], "not extracted"))
        try:
            rows["hash"].append(hashes.get(i) or file_hash(dataset.paths[i]))
        except OSError:
            if i in pos:
                raise
            rows["hash"].append("")
    return rows


def write_extraction(out: str | Path, dataset, extraction, meta: dict, dims: dict[tuple[str, str], int],
                     rows_per_file: int = 50_000, hashes: dict[int, str] | None = None) -> list[Path]:
    """Write the local engine's result (``Extractor.extract`` of ``dataset.paths``) as shards in ``out``.

    Good images carry their features, bad ones their reason; every listed image is one row."""
    pq = _pa("pyarrow.parquet")

    outputs = [(o["layer"], o["pool"]) for o in meta["outputs"]]
    schema = store_schema(outputs, dims, meta)
    rows = extraction_rows(dataset, extraction, hashes)
    errors, hash_col = rows["error"], rows["hash"]
    n = len(rows["path"])
    ok_rows = np.asarray(extraction.ok, dtype=np.int64)  # row r of extraction.features is image ok_rows[r]
    written = []
    out = Path(out)
    for start in range(0, max(n, 1), rows_per_file):
        stop = min(n, start + rows_per_file)
        feats = {}
        here = (ok_rows >= start) & (ok_rows < stop)
        for o in outputs:
            block = np.zeros((stop - start, dims[o]), dtype=np.float32)
            block[ok_rows[here] - start] = extraction.features[o][here]
            feats[o] = block
        table = make_table(schema, index=rows["index"][start:stop], paths=rows["path"][start:stop],
                           hashes=hash_col[start:stop], labels=rows["label"][start:stop],
                           class_names=rows["class_name"][start:stop], split=rows["split"][start:stop],
                           errors=errors[start:stop], features=feats, outputs=outputs)
        path = out / f"part-{start // rows_per_file:05d}.parquet"
        pq.write_table(table, path)
        written.append(path)
    return written


@dataclass
class Chunk:
    """A slice of a store's good rows as numpy arrays."""

    index: np.ndarray
    paths: np.ndarray
    hashes: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    features: dict[tuple[str, str], np.ndarray]

    def __len__(self):
        return len(self.index)


def _fixed_list_to_numpy(col) -> np.ndarray:
    """A fixed_size_list<float32>[D] column (chunked or not, without nulls) as an (N, D) float32 array."""
    pa = _pa()
    if isinstance(col, pa.ChunkedArray):
        dim = col.type.list_size
        col = col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    else:
        dim = col.type.list_size
    if col.null_count:
        raise ValueError("null feature vectors among the rows asked for (bad images); filter on error == ''")
    return np.asarray(col.flatten(), dtype=np.float32).reshape(len(col), dim)


class FeatureStore:
    """A folder of Parquet shards written by ``transferlab extract`` (any engine)."""

    def __init__(self, path: str | Path):
        pq = _pa("pyarrow.parquet")

        self.path = Path(path)
        self.files = sorted(self.path.glob("*.parquet")) if self.path.is_dir() else (
            [self.path] if self.path.suffix == ".parquet" and self.path.exists() else [])
        if not self.files:
            raise ValueError(f"{self.path}: no Parquet feature store here (no *.parquet files)")
        schemas = [pq.read_schema(f) for f in self.files]
        metas = [s.metadata.get(META_KEY) if s.metadata else None for s in schemas]
        if metas[0] is None:
            raise ValueError(f"{self.files[0]}: not a transferlab feature shard (no '{META_KEY.decode()}' metadata)")
        self.meta = json.loads(metas[0])
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"{self.path}: feature store format {self.meta.get('format')!r}, expected {FORMAT!r}")
        first = [(o["column"], o["spec"]) for o in self.meta["outputs"]]
        for f, s, m in zip(self.files, schemas, metas):
            other = json.loads(m) if m else {}
            if [(o["column"], o["spec"]) for o in other.get("outputs", [])] != first or not s.remove_metadata().equals(
                    schemas[0].remove_metadata()):
                raise ValueError(f"{f}: a shard of another extraction (different outputs or schema) in {self.path}")
        self.schema = schemas[0]
        self.num_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def outputs(self) -> list[tuple[str, str]]:
        return [(o["layer"], o["pool"]) for o in self.meta["outputs"]]

    @property
    def dims(self) -> dict[tuple[str, str], int]:
        return {(o["layer"], o["pool"]): int(o["dim"]) for o in self.meta["outputs"]}

    @property
    def specs(self) -> dict[tuple[str, str], dict]:
        return {(o["layer"], o["pool"]): o["spec"] for o in self.meta["outputs"]}

    @property
    def provenance(self) -> dict:
        return dict(self.meta["provenance"])

    def dataset(self):
        ds = _pa("pyarrow.dataset")

        return ds.dataset([str(f) for f in self.files], format="parquet", schema=self.schema)

    def _columns(self, outputs) -> list[str]:
        outputs = select_outputs(self.path, self.outputs, outputs)
        return [feature_column(*o) for o in outputs], outputs

    def read(self, columns: Sequence[str] | None = None, include_bad: bool = True):
        """The rows as one Arrow table (all columns unless ``columns``)."""
        ds = _pa("pyarrow.dataset")

        flt = None if include_bad else ds.field("error") == ""
        return self.dataset().to_table(columns=list(columns) if columns else None, filter=flt)

    def bad(self) -> list[tuple[str, str]]:
        """(path, reason) of the images that could not be used."""
        ds = _pa("pyarrow.dataset")

        t = self.dataset().to_table(columns=["path", "error"], filter=ds.field("error") != "")
        return sorted(zip(t["path"].to_pylist(), t["error"].to_pylist()))

    def iter_chunks(self, batch_size: int = 4096, split: str | None = None,
                    outputs: Sequence[tuple[str, str]] | None = None) -> Iterator[Chunk]:
        """The good rows (of ``split`` when given) in chunks of at most ``batch_size``, shard by shard:
        memory stays bounded by the chunk, whatever the store's size."""
        ds = _pa("pyarrow.dataset")

        cols, outputs = self._columns(outputs)
        flt = ds.field("error") == ""
        if split is not None:
            flt = flt & (ds.field("split") == split)
        for batch in self.dataset().to_batches(columns=list(BASE_COLUMNS[:6]) + cols, filter=flt,
                                               batch_size=batch_size):
            if batch.num_rows == 0:
                continue
            yield Chunk(index=batch["index"].to_numpy(), paths=np.asarray(batch["path"].to_pylist(), dtype=object),
                        hashes=np.asarray(batch["hash"].to_pylist(), dtype=object),
                        labels=batch["label"].to_numpy().astype(np.int64),
                        split=np.asarray(batch["split"].to_pylist(), dtype=object),
                        features={o: _fixed_list_to_numpy(batch[c]) for o, c in zip(outputs, cols)})


@dataclass
class StoredFeatures:
    """What ``run`` needs from a store, rows in dataset order (good images only).

    Shaped like ``ExtractedFeatures`` where it matters: ``features[(layer, pool)]`` is (N, D) float32 with row i
    for image ``paths[i]``, so ``experiment.assemble(stored, outputs, rows, l2)`` works on it."""

    classes: list[str]
    paths: list[str]
    hashes: list[str]
    labels: np.ndarray
    split: np.ndarray
    index: np.ndarray  # positions in the extraction's listing
    features: dict[tuple[str, str], np.ndarray]
    provenance: dict
    specs: dict[tuple[str, str], dict]
    bad: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> list[int]:
        return list(range(len(self.paths)))


def load_features(path: str | Path, outputs: Sequence[tuple[str, str]] | None = None) -> StoredFeatures:
    """Read a store whole (the outputs asked for, default all) for in-memory classifiers such as LinearSVC."""
    store = FeatureStore(path)
    cols, outputs = store._columns(outputs)
    t = store.read(columns=list(BASE_COLUMNS[:6]) + cols, include_bad=False)
    order = np.argsort(t["index"].to_numpy(), kind="stable")
    t = t.take(order)
    return StoredFeatures(
        classes=store.classes, paths=t["path"].to_pylist(), hashes=t["hash"].to_pylist(),
        labels=t["label"].to_numpy().astype(np.int64), split=np.asarray(t["split"].to_pylist(), dtype=str),
        index=t["index"].to_numpy(), features={o: _fixed_list_to_numpy(t[c]) for o, c in zip(outputs, cols)},
        provenance=store.provenance, specs={o: store.specs[o] for o in outputs}, bad=store.bad())
