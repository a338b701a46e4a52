"""Out-of-fold decision values on the training set: what C, fusion weights and augmentation variants are chosen
on, so that no choice ever sees the test set. Folds are over images: the extra views of an image (its flip, its
crops) are training samples of its own fold only, so an image and its flip never straddle folds."""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold

from transferlab.classify.estimators import make_pipeline

# the part of estimators.C_GRID that cross-validation picks from on L2-normalised features (0.1–10 on 15 Scene);
# each fit at C=100 costs about 6 times one at C=1 (measured, EfficientNet-Lite0 avgpool, 1,200 images)
OOF_C_GRID = (0.1, 1.0, 10.0)
WEIGHT_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # late fusion: the weights a member may get


def _fit(x, y, extra, C, classifier, seed):
    xs = np.concatenate([x, *extra]) if extra else x
    ys = np.concatenate([y] * (1 + len(extra))) if extra else y
    return make_pipeline(classifier, C, seed=seed).fit(xs, ys)


def fit_decide(x: np.ndarray, y: np.ndarray, x_eval: np.ndarray, C: float, extra: Sequence[np.ndarray] = (),
               classifier: str = "linear-svm", seed: int = 0) -> np.ndarray:
    """Fit on (x, y) plus the rows of ``extra`` (other views of the same images, same labels); the decision
    values of ``x_eval`` (n, classes)."""
    model = _fit(x, y, list(extra), C, classifier, seed)
    if not hasattr(model, "decision_function"):
        raise ValueError(f"classifier {classifier!r} has no decision values to fuse; use linear-svm, logreg or ridge")
    return model.decision_function(x_eval)


def folds_of(y: np.ndarray, folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds over the images (as ``fit_classifier``'s C search); fewer when a class is that small."""
    k = min(folds, int(np.bincount(y).min()))
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 training images per class; a class has {k}")
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def oof_decisions(x: np.ndarray, y: np.ndarray, C: float, extra: Sequence[np.ndarray] = (),
                  x_eval: np.ndarray | None = None, folds: int = 5, seed: int = 0,
                  classifier: str = "linear-svm") -> np.ndarray:
    """Each training image's decision values from a model fitted on the other folds only (with their ``extra``
    views); scored on ``x_eval``'s row of the image (default ``x``: e.g. a test-time-augmented version)."""
    x_eval = x if x_eval is None else x_eval
    out = np.zeros((len(y), int(y.max()) + 1))
    for fit_rows, held in folds_of(y, folds, seed):
        out[held] = fit_decide(x[fit_rows], y[fit_rows], x_eval[held], C, [e[fit_rows] for e in extra],
                               classifier, seed)
    return out


def accuracy(decisions: np.ndarray, y: np.ndarray) -> float:
    return float((decisions.argmax(1) == y).mean())


def choose_C(x: np.ndarray, y: np.ndarray, extra: Sequence[np.ndarray] = (), x_eval: np.ndarray | None = None,
             grid: Sequence[float] = OOF_C_GRID, folds: int = 5, seed: int = 0, classifier: str = "linear-svm") -> dict:
    """C from ``grid`` by out-of-fold accuracy on the training images (the first best, as ``GridSearchCV``);
    returns it with the accuracy of each C, the chosen C's out-of-fold decision values and the seconds spent."""
    t0 = time.perf_counter()
    accs, decisions = {}, {}
    for c in grid:
        decisions[c] = oof_decisions(x, y, c, extra, x_eval, folds, seed, classifier)
        accs[c] = round(accuracy(decisions[c], y), 4)
    chosen = max(grid, key=lambda c: accs[c])  # max keeps the first of equals
    return {"C": chosen, "cv_accuracy": accs[chosen], "grid": dict(accs), "oof": decisions[chosen],
            "seconds": round(time.perf_counter() - t0, 2)}


def ascent_weights(decisions: list[np.ndarray], y: np.ndarray, sweeps: int = 3) -> np.ndarray:
    """Per-member weights from ``WEIGHT_GRID`` by coordinate ascent on the accuracy of the weighted sum, from
    equal weights (a change must strictly improve accuracy: ties keep the simpler equal weights)."""
    w = np.ones(len(decisions))
    best = accuracy(sum(wi * d for wi, d in zip(w, decisions)), y)
    for _ in range(sweeps):
        changed = False
        for i in range(len(w)):
            for v in WEIGHT_GRID:
                t = w.copy()
                t[i] = v
                if t.sum() == 0:
                    continue
                a = accuracy(sum(wi * d for wi, d in zip(t, decisions)), y)
                if a > best + 1e-12:
                    best, w, changed = a, t, True
        if not changed:
            break
    return w
