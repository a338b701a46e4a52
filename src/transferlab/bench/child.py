"""What each configuration of the bench runs, in a child process of its own
(``python -m transferlab.bench.child --child SPEC``), and :func:`run_child`, which starts one.

A child's peak memory is measured (``wait4``'s ``ru_maxrss``), so this module imports only what a child needs:
not :mod:`transferlab.bench.runner`, whose accuracy comparison and text report pull in the classifiers,
matplotlib and tabulate. The configurations are described in :mod:`transferlab.bench.runner`.
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from transferlab.data.images import load_image
from transferlab.extras import MissingExtra
from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import Extractor, FeatureNet
from transferlab.models.builder import load_model
from transferlab.bench.ceiling import best_seconds, layer_kernels, matmul_kernels
from transferlab.bench.ceiling_int8 import int8_kernels

RESULT, MISSING = "BENCH-RESULT ", "BENCH-MISSING "  # a child's last line: its result, or the package it lacks


@dataclass
class BenchConfig:
    data: str | None = None  # None: the sample photos (no accuracy)
    model: str = "vgg16"
    weights: str = "auto"
    layer: str | None = None  # None: the model's default feature layer
    pool: str = "avg"
    images: int = 96
    repeats: int = 3
    batch_size: int = 16
    workers: int | None = None
    device: str = "cpu"
    runtimes: list[str] = field(default_factory=list)  # empty: default_runtimes(device)
    matmul_size: int = 4096
    accuracy_per_class: int = 8  # 0: skip the accuracy comparison (skipped anyway without a labelled dataset)
    calibration_images: int = 32  # of the int8 row: training images (with a dataset) or sample photos unlike the timed
    cache: str | None = None  # feature cache of the accuracy comparison (default: the user cache)
    baseline_batch: int = 8


def weights_tag(cfg: BenchConfig) -> str:
    if cfg.weights == "auto" and cfg.model == "vgg16":
        return "imagenet-conv"  # the offline file that reaches pool5 (conv layers are all the bench runs)
    return cfg.weights


def load_weights(cfg: BenchConfig):
    return load_model(cfg.model, weights_tag(cfg))


def _child_ceiling(spec: dict, cfg: BenchConfig, work: Path) -> dict:
    numerics, device = spec["numerics"], cfg.device
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
    model = load_weights(cfg)
    os.environ["TRANSFERLAB_CACHE"] = str(work / "cache")  # after loading the weights: per-layer ONNX exports only
    if numerics == "int8":
        kernels = int8_kernels(model, (cfg.layer, cfg.pool), cfg.batch_size, cfg.matmul_size)
    else:
        kernels = itertools.chain(matmul_kernels(cfg.matmul_size, numerics, device),
                                  layer_kernels(model, (cfg.layer, cfg.pool), cfg.batch_size, numerics,
                                                spec["runtimes"], device))
    return {"kernels": {name: gflop / best_seconds(fn, device) for name, fn, gflop in kernels}}


class _PracticalDataset(torch.utils.data.Dataset):
    """The notebook's way: PIL open, resize, centre crop, to tensor, normalise — per image, in Python."""

    def __init__(self, paths, preprocess):
        self.paths, self.p = paths, preprocess
        self.mean = torch.tensor(preprocess.mean).view(3, 1, 1)
        self.std = torch.tensor(preprocess.std).view(3, 1, 1)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        img = Image.open(self.paths[i]).convert("RGB")
        w, h = img.size
        s = self.p.resize / min(w, h)
        img = img.resize((int(w * s) if w > h else self.p.resize, int(h * s) if h > w else self.p.resize),
                         Image.BILINEAR)
        w, h = img.size
        left, top = int(round((w - self.p.crop) / 2.0)), int(round((h - self.p.crop) / 2.0))
        img = img.crop((left, top, left + self.p.crop, top + self.p.crop))
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return (x - self.mean) / self.std


