"""Execution modes of a feature network: how a batch of pixels becomes feature arrays on this machine.

=========  =========  ==================================================================================
runtime    numerics   what runs
=========  =========  ==================================================================================
eager      fp32       PyTorch, channels_last, inference_mode, float32 throughout (TF32 off on a GPU). The
                      default: the fastest exact mode measured on a 2-core AVX-512 CPU (``transferlab bench``).
onnx       fp32       the same network exported once to ONNX (cached on disk) and run by ONNX Runtime
                      (CPU provider; CUDA provider with ``device="cuda"``). Float32 arithmetic with another
                      summation order: equal to ``eager`` within float32 rounding, so it shares its cache entries.
bf16       bf16       PyTorch autocast to bfloat16 (AVX512_BF16/AMX on CPU, tensor cores on a GPU). Faster, not
                      exact: its features are cached and recorded under their own numerics label.
fp16       fp16       PyTorch autocast to float16: GPU mixed precision (``device="cuda"`` only).
int8       int8       the ONNX export quantized to 8-bit integers after training (QDQ, u8 activations ×
                      per-channel weights, calibrated on training images; the recipe follows the CPU and the
                      network's family: :mod:`~transferlab.features.quantize`) and run by ONNX Runtime on the
                      CPU. Keyed and recorded with its calibration identity, which names the recipe.
=========  =========  ==================================================================================

``TOLERANCE`` is each runtime's stated bound on :func:`deviation` from ``eager`` features; the tests hold every
runtime to it on real images, and the benchmark reports the measured value.
"""
from __future__ import annotations

import contextlib
import logging
import hashlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transferlab.extras import require
from transferlab.features.quantize import CHECK_IMAGES, Calibration, int8_deviation, quantize, store_int8_deviation
from transferlab.files import atomic_path, cache_dir
from transferlab.options import RUNTIMES

# runtime -> stated bound on deviation() from eager fp32 features of the same images; the measured values are in
# benchmarks/README.md and docs/export.md (int8: VGG16 and EfficientNet-Lite0, each under its family's recipe)
TOLERANCE = {"eager": 0.0, "onnx": 1e-4, "bf16": 0.2, "fp16": 0.05, "int8": 0.2}

ONNX_OPSET = 18  # the dynamo exporter's own; it converts to others through onnxscript's version converter
# torch.onnx's exporter: "dynamo" (torch.export + onnxscript, the one torch keeps; the TorchScript-based one is
# deprecated). Part of the export's cache key, so graphs of the two never mix
ONNX_EXPORTER = "dynamo"
# ONNX Runtime's CPU convolutions gain nothing from large batches but hold every image's buffers at once:
# VGG16 in chunks of 4 peaked ~0.25 GB lower than batch 16, at the same speed
ONNX_CPU_CHUNK = 4
# the optional packages (the onnx extra) that the runtimes running an ONNX export need: torch.onnx's dynamo exporter
# builds the graph with onnxscript and onnx, ONNX Runtime runs it (and quantizes it for int8)
ONNX_PACKAGES = ("onnxruntime", "onnx", "onnxscript")
ONNX_RUNTIMES = ("onnx", "int8")


