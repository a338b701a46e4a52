"""Classical classifiers on features: short names for scikit-learn estimators, C chosen on training data only."""
from __future__ import annotations

import time

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from transferlab.classify.scores import scores
from transferlab.options import CLASSIFIERS

C_GRID = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]


def _estimator(name: str, C: float, seed: int):
    if name == "linear-svm":
        return LinearSVC(C=C, dual="auto", max_iter=20000, random_state=seed)
    if name == "logreg":
        return LogisticRegression(C=C, max_iter=3000)
    if name == "ridge":
        return RidgeClassifier(alpha=1.0 / C)
    if name == "knn":
        return KNeighborsClassifier(n_neighbors=5, metric="cosine")  # C does not apply; 'auto' searches k
    if name == "rbf-svm":
        return SVC(C=C, kernel="rbf", gamma="scale", random_state=seed)
    raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")


def make_pipeline(name: str, C: float = 1.0, standardize: bool = False, pca: int | None = None, seed: int = 0):
    steps = []
    if standardize:
        steps.append(("scale", StandardScaler()))
    if pca:
        steps.append(("pca", PCA(n_components=pca, random_state=seed)))
    steps.append(("clf", _estimator(name, C, seed)))
    return Pipeline(steps)


def fit_classifier(x: np.ndarray, y: np.ndarray, name: str = "linear-svm", C: float | str = 1.0,
                   standardize: bool = False, pca: int | None = None, seed: int = 0, folds: int = 5) -> dict:
    """Fit on (x, y) only. ``C='auto'``: stratified k-fold grid search on these training data; for knn the
    grid is over k (neighbours)."""
    t0 = time.perf_counter()
    if pca and pca > min(x.shape):
        raise ValueError(f"--pca {pca} exceeds min(n_samples, n_features) = {min(x.shape)}")
    cv = None
    if C == "auto":
        smallest = int(np.bincount(y).min())
        folds = min(folds, smallest)  # stratified folds need that many images per class
        if folds < 2:
            raise ValueError(f"--C auto needs at least 2 training images per class for cross-validation; "
                             f"a class has {smallest}")
        grid = [1, 3, 5, 10, 20] if name == "knn" else C_GRID
        search = GridSearchCV(make_pipeline(name, 1.0, standardize, pca, seed), {"clf__" + _c_param(name): [
            _c_value(name, c) for c in grid]}, cv=StratifiedKFold(folds, shuffle=True, random_state=seed), n_jobs=1)
        search.fit(x, y)
        model, chosen = search.best_estimator_, grid[int(search.best_index_)]
        cv = {"grid": grid, "mean_cv_accuracy": [round(float(v), 4) for v in search.cv_results_["mean_test_score"]],
              "folds": folds, "chosen": chosen}
    else:
        chosen = float(C)
        model = make_pipeline(name, chosen, standardize, pca, seed).fit(x, y)
    return {"model": model, "C": chosen, "cv": cv, "fit_seconds": time.perf_counter() - t0}


def _c_param(name: str) -> str:
    return {"ridge": "alpha", "knn": "n_neighbors"}.get(name, "C")


def _c_value(name: str, c: float):
    return 1.0 / c if name == "ridge" else int(c) if name == "knn" else c


def evaluate(model, x: np.ndarray, y: np.ndarray, classes: list[str]) -> dict:
    t0 = time.perf_counter()
    pred = model.predict(x)
    seconds = time.perf_counter() - t0
    return {**scores(y, pred, classes), "predict_seconds": seconds, "predictions": pred}
