"""The best 15 Scene figure in one command, from a fresh feature cache: ``transferlab study fusion``
(seven offline feature sets, one SVM each, their concatenation and late fusions, every choice by cross-validation
on train), run as a child process; with ``--finetune``, the named networks are first fine-tuned end to end and
fused with the SVM (those choices on their validation split). Prints the configuration the training data chose,
its test accuracy, the wall time and the peak memory.

    python benchmarks/best15.py [--data ../shared/data/15scene] [--cache DIR] [--out DIR]
                                [--finetune efficientnet_lite0 efficientnet_lite1 --runs DIR]

Fine-tuning is long: each run checkpoints every epoch in ``RUNS/ft-MODEL``, so
running the same command again resumes it, and a finished run is reused, not repeated.
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
# the fine-tuning recipe of docs/finetune.md (full network, cosine schedule, early stopping on validation)
FINETUNE = ["--mode", "full", "--epochs", "12", "--patience", "4", "--quiet"]


def finished(folder: Path) -> bool:
    try:
        return json.loads((folder / "finetune.json").read_text()).get("status") == "finished"
    except (OSError, ValueError):
        return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "15scene"), help="15 Scene folder")
    p.add_argument("--cache", default=None, help="feature cache folder (default: a fresh temporary one)")
    p.add_argument("--out", default=None, help="study folder (default: a temporary one)")
    p.add_argument("--finetune", nargs="+", default=[], metavar="MODEL", help="networks to fine-tune and fuse")
    p.add_argument("--runs", default="runs/best15", help="where the fine-tuning runs go (default: %(default)s)")
    a = p.parse_args()
    runs = [Path(a.runs).resolve() / f"ft-{m}" for m in a.finetune]
    with tempfile.TemporaryDirectory() as tmp:
        cache, out = a.cache or f"{tmp}/cache", a.out or f"{tmp}/fusion"
        cli = [sys.executable, "-m", "transferlab.cli"]
        t0 = time.perf_counter()
        for model, run in zip(a.finetune, runs):
            if not finished(run):
                subprocess.run(cli + ["finetune", "--data", a.data, "--model", model, "--cache", cache, "--out",
                                      str(run), *FINETUNE], check=True, cwd=REPO)
        cmd = cli + ["study", "fusion", "--data", a.data, "--cache", cache, "--out", out, "--quiet"]
        subprocess.run(cmd + (["--finetuned", *map(str, runs)] if runs else []), check=True, cwd=REPO)
        wall = time.perf_counter() - t0
        record = json.loads((Path(out) / "study.json").read_text())
    chosen = record["best"]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    basis = (f"validation split {chosen['val_accuracy']:.4f}" if chosen.get("val_accuracy") is not None
             else f"5-fold CV {chosen['cv_accuracy']:.4f}")
    images = next(n for n in record["notes"] if n.endswith("read by every member"))
    print(f"chosen on train: {chosen['features']} ({basis})")
    print(f"test accuracy: {chosen['test_accuracy']:.4f} on {images}")
    print(f"wall time: {wall:.0f} s ({'fresh' if a.cache is None else 'given'} cache"
          + ("; fine-tuning runs reused where finished" if runs else "") + ")")
    print(f"peak memory (ru_maxrss): self {own:.0f} MB, largest child {kids:.0f} MB, sum {own + kids:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
