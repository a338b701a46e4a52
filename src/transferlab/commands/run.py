"""``transferlab run``: features from a pretrained backbone + a classical classifier, evaluated honestly."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..classify import CLASSIFIERS
from ..experiment import RunConfig, run_experiment, save_result
from ..features.gray import GRAY_MODES
from ..features.runtime import RUNTIMES
from ..preprocess import RESIZE_MODES


def add_extraction_args(p) -> None:
    """Arguments shared by every command that extracts features."""
    p.add_argument("--data", required=True, help="dataset folder (class folders, or train/ and test/), or 15scene")
    p.set_defaults(features=None)
    p.add_argument("--model", default="vgg16")
    p.add_argument("--weights", default="auto", help="weights tag, 'none' (random, labelled so), or a file")
    p.add_argument("--gray", default="replicate", choices=GRAY_MODES)
    p.add_argument("--resize", default="crop", choices=RESIZE_MODES,
                   help="crop: the weights' resize+centre crop; resize: straight to the crop size; native: as is")
    p.add_argument("--limit-per-class", type=int, default=None, help="first K images per class and split")
    p.add_argument("--runtime", default="eager", choices=list(RUNTIMES),
                   help="execution mode of the network: eager/onnx exact fp32, bf16/fp16 faster but not exact "
                        "(see transferlab bench)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=None, help="decoding worker processes")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--cache", default=None, help="feature cache folder (default: the user cache)")
    p.add_argument("--strict", action="store_true", help="a bad image file is fatal instead of skipped")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="extract features and train/evaluate a classifier on a dataset")
    add_extraction_args(p)
    p.add_argument("--features", default=None, help="a Parquet feature store written by `transferlab extract` "
                                                    "(then --data may be omitted)")
    next(a for a in p._actions if a.dest == "data").required = False
    p.add_argument("--layer", nargs="+", default=["pool5"], help="one or more layers (concatenated)")
    p.add_argument("--pool", default="avg", help="avg, max, avgmax, flatten or spp:1,2,4")
    p.add_argument("--no-l2", action="store_true", help="do not L2-normalise each layer's features")
    p.add_argument("--classifier", default="linear-svm", choices=CLASSIFIERS)
    p.add_argument("--C", default="1.0", help="regularisation C, or 'auto' (cross-validated on train only)")
    p.add_argument("--pca", type=int, default=None, help="reduce to D dimensions first")
    p.add_argument("--standardize", action="store_true", help="standardise features before the classifier")
    p.add_argument("--protocol", default="fixed", help="fixed, or random:N (N seeded random splits)")
    p.add_argument("--train-per-class", type=int, default=100)
    p.add_argument("--out", default=None, help="output folder (default runs/<time>)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def config_from_args(args, **extra) -> RunConfig:
    return RunConfig(
        data=args.data, model=args.model, weights=args.weights, gray=args.gray, resize=args.resize,
        limit_per_class=args.limit_per_class, runtime=args.runtime, batch_size=args.batch_size,
        workers=args.workers, device=args.device, cache=args.cache, strict=args.strict, seed=args.seed,
        progress=False if args.quiet else None, features=args.features, **extra)


def run(args) -> int:
    if not args.data and not args.features:
        raise ValueError("give --data DIR (or 15scene) or --features STORE")
    C = "auto" if args.C == "auto" else float(args.C)
    cfg = config_from_args(args, layers=args.layer, pool=args.pool, l2=not args.no_l2, classifier=args.classifier,
                           C=C, pca=args.pca, standardize=args.standardize, protocol=args.protocol,
                           train_per_class=args.train_per_class)
    result = run_experiment(cfg)
    out = Path(args.out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{args.model}-{'+'.join(args.layer)}")
    path = save_result(result, out)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    ext, prov, run0 = result.extraction, result.provenance, result.runs[0]
    for bad in ext.bad_files:
        print(f"skipped {bad.path}: {bad.reason}")
    acc = f"{result.accuracy:.4f}" + (f" ± {result.accuracy_std:.4f} over {len(result.runs)} splits"
                                       if len(result.runs) > 1 else "")
    print(f"{prov.label} · layers {'+'.join(cfg.layers)} · pool {cfg.pool}{' + L2' if cfg.l2 else ''} · "
          f"gray {cfg.gray} · {cfg.classifier} C={run0.C}")
    print(f"data: {len(result.classes)} classes, train {run0.train_images}, test {run0.test_images}, "
          f"{len(ext.bad_files)} bad files skipped; protocol {cfg.protocol}")
    if ext.feature_store:
        print(f"features: {result.feature_dim} dims, read from the store {ext.feature_store}")
    else:
        print(f"features: {result.feature_dim} dims; {ext.computed_images} computed "
              f"({ext.images_per_s} img/s), {ext.cached_images} from cache, {ext.seconds} s")
    print(f"accuracy {acc} · mean per-class accuracy {result.mean_class_accuracy:.4f}")
    print(f"saved {path} and {out / 'confusion.png'}")
    return 0
