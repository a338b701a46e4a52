"""Figures drawn only by the report: training curves, labelled bar charts, conv1 filter groups, a synthetic pattern.

Every function returns PNG bytes (the report embeds them as data URIs) and draws off-screen, without pyplot state.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

from .figures import new_figure, show_image


def png_bytes(fig, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def bar_figure(labels: list[str], values: list[float], title: str, xlabel: str = "test accuracy",
               errors: list[float] | None = None, colors: list[str] | None = None,
               reference: tuple[float, str] | None = None, xlim: tuple[float, float] | None = (0.0, 1.12),
               fmt: str = "{:.4f}", legend: list[tuple[str, str]] | None = None) -> bytes:
    """Horizontal bars, one per label (top to bottom in the order given), each with its value written at its end.

    ``reference`` draws a dotted vertical line (value, label), e.g. chance level; ``legend`` is [(colour, text)].
    """
    n = len(labels)
    fig = new_figure(8.0, 1.0 + 0.3 * max(n, 2))
    ax = fig.add_subplot()
    ys = np.arange(n)
    ax.barh(ys, values, xerr=errors, color=colors or "tab:blue", capsize=4 if errors else 0)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.invert_yaxis()
    hi = max([v + (e or 0) for v, e in zip(values, errors or [0] * n)] + [1e-12])
    if xlim:
        ax.set_xlim(*xlim)
        if xlim[1] > 1 >= hi:  # room for the value labels, ticks only up to 1
            ax.set_xticks(np.linspace(0, 1, 6))
        hi = xlim[1]
    for y, v in zip(ys, values):
        ax.text(v + 0.01 * hi, y, fmt.format(v), va="center", fontsize=8)
    handles = []
    if reference:
        handles.append(ax.axvline(reference[0], color="k", ls=":", lw=1, label=reference[1]))
    if legend:
        from matplotlib.patches import Patch

        handles += [Patch(color=color, label=text) for color, text in legend]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title, fontsize=9)
    return png_bytes(fig)


def per_class_figure(per_class: dict[str, float], title: str, mean: float | None = None) -> bytes:
    """Per-class accuracy, worst class first, with the mean as a dotted line."""
    items = sorted(per_class.items(), key=lambda kv: kv[1])
    ref = (mean, f"mean per-class accuracy {mean:.3f}") if mean is not None else None
    colors = ["tab:red" if v < (mean if mean is not None else 0) else "tab:blue" for _, v in items]
    return bar_figure([k for k, _ in items], [v for _, v in items], title, "accuracy on the test images of the class",
                      colors=colors, reference=ref, xlim=(0.0, 1.12))


def paired_bars_figure(labels: list[str], a: list[float], b: list[float], names: tuple[str, str], title: str,
                       xlabel: str = "test accuracy") -> bytes:
    """Two horizontal bars per label (e.g. fine-tuned versus SVM per class)."""
    n = len(labels)
    fig = new_figure(8.0, 1.2 + 0.34 * max(n, 2))
    ax = fig.add_subplot()
    ys = np.arange(n)
    ax.barh(ys - 0.2, a, 0.4, color="tab:green", label=names[0])
    ax.barh(ys + 0.2, b, 0.4, color="tab:blue", label=names[1])
    ax.set_yticks(ys, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.08)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    return png_bytes(fig)


def training_curves_figure(history: list[dict], best_epoch: int | None, title: str) -> bytes:
    """Loss and accuracy per epoch, training and validation, with the best epoch marked."""
    fig = new_figure(10.0, 3.8)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    for ax, key, label in ((ax_loss, "loss", "cross-entropy loss"), (ax_acc, "acc", "accuracy")):
        for side, style in (("train", "o-"), ("val", "s--")):
            ys = [h.get(f"{side}_{key}") for h in history]
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
    return png_bytes(fig)


def study_fallback_figure(labels: list[str], values: list[float], title: str, ylabel: str) -> bytes:
    """A study without its own figure: its key column against its accuracy column."""
    return bar_figure(labels, values, title, ylabel, xlim=(0.0, 1.12) if max(values, default=0) <= 1 else None)


# ---------------------------------------------------------------------------------------------------------------
# The first convolution: its filters grouped by a stated rule, and their responses to a synthetic pattern


FILTER_GROUPS = ("colour-opponent", "oriented edge", "brightness (low-pass)", "texture / centre-surround")


def classify_filters(weight: np.ndarray) -> list[dict]:
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
        out.append({"index": i, "group": group, "colour_share": round(colour_share, 3),
                    "brightness_share": round(dc_share, 3), "edge_share": round(edge_share, 3),
                    "gradient_angle": round(angle, 1), "norm": round(math.sqrt(total), 4)})
    return out


def _kernel_rgb(k: np.ndarray) -> np.ndarray:
    """A (3, kh, kw) kernel as an (kh, kw, 3) image: 0.5 is zero, symmetric scaling by its largest |weight|."""
    m = np.abs(k).max() or 1.0
    return np.clip(0.5 + 0.5 * k.transpose(1, 2, 0) / m, 0, 1)


def filters_figure(weight: np.ndarray, groups: list[dict], title: str) -> bytes:
    """Every first-layer kernel as a small RGB patch, one row of patches per group (grey = 0)."""
    by_group = {g: [d for d in groups if d["group"] == g] for g in FILTER_GROUPS}
    by_group = {g: v for g, v in by_group.items() if v}
    cols = 16
    rows_per = {g: math.ceil(len(v) / cols) for g, v in by_group.items()}
    total_rows = sum(rows_per.values())
    fig = new_figure(10.0, 0.9 + 0.72 * total_rows + 0.3 * len(by_group))
    sub = fig.subfigures(len(by_group), 1, height_ratios=[rows_per[g] + 0.45 for g in by_group], squeeze=False)
    for sf, (g, members) in zip(sub[:, 0], by_group.items()):
        if g == "oriented edge":
            members = sorted(members, key=lambda d: d["gradient_angle"])
        axes = sf.subplots(rows_per[g], cols, squeeze=False)
        for ax in axes.ravel():
            ax.set_axis_off()
        for ax, d in zip(axes.ravel(), members):
            ax.imshow(_kernel_rgb(weight[d["index"]]), interpolation="nearest")
            label = f"#{d['index']}" + (f"\n{d['gradient_angle']:.0f}°" if g == "oriented edge" else "")
            ax.set_title(label, fontsize=6, pad=1)
        sf.suptitle(f"{g}: {len(members)} filters", fontsize=9, x=0.01, ha="left")
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig, dpi=120)


def _panel_boxes(size: int) -> list[tuple[int, int, int, int]]:
    """The 6 panels of the test card (x0, y0, x1, y1): 2 rows × 3 columns."""
    xs = [0, size // 3, 2 * size // 3, size]
    ys = [0, size // 2, size]
    return [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(2) for c in range(3)]


PATTERN_PANELS = ("vertical edge", "horizontal edge", "diagonal edge", "red | green", "blue / yellow", "dark disk")


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


def pattern_picks(groups: list[dict]) -> list[tuple[int, str]]:
    """Channels to show on the test card, chosen from the filter groups alone (not from the responses): the
    strongest oriented-edge filter near each of 0°, 45°, 90° and 135° gradient direction, the two strongest
    colour-opponent filters and the strongest texture / centre-surround filter; each with its group as label."""
    picks: list[tuple[int, str]] = []
    used: set[int] = set()
    edges = [d for d in groups if d["group"] == "oriented edge"]
    for target in (0.0, 45.0, 90.0, 135.0):
        near = [d for d in edges if d["index"] not in used
                and min(abs(d["gradient_angle"] - target), 180 - abs(d["gradient_angle"] - target)) <= 22.5]
        if near:
            d = max(near, key=lambda d: d["norm"])
            used.add(d["index"])
            picks.append((d["index"], f"edge, gradient {d['gradient_angle']:.0f}°"))
    for group, n, label in (("colour-opponent", 2, "colour-opponent"), ("texture / centre-surround", 1, "texture"),
                            ("brightness (low-pass)", 1, "brightness")):
        for d in sorted((d for d in groups if d["group"] == group), key=lambda d: -d["norm"])[:n]:
            used.add(d["index"])
            picks.append((d["index"], label))
    return picks


def _dilate(a: np.ndarray, r: int = 1) -> np.ndarray:
    """Grey-level dilation by a (2r+1)² square, so one-pixel edge responses stay visible when scaled down."""
    p = np.pad(a, r, mode="edge")
    h, w = a.shape
    return np.max([p[i:i + h, j:j + w] for i in range(2 * r + 1) for j in range(2 * r + 1)], axis=0)


def pattern_figure(pattern: Image.Image, maps: np.ndarray, weight: np.ndarray, picks: list[tuple[int, str]],
                   title: str) -> bytes:
    """The test card, then for each picked channel its kernel and its response map (ReLU'd, each on its own scale,
    dilated 3×3 so that one-pixel edge responses survive the scaling of the figure)."""
    n = len(picks)
    fig = new_figure(1.75 * (n + 1), 4.2)
    axes = fig.subplots(2, n + 1, height_ratios=[1, 2.2], squeeze=False)
    axes[0][0].set_axis_off()
    show_image(axes[1][0], pattern, "input: synthetic test card")
    for j, (ch, why) in enumerate(picks, start=1):
        axes[0][j].imshow(_kernel_rgb(weight[ch]), interpolation="nearest")
        axes[0][j].set_axis_off()
        axes[0][j].set_title(f"kernel #{ch}", fontsize=8)
        m = _dilate(np.maximum(maps[ch], 0))
        axes[1][j].imshow(m / (m.max() or 1.0), vmin=0, vmax=1, cmap="magma")
        axes[1][j].set_axis_off()
        axes[1][j].set_title(f"#{ch}: {why}", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig, dpi=110)


def thumbnail_jpeg(path, side: int = 150) -> bytes:
    """A small JPEG of an image file (for example images in tables)."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=82)
    return buf.getvalue()
