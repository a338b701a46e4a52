"""The int8 runtime's graph: the exported ONNX network quantized after training by ONNX Runtime, calibrated on
training images.

Recipe (``RECIPE``): static QDQ quantization (``onnxruntime.quantization.quantize_static``), activations uint8 ×
weights int8 per output channel, MinMax ranges, weights reduced to 7 bits (``reduce_range``). ORT's own guidance
for x86 CPUs without VNNI (AVX2 only, like this machine's Zen 3), and measured here: with 8-bit weights the AVX2
u8×s8 kernels saturate their 16-bit intermediate sums and VGG16 pool5 features deviate by 0.86 (relative), with
7-bit weights by 0.08. The quantized graph is cached next to the fp32 export, keyed by the fp32 graph, the
calibration identity and the ONNX Runtime version.

Calibration identity (:class:`Calibration`): the number of images, a hash of their sorted content hashes and the
recipe tag. It is part of the cache key of int8 features and recorded with every result that used them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferlab.extras import require
from transferlab.options import CALIBRATION_IMAGES

RECIPE = "ort-qdq-u8s8-perchannel-minmax-rr"
# images per calibration run. ORT's MinMax calibrator adds ReduceMin/ReduceMax after every tensor and keeps only
# those per run, but its session holds every activation of a run: quantizing VGG16 to pool5 peaked at 1.18 GB
# with runs of 4 images, 0.50 GB with runs of 1 (and 2.9 GB with all 200 in one run). Its
# CalibMaxIntermediateOutputs option is not used: in onnxruntime 1.32 it drops the collected runs unmerged
CALIBRATION_BATCH = 1
# calibration images on which an int8 graph's deviation from its fp32 graph is measured, once, stored beside it
# (what tells a network the recipe does not suit: EfficientNet-Lite0 ~1.0, VGG16 pool5 ~0.1)
CHECK_IMAGES = 8


def pick_calibration(train_paths: Sequence[str | Path], n: int = CALIBRATION_IMAGES) -> list[Path]:
    """``n`` images evenly spaced over the sorted ``train_paths`` (all of them when there are fewer)."""
    paths = sorted(Path(p) for p in train_paths)
    if len(paths) <= n:
        return paths
    step = len(paths) / n
    return [paths[int(i * step)] for i in range(n)]


def training_calibration(dataset, n: int = CALIBRATION_IMAGES) -> list[Path]:
    """The calibration images of a dataset: its training images only (a fixed train/test split is needed, so
    that no image ever tested on is calibrated on)."""
    train = [p for p, side in zip(dataset.paths, dataset.split) if side == "train"]
    if not train:
        raise ValueError(f"{dataset.root}: runtime int8 calibrates on training images only, and this dataset has "
                         f"no train/ folder; give a train/ + test/ layout or use another --runtime")
    return pick_calibration(train, n)


@dataclass(frozen=True)
class Calibration:
    """What the int8 graph is calibrated on: its identity (count, content hash, recipe) and, for computing it,
    ``batches()``: the preprocessed pixels, a few images at a time."""

    images: int
    hash: str
    batches: Callable[[], Iterator[np.ndarray]] = field(compare=False, repr=False)
    recipe: str = RECIPE

    @classmethod
    def of(cls, content_hashes: Sequence[str], batches: Callable[[], Iterator[np.ndarray]]) -> Calibration:
        if not content_hashes:
            raise ValueError("runtime int8 needs at least one calibration image")
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{RECIPE} n={len(content_hashes)}".encode())
        for c in sorted(content_hashes):
            h.update(c.encode())
        return cls(len(content_hashes), h.hexdigest(), batches)

    def identity(self) -> dict:
        """Recorded with (and keying) every int8 feature."""
        return {"images": self.images, "hash": self.hash, "recipe": self.recipe}


class _Reader:
    """ONNX Runtime's calibration data reader over ``Calibration.batches()``."""

    def __init__(self, batches: Iterator[np.ndarray], name: str):
        self.batches, self.name = batches, name

    def get_next(self):
        x = next(self.batches, None)
        return None if x is None else {self.name: np.ascontiguousarray(x, dtype=np.float32)}


def quantized_path(fp32: Path, calibration: Calibration) -> Path:
    ort = require("onnxruntime", "runtime 'int8'")
    h = hashlib.blake2b(f"{fp32.stem} {calibration.hash} ort={ort.__version__}".encode(), digest_size=16)
    return fp32.with_name(f"int8-{h.hexdigest()}.onnx")


def quantize(fp32: Path, calibration: Calibration) -> Path:
    """The int8 QDQ graph of the fp32 ONNX file ``fp32`` (input ``pixels``), calibrated once and cached."""
    q = require("onnxruntime.quantization", "runtime 'int8' (ONNX Runtime's quantization)")
    quant_pre_process = require("onnxruntime.quantization.shape_inference", "runtime 'int8'").quant_pre_process

    path = quantized_path(fp32, calibration)
    if path.exists():
        return path
    with tempfile.TemporaryDirectory(prefix="transferlab-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # ORT's graph optimisations first (BatchNorm folded into convolutions, constants folded), as its docs ask
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        out = Path(tmp) / "int8.onnx"
        q.quantize_static(str(pre), str(out), _Reader(iter(calibration.batches()), "pixels"),
                          quant_format=q.QuantFormat.QDQ, activation_type=q.QuantType.QUInt8,
                          weight_type=q.QuantType.QInt8, per_channel=True, reduce_range=True,
                          calibrate_method=q.CalibrationMethod.MinMax)
        tmp_dest = path.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(out, tmp_dest)
        os.replace(tmp_dest, path)  # atomic: a concurrent process writes an equivalent graph
    return path


def int8_deviation(path: Path) -> float | None:
    """The deviation from fp32 stored beside the int8 graph at ``path`` (None: not measured yet)."""
    try:
        return json.loads(path.with_suffix(".json").read_text())["deviation"]
    except (OSError, ValueError, KeyError):
        return None


def store_int8_deviation(path: Path, deviation: float, images: int) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.json.tmp")
    tmp.write_text(json.dumps({"deviation": deviation, "images": images}))
    os.replace(tmp, path.with_suffix(".json"))
