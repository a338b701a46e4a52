"""How fast feature extraction runs here, against this machine's own ceiling and the practical's usual code.

Every configuration runs in a child process of its own (``python -m transferlab.workflows.bench --child SPEC``), so its
peak memory is its own (``wait4``'s ``ru_maxrss``: the largest process of the child's tree) and no state leaks
between configurations. Rounds are interleaved — round 1 runs every configuration once, then round 2, … — so a
machine whose load changes (shared machines do) slows every configuration alike; medians and min–max are taken
over rounds. Ratios (speed-up, share of the ceiling) are between numbers of the same run.

Configurations:

* ``ceiling-<numerics>``: the fastest this torch build computes on this machine in fp32 (and bf16/fp16 when a
  row runs in it), in GFLOP/s: an n×n matmul through torch.mm (MKL on a CPU) and through oneDNN, and each
  distinct convolution/linear layer of the benchmarked network alone, at the bench batch size, through every
  way the rows run it (the baseline's NCHW ``no_grad``, each runtime). A network's GFLOP/s is a time-weighted
  mean of its layers' rates plus overhead, so it cannot beat the fastest of them: the ceiling is the best
  kernel's best round.
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

import copy
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transferlab.features.runtimes import RUNTIMES, TOLERANCE, deviation, make_runner
from transferlab.models.builder import default_feature_layer

FULL_15SCENE = 4485  # images in 15 Scene (train + test), for the projected full extraction time
# /proc/cpuinfo flags that decide fp32/bf16/int8 matmul and convolution speed, reported beside the ceiling
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16",
             "avx512_fp16", "avx_vnni", "avx_ne_convert", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
TIMED_CALLS = 2  # per kernel and round, after one warm-up call; the ceiling keeps the fastest


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
    cache: str | None = None  # feature cache of the accuracy comparison (default: the user cache)
    baseline_batch: int = 8


def onednn_bf16() -> bool:
    """Whether oneDNN has bf16 kernels on this CPU (AVX-512 BW/VL/DQ or AVX-NE-CONVERT); without them PyTorch's
    bf16 falls back to kernels measured 16× (convolution) to 450× (matmul) slower than fp32 on an AVX2 EPYC."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def skipped_runtimes(device: str) -> dict[str, str]:
    """Runtimes that run on ``device`` but are left out of the default set there, with the reason."""
    if device.startswith("cuda") or onednn_bf16():
        return {}
    return {"bf16": "this CPU has no oneDNN bf16 kernels, which need AVX-512 BW/VL/DQ or AVX-NE-CONVERT, and "
                    "PyTorch's fallback is far slower than fp32; ask for it with --runtime bf16"}


def default_runtimes(device: str) -> list[str]:
    """Every runtime that runs at speed on ``device`` (fp16 is GPU mixed precision)."""
    return [r for r in RUNTIMES if r not in skipped_runtimes(device) and (r != "fp16" or device.startswith("cuda"))]


def cpu_info() -> dict:
    """The CPU's model and the instruction-set extensions that set its matmul speed (Linux ``/proc/cpuinfo``),
    and the kernels PyTorch picked for it."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields:
        model += f" ({fields.get('vendor_id', '')} family {fields['cpu family']} model {fields.get('model', '?')})"
    flags = set(fields.get("flags", "").split())
    return {"model": model, "isa": [f for f in ISA_FLAGS if f in flags],
            "torch_capability": torch.backends.cpu.get_cpu_capability(), "onednn_bf16": onednn_bf16()}


def _sample_photos(n: int, folder: Path) -> list[Path]:
    """``n`` distinct JPEG files cut from the sample photos of scikit-image and scikit-learn (80% crops at distinct
    offsets): real photos offline, and no two files alike for the extractor's cache to merge."""
    from PIL import Image

    from transferlab.data.samples import SAMPLES, sample_array

    arrays = [sample_array(name) for name in SAMPLES]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
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
    from transferlab.data.datasets import load_dataset

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
    from transferlab.models.builder import load_model

    return load_model(cfg.model, weights_tag(cfg))


def _layer_calls(net: nn.Module, shape: tuple[int, ...]) -> list[tuple[nn.Module, tuple[int, ...], float]]:
    """Each convolution and linear layer call of ``net`` on one input of ``shape``: (module, input shape, GFLOP
    as 2 × multiply-accumulates)."""
    calls = []

    def hook(m, inp, out):
        conv = isinstance(m, nn.Conv2d)
        k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1] if conv else m.in_features
        calls.append((m, tuple(inp[0].shape), 2 * out.numel() * k / 1e9))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.inference_mode():
            net(torch.zeros(1, *shape))
    finally:
        for h in handles:
            h.remove()
    return calls


def gflop_per_image(net: nn.Module, shape: tuple[int, ...]) -> float:
    """GFLOP (2 × multiply-accumulates) of convolutions and linear layers for one input of ``shape``."""
    return sum(g for _, _, g in _layer_calls(net, shape))


# ------------------------------------------------------------------------------------------- child process


