"""The images a saved model was trained on: their paths relative to the dataset root and the sha256 of each file
(what int8 calibration and the card's training-set hash use), and what the card says of them."""
from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from transferlab.data.images import ImageError, is_gray, load_image
from transferlab.files import sha256_file

GRAY_SAMPLE = 100  # training images decoded, evenly spread, to tell whether the set is grayscale


def set_hash(digests: Sequence[str]) -> str:
    """The training set's content hash: sha256 of the sorted per-image sha256 digests, one per line."""
    return hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()


def training_images(root: Path, paths: Sequence[str | Path], labels: Sequence[int], classes: list[str]) -> dict:
    """``training.json``: the dataset root, each image's path relative to it, class and sha256, and the set's hash."""
    root = Path(root).resolve()
    images = []
    for p, y in zip(paths, labels):
        p = Path(p).resolve()
        images.append({"path": p.relative_to(root).as_posix(), "class": classes[int(y)], "sha256": sha256_file(p)})
    return {"root": str(root), "images": images, "content_sha256": set_hash([i["sha256"] for i in images])}


def gray_share(paths: Sequence[str | Path]) -> dict:
    """How many of up to :data:`GRAY_SAMPLE` evenly spread images have gray content (mode L, or equal channels)."""
    picks = [paths[int(i)] for i in np.unique(np.linspace(0, len(paths) - 1, min(GRAY_SAMPLE, len(paths))).round())]
    gray = 0
    for p in picks:
        try:
            gray += is_gray(load_image(p))
        except ImageError:
            pass
    return {"sampled": len(picks), "gray": gray}


def summary(training: dict) -> dict:
    """The card's facts of a ``training.json``: size, images per class, content hash, gray share, dataset folder."""
    root = Path(training["root"])
    paths = [root / i["path"] for i in training["images"]]
    return {"images": len(paths), "per_class": dict(Counter(i["class"] for i in training["images"])),
            "content_sha256": training["content_sha256"], "dataset": root.name, "root": str(root),
            "gray_content": gray_share(paths) if paths else {"sampled": 0, "gray": 0}}
