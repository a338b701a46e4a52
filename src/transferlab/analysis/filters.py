"""The first convolution's kernels grouped by a stated rule, and their responses to a synthetic test card."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

FILTER_GROUPS = ("colour-opponent", "oriented edge", "brightness (low-pass)", "texture / centre-surround")
PATTERN_PANELS = ("vertical edge", "horizontal edge", "diagonal edge", "red | green", "blue / yellow", "dark disk")


@dataclass
class KernelGroup:
    """One kernel's group and the shares of its energy that decided it."""

    index: int
    group: str
    colour_share: float
    brightness_share: float
    edge_share: float
    gradient_angle: float
    norm: float


@dataclass
class Pick:
    """A kernel shown on the test card: its channel, group label, and peak response to each panel."""

    channel: int
    label: str
    responses: list[float]


def classify_filters(weight: np.ndarray) -> list[KernelGroup]:
    """Group RGB 3×3 first-layer kernels (out, 3, kh, kw) by a simple, stated rule.

    colour share = energy of the kernel minus its per-pixel channel mean / total energy. Above 0.5: colour-opponent.
    Else, on the luminance kernel L (mean over channels): the share of ||L||² in its mean is the brightness share
    (above 0.6: brightness); the share of ||L − mean L||² explained by a linear ramp (least squares on x and y) is
    the edge share (above 0.5: oriented edge, angle of the ramp's gradient); otherwise texture / centre-surround.
    """
    w = np.asarray(weight, dtype=np.float64)
    out = []
    kh, kw = w.shape[2:]
    yy, xx = np.mgrid[0:kh, 0:kw]
    xx, yy = xx - xx.mean(), yy - yy.mean()
    basis = np.stack([xx.ravel(), yy.ravel()], 1)
    for i, k in enumerate(w):
        total = float((k ** 2).sum()) or 1e-12
        lum = k.mean(0)
        colour_share = float(((k - lum) ** 2).sum()) / total
        lum_total = float((lum ** 2).sum()) or 1e-12
        dc_share = float(lum.mean() ** 2 * lum.size) / lum_total
        centred = (lum - lum.mean()).ravel()
        coef, *_ = np.linalg.lstsq(basis, centred, rcond=None)
        resid = centred - basis @ coef
        edge_share = 1.0 - float((resid ** 2).sum()) / (float((centred ** 2).sum()) or 1e-12)
        # gradient direction (image y axis downwards); the edge itself runs perpendicular to it
        angle = float(np.degrees(np.arctan2(-coef[1], coef[0]))) % 180.0
        if colour_share > 0.5:
            group = "colour-opponent"
        elif dc_share > 0.6:
            group = "brightness (low-pass)"
        elif edge_share > 0.5:
            group = "oriented edge"
        else:
            group = "texture / centre-surround"
        out.append(KernelGroup(i, group, round(colour_share, 3), round(dc_share, 3), round(edge_share, 3),
                               round(angle, 1), round(math.sqrt(total), 4)))
    return out


