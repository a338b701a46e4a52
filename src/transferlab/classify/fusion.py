"""Late-fusion weights: how much each member's scores count in a weighted sum, chosen on held-out scores."""
from __future__ import annotations

import numpy as np

from transferlab.classify.selection import accuracy

WEIGHT_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # the weights a member may get


def weighted_sum(weights, scores: list[np.ndarray]) -> np.ndarray:
    return sum(w * s for w, s in zip(weights, scores))


def ascent_weights(scores: list[np.ndarray], y: np.ndarray, sweeps: int = 3) -> np.ndarray:
    """Per-member weights from ``WEIGHT_GRID`` by coordinate ascent on the accuracy of the weighted sum, from
    equal weights (a change must strictly improve accuracy: ties keep the simpler equal weights)."""
    w = np.ones(len(scores))
    best = accuracy(weighted_sum(w, scores), y)
    for _ in range(sweeps):
        changed = False
        for i in range(len(w)):
            for v in WEIGHT_GRID:
                t = w.copy()
                t[i] = v
                if t.sum() == 0:
                    continue
                a = accuracy(weighted_sum(t, scores), y)
                if a > best + 1e-12:
                    best, w, changed = a, t, True
        if not changed:
            break
    return w
