"""How well predictions match the truth: accuracy, mean per-class accuracy, confusion matrix, confused pairs."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix


def scores_from_confusion(cm: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, mean per-class accuracy (over the classes present in the truth), per-class accuracy and the
    matrix itself (rows: true class); NaN accuracies for an empty matrix."""
    cm = np.asarray(cm)
    total, present = int(cm.sum()), cm.sum(1) > 0
    per_class = cm.diagonal() / np.maximum(cm.sum(1), 1)
    return {"accuracy": float(cm.diagonal().sum() / total) if total else float("nan"),
            "mean_class_accuracy": float(per_class[present].mean()) if present.any() else float("nan"),
            "per_class_accuracy": {c: round(float(a), 4) for c, a in zip(classes, per_class)},
            "confusion_matrix": cm.tolist()}


def scores(y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict:
    """:func:`scores_from_confusion` of the labels ``y`` against the predictions ``pred``."""
    return scores_from_confusion(confusion_matrix(y, pred, labels=range(len(classes))), classes)


def most_confused(cm: np.ndarray, classes: list[str], k: int = 5) -> list[dict]:
    """The k largest off-diagonal cells: true class, predicted class, count and share of the true class."""
    cm = np.asarray(cm)
    off = cm.astype(float).copy()
    np.fill_diagonal(off, -1)
    order = np.argsort(off, axis=None)[::-1][:k]
    pairs = []
    for flat in order:
        t, p = np.unravel_index(flat, cm.shape)
        if cm[t, p] > 0:
            pairs.append({"true": classes[t], "predicted": classes[p], "count": int(cm[t, p]),
                          "share": round(float(cm[t, p] / max(cm[t].sum(), 1)), 4)})
    return pairs
