"""The practical's own studies (layers, pooling, gray modes, C, classifiers, PCA, backbones, protocol,
pre-training): one question each, answered by a measured table (all features through the cache). Each returns
its record; :mod:`transferlab.plots.studies` draws its figure from that record."""
from __future__ import annotations

import itertools
import time
from dataclasses import replace

import numpy as np
import torch

from transferlab.classify.estimators import C_GRID, CLASSIFIERS
from transferlab.config import RunConfig
from transferlab.data.datasets import make_splits
from transferlab.data.images import load_image
from transferlab.experiment import assemble, extract_dataset, fit_and_evaluate
from transferlab.features.extractor import numerics_record
from transferlab.models.builder import load_run_model
from transferlab.models.gray import GRAY_MODES, gray_channels
from transferlab.provenance import Scores, StudyRecord
from transferlab.studies.members import default_backbones
from transferlab.studies.record import make_record
from transferlab.studies.registry import STUDIES


class _Features:
    """A dataset's features for several outputs of one backbone, with the splits and paths to evaluate on."""

    def __init__(self, cfg: RunConfig, outputs, model=None):
        self.cfg, self.outputs = cfg, list(outputs)
        self.dataset, self.model, self.ext = extract_dataset(cfg, self.outputs, model=model)
        self.y = self.dataset.labels[self.ext.ok]
        self.splits = make_splits(self.y, self.dataset.split[self.ext.ok], cfg.protocol, cfg.train_per_class,
                                  cfg.seed)
        self.paths = [str(self.dataset.paths[i]) for i in self.ext.ok]

    def x(self, outputs=None, l2=None):
        return assemble(self.ext, outputs or self.outputs, slice(None), self.cfg.l2 if l2 is None else l2)

    def score(self, x, **kw) -> Scores:
        """The scores of features ``x`` (accuracies to 4 decimals, fit time to the millisecond)."""
        args = dict(classifier=self.cfg.classifier, C=self.cfg.C, standardize=self.cfg.standardize,
                    pca=self.cfg.pca, seed=self.cfg.seed) | kw
        r = fit_and_evaluate(x, self.y, self.splits, self.dataset.classes, self.paths, **args)
        return replace(r, accuracy=round(r.accuracy, 4), accuracy_std=round(r.accuracy_std, 4),
                       fit_seconds=round(r.fit_seconds, 3))


def _forward_ms(model, layers, size: int, batch: int = 4, repeats: int = 3) -> dict[str, float]:
    """Milliseconds per image to compute up to each layer: cumulative step times of whole forward passes
    (median of ``repeats``)."""
    x0 = torch.rand(batch, 3, size, size)
    steps = model.net.steps()
    last = max(i for i, (n, _) in enumerate(steps) if n in layers)
    runs = []
    with torch.inference_mode():
        for _ in range(repeats):
            x, t0, elapsed = x0, time.perf_counter(), {}
            for name, module in steps[:last + 1]:
                x = module(x)
                elapsed[name] = time.perf_counter() - t0
            runs.append(elapsed)
    return {n: round(1000 * float(np.median([r[n] for r in runs])) / batch, 2) for n in layers}


def _map_sizes(model, layers, size: int) -> dict[str, int]:
    """Number of values in each layer's output for an input of ``size``²."""
    with torch.inference_mode():
        out = model.net.forward_layers(torch.zeros(1, 3, size, size), layers)
    return {k: v[0].numel() for k, v in out.items()}


def study_layer_names(model) -> list[str]:
    """Pool and ReLU outputs (VGG, AlexNet), fc8 when pretrained; blocks and head (EfficientNet)."""
    prefixes = ("pool", "relu", "fc8", "stem", "block", "head", "avgpool")
    names = [n for n in model.usable_layers() if n.startswith(prefixes)]
    if any(n.startswith("pool") for n in names):
        names = [n for n in names if n != "avgpool"]
    return names


