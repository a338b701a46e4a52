"""``transferlab extract``: features of a dataset into a Parquet feature store, locally or on a Ray cluster."""
from __future__ import annotations

import json
import sys

from transferlab.options import ENGINES
from transferlab.cli.run import LAYER_HELP, POOL_HELP, add_extraction_args


def add_parser(sub) -> None:
    p = sub.add_parser("extract", help="extract features of a dataset into a Parquet feature store (local or Ray)")
    add_extraction_args(p)
    p.add_argument("--layer", nargs="+", default=None, help="one or more layers, one column each " + LAYER_HELP)
    p.add_argument("--pool", nargs="+", default=["avg"], help="one or more of " + POOL_HELP)
    p.add_argument("--out", default="features", help="store folder (Ray: shared by all nodes, or s3://…)")
    p.add_argument("--overwrite", action="store_true", help="replace the Parquet shards already in --out")
    p.add_argument("--engine", default="local", choices=ENGINES,
                   help="local: this process with the feature cache; ray: Ray Data actors")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster: 'auto' (this node's cluster) or ray://HEAD:10001 (default: a local instance)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="Ray actors (default: one per GPU with --device cuda, else cluster CPUs / --cpus-per-actor)")
    p.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs Ray reserves for each actor")
    p.add_argument("--rows-per-file", type=int, default=None,
                   help="rows per Parquet shard, at least that many with Ray (default: 50000 locally, Ray's own blocks)")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")


def _local(args, outputs, out, model) -> dict:
    from transferlab.data.datasets import load_dataset
    from transferlab.engines import output_dims
    from transferlab.features.cache import FeatureCache
    from transferlab.features.extractor import Extractor
    from transferlab.features.store import build_metadata, write_extraction
    from transferlab.models.registry import load_model

    dataset = load_dataset(args.data, args.limit_per_class)
    model = model or load_model(args.model, args.weights, seed=args.seed)
    ex = Extractor(model, outputs, gray=args.gray, resize=args.resize, runtime=args.runtime,
                   batch_size=args.batch_size, workers=args.workers, device=args.device,
                   cache=FeatureCache(args.cache) if args.cache else None, progress=False if args.quiet else None)
    result = ex.extract(dataset.paths)
    if result.bad and args.strict:
        path, reason = result.bad[0]
        raise ValueError(f"{path}: {reason} (--strict; {len(result.bad)} bad files in all)")
    dims = ({o: int(a.shape[1]) for o, a in result.features.items()} if result.ok else output_dims(ex))
    meta = build_metadata(model, ex, dataset, dims, "local")
    files = write_extraction(out, dataset, result, meta, dims, rows_per_file=args.rows_per_file or 50_000)
    return {"engine": "local", "out": str(out), "images": len(dataset.paths), "files": len(files),
            "bad_files": [{"path": p, "reason": r} for p, r in result.bad], "computed_images": result.computed,
            "cached_images": result.cached, "seconds": round(result.seconds, 2),
            "images_per_s": round(result.images_per_s, 2), "label": model.label()}


def _ray(args, outputs, out) -> dict:
    from transferlab.data.datasets import load_dataset
    from transferlab.engines.ray import extract_ray

    dataset = load_dataset(args.data, args.limit_per_class)
    run = extract_ray(dataset, out, model=args.model, weights=args.weights, outputs=outputs, gray=args.gray,
                      resize=args.resize, runtime=args.runtime, batch_size=args.batch_size, device=args.device,
                      seed=args.seed, address=args.ray_address, concurrency=args.concurrency,
                      cpus_per_actor=args.cpus_per_actor, rows_per_file=args.rows_per_file,
                      progress=not args.quiet and sys.stderr.isatty())
    if run.bad and args.strict:
        path, reason = run.bad[0]
        raise ValueError(f"{path}: {reason} (--strict; {len(run.bad)} bad files in all; the store was written)")
    return {"engine": "ray", "out": run.out, "images": run.rows, "address": run.address or "local",
            "concurrency": run.concurrency, "bad_files": [{"path": p, "reason": r} for p, r in run.bad],
            "seconds": round(run.seconds, 2), "driver_seconds": round(run.driver_seconds, 2),
            "init_seconds": round(run.init_seconds, 2),
            "pipeline_seconds": round(run.pipeline_seconds, 2), "images_per_s": round(run.images_per_s, 2)}


def run(args) -> int:
    from transferlab.features.store import prepare_out
    from transferlab.models.registry import default_feature_layer, load_model

    if args.engine == "local" and (args.ray_address or args.concurrency):
        raise ValueError("--ray-address and --concurrency are for --engine ray")
    model, layers = None, args.layer
    if not layers:
        model = load_model(args.model, args.weights, seed=args.seed)
        layer, why = default_feature_layer(model)
        layers = [layer]
        print(f"layer {layer}: {why}", file=sys.stderr if args.json else sys.stdout)
    outputs = list(dict.fromkeys((layer, pool) for layer in layers for pool in args.pool))
    out = args.out if "://" in args.out else prepare_out(args.out, args.overwrite)
    summary = _ray(args, outputs, out) if args.engine == "ray" else _local(args, outputs, out, model)
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
