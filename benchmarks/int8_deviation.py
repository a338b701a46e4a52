"""int8 vs fp32 features on real 15 Scene test images, per quantization recipe, side by side in one run:
deviation from eager fp32 (max and mean over images of ``runtimes.deviation`` per image), cosine, quantization
time, and speed (img/s, median [min–max] of interleaved rounds, ONNX Runtime on the CPU, the ``onnx`` fp32 row
for comparison).

    python benchmarks/int8_deviation.py MODEL WEIGHTS LAYER N_CALIBRATION N_EVAL [VARIANT,...]
    # e.g. vgg16 imagenet-conv pool5 200 64 onnx,int8    efficientnet_lite0 imagenet avgpool 200 64
Calibration: N_CALIBRATION training images (evenly spaced); evaluation: N_EVAL test images spread over the split;
speed: the first SPEED_IMAGES of them, ROUNDS rounds. Variants (default: all): ``onnx`` (fp32), ``int8`` (the
recipe ``--runtime int8`` uses on this CPU), ``int8-no-vnni`` (the one it uses on a CPU without VNNI: on a CPU
with VNNI, both recipes side by side), ``int8-rr`` (7-bit int8 weights, every node quantized: the recipe
before the per-family rules), ``int8-rr-fp32`` (the family's float convolutions, 7-bit int8 weights for the
rest), ``int8-project-u8`` (the family's recipe with 8-bit uint8 weights for EfficientNet-Lite's projections
only, the 1×1 convolutions that end each block), ``int8-all-u8`` (uint8 weights for its depthwise
convolutions too).
"""
import dataclasses
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from transferlab.data.datasets import load_dataset
from transferlab.data.images import load_image
from transferlab.features.extractor import FeatureNet, file_calibration
from transferlab.features.quantize import Recipe, recipe_for, training_calibration
from transferlab.features.runtimes import deviation, make_runner
from transferlab.machine import cpu_info
from transferlab.models.builder import load_model

SHARED = Path(os.environ.get("TRANSFERLAB_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))
SPEED_IMAGES, ROUNDS = 16, 5
VARIANTS = {
    "onnx": None,
    "int8": recipe_for,
    "int8-no-vnni": lambda net: recipe_for(net, vnni=False),
    "int8-rr": lambda net: Recipe(reduce_range=True),
    "int8-rr-fp32": lambda net: dataclasses.replace(recipe_for(net), u8=()),
    "int8-project-u8": lambda net: dataclasses.replace(recipe_for(net), u8=("_project_conv",)),
    "int8-all-u8": lambda net: dataclasses.replace(recipe_for(net), u8=("_blocks", "_conv_head")),
}


def _num(v: float) -> str:
    return f"{v:.4f}" if v >= 1e-3 else f"{v:.1e}"


def main(model: str, weights: str, layer: str, n_cal: int, n_eval: int, variants: list[str]) -> None:
    ds = load_dataset(str(SHARED / "data" / "15scene"))
    test = [p for p, s in zip(ds.paths, ds.split) if s == "test"]
    evalp = [test[int(i * len(test) / n_eval)] for i in range(n_eval)]
    loaded = load_model(model, weights)
    net = FeatureNet(loaded.net, [(layer, "avg")])
    pixels = lambda img: loaded.preprocess.pixels(img, 3).numpy()  # noqa: E731
    x = torch.from_numpy(np.stack([pixels(load_image(p)) for p in evalp]))
    ref = make_runner(net, "eager")(x)[0]
    cal = training_calibration(ds, n_cal)
    cpu = cpu_info()
    print(f"{model} {layer}; CPU {cpu['model']}, ISA {' '.join(cpu['isa'])}; {time.strftime('%Y-%m-%d')}; "
          f"calibration {n_cal} train images, {n_eval} test images, speed on {SPEED_IMAGES} × {ROUNDS} rounds")
    runners, rows = {}, {}
    for name in variants:
        recipe = VARIANTS[name](loaded.net) if VARIANTS[name] else None
        calibration = file_calibration(cal, pixels, recipe) if recipe else None
        run = make_runner(net, "int8" if recipe else "onnx", "cpu", calibration)
        t = time.time()
        run(x[:1])  # exports, calibrates and quantizes (or loads the cached graphs)
        got = run(x)[0]
        dev = np.array([deviation(r[None], g[None]) for r, g in zip(ref, got)])
        cos = np.sum(ref * got, 1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
        runners[name] = run
        rows[name] = {"recipe": recipe.tag if recipe else "fp32", "prepare_s": time.time() - t, "max": dev.max(),
                      "mean": dev.mean(), "cos_min": cos.min(), "cos_mean": cos.mean(), "ips": []}
    speed = x[:SPEED_IMAGES]
    for _ in range(ROUNDS):  # interleaved: a change of machine load hits every variant alike
        for name, run in runners.items():
            t = time.perf_counter()
            run(speed)
            rows[name]["ips"].append(len(speed) / (time.perf_counter() - t))
    print("| variant | recipe | deviation max | mean | cosine min / mean | img/s median [min–max] "
          "| export + quantize s |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        ips = r["ips"]
        print(f"| {name} | `{r['recipe']}` | {_num(r['max'])} | {_num(r['mean'])} "
              f"| {r['cos_min']:.4f} / {r['cos_mean']:.4f} "
              f"| {statistics.median(ips):.2f} [{min(ips):.2f}–{max(ips):.2f}] | {r['prepare_s']:.0f} |")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
         sys.argv[6].split(",") if len(sys.argv) > 6 else list(VARIANTS))
