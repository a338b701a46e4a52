"""The confusion matrix as a figure, and the most confused class pairs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from transferlab.plots.base import new_figure, save


def confusion_figure(cm: np.ndarray, classes: list[str], title: str, path: Path) -> Path:
    """:func:`draw_confusion` saved to ``path``."""
    return save(draw_confusion(cm, classes, title), path)


def draw_confusion(cm: np.ndarray, classes: list[str], title: str) -> Figure:
    """Row-normalised confusion matrix with class names, counts in the cells, and the accuracy per row."""
    cm = np.asarray(cm)
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(classes)
    fig = new_figure(max(6, 0.55 * n + 3), max(5, 0.5 * n + 2))
    ax = fig.subplots()
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), [f"{c} ({rates[i, i]:.0%})" for i, c in enumerate(classes)], fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (per-class accuracy)")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.04, label="share of the true class")
    ax.set_title(title, fontsize=9)
    return fig
