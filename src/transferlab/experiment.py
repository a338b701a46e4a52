"""One transfer-learning experiment: dataset → cached features → classifier → honest evaluation with provenance."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .classify import evaluate, fit_classifier, l2_normalize
from .confusion import confusion_figure
from .datasets import load_dataset, make_splits, parse_protocol
from .features.cache import FeatureCache
from .features.extract import Extractor
from .features.store import load_features
from .provenance import (RUN_FILE, BadFile, Extraction, Misclassified, Provenance, RunRecord, Scores, SplitResult,
                         library_versions)
from .registry import load_model


@dataclass
class RunConfig:
    data: str
    model: str = "vgg16"
    weights: str = "auto"
    layers: list[str] = field(default_factory=lambda: ["pool5"])
    pool: str = "avg"
    l2: bool = True
    gray: str = "replicate"
    resize: str = "crop"
    classifier: str = "linear-svm"
    C: float | str = 1.0
    pca: int | None = None
    standardize: bool = False
    protocol: str = "fixed"
    train_per_class: int = 100
    limit_per_class: int | None = None
    seed: int = 0
    runtime: str = "eager"
    batch_size: int = 16
    workers: int | None = None
    device: str = "cpu"
    cache: str | None = None
    strict: bool = False
    progress: bool | None = None
    features: str | None = None  # a Parquet feature store (transferlab extract) instead of extracting


def extract_dataset(cfg: RunConfig, outputs: list[tuple[str, str]]):
    """The dataset and its features for ``outputs`` (cached), with bad files reported (fatal with ``strict``)."""
    dataset = load_dataset(cfg.data, cfg.limit_per_class)
    model = load_model(cfg.model, cfg.weights, seed=cfg.seed)
    extractor = Extractor(model, outputs, gray=cfg.gray, resize=cfg.resize, runtime=cfg.runtime,
                          batch_size=cfg.batch_size, workers=cfg.workers, device=cfg.device,
                          cache=FeatureCache(cfg.cache) if cfg.cache else None, progress=cfg.progress)
    ext = extractor.extract(dataset.paths)
    if ext.bad and cfg.strict:
        path, reason = ext.bad[0]
        raise ValueError(f"{path}: {reason} (--strict; {len(ext.bad)} bad files in all)")
    labels, split = dataset.labels[ext.ok], dataset.split[ext.ok]
    for side in np.unique(dataset.split):
        present = set(labels[split == side])
        missing = [c for i, c in enumerate(dataset.classes) if i not in present]
        if missing:
            raise ValueError(f"class {missing[0]!r} has no readable image{' in ' + side if side else ''}")
    return dataset, model, ext


def assemble(ext, outputs, ok_rows: np.ndarray | slice, l2: bool) -> np.ndarray:
    """Concatenate the outputs' features (each L2-normalised first when asked) for the given rows."""
    blocks = [ext.features[o][ok_rows] for o in outputs]
    return np.concatenate([l2_normalize(b) if l2 else b for b in blocks], axis=1)


def fit_and_evaluate(x_all: np.ndarray, y_all: np.ndarray, splits, classes: list[str], paths: list[str],
                     classifier: str = "linear-svm", C: float | str = 1.0, standardize: bool = False,
                     pca: int | None = None, seed: int = 0) -> Scores:
    """Fit on each split's training rows only, evaluate on its test rows; mean ± std over splits."""
    runs = []
    for sp in splits:
        fit = fit_classifier(x_all[sp.train], y_all[sp.train], classifier, C, standardize, pca, seed)
        ev = evaluate(fit["model"], x_all[sp.test], y_all[sp.test], classes)
        pred = ev.pop("predictions")
        wrong = [Misclassified(paths[i], classes[t], classes[q]) for i, t, q in zip(sp.test, y_all[sp.test], pred)
                 if t != q]
        runs.append(SplitResult(seed=sp.seed, train_images=int(len(sp.train)), test_images=int(len(sp.test)),
                                C=fit["C"], cv=fit["cv"], fit_seconds=round(fit["fit_seconds"], 3),
                                misclassified=wrong, **ev))
    accs = np.array([r.accuracy for r in runs])
    return Scores(accuracy=float(accs.mean()), accuracy_std=float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
                  mean_class_accuracy=float(np.mean([r.mean_class_accuracy for r in runs])),
                  fit_seconds=float(np.mean([r.fit_seconds for r in runs])), runs=runs)


def run_experiment(cfg: RunConfig) -> RunRecord:
    """Run ``cfg`` and return the result record (accuracies, confusion, timings, provenance)."""
    outputs = [(layer, cfg.pool) for layer in cfg.layers]
    parse_protocol(cfg.protocol)
    if cfg.features:  # features written by `transferlab extract` (local or Ray engine)
        ext = load_features(cfg.features, outputs)
        classes, y_all, split, paths = ext.classes, ext.labels, ext.split, ext.paths
        source = {**ext.provenance, "label": ext.provenance.get("label", ext.provenance.get("model")),
                  "feature_store": str(cfg.features)}
        extraction = Extraction(feature_store=str(cfg.features), bad_files=[BadFile(p, r) for p, r in ext.bad])
    else:
        dataset, model, ext = extract_dataset(cfg, outputs)
        classes, y_all, split = dataset.classes, dataset.labels[ext.ok], dataset.split[ext.ok]
        paths = [str(dataset.paths[i]) for i in ext.ok]
        source = {**model.provenance(), "label": model.label(), "dataset": dataset.describe()}
        extraction = extraction_record(ext)
    x_all = assemble(ext, outputs, slice(None), cfg.l2)
    splits = make_splits(y_all, split, cfg.protocol, cfg.train_per_class, cfg.seed)
    scores = fit_and_evaluate(x_all, y_all, splits, classes, paths, cfg.classifier, cfg.C, cfg.standardize,
                              cfg.pca, cfg.seed)
    provenance = Provenance.from_dict({
        **source, "layers": cfg.layers, "pool": cfg.pool, "l2": cfg.l2,
        "gray": cfg.gray, "resize": cfg.resize, "runtime": cfg.runtime,
        "feature_specs": [ext.specs[o] for o in outputs],
        "classifier": cfg.classifier, "C": cfg.C, "pca": cfg.pca, "standardize": cfg.standardize,
        "protocol": cfg.protocol, "train_per_class": cfg.train_per_class,
        "limit_per_class": cfg.limit_per_class, "seed": cfg.seed,
        "versions": library_versions(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "config": asdict(cfg),
    })
    return RunRecord(**vars(scores), feature_dim=int(x_all.shape[1]), classes=list(classes), extraction=extraction,
                     provenance=provenance)


def extraction_record(ext) -> Extraction:
    return Extraction(seconds=round(ext.seconds, 2), computed_images=ext.computed, cached_images=ext.cached,
                      images_per_s=round(ext.images_per_s, 2), bad_files=[BadFile(p, r) for p, r in ext.bad])


def save_result(result: RunRecord, out: Path) -> Path:
    """``result.json`` and ``confusion.png`` (of the first split) in ``out``."""
    path = result.write(out / RUN_FILE)
    run0, prov = result.runs[0], result.provenance
    confusion_figure(np.array(run0.confusion_matrix), result.classes,
                     title=f"{prov.label} · {'+'.join(prov.layers)} {prov.pool} · acc {run0.accuracy:.3f}",
                     path=out / "confusion.png")
    return path
