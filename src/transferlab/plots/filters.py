"""The first convolution's kernels as RGB patches by group, and their response maps on the synthetic test card."""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from transferlab.analysis.filters import FILTER_GROUPS, KernelGroup, Pick
from transferlab.plots.base import new_figure, show_image


def _kernel_rgb(k: np.ndarray) -> np.ndarray:
    """A (3, kh, kw) kernel as an (kh, kw, 3) image: 0.5 is zero, symmetric scaling by its largest |weight|."""
    m = np.abs(k).max() or 1.0
    return np.clip(0.5 + 0.5 * k.transpose(1, 2, 0) / m, 0, 1)


def filters_figure(weight: np.ndarray, groups: list[KernelGroup], title: str) -> Figure:
    """Every first-layer kernel as a small RGB patch, one row of patches per group (grey = 0)."""
    by_group = {g: [d for d in groups if d.group == g] for g in FILTER_GROUPS}
    by_group = {g: v for g, v in by_group.items() if v}
    cols = 16
    rows_per = {g: math.ceil(len(v) / cols) for g, v in by_group.items()}
    total_rows = sum(rows_per.values())
    fig = new_figure(10.0, 0.9 + 0.72 * total_rows + 0.3 * len(by_group))
    sub = fig.subfigures(len(by_group), 1, height_ratios=[rows_per[g] + 0.45 for g in by_group], squeeze=False)
    for sf, (g, members) in zip(sub[:, 0], by_group.items()):
        if g == "oriented edge":
            members = sorted(members, key=lambda d: d.gradient_angle)
        axes = sf.subplots(rows_per[g], cols, squeeze=False)
        for ax in axes.ravel():
            ax.set_axis_off()
        for ax, d in zip(axes.ravel(), members):
            ax.imshow(_kernel_rgb(weight[d.index]), interpolation="nearest")
            label = f"#{d.index}" + (f"\n{d.gradient_angle:.0f}°" if g == "oriented edge" else "")
            ax.set_title(label, fontsize=6, pad=1)
        sf.suptitle(f"{g}: {len(members)} filters", fontsize=9, x=0.01, ha="left")
    fig.suptitle(title, fontsize=10)
    return fig


def _dilate(a: np.ndarray, r: int = 1) -> np.ndarray:
    """Grey-level dilation by a (2r+1)² square, so one-pixel edge responses stay visible when scaled down."""
    p = np.pad(a, r, mode="edge")
    h, w = a.shape
    return np.max([p[i:i + h, j:j + w] for i in range(2 * r + 1) for j in range(2 * r + 1)], axis=0)


def pattern_figure(pattern: Image.Image, maps: np.ndarray, weight: np.ndarray, picks: list[Pick],
                   title: str) -> Figure:
    """The test card, then for each picked channel its kernel and its response map (ReLU'd, each on its own scale,
    dilated 3×3 so that one-pixel edge responses survive the scaling of the figure)."""
    n = len(picks)
    fig = new_figure(1.75 * (n + 1), 4.2)
    axes = fig.subplots(2, n + 1, height_ratios=[1, 2.2], squeeze=False)
    axes[0][0].set_axis_off()
    show_image(axes[1][0], pattern, "input: synthetic test card")
    for j, pick in enumerate(picks, start=1):
        ch = pick.channel
        axes[0][j].imshow(_kernel_rgb(weight[ch]), interpolation="nearest")
        axes[0][j].set_axis_off()
        axes[0][j].set_title(f"kernel #{ch}", fontsize=8)
        m = _dilate(np.maximum(maps[ch], 0))
        axes[1][j].imshow(m / (m.max() or 1.0), vmin=0, vmax=1, cmap="magma")
        axes[1][j].set_axis_off()
        axes[1][j].set_title(f"#{ch}: {pick.label}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig
