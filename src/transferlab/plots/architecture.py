"""A network's parameters per layer, fully connected layers highlighted."""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from transferlab.plots.base import new_figure, save


def params_figure(s: dict, path: str | Path) -> Path:
    """:func:`draw_params` saved to ``path``."""
    return save(draw_params(s), path)


def draw_params(s: dict) -> Figure:
    """Bar chart of the parameters of each layer that has any, fully connected ones highlighted."""
    rows = [r for r in s["layers"] if r["params"]]
    fig = new_figure(max(7.0, 0.3 * len(rows) + 2), 4.5)
    ax = fig.add_subplot()
    colors = ["tab:red" if r["name"] in s["fc_layers"] else "tab:blue" for r in rows]
    ax.bar(range(len(rows)), [r["params"] / 1e6 for r in rows], color=colors)
    ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=90, fontsize=8)
    ax.set_ylabel("parameters (millions)")
    ax.set_title(f"{s['model']}: {s['total_params']:,} parameters\nfully connected ({', '.join(s['fc_layers'])}): "
                 f"{s['fc_params']:,} = {s['fc_share']:.1%}", fontsize=10)
    ax.legend(handles=[Patch(color="tab:blue", label=f"convolutional part: {s['conv_params']:,}"),
                       Patch(color="tab:red", label=f"fully connected: {s['fc_params']:,}")],
              loc="upper left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig
