"""The int8 runtime's graph: the exported ONNX network quantized after training by ONNX Runtime, calibrated on
training images.

Recipe (:class:`Recipe`, chosen by :func:`recipe_for` from the CPU and the network's family): static QDQ
quantization (``onnxruntime.quantization.quantize_static``), activations uint8 × weights int8 per output channel,
MinMax ranges. Without VNNI (AVX2 only) the weights are reduced to 7 bits (``reduce_range``, ORT's guidance for
such CPUs: the AVX2 u8×s8 kernels saturate their 16-bit intermediate sums with 8-bit weights); with VNNI or
AMX-INT8 they keep 8 bits. A family may keep some convolutions in float (``Backbone.int8_fp32``: module paths,
found by measuring per-node sensitivity; see docs/export.md). The quantized graph is cached next to the fp32
export, keyed by the fp32 graph, the calibration identity and the ONNX Runtime version.

Calibration identity (:class:`Calibration`): the number of images, a hash of their sorted content hashes and the
recipe tag. It is part of the cache key of int8 features and recorded with every result that used them.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferlab.files import atomic_path, atomic_write
from transferlab.machine import has_vnni
from transferlab.options import CALIBRATION_IMAGES

BASE_RECIPE = "ort-qdq-u8s8-perchannel-minmax"
# images per calibration run. ORT's MinMax calibrator adds ReduceMin/ReduceMax after every tensor and keeps only
# those per run, but its session holds every activation of a run: quantizing VGG16 to pool5 peaked at 1.18 GB
# with runs of 4 images, 0.50 GB with runs of 1 (and 2.9 GB with all 200 in one run). Its
# CalibMaxIntermediateOutputs option is not used: in onnxruntime 1.32 it drops the collected runs unmerged
CALIBRATION_BATCH = 1
# calibration images on which an int8 graph's deviation from its fp32 graph is measured, once, stored beside it
# (what tells a network the recipe does not suit: a warning names the bound it exceeds)
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
class Recipe:
    """How a graph is quantized: ``reduce_range`` (7-bit weights, for CPUs without VNNI), ``weights`` ("s8", or
    "u8": unsigned 8-bit weights, which ORT's AVX2 kernels multiply without the u8×s8 saturation), and the
    convolutions kept in float: those whose weight belongs to a module path of ``fp32`` (a ``family``'s)."""

    reduce_range: bool
    weights: str = "s8"
    family: str = ""
    fp32: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        """The recipe as one string: keys the cache and is recorded with every int8 result."""
        tag = BASE_RECIPE.replace("u8s8", f"u8{self.weights}") + ("-rr" if self.reduce_range else "")
        return tag + (f"-{self.family}-fp32:{'+'.join(self.fp32)}" if self.fp32 else "")

    def excluded(self, graph) -> list[str]:
        """Names of the nodes of the ONNX ``graph`` left in float: those with an input initializer (a weight)
        under one of the ``fp32`` module paths."""
        inits = {i.name for i in graph.initializer}
        return [n.name for n in graph.node if any(i in inits and _under(i, self.fp32) for i in n.input)]


def _under(name: str, paths: Sequence[str]) -> bool:
    return any(f".{p}." in f".{name}" for p in paths)


def recipe_for(net) -> Recipe:
    """The recipe for a backbone on this CPU. With VNNI: int8 weights of 8 bits. Without: the family's
    ``int8_avx2_weights``, int8 reduced to 7 bits (``reduce_range``) by default, or "u8". And the family's float
    convolutions (``int8_fp32``)."""
    weights = "s8" if has_vnni() else getattr(net, "int8_avx2_weights", "s8")
    fp32 = tuple(getattr(net, "int8_fp32", ()))
    return Recipe(reduce_range=weights == "s8" and not has_vnni(), weights=weights,
                  family=type(net).__name__.lower() if fp32 else "", fp32=fp32)


# the recipe of a network of no particular family on this CPU
RECIPE = Recipe(reduce_range=not has_vnni()).tag


@dataclass(frozen=True)
class Calibration:
    """What the int8 graph is calibrated on: its identity (count, content hash, recipe) and, for computing it,
    ``batches()``: the graph's input for a few images at a time."""

    images: int
    hash: str
    batches: Callable[[], Iterator[np.ndarray]] = field(compare=False, repr=False)
    recipe: Recipe = field(default_factory=lambda: Recipe(reduce_range=not has_vnni()))

    @classmethod
    def of(cls, content_hashes: Sequence[str], batches: Callable[[], Iterator[np.ndarray]],
           recipe: Recipe | None = None) -> Calibration:
        if not content_hashes:
            raise ValueError("runtime int8 needs at least one calibration image")
        recipe = recipe or Recipe(reduce_range=not has_vnni())
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{recipe.tag} n={len(content_hashes)}".encode())
        for c in sorted(content_hashes):
            h.update(c.encode())
        return cls(len(content_hashes), h.hexdigest(), batches, recipe)

    def identity(self) -> dict:
        """Recorded with (and keying) every int8 feature."""
        return {"images": self.images, "hash": self.hash, "recipe": self.recipe.tag}


class _Reader:
    """ONNX Runtime's calibration data reader over ``Calibration.batches()``."""

    def __init__(self, batches: Iterator[np.ndarray], name: str):
        self.batches, self.name = batches, name

    def get_next(self):
        x = next(self.batches, None)
        return None if x is None else {self.name: np.ascontiguousarray(x)}


def quantized_path(fp32: Path, calibration: Calibration) -> Path:
    import onnxruntime as ort

    h = hashlib.blake2b(f"{fp32.stem} {calibration.hash} ort={ort.__version__}".encode(), digest_size=16)
    return fp32.with_name(f"int8-{h.hexdigest()}.onnx")


def quantize(fp32: Path, calibration: Calibration) -> Path:
    """The int8 QDQ graph of the fp32 ONNX file ``fp32`` (one input), calibrated once and cached."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    path = quantized_path(fp32, calibration)
    if path.exists():
        return path
    recipe = calibration.recipe
    with tempfile.TemporaryDirectory(prefix="transferlab-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # ORT's graph optimisations first (BatchNorm folded into convolutions, constants folded), as its docs ask
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        graph = onnx.load(str(pre)).graph
        out = Path(tmp) / "int8.onnx"
        quantize_static(str(pre), str(out), _Reader(iter(calibration.batches()), graph.input[0].name),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QUInt8 if recipe.weights == "u8" else QuantType.QInt8,
                        per_channel=True, reduce_range=recipe.reduce_range, nodes_to_exclude=recipe.excluded(graph),
                        calibrate_method=CalibrationMethod.MinMax)
        with atomic_path(path) as dest:  # a concurrent process writes an equivalent graph
            shutil.copyfile(out, dest)
    return path


def int8_deviation(path: Path) -> float | None:
    """The deviation from fp32 stored beside the int8 graph at ``path`` (None: not measured yet)."""
    try:
        return json.loads(path.with_suffix(".json").read_text())["deviation"]
    except (OSError, ValueError, KeyError):
        return None


def store_int8_deviation(path: Path, deviation: float, images: int) -> None:
    atomic_write(path.with_suffix(".json"), json.dumps({"deviation": deviation, "images": images}))
