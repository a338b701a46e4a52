"""How fast feature extraction runs here, against this machine's own ceiling and the practical's usual code.

Every configuration runs in a child process of its own (``python -m transferlab.bench --child SPEC``), so its
peak memory is its own (``wait4``'s ``ru_maxrss``: the largest process of the child's tree) and no state leaks
between configurations. Rounds are interleaved — round 1 runs every configuration once, then round 2, … — so a
machine whose load changes (shared machines do) slows every configuration alike; medians and min–max are taken
over rounds. Ratios (speed-up, share of the ceiling) are between numbers of the same run.

Configurations:

* ``matmul-fp32`` / ``matmul-bf16``: an n×n matmul (n = 4096 by default), GFLOP/s — the ceiling.
* ``baseline``: the practical's notebook code: PIL and per-image transforms (normalisation included) in a
  Dataset, a DataLoader with batch 8 in one process, the eager fp32 NCHW network under ``no_grad``.
* ``network``: the default runtime on already-decoded images (no decoding at all): the network's own speed.
* ``pipeline``: the extractor with the network removed (decode, resize, batch, cache writes only).
* ``extractor-<runtime>``: the project's :class:`~transferlab.features.extract.Extractor` in each runtime,
  end to end from files to the feature cache.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .features.runtime import RUNTIMES, TOLERANCE, deviation

FULL_15SCENE = 4485  # images in 15 Scene (train + test), for the projected full extraction time


@dataclass
class BenchConfig:
    data: str = "15scene"
    model: str = "vgg16"
    weights: str = "auto"
    layer: str = "pool5"
    pool: str = "avg"
    images: int = 96
    repeats: int = 3
    batch_size: int = 16
    workers: int | None = None
    device: str = "cpu"
    runtimes: list[str] = field(default_factory=list)  # empty: every runtime that runs on the device
    matmul_size: int = 4096
    accuracy_per_class: int = 8  # 0: skip the accuracy comparison
    cache: str | None = None  # feature cache of the accuracy comparison (default: the user cache)
    baseline_batch: int = 8


def default_runtimes(device: str) -> list[str]:
    return [r for r in RUNTIMES if r != "fp16" or device.startswith("cuda")]


def bench_paths(data: str, n: int) -> list[Path]:
    """``n`` images spread evenly over the dataset (every class), in a fixed order."""
    from .datasets import load_dataset

    paths = list(load_dataset(data).paths)
    if n >= len(paths):
        return paths
    step = len(paths) / n
    return [paths[int(i * step)] for i in range(n)]


def weights_tag(cfg: BenchConfig) -> str:
    if cfg.weights == "auto" and cfg.model == "vgg16":
        return "imagenet-conv"  # the offline file that reaches pool5 (conv layers are all the bench runs)
    return cfg.weights


def load_weights(cfg: BenchConfig):
    from .registry import load_model

    return load_model(cfg.model, weights_tag(cfg))


def gflop_per_image(net: nn.Module, shape: tuple[int, ...]) -> float:
    """GFLOP (2 × multiply-accumulates) of convolutions and linear layers for one input of ``shape``."""
    macs = []

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            macs.append(out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        elif isinstance(m, nn.Linear):
            macs.append(out.numel() * m.in_features)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.inference_mode():
            net(torch.zeros(1, *shape))
    finally:
        for h in handles:
            h.remove()
    return 2 * sum(macs) / 1e9


# ------------------------------------------------------------------------------------------- child process


def _sync(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _child_matmul(spec: dict) -> dict:
    n, device = spec["matmul_size"], spec["device"]
    dtype = torch.bfloat16 if spec["name"].endswith("bf16") else torch.float32
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
    times = []
    for i in range(4):
        _sync(device)
        t = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        if i:  # the first is a warm-up
            times.append(time.perf_counter() - t)
    return {"value": 2 * n**3 / statistics.median(times) / 1e9}


class _PracticalDataset(torch.utils.data.Dataset):
    """The notebook's way: PIL open, resize, centre crop, to tensor, normalise — per image, in Python."""

    def __init__(self, paths, preprocess):
        self.paths, self.p = paths, preprocess
        self.mean = torch.tensor(preprocess.mean).view(3, 1, 1)
        self.std = torch.tensor(preprocess.std).view(3, 1, 1)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

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
    from .features.cache import FeatureCache
    from .features.extract import Extractor, FeatureNet

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
                    device=cfg.device, cache=FeatureCache(work / "warmup"), progress=False)
    if name == "network":  # decoded beforehand: the network alone
        from .images import load_image

        run = ext.runner()
        x = torch.stack([ext.preprocess.pixels(load_image(p), ext.channels) for p in paths])
        run(x[:cfg.batch_size])  # warm-up
        t = time.perf_counter()
        feats = [run(x[i:i + cfg.batch_size])[0] for i in range(0, len(x), cfg.batch_size)]
        seconds = time.perf_counter() - t
        return {"value": len(paths) / seconds, "seconds": seconds, "features": np.concatenate(feats)}
    if name == "pipeline":  # the network removed: what decoding and the cache alone sustain
        ext._runner = lambda x: [np.zeros((x.shape[0], 1), np.float32) for _ in ext.outputs]
    ext.extract(paths[:cfg.batch_size])  # warm-up (and the ONNX export, if not cached yet)
    ext.cache = FeatureCache(work / "timed")
    r = ext.extract(paths)
    if r.bad:
        raise RuntimeError(f"bad benchmark images: {r.bad[:3]}")
    return {"value": r.images_per_s, "seconds": r.seconds, "features": r.features[outputs[0]]}


def child_main(spec: dict) -> None:
    cfg = BenchConfig(**spec["config"])
    work = Path(spec["work"])
    if spec["name"].startswith("matmul"):
        out = _child_matmul({**spec, **spec["config"]})
    else:
        paths = [Path(p) for p in spec["paths"]]
        out = _child_extract(spec, cfg, paths, work)
    feats = out.pop("features", None)
    if feats is not None and spec.get("save"):
        np.save(spec["save"], feats)
    print("BENCH-RESULT " + json.dumps(out), flush=True)


def run_child(spec: dict, work: Path) -> dict:
    """Run one configuration in a fresh process; its result plus the peak RSS of its process tree."""
    work.mkdir(parents=True, exist_ok=True)
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([sys.executable, "-m", "transferlab.bench", "--child", str(spec_file)],
                             stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        out = p.stdout.read()
        p.stdout.close()
        _, status, usage = os.wait4(p.pid, 0)  # this child's own rusage, not every child's so far
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        errors = err.read()
    lines = [line for line in out.splitlines() if line.startswith("BENCH-RESULT ")]
    if p.returncode or not lines:
        raise RuntimeError(f"benchmark configuration {spec['name']} failed (exit {p.returncode}):\n{errors[-3000:]}")
    result = json.loads(lines[-1][len("BENCH-RESULT "):])
    result["peak_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


# ---------------------------------------------------------------------------------------------- the bench


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def accuracy_comparison(cfg: BenchConfig, runtimes: list[str]) -> dict:
    """15 Scene (fixed split, first K images per class and split) LinearSVC accuracy per numerics label."""
    from .experiment import RunConfig, run_experiment

    out = {}
    for runtime in runtimes:
        label = RUNTIMES[runtime]
        if label in out:
            continue  # exact modes share their features (and so their accuracy)
        rc = RunConfig(data=cfg.data, model=cfg.model, weights=weights_tag(cfg), layers=[cfg.layer],
                       pool=cfg.pool, limit_per_class=cfg.accuracy_per_class, runtime=runtime,
                       batch_size=cfg.batch_size, workers=cfg.workers, device=cfg.device, cache=cfg.cache,
                       progress=False)
        res = run_experiment(rc)
        out[label] = {"runtime": runtime, "accuracy": res["accuracy"], "train_images": res["runs"][0]["train_images"],
                      "test_images": res["runs"][0]["test_images"],
                      "numerics": res["provenance"]["feature_specs"][0]["numerics"]}
    return out


def run_bench(cfg: BenchConfig, log=lambda msg: None) -> dict:
    runtimes = cfg.runtimes or default_runtimes(cfg.device)
    for r in runtimes:
        if r not in RUNTIMES:
            raise ValueError(f"unknown runtime {r!r}; choose from {', '.join(RUNTIMES)}")
    model = load_weights(cfg)
    from .features.extract import FeatureNet, default_workers

    workers = default_workers() if cfg.workers is None else cfg.workers
    shape = (3, model.preprocess.crop, model.preprocess.crop)
    gflop = gflop_per_image(FeatureNet(model.net, [(cfg.layer, cfg.pool)]).eval(), shape)
    paths = bench_paths(cfg.data, cfg.images)
    default_runtime = "eager"
    names = (["matmul-fp32", "matmul-bf16", "baseline", "network", "pipeline"]
             + [f"extractor-{r}" for r in runtimes])
    work = Path(tempfile.mkdtemp(prefix="transferlab-bench-"))
    results: dict[str, list[dict]] = {n: [] for n in names}
    try:
        for rnd in range(cfg.repeats):
            for name in names:
                spec = {"name": name, "config": asdict(cfg), "paths": [str(p) for p in paths],
                        "runtime": name.split("-", 1)[1] if name.startswith("extractor-") else default_runtime,
                        "work": str(work / f"{name}-{rnd}"),
                        "save": str(work / f"{name}.npy") if rnd == cfg.repeats - 1 and name != "pipeline" else None}
                log(f"round {rnd + 1}/{cfg.repeats}: {name}")
                results[name].append(run_child(spec, work / f"{name}-{rnd}"))
                shutil.rmtree(work / f"{name}-{rnd}", ignore_errors=True)
        reference = np.load(work / "extractor-eager.npy") if "eager" in runtimes else np.load(work / "network.npy")
        devs = {n: deviation(reference, np.load(work / f"{n}.npy")) for n in names if (work / f"{n}.npy").exists()}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ceiling = {"fp32": _stats([r["value"] for r in results["matmul-fp32"]]),
               "bf16": _stats([r["value"] for r in results["matmul-bf16"]])}
    base = statistics.median(r["value"] for r in results["baseline"])
    rows = []
    for name in names[2:]:
        runtime = name.split("-", 1)[1] if name.startswith("extractor-") else (
            "eager" if name in ("network", "pipeline") else "eager (NCHW, no_grad)")
        numerics = RUNTIMES.get(runtime, "fp32")
        ips = _stats([r["value"] for r in results[name]])
        row = {"config": name, "runtime": runtime, "numerics": numerics,
               "batch": cfg.baseline_batch if name == "baseline" else cfg.batch_size,
               "workers": 0 if name in ("baseline", "network") else workers,
               "images_per_s": ips, "peak_mb": max(r["peak_mb"] for r in results[name])}
        if name != "pipeline":
            ceil = ceiling["bf16" if numerics in ("bf16", "fp16") else "fp32"]["median"]
            row.update(gflops=ips["median"] * gflop, share_of_ceiling=ips["median"] * gflop / ceil,
                       share_of_fp32_ceiling=ips["median"] * gflop / ceiling["fp32"]["median"],
                       speedup=ips["median"] / base, max_rel_error=devs.get(name),
                       tolerance=TOLERANCE.get(runtime) if name.startswith("extractor-") else None)
        else:
            row.update(speedup=ips["median"] / base)
        if name.startswith("extractor-"):
            row["full_15scene_minutes"] = FULL_15SCENE / ips["median"] / 60
        rows.append(row)
    result = {
        "model": model.label(), "layer": cfg.layer, "pool": cfg.pool, "gflop_per_image": gflop,
        "images": len(paths), "repeats": cfg.repeats, "device": cfg.device, "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "default_workers": workers, "matmul_size": cfg.matmul_size,
        "ceiling_gflops": ceiling, "baseline_images_per_s": base, "rows": rows,
        "decode_headroom": statistics.median(r["value"] for r in results["pipeline"])
        / max(statistics.median(r["value"] for r in results[n]) for n in names if n.startswith("extractor-")),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if cfg.accuracy_per_class:
        log(f"accuracy: {cfg.data}, first {cfg.accuracy_per_class} images per class and split")
        result["accuracy"] = accuracy_comparison(cfg, runtimes)
        fp32 = result["accuracy"].get("fp32", {}).get("accuracy")
        for row in rows:
            acc = result["accuracy"].get(row["numerics"])
            if acc and row["config"].startswith("extractor-"):
                row["accuracy"] = acc["accuracy"]
                row["accuracy_delta_points"] = None if fp32 is None else 100 * (acc["accuracy"] - fp32)
    return result


def _fmt(v, spec="{:.2f}"):
    return "—" if v is None else spec.format(v)


def format_report(res: dict) -> str:
    from tabulate import tabulate

    c = res["ceiling_gflops"]
    lines = [
        f"{res['model']} up to {res['layer']} ({res['pool']}): {res['gflop_per_image']:.2f} GFLOP per image; "
        f"{res['images']} images × {res['repeats']} rounds on {res['device']} "
        f"({res['cpu_count']} CPUs, {res['torch_threads']} torch threads, {res['default_workers']} decode workers)",
        f"ceiling (matmul {res['matmul_size']}²): fp32 {c['fp32']['median']:.1f} GFLOP/s "
        f"[{c['fp32']['min']:.1f}–{c['fp32']['max']:.1f}] → "
        f"{c['fp32']['median'] / res['gflop_per_image']:.2f} img/s; "
        f"bf16 {c['bf16']['median']:.1f} GFLOP/s [{c['bf16']['min']:.1f}–{c['bf16']['max']:.1f}] → "
        f"{c['bf16']['median'] / res['gflop_per_image']:.2f} img/s",
    ]
    table = []
    for r in res["rows"]:
        ips = r["images_per_s"]
        table.append([r["config"], r["numerics"], r["batch"], r["workers"],
                      f"{ips['median']:.2f} [{ips['min']:.2f}–{ips['max']:.2f}]", _fmt(r.get("gflops"), "{:.1f}"),
                      _fmt(r.get("share_of_ceiling"), "{:.0%}"), f"{r['speedup']:.2f}×", f"{r['peak_mb']:.0f}",
                      _fmt(r.get("max_rel_error"), "{:.1e}"), _fmt(r.get("accuracy"), "{:.4f}"),
                      _fmt(r.get("full_15scene_minutes"), "{:.1f}")])
    lines.append(tabulate(table, headers=["config", "numerics", "batch", "workers", "img/s median [min–max]",
                                          "GFLOP/s", "of ceiling", "vs baseline", "peak MB", "max rel err",
                                          "accuracy", "15 Scene min"]))
    lines.append(f"decoding headroom: the pipeline without the network runs {res['decode_headroom']:.1f}× faster "
                 f"than the fastest extractor (network-bound when > 1)")
    for label, a in res.get("accuracy", {}).items():
        lines.append(f"accuracy {label} ({a['runtime']}): {a['accuracy']:.4f} "
                     f"(train {a['train_images']}, test {a['test_images']}, LinearSVC C=1, L2)")
    lines.append("share of ceiling: of the fp32 matmul ceiling for fp32 rows, of the bf16 one for bf16/fp16 rows; "
                 "max rel err: against extractor-eager features of the same images")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(json.loads(Path(sys.argv[2]).read_text()))
    else:
        sys.exit("usage: transferlab bench (this module's own entry point is for its child processes)")
