"""``transferlab extract``: features of a dataset into a Parquet feature store (locally or on a Ray cluster) or
an .npz file."""
from __future__ import annotations

import json
import sys

from transferlab.data.datasets import load_dataset
from transferlab.engines.local import extract_local
from transferlab.engines.ray import extract_ray
from transferlab.features.export import prepare_npz
from transferlab.features.store import prepare_out
from transferlab.models.builder import default_feature_layer, load_model


def _ray(args, dataset, outputs, out) -> dict:
    run = extract_ray(dataset, out, model=args.model, weights=args.weights, outputs=outputs, gray=args.gray,
                      resize=args.resize, runtime=args.runtime, batch_size=args.batch_size, device=args.device,
                      seed=args.seed, address=args.ray_address, concurrency=args.concurrency,
                      cpus_per_actor=args.cpus_per_actor, rows_per_file=args.rows_per_file,
                      progress=not args.quiet and sys.stderr.isatty(), trust_pickle=args.trust_pickle)
    if run.bad and args.strict:
        path, reason = run.bad[0]
        raise ValueError(f"{path}: {reason} (--strict; {len(run.bad)} bad files in all; the store was written)")
    return {"engine": "ray", "out": run.out, "images": run.rows, "address": run.address or "local",
            "concurrency": run.concurrency, "bad_files": [{"path": p, "reason": r} for p, r in run.bad],
            "seconds": round(run.seconds, 2), "driver_seconds": round(run.driver_seconds, 2),
            "init_seconds": round(run.init_seconds, 2),
            "pipeline_seconds": round(run.pipeline_seconds, 2), "images_per_s": round(run.images_per_s, 2)}


def run(args) -> int:
    if args.engine == "local" and (args.ray_address or args.concurrency):
        raise ValueError("--ray-address and --concurrency are for --engine ray")
    if args.format == "npz" and (args.engine == "ray" or args.rows_per_file):
        raise ValueError("--format npz writes one file with the local engine; --engine ray and --rows-per-file "
                         "are for --format parquet")
    model, layers = None, args.layer
    if not layers:
        model = load_model(args.model, args.weights, seed=args.seed, trust_pickle=args.trust_pickle)
        layer, why = default_feature_layer(model)
        layers = [layer]
        print(f"layer {layer}: {why}", file=sys.stderr if args.json else sys.stdout)
    outputs = list(dict.fromkeys((layer, pool) for layer in layers for pool in args.pool))
    if args.format == "npz":
        out = prepare_npz(args.out, args.overwrite)
    else:
        out = args.out if "://" in args.out else prepare_out(args.out, args.overwrite)
    dataset = load_dataset(args.data, args.limit_per_class)
    if args.engine == "ray":
        summary = _ray(args, dataset, outputs, out)
    else:
        summary = extract_local(dataset, out, model or load_model(args.model, args.weights, seed=args.seed,
                                                                  trust_pickle=args.trust_pickle), outputs,
                                gray=args.gray, resize=args.resize, runtime=args.runtime, batch_size=args.batch_size,
                                workers=args.workers, device=args.device, cache=args.cache,
                                progress=False if args.quiet else None, strict=args.strict,
                                rows_per_file=args.rows_per_file, fmt=args.format,
                                calibration_images=args.calibration_images)
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
