"""Which convolutions int8 should leave in float: the deviation of a network's int8 features when one group of
its convolutions (the stem, one block, the head, or every depthwise / expand / project convolution), or the
first k groups together, stays in float; on a few 15 Scene images.

    python benchmarks/int8_sensitivity.py MODEL WEIGHTS LAYER N_CALIBRATION N_EVAL WEIGHT_TYPE
    # e.g. efficientnet_lite0 imagenet avgpool 16 8 s8-rr
WEIGHT_TYPE: s8-rr (7-bit int8 weights), u8:PATH+PATH (7-bit int8, 8-bit uint8 for the convolutions under the
module paths, e.g. u8:_project_conv), s8 (8-bit int8: the VNNI recipe's; it saturates on AVX2).
Groups are the module paths of the convolutions' weights (``Recipe.fp32``); deviation is
``runtimes.deviation`` per image against the fp32 ONNX graph, max and mean over the evaluation images.
"""
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from transferlab.data.datasets import load_dataset
from transferlab.data.images import load_image
from transferlab.features.extractor import FeatureNet, file_calibration
from transferlab.features.quantize import Recipe, quantize, training_calibration
from transferlab.features.runtimes import deviation, export_onnx
from transferlab.models.builder import load_model

SHARED = Path(os.environ.get("TRANSFERLAB_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))


def groups(graph) -> list[str]:
    """The module paths of the graph's convolutions, in order, one per stem / block / head."""
    out = []
    for n in graph.node:
        if n.op_type == "Conv":
            path = re.sub(r"^net\.|\.[^.]*\.weight$|\.weight$", "", n.input[1])
            path = re.match(r"_blocks\.\d+|[^.]+", path).group(0)
            if path not in out:
                out.append(path)
    return out


def main(model: str, weights: str, layer: str, n_cal: int, n_eval: int, wtype: str) -> None:
    ds = load_dataset(str(SHARED / "data" / "15scene"))
    test = [p for p, s in zip(ds.paths, ds.split) if s == "test"]
    loaded = load_model(model, weights)
    pixels = lambda img: loaded.preprocess.pixels(img, 3).numpy()  # noqa: E731
    x = np.stack([pixels(load_image(test[int(i * len(test) / n_eval)])) for i in range(n_eval)])
    cal = training_calibration(ds, n_cal)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(FeatureNet(loaded.net, [(layer, "avg")]), tuple(x.shape[1:]), Path(tmp))
        ref = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).run(None, {"pixels": x})[0]
        names = groups(onnx.load(str(fp32)).graph)
        kinds = sorted({m.group(0) for n in onnx.load(str(fp32)).graph.node if n.op_type == "Conv"
                        for m in [re.search(r"_(depthwise|expand|project)_conv", n.input[1])] if m})

        def measure(fp32_paths: tuple[str, ...], label: str) -> None:
            recipe = Recipe(reduce_range=wtype != "s8", family="probe", fp32=fp32_paths,
                            u8=tuple(wtype[3:].split("+")) if wtype.startswith("u8:") else ())
            t = time.time()
            int8 = quantize(fp32, file_calibration(cal, pixels, recipe))
            got = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"]).run(None, {"pixels": x})[0]
            dev = np.array([deviation(r[None], g[None]) for r, g in zip(ref, got)])
            print(f"| {label} | {dev.max():.4f} | {dev.mean():.4f} | {time.time() - t:.0f} |", flush=True)

        print(f"{model} {layer}, weights {wtype}: {n_cal} calibration (train), {n_eval} evaluation (test) images")
        print("| in float | deviation max | mean | s |\n|---|---|---|---|")
        measure((), "nothing")
        for g in names:
            measure((g,), g)
        for kind in kinds:  # a kind is a module path of its own in every block: "_blocks.3._depthwise_conv"
            measure(tuple(f"{g}.{kind}" for g in names if g.startswith("_blocks")), f"every {kind}")
        for k in range(2, min(len(names), 8)):
            measure(tuple(names[:k]), " + ".join(names[:k]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
