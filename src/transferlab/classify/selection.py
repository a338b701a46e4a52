"""Choosing a classifier's C on the training images only, by out-of-fold scores, and scoring the chosen one on
the test images once: the one routine every run, study and fusion uses, so that no choice ever sees the test set.

Folds are over images: the extra views of an image (its flip, its crops) are training samples of its own fold
only, so an image and its flip never straddle folds."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from transferlab.classify.estimators import C_GRID, K_GRID, make_pipeline

# the part of C_GRID that cross-validation picks from on L2-normalised features, for the studies that fit many
# feature sets (C=100 is the slowest fit of the grid)
SHORT_C_GRID = (0.1, 1.0, 10.0)


def grid_for(classifier: str) -> tuple[float, ...]:
    """The values ``C='auto'`` searches: C (ridge: alpha = 1/C), or the neighbours of knn."""
    return K_GRID if classifier == "knn" else C_GRID


def folds_of(y: np.ndarray, folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, shuffled, seeded folds over the images; fewer when a class has fewer images than ``folds``."""
    k = min(folds, int(np.bincount(y).min()))
    if k < 2:
        raise ValueError(f"choosing by cross-validation (--C auto) needs at least 2 training images per class; a class "
                         f"has {k}")
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def pipeline_at(classifier: str, value: float, standardize: bool = False, pca: int | None = None, seed: int = 0):
    """The classifier's pipeline at one value of :func:`grid_for`'s grid (knn: the neighbours)."""
    if classifier == "knn":
        return make_pipeline(classifier, standardize=standardize, pca=pca, seed=seed, neighbours=int(value))
    return make_pipeline(classifier, float(value), standardize, pca, seed)


def _fit(x, y, extra, C, classifier, seed, standardize=False, pca=None):
    xs = np.concatenate([x, *extra]) if extra else x
    ys = np.concatenate([y] * (1 + len(extra))) if extra else y
    return pipeline_at(classifier, C, standardize, pca, seed).fit(xs, ys)


def class_scores(model, x: np.ndarray) -> np.ndarray:
    """(n, classes) scores whose argmax is the prediction: decision values, or probabilities (knn)."""
    if hasattr(model, "decision_function"):
        d = model.decision_function(x)
        return np.stack([-d, d], 1) if d.ndim == 1 else d
    return model.predict_proba(x)


def fit_decide(x: np.ndarray, y: np.ndarray, x_eval: np.ndarray, C: float, extra: Sequence[np.ndarray] = (),
               classifier: str = "linear-svm", seed: int = 0, standardize: bool = False,
               pca: int | None = None) -> np.ndarray:
    """Fit on (x, y) plus the rows of ``extra`` (other views of the same images, same labels); the class scores of
    ``x_eval`` (n, classes)."""
    return class_scores(_fit(x, y, list(extra), C, classifier, seed, standardize, pca), x_eval)


def oof_scores(x: np.ndarray, y: np.ndarray, C: float, extra: Sequence[np.ndarray] = (),
               x_eval: np.ndarray | None = None, folds: int = 5, seed: int = 0, classifier: str = "linear-svm",
               standardize: bool = False, pca: int | None = None) -> np.ndarray:
    """Each training image's class scores from a model fitted on the other folds only (with their ``extra``
    views); scored on ``x_eval``'s row of the image (default ``x``: e.g. a test-time-augmented version)."""
    x_eval = x if x_eval is None else x_eval
    out = np.zeros((len(y), int(y.max()) + 1))
    for fit_rows, held in folds_of(y, folds, seed):
        out[held] = fit_decide(x[fit_rows], y[fit_rows], x_eval[held], C, [e[fit_rows] for e in extra],
                               classifier, seed, standardize, pca)
    return out


def accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    return float((scores.argmax(1) == y).mean())


def select_C(x: np.ndarray, y: np.ndarray, grid: Sequence[float] | None = None, *, extra: Sequence[np.ndarray] = (),
             x_eval: np.ndarray | None = None, folds: int = 5, seed: int = 0, classifier: str = "linear-svm",
             standardize: bool = False, pca: int | None = None) -> dict:
    """C from ``grid`` (default :func:`grid_for` the classifier) by out-of-fold accuracy on the training images,
    the first of equals; returns it with the accuracy of each value, the chosen value's out-of-fold scores, the
    number of folds and the seconds spent. A one-value grid gives that value's cross-validated accuracy."""
    t0 = time.perf_counter()
    grid = tuple(grid or grid_for(classifier))
    accs, scores = {}, {}
    for c in grid:
        scores[c] = oof_scores(x, y, c, extra, x_eval, folds, seed, classifier, standardize, pca)
        accs[c] = accuracy(scores[c], y)
    chosen = max(grid, key=lambda c: accs[c])  # max keeps the first of equals
    return {"C": chosen, "cv_accuracy": round(accs[chosen], 4), "grid": {c: round(a, 4) for c, a in accs.items()},
            "oof": scores[chosen], "folds": len(folds_of(y, folds, seed)), "seconds": round(time.perf_counter() - t0, 2)}


@dataclass
class Scored:
    """A classifier chosen on the training images and scored once on the test images."""

    selection: dict  # select_C's result
    test_scores: np.ndarray  # (test images, classes)
    test_accuracy: float

    @property
    def C(self) -> float:
        return self.selection["C"]

    @property
    def cv_accuracy(self) -> float:
        return self.selection["cv_accuracy"]


def fit_and_score(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                  grid: Sequence[float] | None = SHORT_C_GRID, *, extra: Sequence[np.ndarray] = (),
                  x_eval_train: np.ndarray | None = None, seed: int = 0, classifier: str = "linear-svm") -> Scored:
    """C chosen by :func:`select_C` on the training rows (with their ``extra`` views and, for test-time views, their
    ``x_eval_train`` rows), the classifier refitted on all of them, and the test rows scored once."""
    sel = select_C(x_train, y_train, grid, extra=extra, x_eval=x_eval_train, seed=seed, classifier=classifier)
    d = fit_decide(x_train, y_train, x_test, sel["C"], extra, classifier, seed)
    return Scored(sel, d, round(accuracy(d, y_test), 4))


def fit_classifier(x: np.ndarray, y: np.ndarray, name: str = "linear-svm", C: float | str = 1.0,
                   standardize: bool = False, pca: int | None = None, seed: int = 0, folds: int = 5) -> dict:
    """Fit on (x, y) only. ``C='auto'``: chosen by :func:`select_C` on these training data over
    :func:`grid_for` the classifier (knn: its neighbours)."""
    t0 = time.perf_counter()
    if pca and pca > min(x.shape):
        raise ValueError(f"--pca {pca} exceeds min(n_samples, n_features) = {min(x.shape)}")
    cv = None
    if C == "auto":
        sel = select_C(x, y, folds=folds, seed=seed, classifier=name, standardize=standardize, pca=pca)
        chosen = sel["C"]
        cv = {"grid": list(sel["grid"]), "mean_cv_accuracy": list(sel["grid"].values()), "folds": sel["folds"],
              "chosen": chosen}
        model = pipeline_at(name, chosen, standardize, pca, seed).fit(x, y)
    else:
        chosen = float(C)
        model = make_pipeline(name, chosen, standardize, pca, seed).fit(x, y)
    return {"model": model, "C": chosen, "cv": cv, "fit_seconds": time.perf_counter() - t0}