def _panel_boxes(size: int) -> list[tuple[int, int, int, int]]:
    """The 6 panels of the test card (x0, y0, x1, y1): 2 rows × 3 columns."""
    xs = [0, size // 3, 2 * size // 3, size]
    ys = [0, size // 2, size]
    return [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(2) for c in range(3)]


def synthetic_pattern(size: int = 224) -> Image.Image:
    """A test card of 6 panels (2 rows × 3 columns, order of :data:`PATTERN_PANELS`), separated by mid-grey lines: a
    vertical, a horizontal and a diagonal dark/light edge, a red|green and a blue/yellow colour edge, and a dark disk
    on light grey."""
    img = Image.new("RGB", (size, size), (128, 128, 128))
    d = ImageDraw.Draw(img)
    dark, light = (40, 40, 40), (215, 215, 215)
    boxes = _panel_boxes(size)
    (a, b, c, e) = boxes[0]
    d.rectangle([a, b, (a + c) // 2 - 1, e - 1], fill=dark)
    d.rectangle([(a + c) // 2, b, c - 1, e - 1], fill=light)
    (a, b, c, e) = boxes[1]
    d.rectangle([a, b, c - 1, (b + e) // 2 - 1], fill=dark)
    d.rectangle([a, (b + e) // 2, c - 1, e - 1], fill=light)
    (a, b, c, e) = boxes[2]
    d.polygon([(a, b), (c - 1, b), (a, e - 1)], fill=dark)
    d.polygon([(c - 1, b), (c - 1, e - 1), (a, e - 1)], fill=light)
    (a, b, c, e) = boxes[3]
    d.rectangle([a, b, (a + c) // 2 - 1, e - 1], fill=(200, 60, 60))
    d.rectangle([(a + c) // 2, b, c - 1, e - 1], fill=(60, 150, 60))
    (a, b, c, e) = boxes[4]
    d.rectangle([a, b, c - 1, (b + e) // 2 - 1], fill=(70, 90, 230))
    d.rectangle([a, (b + e) // 2, c - 1, e - 1], fill=(150, 140, 40))
    (a, b, c, e) = boxes[5]
    d.rectangle([a, b, c - 1, e - 1], fill=light)
    r = min(c - a, e - b) // 4
    cx, cy = (a + c) // 2, (b + e) // 2
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=dark)
    for x in (size // 3, 2 * size // 3):  # mid-grey separators (the responses leave the panel borders out)
        d.line([(x, 0), (x, size)], fill=(128, 128, 128), width=5)
    d.line([(0, size // 2), (size, size // 2)], fill=(128, 128, 128), width=5)
    d.rectangle([0, 0, size - 1, size - 1], outline=(128, 128, 128), width=3)
    return img


def pattern_responses(maps: np.ndarray, size: int, border: int = 6) -> np.ndarray:
    """How strongly each channel (C, H, W) responds to each panel's own feature: inside the panel, away from the
    panel's borders (``border`` pixels), the peak of the ReLU'd response above its median (the flat parts): (C, 6)."""
    c, hh, ww = maps.shape
    sy, sx = hh / size, ww / size
    relu = np.maximum(maps, 0)
    out = np.zeros((c, 6))
    for j, (x0, y0, x1, y1) in enumerate(_panel_boxes(size)):
        a = relu[:, int((y0 + border) * sy):int((y1 - border) * sy), int((x0 + border) * sx):int((x1 - border) * sx)]
        flat = a.reshape(c, -1)
        out[:, j] = flat.max(1) - np.median(flat, axis=1)
    return out


def pattern_picks(groups: list[KernelGroup]) -> list[tuple[int, str]]:
    """Channels to show on the test card, chosen from the filter groups alone (not from the responses): the
    strongest oriented-edge filter near each of 0°, 45°, 90° and 135° gradient direction, the two strongest
    colour-opponent filters and the strongest texture / centre-surround filter; each with its group as label."""
    picks: list[tuple[int, str]] = []
    used: set[int] = set()
    edges = [d for d in groups if d.group == "oriented edge"]
    for target in (0.0, 45.0, 90.0, 135.0):
        near = [d for d in edges if d.index not in used
                and min(abs(d.gradient_angle - target), 180 - abs(d.gradient_angle - target)) <= 22.5]
        if near:
            d = max(near, key=lambda d: d.norm)
            used.add(d.index)
            picks.append((d.index, f"edge, gradient {d.gradient_angle:.0f}°"))
    for group, n, label in (("colour-opponent", 2, "colour-opponent"), ("texture / centre-surround", 1, "texture"),
                            ("brightness (low-pass)", 1, "brightness")):
        for d in sorted((d for d in groups if d.group == group), key=lambda d: -d.norm)[:n]:
            used.add(d.index)
            picks.append((d.index, label))
    return picks