def layers(cfg: RunConfig) -> StudyRecord:
    model = load_run_model(cfg)
    if model.origin != "registry":  # its layer choice and timing walk our architectures' named steps
        raise ValueError(f"the layers study compares our architectures' named layers; for {model.name}, compare "
                         f"the layers you choose with `transferlab run --layer A` (one run per layer)")
    names = study_layer_names(model)
    f = _Features(cfg, [(n, cfg.pool) for n in names], model)
    ms = _forward_ms(model, names, cfg.input_size or model.preprocess.crop)
    rows = []
    for o in f.outputs:
        s = f.score(f.x([o]))
        rows.append({"layer": o[0], "dim": int(f.ext.features[o].shape[1]), "accuracy": s.accuracy,
                     "ms_per_image": ms[o[0]], "fit_seconds": s.fit_seconds})
    top = [r["layer"] for r in sorted(rows, key=lambda r: -r["accuracy"])[:5]]
    combos = []
    for k in (2, 3):
        for combo in itertools.combinations(top, k):
            s = f.score(f.x([(n, cfg.pool) for n in combo]))
            combos.append({"layers": "+".join(combo), "accuracy": s.accuracy, "fit_seconds": s.fit_seconds})
    combos.sort(key=lambda r: -r["accuracy"])
    best = max(rows, key=lambda r: r["accuracy"])
    notes = [f"best single layer: {best['layer']} ({best['accuracy']:.4f}, {best['dim']} dims)",
             f"best concatenation of 2–3 of the top-5 layers: {combos[0]['layers']} ({combos[0]['accuracy']:.4f})"]
    if not model.pretrained or model.covers != model.net.layer_names()[-1]:
        notes.append(f"{model.label()}: layers past {model.covers} are not pretrained and were not studied")
    return _record("layers", cfg, f, ["layer", "dim", "accuracy", "ms_per_image", "fit_seconds"], rows, best,
                   notes, extra={"combinations": combos})


def pooling(cfg: RunConfig) -> StudyRecord:
    model = load_run_model(cfg)
    shapes = _map_sizes(model, cfg.layers, cfg.input_size or model.preprocess.crop)
    pools = ["avg", "max", "avgmax", "spp:1,2,4", "flatten"]
    # flatten is kept for maps of at most 25,088 values (VGG's pool5): larger ones would fill the cache
    outputs = [(layer, p) for layer in cfg.layers for p in pools if p != "flatten" or shapes[layer] <= 25088]
    f = _Features(cfg, outputs, model)
    rows = []
    for o in outputs:
        for l2 in (True, False):
            s = f.score(f.x([o], l2=l2))
            rows.append({"layer": o[0], "pool": o[1], "l2": l2, "dim": int(f.ext.features[o].shape[1]),
                         "accuracy": s.accuracy, "fit_seconds": s.fit_seconds})
    best = max(rows, key=lambda r: r["accuracy"])
    gain = np.mean([a["accuracy"] - b["accuracy"] for a, b in zip(rows[::2], rows[1::2])])
    skipped = [layer for layer in cfg.layers if shapes[layer] > 25088]
    notes = [f"best: {best['layer']} {best['pool']}{' + L2' if best['l2'] else ''} ({best['accuracy']:.4f})",
             f"L2 normalisation changes accuracy by {gain:+.4f} on average over poolings"]
    if skipped:
        notes.append(f"flatten not studied for {', '.join(skipped)} (more than 25,088 values per image)")
    return _record("pooling", cfg, f, ["layer", "pool", "l2", "dim", "accuracy", "fit_seconds"], rows, best, notes)


def _conv1_scale(f: _Features, paths) -> float:
    """Mean |first-convolution output| over a few images with the network and preprocessing ``f`` extracted with
    (its gray mode already applied): the mode's effect on activation scale."""
    net, cfg = f.model.net, f.cfg
    preprocess = f.model.preprocess.with_mode(cfg.resize).with_size(cfg.input_size)
    channels = gray_channels(cfg.gray)
    first = net.layer_names()[1]
    x = torch.stack([preprocess.pixels(load_image(p), channels) for p in paths])
    with torch.inference_mode():
        return float(net.forward_layers(x, [first])[first].abs().mean())


