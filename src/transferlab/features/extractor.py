"""Feature extraction at any named layers, batched, decoded in worker processes, resumable through the cache."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from PIL import Image
from tqdm.auto import tqdm

from transferlab.config import RunConfig
from transferlab.data.images import ImageError, as_image, load_image
from transferlab.data.transforms import Preprocess
from transferlab.features.cache import FeatureCache
from transferlab.models.gray import apply_gray
from transferlab.models.loaded import LoadedModel
from transferlab.models.pooling import Pool
from transferlab.features.quantize import CALIBRATION_BATCH, Calibration, Recipe, recipe_for, training_calibration
from transferlab.features.runtimes import RUNTIMES, check_runtime, make_runner


class FeatureNet(nn.Module):
    """Backbone up to the deepest requested layer, then one pooling per (layer, pooling) output."""

    def __init__(self, net: nn.Module, outputs: Sequence[tuple[str, str]]):
        super().__init__()
        self.net = net
        self.outputs = list(outputs)
        self.layers = list(dict.fromkeys(layer for layer, _ in self.outputs))
        self.pools = nn.ModuleList(Pool(p) for _, p in self.outputs)

    def forward(self, x):
        maps = self.net.forward_layers(x, self.layers)
        return tuple(pool(maps[layer]) for (layer, _), pool in zip(self.outputs, self.pools))


def file_hash(path: Path) -> str:
    """Content hash of a file (what the cache keys images by: renaming or moving a file costs nothing)."""
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()


def image_hash(img: Image.Image) -> str:
    """Content hash of an in-memory image: its decoded pixels, size and mode (it has no file to hash)."""
    h = hashlib.blake2b(f"{img.mode}:{img.width}x{img.height}:".encode(), digest_size=16)
    h.update(img.tobytes())
    return h.hexdigest()


def file_calibration(paths: Sequence[str | Path], pixels: Callable[[Image.Image], np.ndarray],
                     recipe: Recipe) -> Calibration:
    """The int8 calibration set of image files: identity from their content and ``recipe``, the graph's input
    (``pixels`` of each decoded image, stacked) made on demand, ``CALIBRATION_BATCH`` images at a time."""
    paths = [Path(p) for p in paths]
    hashes = []
    for p in paths:
        try:
            hashes.append(file_hash(p))
        except OSError as e:
            raise ValueError(f"{p}: calibration image unreadable ({e.strerror})") from None

    def batches():
        for i in range(0, len(paths), CALIBRATION_BATCH):
            yield np.stack([pixels(load_image(p)) for p in paths[i:i + CALIBRATION_BATCH]])

    return Calibration.of(hashes, batches, recipe)


def as_source(sample, i: int) -> Path | Image.Image:
    """A path stays a path (read in the loader's workers); anything else becomes an image here (``as_image``)."""
    return Path(sample) if isinstance(sample, (str, os.PathLike)) else as_image(sample, f"<in-memory image {i}>")


class _Decode(torch.utils.data.Dataset):
    """Runs in the loader's workers: decode, resize, crop, scale. A bad file yields its reason instead."""

    def __init__(self, sources, preprocess: Preprocess, channels: int):
        self.sources, self.preprocess, self.channels = sources, preprocess, channels

    def __len__(self):
        return len(self.sources)

    def __getitem__(self, i):
        src = self.sources[i]
        try:
            img = src if isinstance(src, Image.Image) else load_image(src)
            return i, self.preprocess.pixels(img, self.channels), ""
        except ImageError as e:
            return i, None, e.reason


def _collate(items):
    good = [(i, x) for i, x, _ in items if x is not None]
    bad = [(i, reason) for i, x, reason in items if x is None]
    batch = torch.stack([x for _, x in good]) if good else None
    return [i for i, _ in good], batch, bad


@dataclass
class ExtractedFeatures:
    """Features of the good images (rows in the order of ``ok``), the bad files, and what it cost."""

    features: dict[tuple[str, str], np.ndarray]
    ok: list[int]  # indices into the input paths
    bad: list[tuple[str, str]]  # (path, reason)
    computed: int
    cached: int
    seconds: float
    specs: dict[tuple[str, str], dict] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.computed / self.seconds if self.computed and self.seconds else 0.0


def numerics_record(specs: dict) -> dict:
    """The numerics of features with these specs, and the int8 calibration set (size, hash, recipe) when they
    used one: what every result records beside its runtime."""
    first = next(iter(specs.values()), {})
    return {"numerics": first.get("numerics", "fp32"),
            **({"calibration": first["calibration"]} if "calibration" in first else {})}


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class Extractor:
    """Extracts (layer, pooling) features of images with one model, computing only what the cache lacks.

    Images are files (keyed by a hash of their bytes) or in-memory PIL images and uint8 arrays (keyed by a hash
    of their decoded pixels), preprocessed alike. The model is adapted in place for the gray mode; give each
    Extractor its own ``load_model`` result. It pickles without its cache connection and runner, which are
    reopened on first use.
    ``runtime="int8"`` needs ``calibration``: image files of the training set only (never test images; see
    :func:`~transferlab.features.quantize.training_calibration`), whose identity keys and labels its features.
    """

    def __init__(self, model: LoadedModel, outputs: Sequence[tuple[str, str]], *, gray: str = "replicate",
                 resize: str = "crop", input_size: int | None = None, runtime: str = "eager", batch_size: int = 16,
                 workers: int | None = None, device: str = "cpu", cache: FeatureCache | None = None,
                 progress: bool | None = None, calibration: Sequence[str | Path] | None = None):
        model.check_layers([layer for layer, _ in outputs])
        check_runtime(runtime, device)  # before any work: a missing package or device is one line now
        self.model, self.outputs, self.gray, self.runtime = model, list(dict.fromkeys(outputs)), gray, runtime
        self.channels = apply_gray(model.net, gray)
        self.preprocess = model.preprocess.with_mode(resize).with_size(input_size)
        self.calibration = self._calibration(calibration)
        self.batch_size = 1 if resize == "native" else batch_size
        self.workers = default_workers() if workers is None else workers
        self.device = device
        self.cache = cache  # the user cache is opened on first use
        self._cache_root = cache.root if cache else None  # what a pickled copy reopens (None: the user cache)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.featurenet = FeatureNet(model.net, self.outputs)
        self._runner = None
        self.specs = {o: self.spec(*o) for o in self.outputs}
        self.keys = {o: hashlib.sha256(json.dumps(s, sort_keys=True).encode()).hexdigest()[:32]
                     for o, s in self.specs.items()}

    @classmethod
    def from_run(cls, cfg: RunConfig, model: LoadedModel, outputs: Sequence[tuple[str, str]], dataset=None,
                 **overrides) -> Extractor:
        """The extractor a run's settings describe (gray mode, resize, input size, runtime, batching, device,
        cache, progress); with runtime int8, calibrated on ``dataset``'s training images (or the ``calibration``
        files given). ``overrides``: keyword arguments of the constructor that differ (an engine's ``workers=0``,
        ``progress=False``)."""
        calibration = overrides.pop("calibration", None)
        if cfg.runtime == "int8" and calibration is None:
            if dataset is None:
                raise ValueError("runtime 'int8' calibrates on the dataset's training images: give the dataset")
            calibration = training_calibration(dataset, cfg.calibration_images)
        kwargs = dict(gray=cfg.gray, resize=cfg.resize, input_size=cfg.input_size, runtime=cfg.runtime,
                      batch_size=cfg.batch_size, workers=cfg.workers, device=cfg.device,
                      cache=FeatureCache(cfg.cache) if cfg.cache else None, progress=cfg.progress,
                      calibration=calibration)
        return cls(model, outputs, **(kwargs | overrides))

    def pixels(self, img: Image.Image) -> torch.Tensor:
        """One decoded image as the network's input: this extractor's preprocessing and gray channels."""
        return self.preprocess.pixels(img, self.channels)

    def output_dims(self) -> dict[tuple[str, str], int]:
        """Feature length of each output (one forward pass of a blank image of the crop size)."""
        if self.preprocess.mode == "native" and any(pool == "flatten" for _, pool in self.outputs):
            raise ValueError("--pool flatten with --resize native gives a different length per image; a feature "
                             "table needs one length per column (use crop/resize, or a fixed-size pooling)")
        crop = self.preprocess.crop
        outs = self.runner()(torch.zeros(1, self.channels, crop, crop))
        return {o: int(a.shape[1]) for o, a in zip(self.outputs, outs)}

    def _calibration(self, paths: Sequence[str | Path] | None) -> Calibration | None:
        """The int8 runtime's calibration set (identity from the files' content, pixels decoded on demand)."""
        if self.runtime != "int8":
            if paths:
                raise ValueError(f"calibration images are for runtime 'int8', not {self.runtime!r}")
            return None
        if not paths:
            raise ValueError("runtime 'int8' needs calibration images from the training set (calibration=paths; "
                             "the run, extract and study commands pick them from the train/ split)")
        if self.preprocess.mode == "native":
            raise ValueError("runtime 'int8' calibrates one graph for one input size: use --resize crop or resize")
        return file_calibration(paths, lambda img: self.pixels(img).numpy(),
                                recipe_for(self.model.net))

    def spec(self, layer: str, pool: str) -> dict:
        """Everything that changes the numbers of one output (its cache key is a hash of this); the layer by its
        stable name, so that an alias (``features.30`` for ``pool5``) shares the entries."""
        spec = {"model": self.model.name, "weights_sha256": self.model.weights_id,
                "layer": self.model.net.resolve(layer),
                "pool": pool, "preprocess": self.preprocess.key(), "gray": self.gray,
                "numerics": RUNTIMES[self.runtime]}
        if self.calibration is not None:
            spec["calibration"] = self.calibration.identity()
        return spec

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(cache=None, _runner=None)  # an SQLite connection and a compiled runner do not pickle
        return state

    def runner(self):
        if self._runner is None:
            self._runner = make_runner(self.featurenet, self.runtime, self.device, self.calibration)
        return self._runner

    def extract(self, paths: Sequence) -> ExtractedFeatures:
        """Features of ``paths``: image files, or in-memory images (PIL, uint8 arrays) named ``<in-memory image i>``
        in ``bad``."""
        t0 = time.perf_counter()
        self.cache = self.cache or FeatureCache(self._cache_root)
        hashes, bad, sources = {}, [], {}
        for i, sample in enumerate(paths):
            try:
                sources[i] = p = as_source(sample, i)
                hashes[i] = image_hash(p) if isinstance(p, Image.Image) else file_hash(p)
            except ImageError as e:
                bad.append((e.path, e.reason))
            except OSError as e:
                bad.append((str(p), "no such file" if not p.exists() else f"unreadable ({e.strerror})"))
        names = {i: f"<in-memory image {i}>" if isinstance(s, Image.Image) else str(s) for i, s in sources.items()}
        present = {o: self.cache.present(k) for o, k in self.keys.items()}
        todo = [i for i, h in hashes.items() if any(h not in present[o] for o in self.outputs)]
        unique = list({hashes[i]: i for i in todo}.values())  # identical files are computed once
        failed = self._compute([sources[i] for i in unique], [hashes[i] for i in unique])
        failed_hashes = {hashes[unique[j]] for j, _ in failed}
        bad += [(names[i], reason) for i, h in hashes.items() for j, reason in failed
                if h == hashes[unique[j]]]
        ok = [i for i, h in hashes.items() if h not in failed_hashes]
        feats = {o: self.cache.get(self.keys[o], [hashes[i] for i in ok]) for o in self.outputs}
        bad.sort()
        return ExtractedFeatures(feats, ok, bad, computed=len(unique) - len(failed), cached=len(ok) - len(unique) + len(failed),
                          seconds=time.perf_counter() - t0, specs=self.specs)

    def _compute(self, sources: list, hashes: list[str]) -> list[tuple[int, str]]:
        """Run the network over ``sources``, committing each batch to the cache; returns (index, reason) of bad ones."""
        if not sources:
            return []
        loader = torch.utils.data.DataLoader(
            _Decode(sources, self.preprocess, self.channels), batch_size=self.batch_size, shuffle=False,
            num_workers=self.workers, collate_fn=_collate, prefetch_factor=4 if self.workers else None,
            pin_memory=self.device.startswith("cuda"))
        run = self.runner()
        failed = []
        with tqdm(total=len(sources), unit="img", desc=f"{self.model.name} features", disable=not self.progress,
                  dynamic_ncols=True, smoothing=0.1) as bar:
            for idx, batch, bad in loader:
                failed += bad
                if batch is not None:
                    outs = run(batch)
                    self.cache.put({self.keys[o]: (self.specs[o], [hashes[i] for i in idx], a)
                                    for o, a in zip(self.outputs, outs)})
                bar.update(len(idx) + len(bad))
        return failed
