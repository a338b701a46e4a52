"""How far fp32 features move with the batch shape and the thread count (the tests' tolerances come from this).

The same real 15 Scene images go through the extractor's eager runner in batches of 1, 7 and 16, with
``torch.set_num_threads`` 1 and 2; each condition is compared with batch 16 on 2 threads (the local engine's
default) by ``runtime.deviation`` (max abs difference of a row / that row's max magnitude) and bit for bit.

    python benchmarks/batch_thread_drift.py [--limit-per-class 1] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from transferlab.data.datasets import load_dataset
from transferlab.features.extractor import Extractor
from transferlab.features.runtimes import deviation
from transferlab.data.images import load_image
from transferlab.models.builder import load_model

REPO = Path(__file__).resolve().parents[1]
CASES = {"vgg16": ("imagenet-conv", [("pool2", "avg"), ("pool2", "max"), ("pool3", "avg"), ("pool3", "max"),
                                     ("relu5_1", "avg"), ("pool5", "avg")]),
         "efficientnet_lite0": ("imagenet", [("block3", "avg"), ("block5", "avg"), ("avgpool", "avg")])}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(os.environ.get("TRANSFERLAB_SHARED", REPO.parent / "shared"))
                                          / "data" / "15scene"))
    ap.add_argument("--limit-per-class", type=int, default=1)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 7, 16])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    paths = load_dataset(args.data, args.limit_per_class).paths
    result = {"cpu": cpu_model(), "torch": torch.__version__, "images": len(paths), "models": {}}
    for name, (weights, outputs) in CASES.items():
        ex = Extractor(load_model(name, weights), outputs, workers=0, progress=False)
        run = ex.runner()
        x = torch.stack([ex.preprocess.pixels(load_image(p), ex.channels) for p in paths])
        feats = {}
        for threads in args.threads:
            torch.set_num_threads(threads)
            for bs in args.batches:
                chunks = [run(x[i:i + bs]) for i in range(0, len(x), bs)]
                feats[(threads, bs)] = [np.concatenate([c[k] for c in chunks]) for k in range(len(outputs))]
        ref = feats[(2, 16)] if (2, 16) in feats else next(iter(feats.values()))
        rows = result["models"][name] = []
        for (threads, bs), got in feats.items():
            for (layer, pool), r, g in zip(outputs, ref, got):
                rows.append({"threads": threads, "batch": bs, "layer": layer, "pool": pool,
                             "identical": bool(np.array_equal(r, g)), "deviation": deviation(r, g),
                             "max_abs": float(np.abs(r - g).max())})
                print(f"{name:18s} threads {threads} batch {bs:2d} {layer}/{pool:4s} "
                      f"{'identical' if rows[-1]['identical'] else 'differs'}  deviation {rows[-1]['deviation']:.1e}"
                      f"  max abs {rows[-1]['max_abs']:.1e}", flush=True)
    print(f"cpu: {result['cpu']}; torch {result['torch']}; {result['images']} images; reference: batch 16, 2 threads")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
