"""``transferlab predict MODEL IMAGE…``: the top-K ImageNet classes of each image, with probabilities."""
from __future__ import annotations

import json
import sys

from transferlab.analysis.imagenet import predict_files
from transferlab.data.samples import resolve, sample_paths
from transferlab.models.builder import load_model
from transferlab.plots.predictions import predict_figure


def run(args) -> int:
    paths = [resolve(a) for a in args.images] + (sample_paths() if args.samples else [])
    if not paths:
        raise ValueError("no images: give IMAGE files or --samples")
    if args.top < 1:
        raise ValueError(f"--top must be at least 1, not {args.top}")
    model = load_model(args.model, args.weights, trust_pickle=args.trust_pickle)
    results, errors = predict_files(model, paths, args.top)
    for e in errors:
        print(f"transferlab predict: error: {e}", file=sys.stderr)
    if args.json:
        print(json.dumps({"model": model.label(), "provenance": model.provenance(),
                          "predictions": [r.to_dict() for r in results],
                          "errors": [{"image": e.path, "reason": e.reason} for e in errors]}, indent=1))
    else:
        print(model.label())
        for r in results:
            print(f"\n{r.image}")
            for rank, (_, name, p) in enumerate(r.top, 1):
                print(f"  {rank}. {name:<30} {p:7.2%}")
    if args.figure and results:
        out = predict_figure(results, model.label(), args.figure)
        print(f"figure: {out}", file=sys.stderr if args.json else sys.stdout)
    return 1 if errors else 0
