"""Feature blocks (one per layer and pooling) into one vector per image: each L2-normalised, then concatenated."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def join_blocks(blocks: Sequence[np.ndarray], l2: bool = True) -> np.ndarray:
    """The blocks side by side, each L2-normalised first when ``l2``: no layer outweighs another by its scale."""
    return np.concatenate([l2_normalize(b) if l2 else b for b in blocks], axis=1)
