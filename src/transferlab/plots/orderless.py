"""The orderless study's figure: CV (train) and test accuracy of every configuration, and accuracy against cost."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from transferlab.plots.base import new_figure


def orderless_figure(rows: list[dict], title: str) -> Figure:
    """Left: 5-fold CV accuracy on train (what chooses, light) and test accuracy (dark) per configuration, the
    chosen one starred. Right: test accuracy against extraction + encoding milliseconds per image."""
    fig = new_figure(13, 0.32 * len(rows) + 2)
    a1, a2 = fig.subplots(1, 2, width_ratios=[3, 2])
    ys = np.arange(len(rows))
    a1.barh(ys - 0.2, [r["cv_accuracy_on_train"] for r in rows], 0.4, color="tab:blue", alpha=0.45,
            label="CV accuracy on train (chooses)")
    a1.barh(ys + 0.2, [r["test_accuracy"] for r in rows], 0.4, color="tab:blue", label="test accuracy")
    a1.set_yticks(ys, [("★ " if r.get("chosen_by_cv") else "") + r["features"] for r in rows], fontsize=7)
    a1.invert_yaxis()
    accs = [r[k] for r in rows for k in ("cv_accuracy_on_train", "test_accuracy")]
    a1.set_xlim(max(0, min(accs) - 0.05), min(1, max(accs) + 0.03))
    a1.legend(loc="lower right", fontsize=8)
    a1.set_title(title, fontsize=9)
    cost = [(r["extract_ms_per_image"] or 0) + r["encode_ms_per_image"] for r in rows]
    a2.scatter(cost, [r["test_accuracy"] for r in rows], c=["tab:red" if r.get("chosen_by_cv") else "tab:blue"
                                                              for r in rows])
    for c, r in zip(cost, rows):
        a2.annotate(r["features"], (c, r["test_accuracy"]), fontsize=6, xytext=(3, 2), textcoords="offset points")
    a2.set_xscale("log")
    a2.set_xlabel("extraction + encoding, ms per image (this loaded machine)")
    a2.set_ylabel("test accuracy")
    a2.grid(alpha=0.3)
    return fig
