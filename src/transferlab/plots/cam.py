"""Where the classifier looks: each image beside its classes' maps overlaid on it, one colour scale per image."""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from transferlab.analysis.cam import ClassMaps
from transferlab.plots.base import new_figure, save, show_image

COLORBAR = {"cam": "class score per cell", "grad-cam": "Grad-CAM"}
NOTES = {"cam": "exact class maps: red counts for the class, blue against it; each map's mean over the cells is the "
                "class's score minus its bias",
         "grad-cam": "Grad-CAM at {layers}: the layer's maps weighted by the mean gradient of the class score, summed, "
                     "rectified"}


def upsampled(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One (h, w) map resized (bilinear) to the picture's (width, height)."""
    return np.asarray(Image.fromarray(m.astype(np.float32), mode="F").resize(size, Image.BILINEAR))


def panel_title(cm: ClassMaps, c: int, truth: str | None) -> str:
    """The class, its score (and probability when there is one); a check mark on the true class."""
    mark = " ✓" if truth is not None and cm.classes[c].casefold() == truth.casefold() else ""
    prob = "" if cm.probabilities is None else f" · p {cm.probabilities[c]:.0%}"
    rank = cm.top(len(cm.classes)).index(c) + 1
    return f"#{rank} {cm.classes[c]}{mark}\nscore {cm.scores[c]:.3f}{prob}"


def draw_class_maps(items: Sequence[ClassMaps], title: str = "", truths: Sequence[str | None] | None = None,
                    alpha: float = 0.8) -> Figure:
    """One row per image: the picture the network saw, then each mapped class's map (upsampled to the picture)
    blended over it. Signed exact maps use a diverging scale centred on zero (red: for the class, blue: against
    it), Grad-CAM maps one from zero; both are shared by the classes of a row, and a cell's opacity grows with its
    magnitude, so that cells without evidence leave the picture visible."""
    truths = list(truths) if truths is not None else [None] * len(items)
    cols = 1 + max(len(cm.shown) for cm in items)
    width = 2.3 * cols + 0.9
    fig = new_figure(width, 2.75 * len(items) + (0.35 if title else 0))
    axes = fig.subplots(len(items), cols, squeeze=False)
    for row, cm, truth in zip(axes, items, truths):
        gray = np.asarray(cm.crop.convert("L"))
        name = Path(cm.image).name
        show_image(row[0], gray, f"{name}\ntrue: {truth}" if truth else name)
        signed = cm.method == "cam"
        vmax = float(np.abs(cm.maps).max()) or 1.0
        limits = dict(vmin=-vmax, vmax=vmax, cmap="RdBu_r") if signed else dict(vmin=0.0, vmax=vmax, cmap="inferno")
        shown = None
        for ax, c, m in zip(row[1:], cm.shown, cm.maps):
            ax.imshow(gray, cmap="gray", vmin=0, vmax=255)
            up = upsampled(m, cm.crop.size)
            shown = ax.imshow(up, alpha=alpha * np.clip(2 * np.abs(up) / vmax, 0, 1), **limits)
            ax.set_title(panel_title(cm, c, truth), fontsize=9)
            ax.set_axis_off()
        for ax in row[1 + len(cm.shown):]:
            ax.set_axis_off()
        bar = fig.colorbar(shown, ax=list(row[1:]), shrink=0.8, pad=0.02)
        bar.set_label(COLORBAR[cm.method], fontsize=7)
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(textwrap.fill(title, int(11 * width)), fontsize=10)  # about 11 characters per inch
    notes = dict.fromkeys(NOTES[cm.method].format(layers=" + ".join(cm.layers)) for cm in items)
    fig.supxlabel("; ".join(notes), fontsize=8)
    return fig


def class_maps_figure(items: Sequence[ClassMaps], path: str | Path, title: str = "",
                      truths: Sequence[str | None] | None = None, dpi: int = 110) -> Path:
    """:func:`draw_class_maps` saved to ``path``."""
    return save(draw_class_maps(items, title, truths), path, dpi=dpi)
