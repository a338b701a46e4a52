"""``transferlab bench``: feature extraction speed against this machine's ceiling and the practical's usual code."""
from __future__ import annotations

import json
import sys

from ..options import RUNTIMES

DESCRIPTION = "Measure feature extraction speed against this machine's ceiling and the practical's notebook code."


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure feature extraction speed against this machine's ceiling",
                       description=DESCRIPTION)
    p.add_argument("--data", default=None,
                   help="labelled dataset folder or 15scene: its images, and accuracy per numerics (default: "
                        "photos cut from the scikit-image/scikit-learn samples, offline, no accuracy)")
    p.add_argument("--model", default="vgg16", help="model name (default: %(default)s)")
    p.add_argument("--weights", default="auto",
                   help="weights tag or file (default: %(default)s; imagenet-conv for vgg16)")
    p.add_argument("--layer", default=None,
                   help="feature layer (default: the model's: pool5 for VGG and AlexNet, avgpool for "
                        "EfficientNet-Lite)")
    p.add_argument("--pool", default="avg", help="pooling of the layer's map (default: %(default)s)")
    p.add_argument("--images", type=int, default=96,
                   help="images per measurement, spread over every class of --data (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved rounds: medians and min–max over them, best round for the ceiling "
                        "(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=16, help="images per batch (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding worker processes (default: the extractor's, 1 on 2 CPUs)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    p.add_argument("--runtime", nargs="+", default=None, choices=list(RUNTIMES),
                   help="runtimes to measure (default: every one that runs at speed on the device; bf16 on a CPU "
                        "only with oneDNN bf16 kernels)")
    p.add_argument("--matmul-size", type=int, default=4096,
                   help="n of the n×n matmuls of the ceiling (default: %(default)s)")
    p.add_argument("--accuracy-per-class", type=int, default=8,
                   help="with --data: accuracy of each numerics on the first K images per class and split, 0 to "
                        "skip (default: %(default)s)")
    p.add_argument("--cache", default=None,
                   help="feature cache of the accuracy comparison (default: the user cache)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON (default: a text report)")


def run(args) -> int:
    from ..bench import BenchConfig, format_report, run_bench

    if args.images < 1 or args.repeats < 1 or args.batch_size < 1 or args.matmul_size < 1:
        raise ValueError(f"--images, --repeats, --batch-size and --matmul-size must be at least 1 (got "
                         f"{args.images}, {args.repeats}, {args.batch_size}, {args.matmul_size})")
    cfg = BenchConfig(data=args.data, model=args.model, weights=args.weights, layer=args.layer, pool=args.pool,
                      images=args.images, repeats=args.repeats, batch_size=args.batch_size, workers=args.workers,
                      device=args.device, runtimes=args.runtime or [], matmul_size=args.matmul_size,
                      accuracy_per_class=args.accuracy_per_class, cache=args.cache)
    result = run_bench(cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0
