"""How far above its ceiling a bench row can land on this machine (the bench test's margin comes from this).

Runs the test's bench command (AlexNet up to pool2, 4 real 15 Scene images, every runtime, ``--repeats 1``) N times
and prints, for each row, its share of the ceiling in every run, and the largest; and the spread (max / min over
the runs) of each ceiling kernel's GFLOP/s, which is what a loaded machine does to one number.

    python benchmarks/bench_share_spread.py [--runs 4] [--json out.json]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

from transferlab.cli.main import main

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TRANSFERLAB_SHARED") or REPO.parent / "shared") / "data" / "15scene"


def bench(cache: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["bench", "--data", str(DATA), "--model", "alexnet", "--layer", "pool2", "--images", "4",
                     "--repeats", "1", "--batch-size", "3", "--matmul-size", "32", "--accuracy-per-class",
                     "1", "--cache", cache, "--runtime", "eager", "onnx", "bf16", "int8", "--calibration-images", "4",
                     "--json"]) == 0
    return json.loads(out.getvalue())


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    shares, kernels, runs = {}, {}, []
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(args.runs):
            res = bench(cache)
            runs.append(res)
            for r in res["rows"]:
                if "share_of_ceiling" in r:
                    shares.setdefault(r["config"], []).append(round(r["share_of_ceiling"], 4))
            for numerics, c in res["ceiling_gflops"].items():
                for k, v in c["kernels"].items():
                    kernels.setdefault(f"{numerics} {k}", []).append(v["max"])
    out = {"load_average": os.getloadavg(), "shares": shares, "largest_share": max(max(v) for v in shares.values()),
           "kernel_spread_max_over_min": {k: round(max(v) / min(v), 3) for k, v in kernels.items()},
           "max_rel_error": {r["config"]: [x.get("max_rel_error") for res in runs for x in res["rows"]
                                           if x["config"] == r["config"]] for r in runs[0]["rows"]},
           "accuracy": [res.get("accuracy") for res in runs]}
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main_()
