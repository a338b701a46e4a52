"""The activation maps of one layer: every channel tiled in a grid beside the input the network saw."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from transferlab.plots.base import new_figure, save, show_image


def mosaic(maps: torch.Tensor, gap: int = 2) -> np.ndarray:
    """All channels tiled in a near-square grid, each scaled to its own min–max (constant maps stay 0); NaN gaps."""
    c, h, w = maps.shape
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    lo = maps.flatten(1).amin(1)[:, None, None]
    span = maps.flatten(1).amax(1)[:, None, None] - lo
    scaled = torch.where(span > 0, (maps - lo) / span.clamp_min(1e-12), torch.zeros_like(maps)).numpy()
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, dtype=np.float32)
    for i in range(c):
        r, k = divmod(i, cols)
        out[r * (h + gap): r * (h + gap) + h, k * (w + gap): k * (w + gap) + w] = scaled[i]
    return out


def activations_figure(crop: Image.Image, maps: torch.Tensor, layer: str, label: str, path: str | Path) -> Path:
    """:func:`draw_activations` saved to ``path``."""
    return save(draw_activations(crop, maps, layer, label), path, dpi=110)


def draw_activations(crop: Image.Image, maps: torch.Tensor, layer: str, label: str) -> Figure:
    """The input the network saw, beside the grid of all channel maps of ``layer``."""
    fig = new_figure(12.0, 6.4)
    ax_img, ax_maps = fig.subplots(1, 2, width_ratios=[1, 1.9])
    show_image(ax_img, crop, "input (resized, centre crop)")
    show_image(ax_maps, mosaic(maps), f"{maps.shape[0]} maps of {layer}, {maps.shape[1]}×{maps.shape[2]} each "
                                      "(each scaled to its own min–max; bright = strong)", interpolation="nearest")
    fig.suptitle(label, fontsize=10)
    return fig
