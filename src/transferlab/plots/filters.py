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


def _tiles(patches: list[np.ndarray], cols: int, label_rows: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """RGB patches tiled ``cols`` to a row on a transparent RGBA canvas, each scaled up to about 12 pixels, with
    room under each row for ``label_rows`` lines of labels; also where each patch's label goes (its bottom centre,
    in canvas pixels)."""
    kh, kw = patches[0].shape[:2]
    s = max(1, round(12 / max(kh, kw)))
    h, w, gap = kh * s, kw * s, 3
    dx, dy = w + gap, h + 5 * label_rows
    canvas = np.zeros((math.ceil(len(patches) / cols) * dy, cols * dx - gap, 4))
    anchors = []
    for i, p in enumerate(patches):
        y, x = (k * d for k, d in zip(divmod(i, cols), (dy, dx)))
        canvas[y: y + h, x: x + w, :3] = p.repeat(s, 0).repeat(s, 1)
        canvas[y: y + h, x: x + w, 3] = 1
        anchors.append((x + w / 2, y + h + 0.5))
    return canvas, anchors


def filters_figure(weight: np.ndarray, groups: list[KernelGroup], title: str) -> Figure:
    """Every first-layer kernel as a small RGB patch, one row of patches per group (grey = 0): one image per
    group, so that a figure of 64 or 96 kernels draws in a fraction of a second."""
    by_group = {g: [d for d in groups if d.group == g] for g in FILTER_GROUPS}
    by_group = {g: v for g, v in by_group.items() if v}
    cols = 16
    rows_per = {g: math.ceil(len(v) / cols) for g, v in by_group.items()}
    total_rows = sum(rows_per.values())
    fig = new_figure(10.0, 0.9 + 0.72 * total_rows + 0.3 * len(by_group))
    axes = fig.subplots(len(by_group), 1, height_ratios=[rows_per[g] + 0.45 for g in by_group], squeeze=False)
    for ax, (g, members) in zip(axes[:, 0], by_group.items()):
        edge = g == "oriented edge"
        if edge:
            members = sorted(members, key=lambda d: d.gradient_angle)
        canvas, anchors = _tiles([_kernel_rgb(weight[d.index]) for d in members], cols, 2 if edge else 1)
        ax.imshow(canvas, interpolation="nearest", extent=(0, canvas.shape[1], canvas.shape[0], 0))
        ax.set_axis_off()
        for d, (x, y) in zip(members, anchors):
            label = f"#{d.index}" + (f"\n{d.gradient_angle:.0f}°" if edge else "")
            ax.text(x, y, label, fontsize=6, ha="center", va="top")
        ax.set_title(f"{g}: {len(members)} filters", fontsize=9, loc="left")
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
