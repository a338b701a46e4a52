"""How fast feature extraction runs here, against this machine's own ceiling and the practical's usual code.

Every configuration runs in a child process of its own (``python -m transferlab.bench.child --child
SPEC``, :mod:`~transferlab.bench.child`), so its peak memory is its own (``wait4``'s ``ru_maxrss``: the
largest process of the child's tree) and no state leaks between configurations. Rounds are interleaved — round 1
runs every configuration once, then round 2, … — so a machine whose load changes (shared machines do) slows every
configuration alike; medians and min–max are taken over rounds. Ratios (speed-up, share of the ceiling) are
between numbers of the same run.

Configurations:

* ``ceiling-<numerics>``: the fastest this torch build computes on this machine in fp32 (and bf16/fp16 when a
  row runs in it), in GFLOP/s: an n×n matmul through torch.mm (MKL on a CPU) and through oneDNN, and each
  distinct convolution/linear layer of the benchmarked network alone, at the bench batch size, through every
  way the rows run it (the baseline's NCHW ``no_grad``, each runtime). A network's GFLOP/s is a time-weighted
  mean of its layers' rates plus overhead, so it cannot beat the fastest of them: the ceiling is the best
  kernel's best round (:mod:`~transferlab.bench.ceiling`).
* ``baseline``: the practical's notebook code: PIL and per-image transforms (normalisation included) in a
  Dataset, a DataLoader with batch 8 in one process, the eager fp32 NCHW network under ``no_grad``.
* ``network``: the default runtime on already-decoded images (no decoding at all): the network's own speed.
* ``pipeline``: the extractor with the network removed (decode, resize, batch, cache writes only).
* ``extractor-<runtime>``: the project's :class:`~transferlab.features.extractor.Extractor` in each runtime,
  end to end from files to the feature cache.

Without a dataset the images are cut from the sample photos that ship with scikit-image and scikit-learn, and
accuracy is not measured.
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tabulate import tabulate

from transferlab.data.datasets import load_dataset
from transferlab.data.samples import SAMPLES, sample_array
from transferlab.features.extractor import FeatureNet, default_workers
from transferlab.features.quantize import recipe_for, training_calibration
from transferlab.features.runtimes import RUNTIMES, TOLERANCE, check_runtime, deviation
from transferlab.models.builder import default_feature_layer
from transferlab.bench.child import BenchConfig, load_weights, run_child, weights_tag
from transferlab.machine import ISA_FLAGS, cpu_info, onednn_bf16
from transferlab.bench.ceiling import gflop_per_image
from transferlab.config import RunConfig
from transferlab.experiment import run_experiment

__all__ = ["BenchConfig", "accuracy_comparison", "bench_paths", "default_runtimes", "format_report", "run_bench",
           "skipped_runtimes"]

FULL_15SCENE = 4485  # images in 15 Scene (train + test), for the projected full extraction time


def skipped_runtimes(device: str) -> dict[str, str]:
    """Runtimes that run on ``device`` but are left out of the default set there, with the reason."""
    if device.startswith("cuda"):
        return {"int8": "ONNX Runtime's int8 kernels run on the CPU"}
    if onednn_bf16():
        return {}
    return {"bf16": "this CPU has no oneDNN bf16 kernels, which need AVX-512 BW/VL/DQ or AVX-NE-CONVERT, and "
                    "PyTorch's fallback is far slower than fp32; ask for it with --runtime bf16"}


def default_runtimes(device: str) -> list[str]:
    """Every runtime that runs at speed on ``device`` (fp16 is GPU mixed precision, int8 the CPU's)."""
    return [r for r in RUNTIMES if r not in skipped_runtimes(device) and (r != "fp16" or device.startswith("cuda"))]


def _sample_photos(n: int, folder: Path, start: int = 0) -> list[Path]:
    """``n`` distinct JPEG files cut from the sample photos of scikit-image and scikit-learn (80% crops at distinct
    offsets): real photos offline, and no two files alike for the extractor's cache to merge. Crops ``start`` to
    ``start + n - 1`` of one fixed sequence: calls with disjoint ranges give disjoint sets."""
    arrays = [sample_array(name) for name in SAMPLES]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        a = arrays[i % len(arrays)]
        h, w = a.shape[:2]
        ch, cw = int(h * 0.8), int(w * 0.8)
        rows, cols = h - ch + 1, w - cw + 1
        # a prime above rows*cols steps through every offset once, spread over the photo
        y, x = divmod(i // len(arrays) * 1_000_003 % (rows * cols), cols)
        paths.append(folder / f"sample-{i:05d}.jpg")
        Image.fromarray(a[y:y + ch, x:x + cw]).save(paths[-1], quality=90)
    return paths


def bench_paths(data: str | None, n: int, folder: Path) -> list[Path]:
    """``n`` images spread evenly over the dataset (every class), in a fixed order; without a dataset, ``n``
    sample photos written to ``folder``."""
    if data is None:
        return _sample_photos(n, folder)
    paths = list(load_dataset(data).paths)
    if n >= len(paths):
        return paths
    step = len(paths) / n
    return [paths[int(i * step)] for i in range(n)]


def calibration_paths(cfg: BenchConfig, folder: Path) -> list[Path]:
    """The int8 row's calibration images: the dataset's training images, else sample photos other than the
    timed ones (crops after theirs)."""
    if cfg.data is None:
        return _sample_photos(cfg.calibration_images, folder, start=cfg.images)
    return training_calibration(load_dataset(cfg.data), cfg.calibration_images)


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def accuracy_comparison(cfg: BenchConfig, runtimes: list[str]) -> dict:
    """LinearSVC accuracy per numerics label on the dataset's first K images per class and split."""
    out = {}
    for runtime in runtimes:
        label = RUNTIMES[runtime]
        if label in out:
            continue  # exact modes share their features (and so their accuracy)
        rc = RunConfig(data=cfg.data, model=cfg.model, weights=weights_tag(cfg), layers=[cfg.layer],
                       pool=cfg.pool, limit_per_class=cfg.accuracy_per_class, runtime=runtime,
                       calibration_images=cfg.calibration_images,
                       batch_size=cfg.batch_size, workers=cfg.workers, device=cfg.device, cache=cfg.cache,
                       progress=False)
        res = run_experiment(rc)
        out[label] = {"runtime": runtime, "accuracy": res.accuracy, "train_images": res.runs[0].train_images,
                      "test_images": res.runs[0].test_images,
                      "numerics": res.provenance.extra["feature_specs"][0]["numerics"]}
    return out


def _ceilings(results: dict[str, list[dict]]) -> dict:
    """Per numerics: every kernel's GFLOP/s over rounds, and the ceiling — the best round of the best kernel."""
    out = {}
    for name, rounds in results.items():
        if not name.startswith("ceiling-"):
            continue
        kernels = {k: _stats([r["kernels"][k] for r in rounds]) for k in rounds[0]["kernels"]}
        best = max(kernels, key=lambda k: kernels[k]["max"])
        out[name.removeprefix("ceiling-")] = {"best": kernels[best]["max"], "kernel": best, **kernels[best],
                                              "kernels": kernels}
    return out


def run_bench(cfg: BenchConfig, log=lambda msg: None) -> dict:
    runtimes = cfg.runtimes or default_runtimes(cfg.device)
    for r in runtimes:
        check_runtime(r, cfg.device)  # before any child starts: one line for a missing package or device
    model = load_weights(cfg)
    cfg = replace(cfg, layer=cfg.layer or default_feature_layer(model)[0])
    workers = default_workers() if cfg.workers is None else cfg.workers
    shape = (3, model.preprocess.crop, model.preprocess.crop)
    gflop = gflop_per_image(FeatureNet(model.net, [(cfg.layer, cfg.pool)]).eval(), shape)
    numerics = list(dict.fromkeys(["fp32"] + [RUNTIMES[r] for r in runtimes]))
    names = ([f"ceiling-{n}" for n in numerics] + ["baseline", "network", "pipeline"]
             + [f"extractor-{r}" for r in runtimes])
    work = Path(tempfile.mkdtemp(prefix="transferlab-bench-"))
    results: dict[str, list[dict]] = {n: [] for n in names}
    try:
        paths = bench_paths(cfg.data, cfg.images, work / "images")
        calibration = calibration_paths(cfg, work / "calibration") if "int8" in runtimes else []
        for rnd in range(cfg.repeats):
            for name in names:
                spec = {"name": name, "config": asdict(cfg), "paths": [str(p) for p in paths],
                        "runtime": name.split("-", 1)[1] if name.startswith("extractor-") else "eager",
                        "numerics": name.removeprefix("ceiling-"), "runtimes": runtimes,
                        "calibration": [str(p) for p in calibration],
                        "work": str(work / f"{name}-{rnd}"),
                        "save": str(work / f"{name}.npy") if rnd == cfg.repeats - 1 and name != "pipeline" else None}
                log(f"round {rnd + 1}/{cfg.repeats}: {name}")
                results[name].append(run_child(spec, work / f"{name}-{rnd}"))
                shutil.rmtree(work / f"{name}-{rnd}", ignore_errors=True)
        reference = np.load(work / "extractor-eager.npy") if "eager" in runtimes else np.load(work / "network.npy")
        devs = {n: deviation(reference, np.load(work / f"{n}.npy")) for n in names if (work / f"{n}.npy").exists()}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ceiling = _ceilings(results)
    base = statistics.median(r["value"] for r in results["baseline"])
    rows = []
    for name in names[len(numerics):]:
        runtime = name.split("-", 1)[1] if name.startswith("extractor-") else (
            "eager" if name in ("network", "pipeline") else "eager (NCHW, no_grad)")
        row_numerics = RUNTIMES.get(runtime, "fp32")
        ips = _stats([r["value"] for r in results[name]])
        row = {"config": name, "runtime": runtime, "numerics": row_numerics,
               "batch": cfg.baseline_batch if name == "baseline" else cfg.batch_size,
               "workers": 0 if name in ("baseline", "network") else workers,
               "images_per_s": ips, "peak_mb": max(r["peak_mb"] for r in results[name]),
               "speedup": ips["median"] / base}
        if name != "pipeline":
            row.update(gflops=ips["median"] * gflop,
                       share_of_ceiling=ips["median"] * gflop / ceiling[row_numerics]["best"],
                       max_rel_error=devs.get(name),
                       tolerance=TOLERANCE.get(runtime) if name.startswith("extractor-") else None)
        if name.startswith("extractor-"):
            row["full_15scene_minutes"] = FULL_15SCENE / ips["median"] / 60
        rows.append(row)
    result = {
        "model": model.label(), "layer": cfg.layer, "pool": cfg.pool, "gflop_per_image": gflop,
        "data": cfg.data or "sample photos (scikit-image, scikit-learn)",
        "images": len(paths), "repeats": cfg.repeats, "device": cfg.device, "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "cpu": cpu_info(), "default_workers": workers, "matmul_size": cfg.matmul_size,
        "ceiling_gflops": ceiling, "baseline_images_per_s": base, "rows": rows,
        **({"int8_calibration": {"images": len(calibration), "recipe": recipe_for(model.net).tag,
                                 "from": "sample photos other than the timed ones" if cfg.data is None
                                 else f"training images of {cfg.data}"}} if calibration else {}),
        "over_ceiling": [r["config"] for r in rows if r.get("share_of_ceiling", 0) > 1],
        "runtimes_skipped": {} if cfg.runtimes else skipped_runtimes(cfg.device),
        "decode_headroom": statistics.median(r["value"] for r in results["pipeline"])
        / max(statistics.median(r["value"] for r in results[n]) for n in names if n.startswith("extractor-")),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if cfg.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name(cfg.device)
    if cfg.accuracy_per_class and cfg.data:
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


def _ceiling_lines(res: dict) -> list[str]:
    """Per numerics: the ceiling, then the best kernel of each family (matmuls, the layers run each way)."""
    lines = []
    for numerics, c in res["ceiling_gflops"].items():
        unit = "GOP/s" if numerics == "int8" else "GFLOP/s"  # integer operations
        lines.append(f"ceiling {numerics}: {c['best']:.1f} {unit} → {c['best'] / res['gflop_per_image']:.2f} img/s, "
                     f"best round of {c['kernel']} (median {c['median']:.1f} [{c['min']:.1f}–{c['max']:.1f}])")
        best = {}  # family (the part of a kernel's name before ':') -> its fastest kernel
        for name, k in c["kernels"].items():
            family = name.split(":")[0]
            if family not in best or k["max"] > c["kernels"][best[family]]["max"]:
                best[family] = name
        lines.append("  best of each: "
                     + "; ".join(f"{name} {c['kernels'][name]['max']:.1f}" for name in best.values()))
    return lines


def format_report(res: dict) -> str:
    cpu = res["cpu"]
    lines = [
        f"{res['model']} up to {res['layer']} ({res['pool']}): {res['gflop_per_image']:.2f} GFLOP per image; "
        f"{res['images']} images of {res['data']} × {res['repeats']} rounds on {res['device']} "
        f"({res['cpu_count']} CPUs, {res['torch_threads']} torch threads, {res['default_workers']} decode workers)",
        f"CPU: {cpu['model']}; ISA: {' '.join(cpu['isa']) or 'none of ' + '/'.join(ISA_FLAGS[:3])}; torch "
        f"{res['torch']} kernels {cpu['torch_capability']}, oneDNN bf16 {'yes' if cpu['onednn_bf16'] else 'no'}"
        + (f"; GPU: {res['gpu']}" if "gpu" in res else ""),
        *_ceiling_lines(res),
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
    if "accuracy" not in res:
        lines.append("accuracy: not measured (it needs a labelled dataset: --data DIR or 15scene)")
    if "int8_calibration" in res:
        c = res["int8_calibration"]
        lines.append(f"int8: {c['recipe']}, calibrated on {c['images']} {c['from']}")
    for runtime, why in res["runtimes_skipped"].items():
        lines.append(f"not measured: runtime {runtime} ({why})")
    if res["over_ceiling"]:
        lines.append(f"WARNING: {', '.join(res['over_ceiling'])} ran above the ceiling: the machine's load changed "
                     f"between configurations, or a faster kernel was left out of the ceiling")
    lines.append("of ceiling: median GFLOP/s over the ceiling of the row's numerics; max rel err: against "
                 "extractor-eager features of the same images")
    return "\n".join(lines)
