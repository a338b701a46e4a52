"""``transferlab run``: features from a pretrained backbone and a classical classifier, evaluated on a held-out
test set."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from transferlab.options import CLASSIFIERS, GRAY_MODES, HOLDOUT_FRACTION, RESIZE_MODES, RUNTIMES

LAYER_HELP = ("(default: the model's default feature layer: relu7 for VGG and AlexNet when the weights reach it, "
              "else pool5; avgpool for EfficientNet-Lite)")
POOL_HELP = "avg, max, avgmax, flatten or spp:1,2,4 (pyramid levels); how a map becomes a vector (vectors pass as is)"
PROTOCOL_HELP = (f"auto: fixed when DATA has train/ and test/ folders, else holdout:{HOLDOUT_FRACTION}; fixed: those "
                 f"folders; holdout:F: one seeded split holding out the fraction F of each class for testing; "
                 f"random:N: N seeded splits of --train-per-class training images per class")


def add_extraction_args(p, data_required: bool = True) -> None:
    """Arguments shared by every command that extracts features."""
    p.add_argument("--data", required=data_required,
                   help="dataset: a folder of class folders, a folder with train/ and test/ class folders, or 15scene")
    p.set_defaults(features=None)
    p.add_argument("--model", default="vgg16", help="model name: see `transferlab models`")
    p.add_argument("--weights", default="auto", help="weights tag (auto: a cached file, else one a package registry "
                                                     "gives), 'none' (random, labelled so), or a checkpoint file")
    p.add_argument("--gray", default="replicate", choices=GRAY_MODES,
                   help="grayscale input to an RGB network: replicate the channel, or give the first convolution "
                        "one input channel (conv1-sum: the same numbers, conv1-mean: kernels averaged)")
    p.add_argument("--resize", default="crop", choices=RESIZE_MODES,
                   help="crop: the weights' resize+centre crop; resize: straight to the crop size; native: as is")
    p.add_argument("--limit-per-class", type=int, default=None,
                   help="first K images (by name) per class and split: a quick subset (default: all)")
    p.add_argument("--runtime", default="eager", choices=list(RUNTIMES),
                   help="execution mode of the network: eager/onnx exact fp32, bf16/fp16 faster but not exact "
                        "(see transferlab bench)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding worker processes (default: CPUs - 1, between 1 and 4)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--cache", default=None, help="feature cache folder (default: the user cache)")
    p.add_argument("--strict", action="store_true", help="a bad image file is fatal instead of skipped")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights, splits and classifiers")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_classifier_args(p) -> None:
    """Arguments shared by the commands that train a classifier on features."""
    p.add_argument("--pool", default="avg", help=POOL_HELP)
    p.add_argument("--no-l2", action="store_true", help="do not L2-normalise each layer's features")
    p.add_argument("--classifier", default="linear-svm", choices=CLASSIFIERS, help="classifier on the features")
    p.add_argument("--C", default="1.0", help="regularisation C, or 'auto' (cross-validated on train only)")
    p.add_argument("--protocol", default="auto", help=PROTOCOL_HELP)
    p.add_argument("--train-per-class", type=int, default=100,
                   help="training images per class in each random:N split")


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="extract features and train/evaluate a classifier on a dataset")
    add_extraction_args(p, data_required=False)
    p.add_argument("--features", default=None, help="a Parquet feature store written by `transferlab extract`, "
                                                    "instead of --data (default: extract from --data)")
    p.add_argument("--layer", nargs="+", default=None, help="one or more layers, concatenated " + LAYER_HELP)
    add_classifier_args(p)
    p.add_argument("--pca", type=int, default=None, help="reduce to D dimensions first, fitted on train "
                                                         "(default: no reduction)")
    p.add_argument("--standardize", action="store_true", help="standardise features before the classifier")
    p.add_argument("--out", default=None, help="output folder (default runs/<time>-<model>-<layers>)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def config_from_args(args, **extra):
    """The RunConfig of the extraction and classifier arguments, ``extra`` added."""
    from transferlab.workflows.experiment import RunConfig

    return RunConfig(
        data=args.data, model=args.model, weights=args.weights, gray=args.gray, resize=args.resize,
        limit_per_class=args.limit_per_class, runtime=args.runtime, batch_size=args.batch_size,
        workers=args.workers, device=args.device, cache=args.cache, strict=args.strict, seed=args.seed,
        progress=False if args.quiet else None, features=args.features, pool=args.pool, l2=not args.no_l2,
        classifier=args.classifier, C="auto" if args.C == "auto" else float(args.C), protocol=args.protocol,
        train_per_class=args.train_per_class, **extra)


def run(args) -> int:
    from transferlab.workflows.experiment import run_experiment, save_result

    if not args.data and not args.features:
        raise ValueError("give --data DIR (or 15scene) or --features STORE")
    cfg = config_from_args(args, layers=args.layer, pca=args.pca, standardize=args.standardize)
    result = run_experiment(cfg, log=lambda msg: print(msg, file=sys.stderr if args.json else sys.stdout))
    ext, prov = result.extraction, result.provenance
    out = Path(args.out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{args.model}-{'+'.join(prov.layers)}")
    path = save_result(result, out)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    for bad in ext.bad_files:
        print(f"skipped {bad.path}: {bad.reason}")
    acc = f"{result.accuracy:.4f}" + (f" ± {result.accuracy_std:.4f} over {len(result.runs)} splits"
                                       if len(result.runs) > 1 else "")
    run0 = result.runs[0]
    print(f"{prov.label} · layers {'+'.join(prov.layers)} · pool {prov.pool}{' + L2' if prov.l2 else ''} · "
          f"gray {prov.gray} · {prov.classifier} C={run0.C}")
    print(f"data: {len(result.classes)} classes, train {run0.train_images}, test {run0.test_images}, "
          f"{len(ext.bad_files)} bad files skipped; protocol {prov.protocol}")
    if ext.feature_store:
        print(f"features: {result.feature_dim} dims, read from the store {ext.feature_store}")
    else:
        print(f"features: {result.feature_dim} dims; {ext.computed_images} computed "
              f"({ext.images_per_s} img/s), {ext.cached_images} from cache, {ext.seconds} s")
    print(f"accuracy {acc} · mean per-class accuracy {result.mean_class_accuracy:.4f}")
    print(f"saved {path} and {out / 'confusion.png'}")
    return 0
