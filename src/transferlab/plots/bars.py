"""Labelled bar charts: accuracies per run, study or class, and two series side by side."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from transferlab.plots.base import new_figure


def bar_figure(labels: list[str], values: list[float], title: str, xlabel: str = "test accuracy",
               errors: list[float] | None = None, colors: list[str] | None = None,
               reference: tuple[float, str] | None = None, xlim: tuple[float, float] | None = (0.0, 1.12),
               fmt: str = "{:.4f}", legend: list[tuple[str, str]] | None = None) -> Figure:
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
        handles += [Patch(color=color, label=text) for color, text in legend]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title, fontsize=9)
    return fig


def per_class_figure(per_class: dict[str, float], title: str, mean: float | None = None) -> Figure:
    """Per-class accuracy, worst class first, with the mean as a dotted line."""
    items = sorted(per_class.items(), key=lambda kv: kv[1])
    ref = (mean, f"mean per-class accuracy {mean:.3f}") if mean is not None else None
    colors = ["tab:red" if v < (mean if mean is not None else 0) else "tab:blue" for _, v in items]
    return bar_figure([k for k, _ in items], [v for _, v in items], title, "accuracy on the test images of the class",
                      colors=colors, reference=ref, xlim=(0.0, 1.12))


def paired_bars_figure(labels: list[str], a: list[float], b: list[float], names: tuple[str, str], title: str,
                       xlabel: str = "test accuracy") -> Figure:
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
    return fig


def study_fallback_figure(labels: list[str], values: list[float], title: str, ylabel: str) -> Figure:
    """A study without its own figure: its key column against its accuracy column."""
    return bar_figure(labels, values, title, ylabel, xlim=(0.0, 1.12) if max(values, default=0) <= 1 else None)
