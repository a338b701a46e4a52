"""The first layer of a network on one photo: every activation map, its kernels grouped, their test-card responses."""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from transferlab.analysis.filters import (
    PATTERN_PANELS,
    KernelGroup,
    Pick,
    classify_filters,
    pattern_picks,
    pattern_responses,
    synthetic_pattern,
)
from transferlab.analysis.layer_maps import channel_stats, default_layer, layer_maps
from transferlab.data.images import load_image
from transferlab.data.transforms import to_tensor
from transferlab.models.builder import LoadedModel


@dataclass
class FilterAnalysis:
    """An RGB first convolution's kernels, their groups, and the response of one kernel per group to the test card."""

    weight: np.ndarray  # (out, 3, kh, kw)
    groups: list[KernelGroup]
    group_counts: dict[str, int]
    card: Image.Image
    card_maps: np.ndarray  # (out, H, W)
    panels: list[str]
    picks: list[Pick]


@dataclass
class ActivationsRecord:
    label: str
    provenance: dict
    image: str
    layer: str
    shape: list[int]  # channels, height, width
    flat_maps: int  # maps that are constant on this image
    strongest: list[int]  # channels with the highest peak
    command: str
    crop: Image.Image  # what the network saw
    maps: torch.Tensor
    filters: FilterAnalysis | None  # None unless the layer is a convolution on RGB input


def first_layer_activations(model: LoadedModel, image: Path) -> ActivationsRecord:
    """The maps of ``model``'s first layer with parameters for ``image``, and the analysis of its kernels."""
    layer = default_layer(model.net)
    img = load_image(image)
    maps = layer_maps(model, model.preprocess.pixels(img, 3), layer)
    stats = channel_stats(maps)
    flat = int(sum(1 for mx, mn in zip(stats["max"], maps.flatten(1).amin(1).tolist()) if mx - mn <= 1e-6))
    command = (f"transferlab activations {model.name} {shlex.quote(str(image))} --weights {model.tag} "
               f"--figure activations_{layer}.png")
    conv = dict(model.net.steps())[layer]
    filters = None
    if isinstance(conv, nn.Conv2d) and conv.in_channels == 3:
        weight = conv.weight.detach().numpy()
        groups = classify_filters(weight)
        size = model.preprocess.crop
        card = synthetic_pattern(size)
        card_maps = layer_maps(model, to_tensor(card, 3), layer).numpy()
        responses = pattern_responses(card_maps, size)
        filters = FilterAnalysis(
            weight, groups, {g: sum(d.group == g for d in groups) for g in dict.fromkeys(d.group for d in groups)},
            card, card_maps, list(PATTERN_PANELS),
            [Pick(ch, why, [round(float(v), 4) for v in responses[ch]]) for ch, why in pattern_picks(groups)])
    return ActivationsRecord(model.label(), model.provenance(), str(image), layer, list(maps.shape), flat,
                             [int(i) for i in np.argsort(-np.array(stats["max"]))[:8]], command,
                             model.preprocess.geometry(img.convert("RGB")), maps, filters)
