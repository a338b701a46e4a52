"""``transferlab export MODEL_DIR --format onnx [--int8] --out model.onnx``: a saved model as one ONNX graph of
its whole pipeline, which ONNX Runtime runs without transferlab."""
from __future__ import annotations

import json
from pathlib import Path

from transferlab.deploy.export import export_model
from transferlab.deploy.saved import load_classifier


def run(args) -> int:
    clf = load_classifier(args.model, trust_pickle=args.trust_pickle, cache=args.cache, progress=False)
    summary = export_model(clf, args.out, int8=args.int8, calibration_images=args.calibration_images,
                           cache=Path(args.cache) / "onnx" if args.cache else None)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    a = summary.get("agreement_with_fp32")
    print(f"wrote {summary['out']}: ONNX {summary['numerics']}, {summary['classes']} classes, "
          f"{summary['bytes'] / 1e6:.1f} MB, {summary['seconds']} s")
    if a:
        print(f"int8 calibrated on {summary['calibration_images']} training images; labels agree with the fp32 graph "
              f"on {a['label_agreement']:.2%} of {a['images']} other training images (largest score difference "
              f"{a['max_score_difference']}); recorded in {clf.path / 'card.md'}")
    return 0
