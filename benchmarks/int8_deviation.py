"""int8 vs fp32 features on real 15 Scene test images: deviation, cosine, quantization time and peak RSS.

    python benchmarks/int8_deviation.py MODEL WEIGHTS LAYER N_CALIBRATION N_EVAL   # e.g. vgg16 imagenet-conv pool5 200 64
Calibration: N_CALIBRATION training images (evenly spaced); evaluation: N_EVAL test images spread over the split.
"""
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from transferlab.data.datasets import load_dataset
from transferlab.features.extractor import Extractor
from transferlab.features.quantize import training_calibration
from transferlab.models.builder import load_model

SHARED = Path(os.environ.get("TRANSFERLAB_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))


def main(model: str, weights: str, layer: str, n_cal: int, n_eval: int) -> None:
    ds = load_dataset(str(SHARED / "data" / "15scene"))
    test = [p for p, s in zip(ds.paths, ds.split) if s == "test"]
    evalp = [test[int(i * len(test) / n_eval)] for i in range(n_eval)]
    out = [(layer, "avg")]
    ref = Extractor(load_model(model, weights), out, progress=False).extract(evalp).features[out[0]]
    ext = Extractor(load_model(model, weights), out, runtime="int8", calibration=training_calibration(ds, n_cal),
                    progress=False)
    t = time.time()
    ext.runner()(torch.zeros(1, 3, 224, 224))  # calibrates and quantizes (or loads the cached graph)
    tq = time.time() - t
    got = ext.extract(evalp).features[out[0]]
    dev = np.abs(got - ref).max(1) / np.abs(ref).max(1)
    cos = np.sum(ref * got, 1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{model} {layer}: calibration {n_cal} train images ({ext.calibration.identity()}), quantize {tq:.0f} s, "
          f"peak RSS {rss:.0f} MB; {n_eval} test images: deviation max {dev.max():.4f} mean {dev.mean():.4f}; "
          f"cosine min {cos.min():.5f} mean {cos.mean():.5f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
