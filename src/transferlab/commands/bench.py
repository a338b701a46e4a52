"""``transferlab bench``: feature extraction speed against this machine's ceiling and the practical's usual code."""
from __future__ import annotations

import json
import sys

from ..options import RUNTIMES


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure feature extraction: matmul ceiling, practical baseline, each runtime")
    p.add_argument("--data", default="15scene", help="dataset the images come from (default 15scene)")
    p.add_argument("--model", default="vgg16", help="model name: see `transferlab models`")
    p.add_argument("--weights", default="auto", help="weights tag, 'none' (random) or a file")
    p.add_argument("--layer", default="pool5", help="layer the extraction stops at")
    p.add_argument("--pool", default="avg", help="pooling of that layer")
    p.add_argument("--images", type=int, default=96, help="images per measurement, spread over every class")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (medians and min–max over them)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    p.add_argument("--workers", type=int, default=None, help="decoding worker processes (default: the extractor's)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--runtime", nargs="+", default=None, choices=list(RUNTIMES),
                   help="runtimes to measure (default: every one that runs on the device)")
    p.add_argument("--matmul-size", type=int, default=4096, help="side of the square matmuls of the ceiling")
    p.add_argument("--accuracy-per-class", type=int, default=8,
                   help="accuracy of each numerics on the first K images per class and split (0: skip)")
    p.add_argument("--cache", default=None, help="feature cache of the accuracy comparison (default: the user's)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")


def run(args) -> int:
    from ..bench import BenchConfig, format_report, run_bench

    if args.images < 1 or args.repeats < 1 or args.batch_size < 1:
        raise ValueError("--images, --repeats and --batch-size must be at least 1")
    cfg = BenchConfig(data=args.data, model=args.model, weights=args.weights, layer=args.layer, pool=args.pool,
                      images=args.images, repeats=args.repeats, batch_size=args.batch_size, workers=args.workers,
                      device=args.device, runtimes=args.runtime or [], matmul_size=args.matmul_size,
                      accuracy_per_class=args.accuracy_per_class, cache=args.cache)
    result = run_bench(cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0
