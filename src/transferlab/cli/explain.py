"""``transferlab explain MODEL_DIR IMAGE… --figure f.png``: where a saved model looks — each image's top classes
with their class maps (exact for average-pooled features and a linear classifier, Grad-CAM otherwise)."""
from __future__ import annotations

import json
import sys

from transferlab.analysis.gradcam import explain, resolve_method
from transferlab.analysis.pipeline import Pipeline
from transferlab.deploy.saved import load_classifier
from transferlab.features.cache import FeatureCache
from transferlab.plots.cam import class_maps_figure


def run(args) -> int:
    clf = load_classifier(args.model, trust_pickle=args.trust_pickle, cache=args.cache, progress=False)
    if clf.head is None:
        raise ValueError(f"{args.model}: a {clf.classifier} model has no linear form to map; class maps need "
                         "linear-svm, logreg, ridge or a fine-tuned network")
    pipe = Pipeline(clf.load_backbone(), clf.outputs, clf.l2, clf.gray, clf.head, resize=clf.resize,
                    input_size=clf.input_size, cache=FeatureCache(args.cache) if args.cache else None)
    method = resolve_method(pipe, args.method)
    items, bad = explain(pipe, args.images, method, args.classes, args.top, args.layer)
    for path, reason in bad:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if not items:
        raise ValueError(f"no readable image among the {len(args.images)} given")
    if args.json:
        print(json.dumps([{"image": cm.image, "method": cm.method, "layers": cm.layers, "classes": [
            {"class": cm.classes[c], "score": round(float(cm.scores[c]), 6),
             "map_mean": round(float(m.mean()), 6)} for c, m in zip(cm.shown, cm.maps)]} for cm in items], indent=2))
    else:
        for cm in items:
            print(f"{cm.image}: " + ", ".join(f"{cm.classes[c]} {float(cm.scores[c]):.3f}" for c in cm.shown))
    if args.figure:
        path = class_maps_figure(items, args.figure, title=f"{pipe.describe()} · {method}")
        print(f"figure: {path}", file=sys.stderr if args.json else sys.stdout)
    return 1 if bad else 0
