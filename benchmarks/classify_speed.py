"""Speed of ``transferlab classify`` with a saved model: images per second with an empty feature cache (the network
computes every image) and with a warm one (every feature read back), and the whole command's wall time.

A model is trained and saved first (``transferlab run --save`` on the first K images per class and split), then
``classify`` labels N test images it was not trained on (the last N/15 of each test class), twice, with a fresh
cache: cold, then warm. Each command runs in its own process, as a user runs it.

    python benchmarks/classify_speed.py [--model efficientnet_lite0] [--train-per-class 2] [--per-class 10]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def transferlab(*args: str) -> tuple[str, float]:
    """stdout of one ``transferlab`` command in a fresh interpreter, and its wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "transferlab.cli.main", *args], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"transferlab {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared = Path(os.environ.get("TRANSFERLAB_SHARED", REPO.parent / "shared"))
    ap.add_argument("--data", default=str(shared / "data" / "15scene"), help="a train/ + test/ dataset")
    ap.add_argument("--model", default="efficientnet_lite0", help="the saved model's network")
    ap.add_argument("--weights", default="auto", help="its weights tag")
    ap.add_argument("--layer", nargs="+", default=None, help="its feature layers (default: the model's)")
    ap.add_argument("--train-per-class", type=int, default=2, help="training images per class of the saved model")
    ap.add_argument("--per-class", type=int, default=10, help="test images classified per class")
    ap.add_argument("--workers", default="1")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        layer = ["--layer", *args.layer] if args.layer else []
        transferlab("run", "--data", args.data, "--model", args.model, "--weights", args.weights, *layer,
                    "--limit-per-class", str(args.train_per_class), "--cache", str(tmp / "train-cache"),
                    "--out", str(tmp / "run"), "--save", str(tmp / "model"), "--quiet", "--workers", args.workers)
        images = tmp / "images"
        for folder in sorted((Path(args.data) / "test").iterdir()):
            for src in sorted(folder.iterdir())[-args.per_class:]:
                (images / folder.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(src, images / folder.name / src.name)
        rows = []
        for state in ("cold", "warm"):
            out, wall = transferlab("classify", str(tmp / "model"), str(images), "--json", "--quiet",
                                    "--cache", str(tmp / "cache"), "--workers", args.workers)
            result = json.loads(out)
            n = len(result["predictions"])
            rows.append({"cache": state, "images": n, "computed": result["computed_images"],
                         "classify_seconds": result["seconds"], "images_per_s": round(n / result["seconds"], 2),
                         "command_wall_s": round(wall, 2)})
    print(json.dumps({"model": result["label"], "classifier": result["classifier"],
                      "load_average": [round(v, 2) for v in os.getloadavg()], "cpus": os.cpu_count(), "rows": rows},
                     indent=1))


if __name__ == "__main__":
    main()
