"""Training curves of a fine-tuning: loss and accuracy per epoch, training and validation."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from transferlab.plots.base import new_figure
from transferlab.provenance import EpochRow


def training_curves_figure(history: list[EpochRow], best_epoch: int | None, title: str) -> Figure:
    """Loss and accuracy per epoch, training and validation, with the best epoch marked."""
    fig = new_figure(10.0, 3.8)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [h.epoch for h in history]
    for ax, key, label in ((ax_loss, "loss", "cross-entropy loss"), (ax_acc, "acc", "accuracy")):
        for side, style in (("train", "o-"), ("val", "s--")):
            ys = [getattr(h, f"{side}_{key}") for h in history]
            if any(y is not None for y in ys):
                ax.plot(epochs, [np.nan if y is None else y for y in ys], style,
                        label="training" if side == "train" else "validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="k", ls=":", lw=1, label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
    ax_acc.set_ylim(0, 1.02)
    fig.suptitle(title, fontsize=9)
    return fig
