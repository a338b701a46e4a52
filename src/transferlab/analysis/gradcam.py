"""Grad-CAM (Selvaraju et al. 2017) where no exact decomposition exists — max pooling, spatial pyramids, a fine-tuned
network's own logits: the target layer's maps weighted by the mean gradient of the class score, summed over
channels, rectified. The class score is the pipeline's (head on its pooled features, or the network's logit)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from transferlab.analysis.cam import ClassMaps, exact_maps
from transferlab.analysis.pipeline import Picture, Pipeline

METHODS = ("auto", "cam", "grad-cam")


def default_target(pipe: Pipeline, picture: Picture) -> str:
    """Grad-CAM's layer when none is given: the deepest layer the head reads; for a network's own logits, the last
    layer whose output is a map of more than one cell on this picture (before global pooling)."""
    names = pipe.net.layer_names()
    if pipe.head is not None:
        return max((pipe.net.resolve(layer) for layer in pipe.layers), key=names.index)
    shapes: dict[str, tuple] = {}

    def record(name):
        def hook(_module, _inputs, out):
            if isinstance(out, torch.Tensor):
                shapes.setdefault(name, tuple(out.shape))
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in pipe.net.steps()]
    try:
        with torch.inference_mode():
            pipe.net(picture.pixels[None])
    finally:
        for h in handles:
            h.remove()
    spatial = [n for n in names if len(shapes.get(n, ())) == 4 and shapes[n][2] * shapes[n][3] > 1]
    if not spatial:
        raise ValueError(f"{pipe.model.name} has no layer with spatial maps for Grad-CAM")
    return spatial[-1]


def _capture(module: torch.nn.Module) -> tuple[dict, object]:
    """A forward hook keeping the module's first output as a node of the graph: it hands the next steps a copy,
    so that an in-place step after it (VGG's ReLU) changes the copy and the gradient reaches the kept output."""
    seen: dict = {}

    def hook(_module, _inputs, out):
        if "out" in seen or not isinstance(out, torch.Tensor):
            return None
        seen["out"] = out
        return out.clone()

    return seen, module.register_forward_hook(hook)


def gradcam_maps(pipe: Pipeline, picture: Picture, layer: str | None = None,
                 classes: Sequence[int | str] | None = None, top: int = 3, relu: bool = True) -> ClassMaps:
    """Grad-CAM maps of one preprocessed image at ``layer`` (default :func:`default_target`); ``relu=False``
    keeps the signed weighted sum (for an average-pooled linear head without L2 it is the exact class map,
    divided by the number of cells)."""
    layer = layer or default_target(pipe, picture)
    target = pipe.net.resolve(layer)
    module = dict(pipe.net.steps())[target]
    seen, handle = _capture(module)
    try:
        with torch.inference_mode(False), torch.enable_grad():  # whatever mode the caller runs in
            scores = pipe.scores(picture.pixels[None].clone().requires_grad_(True))[0]
    finally:
        handle.remove()
    acts = seen.get("out")
    if acts is None:
        raise ValueError(f"{layer} is not computed on the way to the scores (they read "
                         f"{', '.join(pipe.layers)}): Grad-CAM needs a layer the scores depend on")
    if acts.ndim != 4:
        raise ValueError(f"{layer} gives a vector of {acts[0].numel()} values, not maps; choose a convolutional layer")
    values = scores.detach().numpy()
    shown = pipe.chosen(values, classes, top)
    maps = []
    for c in shown:
        (grad,) = torch.autograd.grad(scores[c], acts, retain_graph=True, allow_unused=True)
        if grad is None:
            raise ValueError(f"the scores do not depend on {layer}: Grad-CAM needs a layer before the ones they read")
        a, g = acts[0].detach().double(), grad[0].double()
        m = (g.mean((1, 2))[:, None, None] * a).sum(0)
        maps.append((m.clamp_min(0) if relu else m).numpy())
    return ClassMaps(picture.name, picture.crop, "grad-cam", [layer], pipe.classes, values, shown,
                     np.stack(maps), probabilities=pipe.probabilities(values))


def resolve_method(pipe: Pipeline, method: str = "auto") -> str:
    """``auto``: the exact maps when every output is average-pooled into a linear head, else Grad-CAM."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method != "auto":
        return method
    exact = pipe.head is not None and all(pool == "avg" for _, pool in pipe.outputs)
    return "cam" if exact else "grad-cam"


def explain(pipe: Pipeline, images: Sequence, method: str = "auto", classes: Sequence[int | str] | None = None,
            top: int = 3, layer: str | None = None) -> tuple[list[ClassMaps], list[tuple[str, str]]]:
    """Class maps of ``images`` (paths, PIL images, uint8 arrays) by ``method`` (see :func:`resolve_method`;
    ``layer`` is Grad-CAM's), for ``classes`` or each image's ``top`` ones; and (name, reason) of unreadable
    images, which the others do not wait for."""
    method = resolve_method(pipe, method)
    if method == "cam" and layer is not None:
        raise ValueError("the exact class maps use the pipeline's own layers; a layer is chosen for Grad-CAM only")
    pictures, bad = pipe.pictures(images)
    if method == "grad-cam" and layer is None and pictures:
        layer = default_target(pipe, pictures[0])
    if method == "cam":
        return [exact_maps(pipe, p, classes, top) for p in pictures], bad
    return [gradcam_maps(pipe, p, layer, classes, top) for p in pictures], bad