def _sync(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _best_seconds(fn, device: str) -> float:
    """The fastest of ``TIMED_CALLS`` calls of ``fn`` after a warm-up call."""
    times = []
    for i in range(TIMED_CALLS + 1):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        if i:
            times.append(time.perf_counter() - t)
    return min(times)


class _Alone(nn.Module):
    """One layer of the network on its own, returning one value per image so the runner's copy of its output
    to numpy costs nothing."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        y = self.layer(x)
        return [y[(slice(None),) + (slice(0, 1),) * (y.dim() - 1)].flatten(1)]  # flatten: a dynamic batch in ONNX


def _layer_names(net: nn.Module) -> dict[int, str]:
    """id(module) -> a readable name: the backbone's step name (``conv3_2``, ``block4._expand_conv``)."""
    names = {id(m): n for n, m in net.named_modules()}
    for step, module in net.steps():
        for sub, m in module.named_modules():
            names[id(m)] = step + (f".{sub}" if sub else "")
    return names


def _matmul_kernels(n: int, numerics: str, device: str):
    """(name, call, GFLOP) of n×n matmuls in ``numerics``: torch.mm (MKL's for fp32 on a CPU) and, on a CPU,
    oneDNN's (its linear layer on oneDNN tensors) where oneDNN has kernels for that dtype."""
    dtype = DTYPES[numerics]
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    yield f"torch.mm: matmul {n}²", lambda: torch.mm(a, b), 2 * n**3 / 1e9
    if device == "cpu" and (numerics == "fp32" or numerics == "bf16" and onednn_bf16()):
        x, w = a.to_mkldnn(dtype), b.to_mkldnn(dtype)
        yield f"oneDNN: matmul {n}²", lambda: torch._C._nn.mkldnn_linear(x, w, None), 2 * n**3 / 1e9


def _layer_kernels(cfg: BenchConfig, model, numerics: str, runtimes: list[str], device: str):
    """(name, call, GFLOP) of each distinct convolution/linear layer of the benchmarked network alone at the bench
    batch size, run each way a row of ``numerics`` runs it: ``nchw`` (the baseline's NCHW ``no_grad``) and the
    runtimes. One at a time, so that only one layer's tensors are alive."""
    from transferlab.features.extractor import FeatureNet

    shape = (3, model.preprocess.crop, model.preprocess.crop)
    names = _layer_names(model.net)
    layers = {}
    for m, in_shape, gflop in _layer_calls(FeatureNet(model.net, [(cfg.layer, cfg.pool)]).eval(), shape):
        key = (repr(m), in_shape)
        if key in layers:
            layers[key][3] += 1
        else:
            layers[key] = [names.get(id(m), type(m).__name__), m, in_shape, 1, gflop]
    ways = (["nchw"] if numerics == "fp32" else []) + [r for r in runtimes if RUNTIMES[r] == numerics]
    for name, m, in_shape, count, gflop in layers.values():
        label = f"{name}{f' (×{count})' if count > 1 else ''} {'×'.join(map(str, in_shape[1:]))}"
        x = torch.randn(cfg.batch_size, *in_shape[1:])
        for way in ways:
            layer = _Alone(copy.deepcopy(m)).eval()
            if way == "nchw":
                layer, xd = layer.to(device), x.to(device)

                def fn(layer=layer, xd=xd):
                    with torch.no_grad():
                        layer(xd)[0].cpu()
            else:
                run = make_runner(layer, way, device)
                xd = x
                if way != "onnx":  # in the network the previous layer hands over channels_last maps in its dtype
                    xd = x.to(device, DTYPES[numerics])
                    if xd.dim() == 4:
                        xd = xd.contiguous(memory_format=torch.channels_last)

                def fn(run=run, xd=xd):
                    run(xd)
            yield f"{way}: {label}", fn, gflop * cfg.batch_size


def _child_ceiling(spec: dict, cfg: BenchConfig, work: Path) -> dict:
    numerics, device = spec["numerics"], cfg.device
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
    model = load_weights(cfg)
    os.environ["TRANSFERLAB_CACHE"] = str(work / "cache")  # after loading the weights: per-layer ONNX exports only
    kernels = itertools.chain(_matmul_kernels(cfg.matmul_size, numerics, device),
                              _layer_kernels(cfg, model, numerics, spec["runtimes"], device))
    return {"kernels": {name: gflop / _best_seconds(fn, device) for name, fn, gflop in kernels}}


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
    from transferlab.features.cache import FeatureCache
    from transferlab.features.extractor import Extractor, FeatureNet

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
        from transferlab.data.images import load_image

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
    if spec["name"].startswith("ceiling-"):
        out = _child_ceiling(spec, cfg, work)
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
        p = subprocess.Popen([sys.executable, "-m", "transferlab.workflows.bench", "--child", str(spec_file)],
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
    """LinearSVC accuracy per numerics label on the dataset's first K images per class and split."""
    from transferlab.workflows.experiment import RunConfig, run_experiment

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
        if r not in RUNTIMES:
            raise ValueError(f"unknown runtime {r!r}; choose from {', '.join(RUNTIMES)}")
    model = load_weights(cfg)
    cfg = replace(cfg, layer=cfg.layer or default_feature_layer(model)[0])
    from transferlab.features.extractor import FeatureNet, default_workers

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
        for rnd in range(cfg.repeats):
            for name in names:
                spec = {"name": name, "config": asdict(cfg), "paths": [str(p) for p in paths],
                        "runtime": name.split("-", 1)[1] if name.startswith("extractor-") else "eager",
                        "numerics": name.removeprefix("ceiling-"), "runtimes": runtimes,
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
        lines.append(f"ceiling {numerics}: {c['best']:.1f} GFLOP/s → {c['best'] / res['gflop_per_image']:.2f} img/s, "
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
    from tabulate import tabulate

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
    for runtime, why in res["runtimes_skipped"].items():
        lines.append(f"not measured: runtime {runtime} ({why})")
    if res["over_ceiling"]:
        lines.append(f"WARNING: {', '.join(res['over_ceiling'])} ran above the ceiling: the machine's load changed "
                     f"between configurations, or a faster kernel was left out of the ceiling")
    lines.append("of ceiling: median GFLOP/s over the ceiling of the row's numerics; max rel err: against "
                 "extractor-eager features of the same images")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(json.loads(Path(sys.argv[2]).read_text()))
    else:
        sys.exit("usage: transferlab bench (this module's own entry point is for its child processes)")
