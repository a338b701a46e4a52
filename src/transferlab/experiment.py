"""One transfer-learning experiment: dataset → cached features → classifier → honest evaluation with provenance."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np

from transferlab.features.blocks import join_blocks
from transferlab.classify.estimators import evaluate
from transferlab.classify.selection import fit_classifier
from transferlab.config import RunConfig
from transferlab.data.datasets import ImageDataset, Split, load_dataset, make_splits, parse_protocol, resolve_protocol
from transferlab.features.export import load_stored, stored_outputs
from transferlab.features.extractor import Extractor, numerics_record
from transferlab.models.builder import default_feature_layer, load_run_model
from transferlab.models.loaded import LoadedModel
from transferlab.provenance import (
    BadFile,
    Extraction,
    Misclassified,
    Provenance,
    RunRecord,
    Scores,
    SplitResult,
    library_versions,
)


def fill_defaults(cfg: RunConfig, default_layers: Callable[[], tuple[list[str], str]], fixed_split: bool,
                  log: Callable[[str], None] = lambda msg: None, where=None) -> tuple[RunConfig, dict]:
    """``cfg`` with what it leaves open chosen — the layers (``default_layers()``: layers and why) and protocol
    ``auto`` — and the reason for each choice (said through ``log``, and recorded). Layers ``[]`` stay open: the
    studies that choose their own layers. ``where``: the dataset (or store) that errors name."""
    why = {}
    if cfg.layers is None:
        layers, why["layers"] = default_layers()
        cfg = replace(cfg, layers=layers)
        log(f"layer {'+'.join(layers)}: {why['layers']}")
    protocol, reason = resolve_protocol(cfg.protocol, fixed_split, where)
    if protocol != cfg.protocol:
        why["protocol"] = reason
        cfg = replace(cfg, protocol=protocol)
        log(f"protocol {protocol}: {reason}")
    return cfg, why


def default_layers(model) -> tuple[list[str], str]:
    """``model``'s default feature layer as a config's layer list, and why (for :func:`fill_defaults`)."""
    layer, why = default_feature_layer(model)
    return [layer], why


def extract_dataset(cfg: RunConfig, outputs: list[tuple[str, str]], dataset=None, model=None):
    """The dataset and its features for ``outputs`` (cached), with bad files reported (fatal with ``strict``);
    ``dataset``, ``model``: those already loaded for ``cfg`` (else loaded here)."""
    dataset = load_dataset(cfg.data, cfg.limit_per_class) if dataset is None else dataset
    model = load_run_model(cfg) if model is None else model
    ext = Extractor.from_run(cfg, model, outputs, dataset).extract(dataset.paths)
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
    return join_blocks(blocks, l2)


def fit_and_evaluate(x_all: np.ndarray, y_all: np.ndarray, splits, classes: list[str], paths: list[str],
                     classifier: str = "linear-svm", C: float | str = 1.0, standardize: bool = False,
                     pca: int | None = None, seed: int = 0) -> Scores:
    """Fit on each split's training rows only, evaluate on its test rows; mean ± std over splits."""
    return fit_splits(x_all, y_all, splits, classes, paths, classifier, C, standardize, pca, seed)[0]


def fit_splits(x_all: np.ndarray, y_all: np.ndarray, splits, classes: list[str], paths: list[str],
               classifier: str = "linear-svm", C: float | str = 1.0, standardize: bool = False,
               pca: int | None = None, seed: int = 0) -> tuple[Scores, list]:
    """:func:`fit_and_evaluate`'s scores, and each split's fitted pipeline (what a saved model keeps)."""
    runs, fitted = [], []
    for sp in splits:
        fit = fit_classifier(x_all[sp.train], y_all[sp.train], classifier, C, standardize, pca, seed)
        fitted.append(fit["model"])
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
                  fit_seconds=float(np.mean([r.fit_seconds for r in runs])), runs=runs), fitted


@dataclass
class TrainedRun:
    """A run's record and what it fitted: each split's pipeline on the joined ``outputs`` features of ``paths``
    (the readable images, labelled ``labels``), with the network and dataset they came from (None for features
    read from a store)."""

    record: RunRecord
    pipelines: list
    splits: list[Split]
    outputs: list[tuple[str, str]]
    paths: list[str]
    labels: np.ndarray
    model: LoadedModel | None
    dataset: ImageDataset | None


