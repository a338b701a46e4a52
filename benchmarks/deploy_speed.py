"""A saved model put to work, measured: the exported ONNX graph's size and export time (fp32 and int8), its images
per second in ONNX Runtime against ``load_classifier`` (the feature extractor), side by side in interleaved rounds
(median of the rounds), and the agreement of the labels on the test split: ONNX fp32 against the saved model,
ONNX int8 against ONNX fp32.

    python benchmarks/deploy_speed.py MODEL_DIR [--test-images N] [--speed-images 64] [--rounds 3] [--out FILE.json]

MODEL_DIR is a folder written by ``transferlab run … --save``; its test images are those of the dataset it was
trained on (its ``test/`` folder; ``--test-images N``: the first N of them, sorted). The record (JSON) states the CPU,
the load average before and after, and every setting.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from transferlab.data.datasets import load_dataset
from transferlab.data.images import load_image
from transferlab.deploy.export import export_model
from transferlab.deploy.onnx import run_pipeline
from transferlab.deploy.pipeline import prepare
from transferlab.deploy.saved import load_classifier
from transferlab.machine import machine


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a folder written by `transferlab run --save`")
    ap.add_argument("--test-images", type=int, default=None, help="the first N test images (default: all)")
    ap.add_argument("--speed-images", type=int, default=64, help="images per timed round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds")
    ap.add_argument("--out", default=None, help="write the record here (JSON) as well as printing it")
    a = ap.parse_args()
    before = machine()
    clf = load_classifier(a.model, workers=0, progress=False)
    training = clf.training()
    dataset = load_dataset(training["root"])
    test = sorted(p for p, side in zip(dataset.paths, dataset.split) if side == "test")[:a.test_images]
    with tempfile.TemporaryDirectory() as tmp:
        graphs, exports = {}, {}
        for numerics in ("fp32", "int8"):
            graphs[numerics] = Path(tmp) / f"model-{numerics}.onnx"
            exports[numerics] = export_model(clf, graphs[numerics], int8=numerics == "int8", cache=Path(tmp) / "onnx",
                                             note_in_card=False)
        pre = clf.model.preprocess
        x = np.stack([prepare(load_image(p), pre) for p in test])
        labels = {n: run_pipeline(g, x)[1] for n, g in graphs.items()}
        saved = np.array([clf.classes_.index(c) for c in clf.predict(test)])
        label_of = {p: dataset.classes[y] for p, y in zip(dataset.paths, dataset.labels)}
        truth = np.array([label_of[p].casefold() for p in test])
        names = np.array([c.casefold() for c in clf.classes_])
        speed = test[:a.speed_images]
        xs = x[:a.speed_images]
        rounds = {"load_classifier (features, no cache)": [], "onnx fp32": [], "onnx int8": []}
        for r in range(a.rounds):
            fresh = load_classifier(a.model, cache=str(Path(tmp) / f"features-{r}"), workers=0, progress=False)
            rounds["load_classifier (features, no cache)"].append(timed(lambda: fresh.predict(speed)))
            for n in ("fp32", "int8"):
                rounds[f"onnx {n}"].append(timed(lambda: run_pipeline(graphs[n], xs)))
    after = machine()
    record = {
        "model": str(a.model), "label": clf.model.label(), "outputs": clf.outputs, "classifier": clf.classifier,
        "test_images": len(test), "speed_images": len(speed), "rounds": a.rounds,
        "export": {n: {"bytes": e["bytes"], "seconds": e["seconds"],
                       **({"agreement_with_fp32_on_training_images": e["agreement_with_fp32"],
                           "calibration_images": e["calibration_images"]} if n == "int8" else {})}
                   for n, e in exports.items()},
        "accuracy": {"saved model": round(float((names[saved] == truth).mean()), 4),
                     **{f"onnx {n}": round(float((names[l] == truth).mean()), 4) for n, l in labels.items()}},
        "agreement": {"onnx fp32 vs saved model": round(float((labels["fp32"] == saved).mean()), 4),
                      "onnx int8 vs onnx fp32": round(float((labels["int8"] == labels["fp32"]).mean()), 4)},
        "images_per_s": {k: {"median": round(len(speed) / statistics.median(v), 2),
                             "rounds": [round(len(speed) / t, 2) for t in v]} for k, v in rounds.items()},
        "machine_before": before, "machine_after": after, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": "python benchmarks/deploy_speed.py " + " ".join(sys.argv[1:]),
    }
    text = json.dumps(record, indent=2)
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
