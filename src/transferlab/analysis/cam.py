"""Exact class maps (CAM) of an average-pooled linear pipeline: with average pooling, per-layer L2 and a linear head,
the score of class c is b_c + Σ_l w_{c,l}·mean_xy f_l(x, y)/‖f̄_l‖, so the map Σ_l w_{c,l}·f_l(x, y)/‖f̄_l‖ (layers
brought to one grid by nearest upsampling) averages exactly to the score minus its bias. Nothing is approximated."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from transferlab.analysis.pipeline import Picture, Pipeline


@dataclass
class ClassMaps:
    """One image's maps of some classes on one grid, with every class's score.

    ``cam``: each map averages to its class's score minus ``bias`` (``contributions``: each layer's share of that
    mean). ``grad-cam``: the gradient-weighted maps of ``layers[0]`` (rectified unless said otherwise)."""

    image: str
    crop: Image.Image  # what the network saw
    method: str  # "cam" | "grad-cam"
    layers: list[str]
    classes: list[str]  # every class, in the head's order
    scores: np.ndarray  # (K,) decision values, or a network's logits
    shown: list[int]  # the classes mapped, in ``maps`` order
    maps: np.ndarray  # (len(shown), H, W) float64
    bias: np.ndarray | None = None  # (K,) cam only
    probabilities: np.ndarray | None = None  # (K,) softmax of a network's logits; None for a linear head
    contributions: dict[str, np.ndarray] = field(default_factory=dict)  # cam: layer → (len(shown),)

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.maps.shape[1:])

    def top(self, k: int = 3) -> list[int]:
        """The k highest-scoring classes."""
        return [int(i) for i in np.argsort(-self.scores, kind="stable")[:k]]


def block_sizes(pipe: Pipeline, maps: dict[str, torch.Tensor]) -> list[int]:
    """The width of each output's block of the head's input; one line when they do not add up to the head's."""
    sizes = [int(maps[layer].shape[1]) for layer, _ in pipe.outputs]
    if sum(sizes) != pipe.head.coef.shape[1]:
        raise ValueError(f"the head reads {pipe.head.coef.shape[1]} features but the outputs "
                         f"{', '.join(l for l, _ in pipe.outputs)} give {sum(sizes)}: it was fitted on other features")
    return sizes


def common_grid(shapes: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """The finest grid, which every layer's grid divides by an integer factor (one line naming a layer that
    does not: nearest upsampling preserves a map's mean only for integer factors)."""
    H, W = max(h for h, _ in shapes.values()), max(w for _, w in shapes.values())
    for layer, (h, w) in shapes.items():
        if H % h or W % w:
            raise ValueError(f"{layer}'s {h}×{w} grid does not divide the finest grid {H}×{W}: exact class maps "
                             f"need integer size ratios between layers (choose layers whose grids divide each other)")
    return H, W


def upsample(m: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(K, h, w) maps repeated to (K, H, W) by integer factors: each cell copied, the mean unchanged."""
    return m.repeat(grid[0] // m.shape[1], axis=1).repeat(grid[1] // m.shape[2], axis=2)


def _spatial(t: torch.Tensor) -> np.ndarray:
    """A layer's (C, h, w) output in float64; a vector is a 1×1 map."""
    a = t.detach().double().numpy()
    return a[:, None, None] if a.ndim == 1 else a


def exact_maps(pipe: Pipeline, picture: Picture, classes: Sequence[int | str] | None = None,
               top: int = 3) -> ClassMaps:
    """The exact class maps of one preprocessed image (see the module's docstring)."""
    if pipe.head is None:
        raise ValueError("exact class maps decompose a linear head on pooled features; a network's own logits "
                         "are explained by Grad-CAM (method 'grad-cam')")
    for layer, pool in pipe.outputs:
        if pool != "avg":
            raise ValueError(f"exact class maps need average pooling, and {layer} is pooled {pool!r}: use Grad-CAM "
                             f"(method 'grad-cam')")
    with torch.inference_mode():
        out = pipe.net.forward_layers(picture.pixels[None], pipe.layers)
    maps = {layer: _spatial(t[0]) for layer, t in out.items()}
    sizes = block_sizes(pipe, out)
    starts = np.cumsum([0, *sizes])
    grid = common_grid({layer: m.shape[1:] for layer, m in maps.items()})
    pooled = [maps[layer].mean((1, 2)) for layer, _ in pipe.outputs]
    norms = [max(float(np.linalg.norm(p)), 1e-12) if pipe.l2 else 1.0 for p in pooled]  # as l2_normalize does
    w, b = pipe.head.coef, pipe.head.intercept
    scores = np.concatenate([p / n for p, n in zip(pooled, norms)]) @ w.T + b
    shown = pipe.chosen(scores, classes, top)
    total, contributions = np.zeros((len(shown), *grid)), {}
    for (layer, _), n, s, e in zip(pipe.outputs, norms, starts[:-1], starts[1:]):
        f = maps[layer]
        part = (w[shown, s:e] @ f.reshape(f.shape[0], -1)).reshape(len(shown), *f.shape[1:]) / n
        contributions[layer] = part.mean((1, 2))
        total += upsample(part, grid)
    return ClassMaps(picture.name, picture.crop, "cam", pipe.layers, pipe.classes, scores, shown, total, b,
                     contributions=contributions)