def deviation(reference: np.ndarray, other: np.ndarray) -> float:
    """Max relative error of ``other`` against ``reference`` features (N, D): the largest absolute difference
    of a row, relative to that row's largest magnitude (per-element relative error is meaningless for the many
    near-zero entries of ReLU features), maximised over rows."""
    reference, other = np.asarray(reference, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if reference.shape != other.shape:
        raise ValueError(f"feature shapes differ: {reference.shape} vs {other.shape}")
    if reference.size == 0:
        return 0.0
    scale = np.abs(reference).max(axis=1)
    err = np.abs(other - reference).max(axis=1)
    return float(np.max(err / np.maximum(scale, np.finfo(np.float32).tiny)))


def check_runtime(runtime: str, device: str = "cpu") -> None:
    """One line, before any work, when ``runtime`` cannot run on ``device`` here: an unknown runtime, a GPU mode on
    the CPU (or the reverse), no CUDA device, or a missing optional package (which names the extra to install)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime == "int8" and device != "cpu":
        raise ValueError("runtime 'int8' runs on the CPU (ONNX Runtime's int8 kernels); on a GPU use fp16 or bf16")
    if runtime == "fp16" and not device.startswith("cuda"):
        raise ValueError("runtime 'fp16' is GPU mixed precision: use it with --device cuda (on a CPU use bf16)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device}: no CUDA device is available to this PyTorch ({torch.__version__})")
    for module in ONNX_PACKAGES if runtime in ONNX_RUNTIMES else ():
        require(module, f"runtime {runtime!r}")


def make_runner(net: nn.Module, runtime: str = "eager", device: str = "cpu",
                calibration: Calibration | None = None) -> Callable[[torch.Tensor], list[np.ndarray]]:
    """A callable: (N, C, H, W) float batch → one float32 array (N, D) per output of ``net``. ``int8`` needs
    its ``calibration`` (training images); the other runtimes take none."""
    check_runtime(runtime, device)
    if (runtime == "int8") != (calibration is not None):
        raise ValueError("runtime 'int8' needs calibration images (training images only)" if runtime == "int8"
                         else f"calibration images are for runtime 'int8', not {runtime!r}")
    if runtime == "onnx":
        return _onnx_runner(device, lambda shape: export_onnx(net, shape))
    if runtime == "int8":
        return _onnx_runner(device, lambda shape: checked_int8(export_onnx(net, shape), calibration))
    net = net.eval().to(device).to(memory_format=torch.channels_last)
    cuda = device.startswith("cuda")
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(runtime)

    def numerics():
        if autocast is not None:
            return torch.autocast("cuda" if cuda else "cpu", dtype=autocast)
        if cuda:  # exact fp32: no TF32 convolutions (cuDNN's default on Ampere and later)
            return torch.backends.cudnn.flags(enabled=True, benchmark=True, allow_tf32=False)
        return contextlib.nullcontext()

    def run(x: torch.Tensor) -> list[np.ndarray]:
        with torch.inference_mode(), numerics():
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            outs = net(x)
        return [o.float().cpu().numpy() for o in outs]

    return run


def checked_int8(fp32: Path, calibration: Calibration) -> Path:
    """The int8 graph of ``fp32``; its deviation from ``fp32`` on the first ``CHECK_IMAGES`` calibration images is
    measured once and stored beside it, and a warning says when it is beyond ``TOLERANCE['int8']``."""
    path = quantize(fp32, calibration)
    found = int8_deviation(path)
    if found is None:
        found = _int8_deviation_now(fp32, path, calibration)
        store_int8_deviation(path, found, min(CHECK_IMAGES, calibration.images))
    warn_int8(found)
    return path


def warn_int8(found: float) -> None:
    if found > TOLERANCE["int8"]:
        warnings.warn(f"int8 features of this network deviate up to {found:.2f} from fp32 on calibration images "
                      f"(bound {TOLERANCE['int8']}): the int8 recipe does not suit it; use --runtime onnx or eager",
                      stacklevel=3)


def _int8_deviation_now(fp32: Path, int8: Path, calibration: Calibration) -> float:
    """The largest deviation of the int8 graph's float outputs from the fp32 graph's, on the first
    ``CHECK_IMAGES`` calibration images."""
    ort = require("onnxruntime", "runtime 'int8'")
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32, int8)]
    name = sessions[0].get_inputs()[0].name
    worst, seen = 0.0, 0
    for x in calibration.batches():
        x = np.ascontiguousarray(x)[:CHECK_IMAGES - seen]
        ref, got = (s.run(None, {name: x}) for s in sessions)
        worst = max(worst, *(deviation(r, o) for r, o in zip(ref, got) if np.issubdtype(r.dtype, np.floating)))
        seen += len(x)
        if seen >= CHECK_IMAGES:
            break
    return round(worst, 4)


# ---------------------------------------------------------------------------------------------------- ONNX


def onnx_key(net: nn.Module, input_shape: tuple[int, ...]) -> str:
    """What an exported graph depends on: the parameters and buffers themselves (so the weights, whatever their
    tag, and any gray adaptation), the module structure and outputs, the input size, the exporter."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(net).encode())
    h.update(repr(getattr(net, "outputs", None)).encode())
    h.update(repr(tuple(input_shape)).encode())
    h.update(f"torch={torch.__version__} opset={ONNX_OPSET} exporter={ONNX_EXPORTER}".encode())
    for name, t in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def require_onnx(purpose: str = "an ONNX export or runtime") -> None:
    """One line naming the extra when a package of the ONNX modes is missing (onnx, onnxruntime, and onnxscript:
    torch.onnx's dynamo exporter builds its graphs with it)."""
    for module in ONNX_PACKAGES:
        require(module, purpose)


# the exporter logs a warning per torchvision operator it cannot register when torchvision is absent (it is, here)
EXPORTER_LOG = "torch.onnx._internal.exporter._registration"


@contextlib.contextmanager
def _quiet(logger: str):
    """``logger`` kept to errors for the block."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def export_onnx(net: nn.Module, input_shape: tuple[int, ...], folder: Path | None = None, *,
                dtype: torch.dtype = torch.float32, input_name: str = "pixels",
                output_names: list[str] | None = None) -> Path:
    """``net`` as an ONNX file for ``dtype`` inputs (N, *input_shape), N dynamic, by torch.onnx's dynamo
    exporter; exported once, reused from the cache. Outputs are ``out0``, ``out1``, … unless ``output_names``."""
    require_onnx()
    net = net.eval().cpu().to(memory_format=torch.contiguous_format)
    folder = Path(folder) if folder else cache_dir() / "onnx"
    path = folder / f"{onnx_key(net, input_shape)}.onnx"
    if path.exists():
        return path
    names = output_names or [f"out{i}" for i in range(len(getattr(net, "outputs", [None])))]
    with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), _quiet(EXPORTER_LOG):
        warnings.simplefilter("ignore")  # and its progress lines go: they are not the user's business
        program = torch.onnx.export(net, (torch.zeros(2, *input_shape, dtype=dtype),), dynamo=True,
                                    opset_version=ONNX_OPSET, input_names=[input_name], output_names=names,
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), verbose=False)
        with atomic_path(path) as tmp:  # a concurrent exporter writes the same bytes
            program.save(str(tmp))
    return path


def _onnx_runner(device: str, graph: Callable[[tuple[int, ...]], Path]):
    """ONNX Runtime over the ONNX file ``graph(input shape)`` (made once per input shape)."""
    ort = require("onnxruntime", "running an ONNX graph (runtime onnx or int8)")

    cuda = device.startswith("cuda")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    if cuda and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise RuntimeError("runtime 'onnx' on cuda needs onnxruntime-gpu (this onnxruntime has no CUDA provider)")
    sessions: dict[tuple[int, ...], ort.InferenceSession] = {}

    def session(shape):
        if shape not in sessions:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = torch.get_num_threads()
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.enable_cpu_mem_arena = False  # the arena keeps every batch's peak: ~0.2 GB more, no faster here
            opts.enable_mem_pattern = False
            sessions[shape] = ort.InferenceSession(str(graph(shape)), opts, providers=providers)
        return sessions[shape]

    def run(x: torch.Tensor) -> list[np.ndarray]:
        x = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        sess = session(tuple(x.shape[1:]))
        step = len(x) if cuda else ONNX_CPU_CHUNK
        parts = [sess.run(None, {"pixels": x[i:i + step]}) for i in range(0, len(x), step)]
        return [np.concatenate([np.asarray(p[j], dtype=np.float32) for p in parts]) for j in range(len(parts[0]))]

    return run
