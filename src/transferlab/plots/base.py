"""Small shared matplotlib helpers: figures drawn off-screen (Agg, no pyplot state) and saved in one call."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from transferlab.files import atomic_path


def new_figure(width: float, height: float) -> Figure:
    """A figure with constrained layout, independent of any GUI backend."""
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` atomically (format from the suffix), creating the folder."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png")
    return Path(path)


def show_image(ax, img: Image.Image | np.ndarray, title: str | None = None, **kw) -> None:
    """An image without axes; gray images in gray."""
    a = np.asarray(img)
    ax.imshow(a, cmap="gray" if a.ndim == 2 else None, **kw)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
