"""The figures of docs/explain.md: where a linear SVM on VGG16 features looks, on four 15 Scene test images.

Fits two linear SVMs (C=1) on the first K training images of each class (default 30; 100 is the whole training
set): ``make run``'s pool4+relu5_1+pool5 average-pooled + L2
features (exact class maps) and pool5 max-pooled + L2 features (Grad-CAM at relu5_3), maps the first test image of
four classes, and prints how far each exact map's mean is from the extractor's decision value minus the bias.
Features go through the user cache (each training image is computed once).

    PYTHONPATH=src python benchmarks/class_maps_figure.py [DATA_DIR] [OUT_DIR] [K]
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from transferlab.analysis.gradcam import explain
from transferlab.analysis.pipeline import Pipeline
from transferlab.features.blocks import join_blocks
from transferlab.classify.estimators import make_pipeline
from transferlab.classify.linear import fold_pipeline
from transferlab.data.datasets import load_dataset
from transferlab.features.extractor import Extractor
from transferlab.models.builder import load_model
from transferlab.plots.cam import class_maps_figure

AVG3 = [("pool4", "avg"), ("relu5_1", "avg"), ("pool5", "avg")]
MAX5 = [("pool5", "max")]
SHOWN = ("bedroom", "forest", "industrial", "street")


def main(data: str = "../shared/data/15scene", out: str = "docs/figures", k: str = "30") -> None:
    ds = load_dataset(data)
    train = np.flatnonzero(ds.split == "train")
    train = np.concatenate([train[ds.labels[train] == c][:int(k)] for c in range(len(ds.classes))])
    ex = Extractor(load_model("vgg16", "imagenet-conv"), AVG3 + MAX5, progress=True)
    feats = ex.extract([ds.paths[i] for i in train])
    y = ds.labels[train][feats.ok]
    folders = {p.parent.name.casefold(): i for i, p in reversed(list(enumerate(ds.paths))) if ds.split[i] == "test"}
    picks = [folders[c] for c in SHOWN]
    paths, truths = [ds.paths[i] for i in picks], [ds.classes[ds.labels[i]] for i in picks]
    for outputs, name, layer in ((AVG3, "class_maps.png", None), (MAX5, "gradcam_maps.png", "relu5_3")):
        x = join_blocks([feats.features[o] for o in outputs], True)
        head = fold_pipeline(make_pipeline("linear-svm", 1.0).fit(x, y), ds.classes)
        pipe = Pipeline(load_model("vgg16", "imagenet-conv"), outputs, True, "replicate", head)
        maps, bad = explain(pipe, paths, layer=layer)
        _, values, _ = pipe.decision_values(paths)
        for m, d in zip(maps, values):
            line = f"{Path(m.image).parent.name}/{Path(m.image).name}: " + ", ".join(
                f"{m.classes[c]} {m.scores[c]:.3f}" for c in m.shown)
            if m.method == "cam":
                target = d - m.bias
                err = np.abs(m.maps.mean((1, 2)) - target[m.shown]).max() / np.abs(target).max()
                line += f"; max |map mean - (score - bias)| / max |score - bias| = {err:.1e}"
            print(f"[{m.method}] {line}")
        path = class_maps_figure(maps, Path(out) / name, pipe.describe(), truths, dpi=80)
        print(f"{path} ({len(train)} training images; {bad or 'no bad files'})")


if __name__ == "__main__":
    main(*sys.argv[1:])
