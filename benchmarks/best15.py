"""The best 15 Scene figure of issue 13 in one command, from a fresh feature cache: ``transferlab study fusion``
(seven offline feature sets, one SVM each, their concatenation and late fusions, every choice by cross-validation
on train), run as a child process; prints the configuration the training data chose, its test accuracy, the
wall time and the peak memory.

    python benchmarks/best15.py [--data ../shared/data/15scene] [--cache DIR] [--out DIR]

Without ``--cache`` a fresh temporary cache is used (every feature extracted); give the user cache
(~/.cache/transferlab/features) to time the classifiers alone. Peak memory: ``ru_maxrss`` of this process and of
its children (the study and its decoding workers; the kernel reports the largest child), and their sum.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "15scene"), help="15 Scene folder")
    p.add_argument("--cache", default=None, help="feature cache folder (default: a fresh temporary one)")
    p.add_argument("--out", default=None, help="study folder (default: a temporary one)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache, out = a.cache or f"{tmp}/cache", a.out or f"{tmp}/fusion"
        cmd = [sys.executable, "-m", "transferlab.cli", "study", "fusion", "--data", a.data, "--cache", cache,
               "--out", out, "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=REPO)
        wall = time.perf_counter() - t0
        record = json.loads((Path(out) / "study.json").read_text())
    chosen = record["best"]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"chosen on train: {chosen['features']} (5-fold CV {chosen['cv_accuracy']:.4f})")
    print(f"test accuracy: {chosen['test_accuracy']:.4f} on {record['notes'][-1]}")
    print(f"wall time: {wall:.0f} s ({'fresh' if a.cache is None else 'given'} cache)")
    print(f"peak memory (ru_maxrss): self {own:.0f} MB, largest child {kids:.0f} MB, sum {own + kids:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
