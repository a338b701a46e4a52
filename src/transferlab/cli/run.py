"""``transferlab run``: features from a pretrained backbone and a classical classifier, evaluated on a held-out
test set."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from transferlab.config import RunConfig
from transferlab.deploy.save import save_model
from transferlab.experiment import train_experiment
from transferlab.plots.confusion import confusion_figure
from transferlab.provenance import RUN_FILE, RunRecord


def extraction_config(args, **extra) -> RunConfig:
    """The RunConfig of the arguments every extracting command takes (``add_extraction_args``), ``extra`` added."""
    return RunConfig(
        data=args.data, model=args.model, weights=args.weights, gray=args.gray, resize=args.resize,
        limit_per_class=args.limit_per_class, runtime=args.runtime, calibration_images=args.calibration_images,
        batch_size=args.batch_size, workers=args.workers, device=args.device, cache=args.cache, strict=args.strict,
        seed=args.seed, progress=False if args.quiet else None, trust_pickle=args.trust_pickle, **extra)


def config_from_args(args, **extra) -> RunConfig:
    """The RunConfig of the extraction and classifier arguments, ``extra`` added."""
    return extraction_config(
        args, input_size=args.input_size, features=args.features, pool=args.pool, l2=not args.no_l2,
        classifier=args.classifier, C="auto" if args.C == "auto" else float(args.C), protocol=args.protocol,
        train_per_class=args.train_per_class, **extra)


def save_result(result: RunRecord, out: Path) -> Path:
    """``result.json`` and ``confusion.png`` (of the first split) in ``out``."""
    path = result.write(out / RUN_FILE)
    run0, prov = result.runs[0], result.provenance
    confusion_figure(np.array(run0.confusion_matrix), result.classes,
                     title=f"{prov.label} · {'+'.join(prov.layers)} {prov.pool} · acc {run0.accuracy:.3f}",
                     path=out / "confusion.png")
    return path


def run(args) -> int:
    if not args.data and not args.features:
        raise ValueError("give --data DIR (or 15scene) or --features STORE")
    cfg = config_from_args(args, layers=args.layer, pca=args.pca, standardize=args.standardize)
    say = sys.stderr if args.json else sys.stdout
    trained = train_experiment(cfg, log=lambda msg: print(msg, file=say))
    result = trained.record
    ext, prov = result.extraction, result.provenance
    name = prov.model.replace("/", "_").replace(":", "-")  # a model file or a library name: one folder name
    out = Path(args.out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{name}-{'+'.join(prov.layers)}")
    path = save_result(result, out)
    if args.save:
        saved = save_model(trained, args.save, record_path=path)
        which = f" (the model of split 1 of {len(result.runs)})" if len(result.runs) > 1 else ""
        print(f"saved the model in {saved.parent}{which}: transferlab classify {saved.parent} IMAGE…", file=say)
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
        numerics, calib = prov.extra.get("numerics", "fp32"), prov.extra.get("calibration")
        print(f"features: {result.feature_dim} dims, {numerics}"
              + (f" (calibrated on {calib['images']} training images, {calib['hash'][:12]}, {calib['recipe']})"
                 if calib else "")
              + f"; {ext.computed_images} computed ({ext.images_per_s} img/s), {ext.cached_images} from cache, "
                f"{ext.seconds} s")
    print(f"accuracy {acc} · mean per-class accuracy {result.mean_class_accuracy:.4f}")
    print(f"saved {path} and {out / 'confusion.png'}")
    return 0
