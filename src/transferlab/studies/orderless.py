"""Study ``orderless``: orderless pooling of VGG16 conv5 maps (signed-sqrt average, compact bilinear, VLAD, Fisher
vectors) and larger input sizes through the convolutions, against average pooling of pool4+relu5_1+pool5.

Every choice is made on the training images only: the encoders (PCA, k-means, GMM) are fitted on descriptors
sampled from training maps, each configuration is scored by stratified k-fold cross-validation on train, and
the chosen one is the best by that score. The test set is scored once per configuration, for the table.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from transferlab.features.blocks import join_blocks
from transferlab.classify.estimators import evaluate
from transferlab.classify.selection import pipeline_at, select_C
from transferlab.data.datasets import load_dataset, make_splits
from transferlab.features.extractor import Extractor, numerics_record
from transferlab.features.maps import Maps, MapStore, extract_maps
from transferlab.features.orderless import make_encoder, sample_descriptors
from transferlab.models.builder import load_run_model
from transferlab.models.loaded import LoadedModel
from transferlab.provenance import StudyRecord
from transferlab.studies.record import make_record
from transferlab.studies.registry import STUDIES

MAP_LAYER = "relu5_3"  # the last convolution's rectified output: the descriptors of B-CNN and FV-CNN
AVG_LAYERS = ("pool4", "relu5_1", "pool5")  # `make run`'s setting, the baseline
# the encoders and their small parameter grids (the parameters are chosen by CV on train)
GRID = (("sqrt-mean", {}), ("bilinear", {"dim": 32}), ("bilinear", {"dim": 64}), ("bilinear", {"dim": 128}),
        ("vlad", {"k": 16, "dim": 64}), ("vlad", {"k": 64, "dim": 64}),
        ("fisher", {"k": 16, "dim": 64}), ("fisher", {"k": 32, "dim": 64}))
SAMPLE = 50_000  # training descriptors the encoders are fitted on (drawn evenly from the training images)
COLUMNS = ["features", "input_size", "encoder", "dim", "cv_accuracy_on_train", "test_accuracy", "chosen_by_cv",
           "extract_ms_per_image", "encode_ms_per_image"]


def _label(family: str, params: dict) -> str:
    return family + "".join(f" {k}={v}" for k, v in params.items())


def _scale(cfg, dataset, size: int, layer: str) -> tuple[LoadedModel, Maps]:
    if cfg.runtime != "eager":
        raise ValueError(f"the orderless study reads conv maps through the eager network; runtime {cfg.runtime!r} "
                         "cannot give them (leave --runtime at eager)")
    model = load_run_model(cfg)  # its own copy: the extractor adapts it for the gray mode
    ex = Extractor.from_run(replace(cfg, input_size=size), model, [(name, "avg") for name in AVG_LAYERS])
    store = MapStore(Path(cfg.cache) / "maps" if cfg.cache else None)
    return model, extract_maps(ex, layer, dataset.paths, store)


def _encode(maps: Maps, rows: list[int], train: np.ndarray, seed: int) -> dict[str, tuple[np.ndarray, float]]:
    """Each grid encoder fitted on training descriptors, then every image encoded a chunk of maps at a time:
    label -> (features (len(rows), D), milliseconds per image to encode, fitting excluded)."""
    rng = np.random.default_rng(seed)
    train_rows = [rows[i] for i in train]
    positions = int(np.prod(maps.get(train_rows[:1]).shape[2:]))
    per_image = min(positions, max(1, SAMPLE // len(train_rows)))
    sample = np.concatenate([sample_descriptors(m, per_image, rng) for _, m in maps.chunks(train_rows)])
    encoders = {_label(f, p): make_encoder(f, seed, **p).fit(sample) for f, p in GRID}
    out = {k: [] for k in encoders}
    spent = dict.fromkeys(encoders, 0.0)
    for _, m in maps.chunks(rows):
        for k, enc in encoders.items():
            t0 = time.perf_counter()
            out[k].append(enc.transform(m))
            spent[k] += time.perf_counter() - t0
    return {k: (np.concatenate(v), round(1000 * spent[k] / len(rows), 2)) for k, v in out.items()}


def score_on_train_then_test(x, y, split, classes, cfg) -> dict:
    """CV accuracy on the training rows (what the choice uses; with ``C='auto'`` C is chosen there too), then the
    test accuracy of the classifier fitted on all training rows (reported, never used to choose)."""
    xt, yt = x[split.train], y[split.train]
    sel = select_C(xt, yt, None if cfg.C == "auto" else [float(cfg.C)], seed=cfg.seed, classifier=cfg.classifier,
                   standardize=cfg.standardize)
    C, cv = sel["C"], sel["cv_accuracy"]
    model = pipeline_at(cfg.classifier, C, cfg.standardize, None, cfg.seed).fit(xt, yt)
    test = evaluate(model, x[split.test], y[split.test], classes)["accuracy"]
    return {"cv_accuracy_on_train": round(cv, 4), "test_accuracy": round(float(test), 4), "C": C}


def orderless(cfg) -> StudyRecord:
    """The study's record (its provenance and numerics from the average-pooled features' extraction)."""
    dataset = load_dataset(cfg.data, cfg.limit_per_class)
    layer = cfg.layers[0] if cfg.layers else MAP_LAYER
    passes = {}
    for size in cfg.scales or [cfg.input_size or 224]:
        passes[size] = _scale(cfg, dataset, size, layer)
    ok = sorted(set.intersection(*[set(m.ext.ok) for _, m in passes.values()]))
    y, side = dataset.labels[ok], dataset.split[ok]
    splits = make_splits(y, side, cfg.protocol, cfg.train_per_class, cfg.seed, dataset.classes)
    if len(splits) != 1:
        raise ValueError(f"the orderless study scores one split; protocol {cfg.protocol} gives {len(splits)}")
    split = splits[0]
    rows, blocks = [], {}
    for size, (_, maps) in passes.items():
        where = {i: r for r, i in enumerate(maps.ext.ok)}
        mine = [where[i] for i in ok]
        ms = maps.ms_per_image()
        avg = join_blocks([maps.ext.features[(name, "avg")][mine] for name in AVG_LAYERS], True)
        feats = {"avg " + "+".join(AVG_LAYERS): (avg, 0.0)} | _encode(maps, mine, split.train, cfg.seed)
        for label, (x, enc_ms) in feats.items():
            blocks[(size, label)] = x
            rows.append({"features": f"{size} · {label}", "input_size": size, "encoder": label, "dim": int(x.shape[1]),
                         **score_on_train_then_test(x, y, split, dataset.classes, cfg),
                         "extract_ms_per_image": ms, "encode_ms_per_image": enc_ms})
    rows += _combinations(blocks, rows, y, split, dataset.classes, cfg)
    chosen = max(rows, key=lambda r: (r["cv_accuracy_on_train"], -r["dim"]))
    for r in rows:
        r["chosen_by_cv"] = r is chosen
    oracle = max(rows, key=lambda r: r["test_accuracy"])
    baseline = rows[0]
    notes = [f"chosen by {cfg.protocol} train CV: {chosen['features']} (CV {chosen['cv_accuracy_on_train']:.4f}, "
             f"test {chosen['test_accuracy']:.4f}); average pooling of {'+'.join(AVG_LAYERS)} at "
             f"{baseline['input_size']}: test {baseline['test_accuracy']:.4f}",
             f"best test accuracy in hindsight: {oracle['features']} ({oracle['test_accuracy']:.4f}) — "
             "choosing it that way would be cheating",
             f"{len(split.train)} training and {len(split.test)} test images"
             + (f" (first {cfg.limit_per_class} per class and split)" if cfg.limit_per_class else ""),
             f"encoders fitted on up to {SAMPLE:,} descriptors of {layer} sampled from the training maps only; "
             "extraction time measured when the maps were computed (one pass gives the maps and the avg features)"]
    model, maps = next(iter(passes.values()))
    return make_record("orderless", STUDIES["orderless"].question, cfg, model, dataset, COLUMNS + ["C"], rows, chosen,
                       notes, numerics=numerics_record(maps.ext.specs))


def _combinations(blocks, rows, y, split, classes, cfg) -> list[dict]:
    """The CV-best orderless encoder joined to the avg baseline at each size, and multi-scale concatenations."""
    sizes = list(dict.fromkeys(s for s, _ in blocks))
    base = next(label for s, label in blocks if label.startswith("avg"))
    by_cv = {}
    for r in rows:
        if r["encoder"] != base:
            by_cv.setdefault(r["encoder"], []).append(r["cv_accuracy_on_train"])
    best = max(by_cv, key=lambda k: np.mean(by_cv[k]))
    combos = [(f"{s} · {base} + {best}", [(s, base), (s, best)]) for s in sizes]
    if len(sizes) > 1:
        scales = "+".join(map(str, sizes))
        combos += [(f"{scales} · {label}", [(s, label) for s in sizes]) for label in (base, best)]
        combos.append((f"{scales} · {base} + {best}", [(s, lab) for s in sizes for lab in (base, best)]))
    out = []
    for name, parts in combos:
        x = join_blocks([blocks[p] for p in parts], True)
        cost = {s: next(r for r in rows if r["input_size"] == s) for s, _ in parts}
        enc = sum(next(r["encode_ms_per_image"] for r in rows if (r["input_size"], r["encoder"]) == p) for p in parts)
        out.append({"features": name, "input_size": "+".join(str(s) for s in cost),
                    "encoder": " + ".join(dict.fromkeys(lab for _, lab in parts)), "dim": int(x.shape[1]),
                    **score_on_train_then_test(x, y, split, classes, cfg),
                    "extract_ms_per_image": round(sum(r["extract_ms_per_image"] or 0 for r in cost.values()), 1),
                    "encode_ms_per_image": round(enc, 2)})
    return out