def run_experiment(cfg: RunConfig, log: Callable[[str], None] = lambda msg: None,
                   model: LoadedModel | None = None) -> RunRecord:
    """Run ``cfg`` and return the result record (accuracies, confusion, timings, provenance). What ``cfg`` leaves
    to defaults (layers, protocol ``auto``) is chosen before extracting, said through ``log`` and recorded.

    ``model``: a network already loaded (``load_model(my_module, preprocess=...)``) instead of ``cfg.model``,
    whose name the record then carries. The gray mode adapts it in place: give each run its own."""
    return train_experiment(cfg, log, model).record


def train_experiment(cfg: RunConfig, log: Callable[[str], None] = lambda msg: None,
                     model: LoadedModel | None = None) -> TrainedRun:
    """:func:`run_experiment`, keeping what it fitted (each split's classifier is fitted once)."""
    parse_protocol(cfg.protocol)
    dataset = None
    if model is not None:
        cfg = replace(cfg, model=model.name, weights=model.tag)
    if cfg.features:  # features written by `transferlab extract` (local or Ray engine)
        stored = stored_outputs(cfg.features)
        held = [layer for layer, pool in stored if pool == cfg.pool]
        if not held and cfg.layers is None:
            raise ValueError(f"{cfg.features}: no features pooled with {cfg.pool!r} (--pool); the store holds "
                             f"{', '.join(f'{layer}/{pool}' for layer, pool in stored)}")
        ext = load_stored(cfg.features, [(layer, cfg.pool) for layer in cfg.layers or held])
        cfg, chosen = fill_defaults(cfg, lambda: (held, f"the layers {cfg.features} holds with pool {cfg.pool}"),
                                    bool((ext.split == "train").any()), log, cfg.features)
        outputs = [(layer, cfg.pool) for layer in cfg.layers]
        classes, y_all, split, paths = ext.classes, ext.labels, ext.split, ext.paths
        source = {**ext.provenance, "label": ext.provenance.get("label", ext.provenance.get("model")),
                  "feature_store": str(cfg.features)}
        extraction = Extraction(feature_store=str(cfg.features), bad_files=[BadFile(p, r) for p, r in ext.bad])
    else:
        dataset = load_dataset(cfg.data, cfg.limit_per_class)
        model = model or load_run_model(cfg)
        cfg, chosen = fill_defaults(cfg, lambda: default_layers(model), dataset.has_fixed_split, log, dataset.root)
        outputs = [(layer, cfg.pool) for layer in cfg.layers]
        dataset, model, ext = extract_dataset(cfg, outputs, dataset, model)
        classes, y_all, split = dataset.classes, dataset.labels[ext.ok], dataset.split[ext.ok]
        paths = [str(dataset.paths[i]) for i in ext.ok]
        source = {**model.provenance(), "label": model.label(), "dataset": dataset.describe()}
        extraction = extraction_record(ext)
    x_all = assemble(ext, outputs, slice(None), cfg.l2)
    splits = make_splits(y_all, split, cfg.protocol, cfg.train_per_class, cfg.seed, classes)
    scores, pipelines = fit_splits(x_all, y_all, splits, classes, paths, cfg.classifier, cfg.C, cfg.standardize,
                                   cfg.pca, cfg.seed)
    provenance = Provenance.from_dict({
        **source, "layers": cfg.layers, "pool": cfg.pool, "l2": cfg.l2,
        "gray": cfg.gray, "resize": cfg.resize, "runtime": cfg.runtime, **numerics_record(ext.specs),
        "feature_specs": [ext.specs[o] for o in outputs],
        "classifier": cfg.classifier, "C": cfg.C, "pca": cfg.pca, "standardize": cfg.standardize,
        "protocol": cfg.protocol, "chosen_by_default": chosen, "train_per_class": cfg.train_per_class,
        "limit_per_class": cfg.limit_per_class, "seed": cfg.seed,
        "versions": library_versions(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "config": asdict(cfg),
    })
    record = RunRecord(**vars(scores), feature_dim=int(x_all.shape[1]), classes=list(classes),
                       extraction=extraction, provenance=provenance)
    return TrainedRun(record, pipelines, splits, outputs, [str(p) for p in paths], y_all, model, dataset)


def extraction_record(ext) -> Extraction:
    return Extraction(seconds=round(ext.seconds, 2), computed_images=ext.computed, cached_images=ext.cached,
                      images_per_s=round(ext.images_per_s, 2), bad_files=[BadFile(p, r) for p, r in ext.bad])
