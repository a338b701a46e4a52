"""``transferlab extract``: features of a dataset into a Parquet feature store (locally or on a Ray cluster) or
an .npz file."""
from __future__ import annotations

import json
import sys

from transferlab.cli.run import extraction_config
from transferlab.data.datasets import load_dataset
from transferlab.engines.local import LocalEngine
from transferlab.engines.ray import RayEngine
from transferlab.features.export import prepare_npz
from transferlab.features.store import prepare_out
from transferlab.models.builder import default_feature_layer, load_run_model


def run(args) -> int:
    if args.engine == "local" and (args.ray_address or args.concurrency):
        raise ValueError("--ray-address and --concurrency are for --engine ray")
    if args.format == "npz" and (args.engine == "ray" or args.rows_per_file):
        raise ValueError("--format npz writes one file with the local engine; --engine ray and --rows-per-file "
                         "are for --format parquet")
    cfg = extraction_config(args)
    model, layers = None, args.layer
    if not layers:
        model = load_run_model(cfg)
        layer, why = default_feature_layer(model)
        layers = [layer]
        print(f"layer {layer}: {why}", file=sys.stderr if args.json else sys.stdout)
    outputs = list(dict.fromkeys((layer, pool) for layer in layers for pool in args.pool))
    if args.format == "npz":
        out = prepare_npz(args.out, args.overwrite)
    else:
        out = args.out if "://" in args.out else prepare_out(args.out, args.overwrite)
    dataset = load_dataset(args.data, args.limit_per_class)
    engine = (RayEngine(args.ray_address, args.concurrency, args.cpus_per_actor,
                        progress=not args.quiet and sys.stderr.isatty()) if args.engine == "ray"
              else LocalEngine(model))
    summary = engine.extract(dataset, out, cfg, outputs, fmt=args.format, rows_per_file=args.rows_per_file).summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for bad in summary["bad_files"]:
        print(f"skipped {bad['path']}: {bad['reason']}")
    where = (f"Ray {summary['address']}, {summary['concurrency']} actors" if args.engine == "ray" else "local engine")
    cost = (f"{summary['seconds']} s ({summary['driver_seconds']} s model on the driver, {summary['init_seconds']} s "
            f"Ray start, {summary['pipeline_seconds']} s pipeline)" if args.engine == "ray" else
            f"{summary['seconds']} s, {summary['computed_images']} computed, {summary['cached_images']} from cache")
    print(f"{summary['images']} images ({len(summary['bad_files'])} bad) · {', '.join(f'{l}/{p}' for l, p in outputs)}"
          f" · {where} · {summary['images_per_s']} img/s · {cost}")
    print(f"wrote {summary['out']}")
    return 0
