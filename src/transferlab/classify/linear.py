"""A fitted linear pipeline (standardisation, PCA, then a linear classifier) folded into one affine map
``scores = x @ coef.T + intercept``: what a saved model stores, an ONNX graph computes and a class map decomposes.
The fold is exact: every step is affine, and it is computed in float64."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

LINEAR = ("linear-svm", "logreg", "ridge")  # the classifiers that have a linear form


@dataclass
class LinearHead:
    """``scores = x @ coef.T + intercept`` for the (n, D) joined features ``x``; one column per class of
    ``classes`` (a two-class problem is given two columns, ``[-s, s]``, so that argmax is the label)."""

    coef: np.ndarray  # (K, D) float64
    intercept: np.ndarray  # (K,) float64
    classes: list[str]

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef.T + self.intercept

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.decision_function(x).argmax(1)


def fold_pipeline(model, classes: list[str]) -> LinearHead:
    """The affine map of a fitted ``Pipeline`` of optional ``StandardScaler`` / ``PCA`` steps and a final linear
    estimator with ``coef_`` and ``intercept_`` (one line naming the estimator otherwise)."""
    steps = [s for _, s in model.steps] if isinstance(model, Pipeline) else [model]
    *affine, clf = steps
    if not (hasattr(clf, "coef_") and hasattr(clf, "intercept_")):
        raise ValueError(f"{type(clf).__name__} has no linear form (coef_, intercept_); the linear classifiers are "
                         f"{', '.join(LINEAR)}")
    w = np.atleast_2d(np.asarray(clf.coef_, dtype=np.float64))
    b = np.atleast_1d(np.asarray(clf.intercept_, dtype=np.float64))
    if w.shape[0] == 1 and len(classes) == 2:  # binary estimators give the score of the second class only
        w, b = np.vstack([-w, w]) / 2, np.array([-b[0], b[0]]) / 2
    for step in reversed(affine):  # scores = W (A x + c) + b = (W A) x + (W c + b)
        if isinstance(step, PCA):
            b = b - w @ step.components_ @ step.mean_ if step.mean_ is not None else b
            w = w @ step.components_
        elif isinstance(step, StandardScaler):
            scale = step.scale_ if step.scale_ is not None else np.ones(w.shape[1])
            mean = step.mean_ if step.mean_ is not None else np.zeros(w.shape[1])
            w = w / scale
            b = b - w @ mean
        else:
            raise ValueError(f"{type(step).__name__} is not an affine step this fold knows (StandardScaler, PCA)")
    return LinearHead(w, b, list(classes))
