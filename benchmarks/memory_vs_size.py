"""Peak memory of feature extraction against dataset size (it should be bounded by the batch, not the dataset).

Each extraction runs in a fresh child process with a fresh cache; its peak RSS is the child's own
``ru_maxrss`` from ``os.wait4``. Decoding workers are disabled (``--workers 0``) so one process holds it all.

    python benchmarks/memory_vs_size.py [--model efficientnet_lite0 --layer avgpool] [--sizes 100 0]

A size is images per class and split (``--limit-per-class``); 0 means the whole dataset.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import sys
from transferlab.data.datasets import load_dataset
from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import Extractor
from transferlab.models.builder import load_model
data, model, weights, layer, limit, cache = sys.argv[1:7]
ds = load_dataset(data, int(limit) or None)
ext = Extractor(load_model(model, weights), [(layer, "avg")], cache=FeatureCache(cache), workers=0,
                progress=False).extract(ds.paths)
print(len(ds.paths), ext.computed, round(ext.images_per_s, 2))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(os.environ.get("TRANSFERLAB_SHARED", REPO.parent / "shared"))
                                          / "data" / "15scene"))
    ap.add_argument("--model", default="vgg16")
    ap.add_argument("--weights", default="imagenet-conv")
    ap.add_argument("--layer", default="pool5")
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 0])
    args = ap.parse_args()
    print("| images | computed | img/s | peak RSS (MB) | seconds |\n|---|---|---|---|---|")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", CHILD, args.data, args.model, args.weights, args.layer,
                                     str(size), cache], stdout=subprocess.PIPE, text=True)
            out = proc.stdout.read().split()
            _, status, usage = os.wait4(proc.pid, 0)
            if status:
                raise SystemExit(f"extraction of {size} images per class failed (status {status})")
            print(f"| {out[0]} | {out[1]} | {out[2]} | {usage.ru_maxrss / 1024:.0f} | {time.perf_counter() - t0:.0f} |")


if __name__ == "__main__":
    main()