def gray(cfg: RunConfig) -> StudyRecord:
    rows, feats, f = [], {}, None
    for mode in GRAY_MODES:
        f = _Features(replace(cfg, gray=mode), [(layer, cfg.pool) for layer in cfg.layers])
        s = f.score(f.x())
        feats[mode] = f.x(l2=False)
        rows.append({"gray": mode, "accuracy": s.accuracy, "conv1_mean_abs": _conv1_scale(f, f.paths[:8])})
    ref = feats["replicate"]
    for r in rows:
        r["conv1_scale_vs_replicate"] = round(r["conv1_mean_abs"] / rows[0]["conv1_mean_abs"], 4)
        r["max_rel_diff_vs_replicate"] = float(np.abs(feats[r["gray"]] - ref).max() / np.abs(ref).max())
        r["conv1_mean_abs"] = round(r["conv1_mean_abs"], 4)
    best = max(rows, key=lambda r: r["accuracy"])
    notes = [f"conv1-sum reproduces replicate: max relative feature difference "
             f"{rows[2]['max_rel_diff_vs_replicate']:.2e}",
             f"conv1-mean scales first-layer activations by {rows[1]['conv1_scale_vs_replicate']:.3f} "
             f"(kernels averaged instead of summed) and changes accuracy by "
             f"{rows[1]['accuracy'] - rows[0]['accuracy']:+.4f}"]
    return _record("gray", cfg, f, ["gray", "accuracy", "conv1_mean_abs", "conv1_scale_vs_replicate",
                                    "max_rel_diff_vs_replicate"], rows, best, notes)


def c_study(cfg: RunConfig) -> StudyRecord:
    f = _Features(cfg, [(layer, cfg.pool) for layer in cfg.layers])
    x = f.x()
    cv = f.score(x, C="auto")
    chosen = cv.runs[0].C
    cv_acc = dict(zip(cv.runs[0].cv["grid"], cv.runs[0].cv["mean_cv_accuracy"]))
    rows = [{"C": c, "cv_accuracy_on_train": cv_acc[c], "test_accuracy": f.score(x, C=c).accuracy,
             "chosen_by_cv": c == chosen} for c in C_GRID]
    best = next(r for r in rows if r["chosen_by_cv"])
    oracle = max(rows, key=lambda r: r["test_accuracy"])
    notes = [f"5-fold CV on the training set chose C={chosen} (test accuracy {best['test_accuracy']:.4f}); the "
             f"best C in hindsight on the test set would be {oracle['C']} ({oracle['test_accuracy']:.4f}) — "
             "choosing it that way would be cheating"]
    return _record("C", cfg, f, ["C", "cv_accuracy_on_train", "test_accuracy", "chosen_by_cv"], rows, best, notes)


def classifiers(cfg: RunConfig) -> StudyRecord:
    f = _Features(cfg, [(layer, cfg.pool) for layer in cfg.layers])
    x = f.x()
    rows = []
    for name in CLASSIFIERS:
        s = f.score(x, classifier=name)
        rows.append({"classifier": name, "accuracy": s.accuracy, "fit_seconds": s.fit_seconds,
                     "predict_seconds": round(s.runs[0].predict_seconds, 3)})
    best = max(rows, key=lambda r: r["accuracy"])
    return _record("classifiers", cfg, f, ["classifier", "accuracy", "fit_seconds", "predict_seconds"], rows, best,
                   [f"best: {best['classifier']} ({best['accuracy']:.4f})"])


def pca(cfg: RunConfig) -> StudyRecord:
    f = _Features(cfg, [(layer, cfg.pool) for layer in cfg.layers])
    x = f.x()
    limit = min(len(f.splits[0].train), x.shape[1])
    dims = [d for d in (8, 16, 32, 64, 128, 256, 512) if d < limit] + [None]
    rows = []
    for d in dims:
        s = f.score(x, pca=d)
        rows.append({"pca_dims": d or int(x.shape[1]), "pca": d is not None, "accuracy": s.accuracy,
                     "fit_seconds": s.fit_seconds})
    best = max(rows, key=lambda r: r["accuracy"])
    return _record("pca", cfg, f, ["pca_dims", "pca", "accuracy", "fit_seconds"], rows, best,
                   [f"best: {best['pca_dims']} dims ({best['accuracy']:.4f})"])


