"""Activation maps of one layer for one image: every channel, each scaled for viewing, beside the input."""
from __future__ import annotations

import torch

from transferlab.models.base import Backbone
from transferlab.models.builder import LoadedModel


def default_layer(net: Backbone) -> str:
    """The first step with parameters: conv1_1 (VGG), conv1 (AlexNet), stem (EfficientNet)."""
    return next(name for name, module in net.steps() if net.step_params(module))


def layer_maps(model: LoadedModel, pixels: torch.Tensor, layer: str) -> torch.Tensor:
    """The (channels, H, W) output of ``layer`` for one (3, H, W) image in 0..1."""
    model.check_layers([layer])
    with torch.inference_mode():
        out = model.net.forward_layers(pixels[None], [layer])[layer][0]
    if out.ndim != 3:
        raise ValueError(f"{layer} gives a vector of {out.numel()} values, not maps; choose a convolutional layer")
    return out


def channel_stats(maps: torch.Tensor) -> dict:
    """Per-channel mean, max and the fraction of positive values."""
    flat = maps.flatten(1)
    return {"mean": flat.mean(1).tolist(), "max": flat.amax(1).tolist(),
            "positive": (flat > 0).float().mean(1).tolist()}
