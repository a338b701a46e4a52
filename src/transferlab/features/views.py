"""Views of every image for test-time and training-set augmentation: the weights' preprocessing mirrored, cropped
at a corner or scaled. Each view is its own Preprocess, hence its own cache key: views never mix in the cache."""
from __future__ import annotations

from dataclasses import replace

from transferlab.data.transforms import Preprocess
from transferlab.options import VIEWS

PLAIN = ""  # the weights' own preprocessing (centre crop)


def parse_scale(view: str) -> float | None:
    """The factor of a ``scale:F`` view (None for the other views); a clear error for a bad factor."""
    if not view.startswith("scale:"):
        return None
    try:
        factor = float(view[6:])
    except ValueError:
        factor = 0.0
    if not 0.25 <= factor <= 4:
        raise ValueError(f"bad view {view!r}: the scale factor must be a number from 0.25 to 4")
    return factor


def view_preprocess(pre: Preprocess, view: str) -> Preprocess:
    """``pre`` seen through ``view``: '' (itself), a mirror/corner view (``VIEWS``), or ``scale:F`` (resize and
    crop sizes both multiplied by F, so the network sees the same field of view at F times the resolution)."""
    factor = parse_scale(view)
    if factor is not None:
        return replace(pre, resize=round(pre.resize * factor), crop=round(pre.crop * factor))
    if view and view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)} or scale:F")
    return replace(pre, view=view)


def pixel_cost(pre: Preprocess, view: str) -> float:
    """Pixels the network sees under ``view`` relative to the plain view (what the view costs to extract)."""
    return (view_preprocess(pre, view).crop / pre.crop) ** 2