def backbones(cfg: RunConfig) -> StudyRecord:
    rows, parts, f = [], {}, None
    for name, tag, layer_list in default_backbones():
        f = _Features(replace(cfg, model=name, weights=tag, layers=layer_list), [(l, cfg.pool) for l in layer_list])
        for o in f.outputs:
            parts[f"{name}:{o[0]}"] = (f, o)
            s = f.score(f.x([o]))
            rows.append({"features": f"{name}:{o[0]}", "weights": f.model.label(), "dim": int(f.ext.features[o].shape[1]),
                         "accuracy": s.accuracy, "images_per_s": round(f.ext.images_per_s, 2)})
    ok = set.intersection(*[set(p[0].paths) for p in parts.values()])

    def block(key):
        fe, o = parts[key]
        keep = np.array([p in ok for p in fe.paths])
        return assemble(fe.ext, [o], keep, True), fe.y[keep]

    ranked = [r["features"] for r in sorted(rows, key=lambda r: -r["accuracy"])]
    combos = [ranked[:k] for k in range(2, len(ranked) + 1)]
    combos += [list(c) for c in itertools.combinations(ranked[:4], 2) if list(c) not in combos]
    f0 = parts[ranked[0]][0]
    keep0 = np.array([p in ok for p in f0.paths])
    y = f0.y[keep0]
    splits = make_splits(y, f0.dataset.split[f0.ext.ok][keep0], cfg.protocol, cfg.train_per_class, cfg.seed)
    paths = [p for p in f0.paths if p in ok]
    for combo in combos:
        x = np.concatenate([block(k)[0] for k in combo], axis=1)
        s = fit_and_evaluate(x, y, splits, f0.dataset.classes, paths, cfg.classifier, cfg.C, cfg.standardize,
                             cfg.pca, cfg.seed)
        rows.append({"features": " + ".join(combo), "weights": "concatenation (each L2-normalised)",
                     "dim": int(x.shape[1]), "accuracy": round(s.accuracy, 4), "images_per_s": None})
    best = max(rows, key=lambda r: r["accuracy"])
    return _record("backbones", cfg, f0, ["features", "weights", "dim", "accuracy", "images_per_s"], rows, best,
                   [f"best: {best['features']} ({best['accuracy']:.4f})"])


def protocol(cfg: RunConfig) -> StudyRecord:
    rows, f = [], None
    for proto in ("fixed", "random:10"):
        f = _Features(replace(cfg, protocol=proto), [(layer, cfg.pool) for layer in cfg.layers])
        s = f.score(f.x())
        rows.append({"protocol": proto, "splits": len(s.runs), "train_images": s.runs[0].train_images,
                     "test_images": s.runs[0].test_images, "accuracy": s.accuracy,
                     "accuracy_std": s.accuracy_std})
    best = max(rows, key=lambda r: r["accuracy"])
    notes = [f"random:10 (100 per class pooled from train+test): {rows[1]['accuracy']:.4f} ± "
             f"{rows[1]['accuracy_std']:.4f}; fixed split: {rows[0]['accuracy']:.4f}"]
    return _record("protocol", cfg, f, ["protocol", "splits", "train_images", "test_images", "accuracy",
                                        "accuracy_std"], rows, best, notes)


def pretraining(cfg: RunConfig) -> StudyRecord:
    rows, f = [], None
    for tag in (cfg.weights, "none"):
        f = _Features(replace(cfg, weights=tag), [(layer, cfg.pool) for layer in cfg.layers])
        s = f.score(f.x())
        rows.append({"weights": f.model.label(), "pretrained": f.model.pretrained, "accuracy": s.accuracy})
    params = sum(p.numel() for p in f.model.net.parameters())
    n_train = len(f.splits[0].train)
    notes = [f"ImageNet pre-training: {rows[0]['accuracy']:.4f} vs random weights {rows[1]['accuracy']:.4f} "
             f"at the same layer with the same classifier",
             f"{f.model.name} has {params:,} parameters against {n_train} training images "
             f"({params / n_train:,.0f} parameters per image): training it from scratch would overfit"]
    return _record("pretraining", cfg, f, ["weights", "pretrained", "accuracy"], rows, rows[0], notes)


def _record(name, cfg, f, columns, rows, best, notes, extra=None) -> StudyRecord:
    return make_record(name, STUDIES[name].question, cfg, f.model, f.dataset, columns, rows, best, notes, extra,
                       numerics=numerics_record(f.ext.specs))
