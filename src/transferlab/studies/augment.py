"""Augmentation for SVM features: test-time augmentation (features averaged over views of each image, for the
training images too) and training-set augmentation (each view of a training image an extra sample). The variant
and C are chosen by cross-validation over the training images only; the test set is scored once per row."""
from __future__ import annotations

import numpy as np

from transferlab.classify.selection import fit_and_score
from transferlab.features.views import PLAIN, pixel_cost
from transferlab.options import AUG_VARIANTS
from transferlab.studies.members import load_members
from transferlab.studies.record import make_record
from transferlab.studies.registry import STUDIES


def _views(cfg, variants):
    """The model's layers under every view the variants use (cached per view), joined per view."""
    views = list(dict.fromkeys(v for name in variants for v in AUG_VARIANTS[name]))
    ms = load_members(cfg, [(cfg.model, cfg.weights, cfg.layers)], views)
    members = list(ms.members.values())
    x = {v: np.concatenate([m.x[v] for m in members], axis=1) for v in views}
    seconds = {v: round(sum(m.extract_seconds[v] for m in members), 1) for v in views}
    return ms, x, seconds


def _row(variant, scored, x, seconds, pre, **extra):
    views = AUG_VARIANTS[variant]
    return {"variant": variant, "views": " ".join(v or "plain" for v in views), **extra,
            "passes": round(sum(pixel_cost(pre, v) for v in views), 2), "C": scored.C,
            "cv_accuracy": scored.cv_accuracy, "test_accuracy": scored.test_accuracy,
            "extract_seconds": round(sum(seconds[v] for v in views), 1), "cv_seconds": scored.selection["seconds"],
            "dim": int(x[PLAIN].shape[1])}


def _finish(name, cfg, ms, rows, columns, what):
    chosen = max(rows, key=lambda r: (r["cv_accuracy"], -r["passes"]))  # ties: the cheaper variant
    for r in rows:
        r["chosen"] = r is chosen
    plain = rows[0]
    notes = [f"chosen by 5-fold CV on train: {chosen['variant']}{' ' + chosen.get('test', '') if 'test' in chosen else ''}"
             f" (CV {chosen['cv_accuracy']:.4f}, test {chosen['test_accuracy']:.4f}) against no augmentation "
             f"(CV {plain['cv_accuracy']:.4f}, test {plain['test_accuracy']:.4f})",
             f"passes: extraction cost relative to one plain pass ({what}); folds are over images, so the views of "
             "an image are never on both sides of a fold"]
    return make_record(name, STUDIES[name].question, cfg, ms.model, ms.dataset, columns, rows, chosen, notes)


def tta(cfg, variants=tuple(AUG_VARIANTS)):
    """Each variant: the mean of the L2-normalised features of its views, for training and test images alike."""
    ms, x, seconds = _views(cfg, variants)
    tr, te, y, pre = ms.train, ms.test, ms.y, ms.model.preprocess
    rows = []
    for variant in variants:
        xv = np.mean([x[v] for v in AUG_VARIANTS[variant]], axis=0)
        scored = fit_and_score(xv[tr], y[tr], xv[te], y[te], seed=cfg.seed, classifier=cfg.classifier)
        rows.append(_row(variant, scored, x, seconds, pre))
    columns = ["variant", "views", "passes", "C", "cv_accuracy", "test_accuracy", "extract_seconds", "cv_seconds",
               "chosen"]
    return _finish("tta", cfg, ms, rows, columns, "train and test images alike")


def augment(cfg, variants=tuple(AUG_VARIANTS)):
    """Each variant: the training images' other views as extra samples; tested on the plain view, and on the mean
    of the same views (augmentation and TTA together)."""
    ms, x, seconds = _views(cfg, variants)
    tr, te, y, pre = ms.train, ms.test, ms.y, ms.model.preprocess
    rows = []
    for variant in variants:
        extra = [x[v][tr] for v in AUG_VARIANTS[variant] if v != PLAIN]
        for test in ("plain", "views averaged") if extra else ("plain",):
            xe = x[PLAIN] if test == "plain" else np.mean([x[v] for v in AUG_VARIANTS[variant]], axis=0)
            scored = fit_and_score(x[PLAIN][tr], y[tr], xe[te], y[te], extra=extra, x_eval_train=xe[tr], seed=cfg.seed,
                                   classifier=cfg.classifier)
            rows.append(_row(variant, scored, x, seconds, pre, test=test, train_samples=len(tr) * (1 + len(extra))))
    columns = ["variant", "views", "test", "train_samples", "passes", "C", "cv_accuracy", "test_accuracy",
               "extract_seconds", "cv_seconds", "chosen"]
    return _finish("augment", cfg, ms, rows, columns, "every image, train and test")
