"""The int8 runtime's graph: the exported ONNX network quantized after training by ONNX Runtime, calibrated on
training images.

Recipe (:class:`Recipe`, chosen by :func:`recipe_for` from the CPU and the network's family): static QDQ
quantization (``onnxruntime.quantization.quantize_static``), activations uint8 × weights int8 per output channel,
MinMax ranges. Without VNNI (AVX2 only) the weights are reduced to 7 bits (``reduce_range``, ORT's guidance for
such CPUs: the AVX2 u8×s8 kernels saturate their 16-bit intermediate sums with 8-bit weights); with VNNI or
AMX-INT8 they keep 8 bits. A family may keep some convolutions in float (``Backbone.int8_fp32``: module paths)
and, without VNNI, give some 8-bit uint8 weights (``Backbone.int8_avx2_u8``), both found by measuring
per-node sensitivity (benchmarks/int8_sensitivity.py, docs/export.md). The quantized graph is cached next to the fp32
export, keyed by the fp32 graph, the calibration identity and the ONNX Runtime version.

Calibration identity (:class:`Calibration`): the number of images, a hash of their sorted content hashes and the
recipe tag. It is part of the cache key of int8 features and recorded with every result that used them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferlab.extras import require
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
    """How a graph is quantized: ``reduce_range`` (7-bit int8 weights, for CPUs without VNNI); the convolutions
    under a module path of ``fp32`` kept in float; those under ``u8`` with 8-bit uint8 weights, which ORT's AVX2
    kernels multiply without the u8×s8 saturation (but slower); ``family``: whose rules these are."""

    reduce_range: bool
    family: str = ""
    fp32: tuple[str, ...] = ()
    u8: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        """The recipe as one string: keys the cache and is recorded with every int8 result."""
        tag = BASE_RECIPE + ("-rr" if self.reduce_range else "")
        if self.fp32 or self.u8:
            tag += f"-{self.family}" + "".join(f"-{kind}:{'+'.join(paths)}" for kind, paths in
                                               (("fp32", self.fp32), ("u8", self.u8)) if paths)
        return tag

    def excluded(self, graph) -> list[str]:
        """Names of the nodes of the ONNX ``graph`` left in float: those with an input initializer (a weight)
        under one of the ``fp32`` module paths."""
        inits = {i.name for i in graph.initializer}
        return [n.name for n in graph.node if any(i in inits and _under(i, self.fp32) for i in n.input)]

    def overrides(self, graph, uint8) -> dict:
        """ORT's ``TensorQuantOverrides``: 8-bit ``uint8`` (ORT's QuantType) per channel for the weights of the
        quantized convolutions under a ``u8`` module path."""
        inits = {i.name: i for i in graph.initializer}
        out = {}
        for n in graph.node:
            w = n.input[1] if n.op_type == "Conv" else ""
            if w in inits and _under(w, self.u8) and not _under(w, self.fp32):
                one = {"quant_type": uint8, "reduce_range": False}
                out[w] = [{**one, "axis": 0}] + [dict(one) for _ in range(inits[w].dims[0] - 1)]
        return out


def _under(name: str, paths: Sequence[str]) -> bool:
    return any(f".{p}." in f".{name}" for p in paths)


def recipe_for(net, vnni: bool | None = None) -> Recipe:
    """The recipe for a backbone on this CPU (or on one with or without ``vnni``): int8 weights of 8 bits with
    VNNI; without, of 7 bits, and uint8 ones of 8 bits for the family's ``int8_avx2_u8`` module paths; the
    family's float ones (``int8_fp32``)."""
    vnni = has_vnni() if vnni is None else vnni
    fp32, u8 = tuple(getattr(net, "int8_fp32", ())), () if vnni else tuple(getattr(net, "int8_avx2_u8", ()))
    return Recipe(reduce_range=not vnni, family=type(net).__name__.lower() if fp32 or u8 else "", fp32=fp32, u8=u8)


def generic_recipe() -> Recipe:
    """The recipe of a network of no particular family on this CPU."""
    return Recipe(reduce_range=not has_vnni())


RECIPE = generic_recipe().tag


@dataclass(frozen=True)
class Calibration:
    """What the int8 graph is calibrated on: its identity (count, content hash, recipe) and, for computing it,
    ``batches()``: the graph's input for a few images at a time."""

    images: int
    hash: str
    batches: Callable[[], Iterator[np.ndarray]] = field(compare=False, repr=False)
    recipe: Recipe = field(default_factory=generic_recipe)

    @classmethod
    def of(cls, content_hashes: Sequence[str], batches: Callable[[], Iterator[np.ndarray]],
           recipe: Recipe | None = None) -> Calibration:
        if not content_hashes:
            raise ValueError("runtime int8 needs at least one calibration image")
        recipe = recipe or generic_recipe()
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
    ort = require("onnxruntime", "runtime 'int8'")
    h = hashlib.blake2b(f"{fp32.stem} {calibration.hash} ort={ort.__version__}".encode(), digest_size=16)
    return fp32.with_name(f"int8-{h.hexdigest()}.onnx")


def quantize(fp32: Path, calibration: Calibration) -> Path:
    """The int8 QDQ graph of the fp32 ONNX file ``fp32`` (one input), calibrated once and cached."""
    onnx = require("onnx", "runtime 'int8' (ONNX Runtime's quantization)")
    q = require("onnxruntime.quantization", "runtime 'int8' (ONNX Runtime's quantization)")
    quant_pre_process = require("onnxruntime.quantization.shape_inference", "runtime 'int8'").quant_pre_process

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
        # the quantizer logs a line per clipped bias (channels whose folded weights are ~0) on the root logger; the
        # graph's deviation, measured next, is what tells whether it matters
        root, level = logging.getLogger(), logging.getLogger().level
        root.setLevel(logging.ERROR)
        try:
            q.quantize_static(str(pre), str(out), _Reader(iter(calibration.batches()), graph.input[0].name),
                              quant_format=q.QuantFormat.QDQ, activation_type=q.QuantType.QUInt8,
                              weight_type=q.QuantType.QInt8, per_channel=True, reduce_range=recipe.reduce_range,
                              nodes_to_exclude=recipe.excluded(graph), calibrate_method=q.CalibrationMethod.MinMax,
                              extra_options={"TensorQuantOverrides": recipe.overrides(graph, q.QuantType.QUInt8)})
        finally:
            root.setLevel(level)
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
