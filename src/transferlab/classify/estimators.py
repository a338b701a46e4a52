"""Classical classifiers on features: short names for scikit-learn pipelines (optional standardisation and PCA,
then the estimator), the values their C takes, and their evaluation."""
from __future__ import annotations

import time

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from transferlab.classify.scores import scores
from transferlab.options import CLASSIFIERS

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
K_GRID = (1, 3, 5, 10, 20)  # knn: the neighbours `C='auto'` searches instead of C
KNN_DEFAULT = 5


def _estimator(name: str, C: float, seed: int, neighbours: int):
    """``name``'s estimator at ``C`` (ridge: alpha = 1/C; knn takes ``neighbours`` instead)."""
    if name == "linear-svm":
        return LinearSVC(C=C, dual="auto", max_iter=20000, random_state=seed)
    if name == "logreg":
        return LogisticRegression(C=C, max_iter=3000)
    if name == "ridge":
        return RidgeClassifier(alpha=1.0 / C)
    if name == "knn":
        return KNeighborsClassifier(n_neighbors=neighbours, metric="cosine")
    if name == "rbf-svm":
        return SVC(C=C, kernel="rbf", gamma="scale", random_state=seed)
    raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")


def make_pipeline(name: str, C: float = 1.0, standardize: bool = False, pca: int | None = None, seed: int = 0,
                  neighbours: int = KNN_DEFAULT):
    """The estimator ``name`` after optional standardisation and PCA, unfitted."""
    steps = []
    if standardize:
        steps.append(("scale", StandardScaler()))
    if pca:
        steps.append(("pca", PCA(n_components=pca, random_state=seed)))
    steps.append(("clf", _estimator(name, C, seed, neighbours)))
    return Pipeline(steps)


def evaluate(model, x: np.ndarray, y: np.ndarray, classes: list[str]) -> dict:
    t0 = time.perf_counter()
    pred = model.predict(x)
    seconds = time.perf_counter() - t0
    return {**scores(y, pred, classes), "predict_seconds": seconds, "predictions": pred}
