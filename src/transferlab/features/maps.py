"""Dense convolutional maps of one layer, stored per image (float16, keyed by content and by everything that changes
the numbers), so that orderless encoders can be fitted on training maps and compared without running the network
again. The same forward pass fills the feature cache with the extractor's pooled outputs."""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import ExtractedFeatures, Extractor, _collate, _Decode, file_hash
from transferlab.files import atomic_path, atomic_write, cache_dir


class MapStore:
    """One ``<image hash>.npy`` (C, H, W) float16 per image under ``<root>/<key>/``, written atomically; the spec
    and the measured extraction cost sit beside them in ``spec.json``."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else cache_dir() / "maps"

    def folder(self, key: str) -> Path:
        return self.root / key

    def present(self, key: str) -> set[str]:
        folder = self.folder(key)
        return {p.stem for p in folder.glob("*.npy")} if folder.is_dir() else set()

    def put(self, key: str, spec: dict, hashes: Sequence[str], maps: np.ndarray, seconds: float) -> None:
        """Store ``maps`` (N, C, H, W) of ``hashes``; ``seconds``: what computing them cost (summed in spec.json)."""
        folder = self.folder(key)
        for h, m in zip(hashes, maps):
            with atomic_path(folder / f"{h}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(m, dtype=np.float16))
        meta = self.meta(key) or {"spec": spec, "images": 0, "seconds": 0.0}
        meta["images"] += len(hashes)
        meta["seconds"] += seconds
        atomic_write(folder / "spec.json", json.dumps(meta, sort_keys=True))

    def meta(self, key: str) -> dict | None:
        path = self.folder(key) / "spec.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def get(self, key: str, hashes: Sequence[str]) -> np.ndarray:
        """Maps of ``hashes`` in that order, (N, C, H, W) float16."""
        return np.stack([np.load(self.folder(key) / f"{h}.npy") for h in hashes])


@dataclass
class Maps:
    """Where the maps of the extraction's good images are (row ``i`` of ``ext`` has hash ``hashes[i]``)."""

    ext: ExtractedFeatures
    store: MapStore
    key: str
    hashes: list[str]

    def get(self, rows: Sequence[int]) -> np.ndarray:
        return self.store.get(self.key, [self.hashes[i] for i in rows])

    def chunks(self, rows: Sequence[int], size: int = 32):
        """(row indices, float32 maps) a chunk at a time: never all maps in memory."""
        rows = list(rows)
        for start in range(0, len(rows), size):
            part = rows[start:start + size]
            yield part, self.get(part).astype(np.float32)

    def ms_per_image(self) -> float | None:
        """Extraction cost per image as measured when the maps were computed (None: nothing measured)."""
        meta = self.store.meta(self.key)
        return round(1000 * meta["seconds"] / meta["images"], 1) if meta and meta["images"] else None


def map_key(extractor: Extractor, layer: str) -> tuple[str, dict]:
    spec = extractor.spec(layer, "map") | {"dtype": "float16"}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32], spec


def extract_maps(extractor: Extractor, layer: str, paths: Sequence[str | Path], store: MapStore) -> Maps:
    """Maps of ``layer`` for ``paths`` into ``store`` and the extractor's pooled outputs into its cache, in one
    forward pass per batch of what either lacks; then the extractor's own (cached) extraction."""
    extractor.model.check_layers([layer])
    key, spec = map_key(extractor, layer)
    paths = [Path(p) for p in paths]
    hashes = {}
    for i, p in enumerate(paths):
        try:
            hashes[i] = file_hash(p)
        except OSError:
            pass  # reported by the extractor below
    extractor.cache = extractor.cache or FeatureCache()
    have = store.present(key)
    cached = [extractor.cache.present(k) for k in extractor.keys.values()]
    todo = {hashes[i]: paths[i] for i in hashes if hashes[i] not in have or any(hashes[i] not in c for c in cached)}
    if todo:
        _compute(extractor, layer, key, spec, list(todo.values()), list(todo), store)
    ext = extractor.extract(paths)
    return Maps(ext, store, key, [hashes[i] for i in ext.ok])


def _compute(extractor: Extractor, layer: str, key: str, spec: dict, paths: list[Path], hashes: list[str],
             store: MapStore) -> None:
    loader = torch.utils.data.DataLoader(_Decode(paths, extractor.preprocess, extractor.channels),
                                         batch_size=extractor.batch_size, shuffle=False, num_workers=extractor.workers,
                                         collate_fn=_collate, prefetch_factor=4 if extractor.workers else None)
    net, fnet = extractor.model.net.to(extractor.device), extractor.featurenet
    t0 = time.perf_counter()
    with torch.inference_mode():
        for idx, batch, _bad in loader:  # bad files: the extractor reports them
            if batch is None:
                continue
            maps = net.forward_layers(batch.to(extractor.device), [layer, *fnet.layers])
            pooled = [pool(maps[name]).cpu().numpy() for (name, _), pool in zip(fnet.outputs, fnet.pools)]
            batch_hashes = [hashes[i] for i in idx]
            extractor.cache.put({extractor.keys[o]: (extractor.specs[o], batch_hashes, a)
                                 for o, a in zip(extractor.outputs, pooled)})
            store.put(key, spec, batch_hashes, maps[layer].cpu().numpy(), time.perf_counter() - t0)
            t0 = time.perf_counter()
