"""``transferlab bench``: feature extraction speed against this machine's ceiling and the practical's usual code."""
from __future__ import annotations

import json
import sys

from transferlab.bench.runner import BenchConfig, format_report, run_bench


def run(args) -> int:
    if args.images < 1 or args.repeats < 1 or args.batch_size < 1 or args.matmul_size < 1:
        raise ValueError(f"--images, --repeats, --batch-size and --matmul-size must be at least 1 (got "
                         f"{args.images}, {args.repeats}, {args.batch_size}, {args.matmul_size})")
    cfg = BenchConfig(data=args.data, model=args.model, weights=args.weights, layer=args.layer, pool=args.pool,
                      images=args.images, repeats=args.repeats, batch_size=args.batch_size, workers=args.workers,
                      device=args.device, runtimes=args.runtime or [], matmul_size=args.matmul_size,
                      accuracy_per_class=args.accuracy_per_class, cache=args.cache,
                      calibration_images=args.calibration_images)
    result = run_bench(cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0