def _child_extract(spec: dict, cfg: BenchConfig, paths: list[Path], work: Path) -> dict:
    model = load_weights(cfg)
    outputs = [(cfg.layer, cfg.pool)]
    name = spec["name"]
    if name == "baseline":
        net = FeatureNet(model.net, outputs).eval().to(cfg.device)
        model.net.input = nn.Identity()  # the notebook normalises in its transforms
        loader = torch.utils.data.DataLoader(_PracticalDataset(paths, model.preprocess),
                                             batch_size=cfg.baseline_batch, shuffle=False, num_workers=0)
        with torch.no_grad():
            net(next(iter(loader)).to(cfg.device))  # warm-up
            t = time.perf_counter()
            feats = [net(x.to(cfg.device))[0].cpu().numpy() for x in loader]
        seconds = time.perf_counter() - t
        return {"value": len(paths) / seconds, "seconds": seconds, "features": np.concatenate(feats)}

    runtime = spec.get("runtime", "eager")
    ext = Extractor(model, outputs, runtime=runtime, batch_size=cfg.batch_size, workers=cfg.workers,
                    device=cfg.device, cache=FeatureCache(work / "warmup"), progress=False,
                    calibration=spec["calibration"] if runtime == "int8" else None)
    if name == "network":  # decoded beforehand: the network alone
        run = ext.runner()
        x = torch.stack([ext.pixels(load_image(p)) for p in paths])
        run(x[:cfg.batch_size])  # warm-up
        t = time.perf_counter()
        feats = [run(x[i:i + cfg.batch_size])[0] for i in range(0, len(x), cfg.batch_size)]
        seconds = time.perf_counter() - t
        return {"value": len(paths) / seconds, "seconds": seconds, "features": np.concatenate(feats)}
    if name == "pipeline":  # the network removed: what decoding and the cache alone sustain
        ext._runner = lambda x: [np.zeros((x.shape[0], 1), np.float32) for _ in ext.outputs]
    ext.extract(paths[:cfg.batch_size])  # warm-up (and the ONNX export and quantization, if not cached yet)
    ext.cache = FeatureCache(work / "timed")
    r = ext.extract(paths)
    if r.bad:
        raise RuntimeError(f"bad benchmark images: {r.bad[:3]}")
    return {"value": r.images_per_s, "seconds": r.seconds, "features": r.features[outputs[0]]}


def child_main(spec: dict) -> None:
    cfg = BenchConfig(**spec["config"])
    work = Path(spec["work"])
    if spec["name"].startswith("ceiling-"):
        out = _child_ceiling(spec, cfg, work)
    else:
        paths = [Path(p) for p in spec["paths"]]
        out = _child_extract(spec, cfg, paths, work)
    feats = out.pop("features", None)
    if feats is not None and spec.get("save"):
        np.save(spec["save"], feats)
    print(RESULT + json.dumps(out), flush=True)


def run_child(spec: dict, work: Path) -> dict:
    """Run one configuration in a fresh process; its result plus the peak RSS of its process tree. A child that
    lacks an optional package ends with that one line (:class:`~transferlab.extras.MissingExtra`), not its
    traceback."""
    work.mkdir(parents=True, exist_ok=True)
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([sys.executable, "-m", "transferlab.bench.child", "--child", str(spec_file)],
                             stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        out = p.stdout.read()
        p.stdout.close()
        _, status, usage = os.wait4(p.pid, 0)  # this child's own rusage, not every child's so far
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        errors = err.read()
    missing = [line[len(MISSING):] for line in out.splitlines() if line.startswith(MISSING)]
    if missing:
        raise MissingExtra(f"benchmark configuration {spec['name']}: {missing[-1]}")
    lines = [line for line in out.splitlines() if line.startswith(RESULT)]
    if p.returncode or not lines:
        raise RuntimeError(f"benchmark configuration {spec['name']} failed (exit {p.returncode}):\n{errors[-3000:]}")
    result = json.loads(lines[-1][len(RESULT):])
    result["peak_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        try:
            child_main(json.loads(Path(sys.argv[2]).read_text()))
        except MissingExtra as e:
            print(MISSING + str(e), flush=True)
            sys.exit(3)
    else:
        sys.exit("usage: transferlab bench (this module's own entry point is for its child processes)")
