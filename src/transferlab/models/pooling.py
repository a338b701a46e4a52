"""Turning a layer's output into one vector per image: avg, max, avgmax, flatten, spatial pyramid (spp:1,2,4)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def parse_pool(spec: str) -> tuple[str, tuple[int, ...]]:
    if spec in ("avg", "max", "avgmax", "flatten"):
        return spec, ()
    if spec.startswith("spp:"):
        try:
            levels = tuple(int(v) for v in spec[4:].split(","))
        except ValueError:
            levels = ()
        if levels and all(v > 0 for v in levels):
            return "spp", levels
    raise ValueError(f"unknown pooling {spec!r}; choose avg, max, avgmax, flatten or spp:1,2,4 (pyramid levels)")


class Pool(nn.Module):
    """Pools (N, C, H, W) maps to (N, D); vectors (N, D) pass through unchanged."""

    def __init__(self, spec: str):
        super().__init__()
        self.spec = spec
        self.kind, self.levels = parse_pool(spec)

    def forward(self, x):
        if x.ndim == 2:
            return x
        if self.kind == "avg":
            return x.mean((2, 3))
        if self.kind == "max":
            return x.amax((2, 3))
        if self.kind == "avgmax":
            return torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)
        if self.kind == "flatten":
            return x.flatten(1)
        return torch.cat([F.adaptive_max_pool2d(x, n).flatten(1) for n in self.levels], 1)
