"""ImageNet predictions as a figure: each image beside the bars of its top-K probabilities."""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from transferlab.analysis.imagenet import Prediction
from transferlab.plots.base import new_figure, save, show_image


def predict_figure(results: list[Prediction], label: str, path: str | Path) -> Path:
    """:func:`draw_predictions` saved to ``path``."""
    return save(draw_predictions(results, label), path)


def draw_predictions(results: list[Prediction], label: str) -> Figure:
    """One row per image: the crop the network saw, then horizontal bars of its top-K probabilities."""
    k = max(len(r.top) for r in results)
    fig = new_figure(9.0, 0.6 + max(2.2, 0.38 * k) * len(results))
    axes = fig.subplots(len(results), 2, width_ratios=[1, 2.2], squeeze=False)
    for (ax_img, ax_bar), r in zip(axes, results):
        show_image(ax_img, r.crop, Path(r.image).name)
        probs = [p for _, _, p in r.top][::-1]
        ax_bar.barh(range(len(probs)), probs, color="tab:blue")
        ax_bar.set_yticks(range(len(probs)), [c for _, c, _ in r.top][::-1], fontsize=9)
        for y, p in enumerate(probs):
            ax_bar.text(min(p, 0.82) + 0.01, y, f"{p:.1%}", va="center", fontsize=8)
        ax_bar.set_xlim(0, 1)
        ax_bar.grid(axis="x", alpha=0.3)
    axes[-1][1].set_xlabel("probability (softmax of the last layer)")
    fig.suptitle(f"top-{k} predictions: {label}", fontsize=10)
    return fig
