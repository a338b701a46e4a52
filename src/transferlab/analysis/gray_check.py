"""One gray image through replicate, conv1-sum and conv1-mean: the folded first convolution is exact, the mean is
not."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from transferlab.data.images import load_image
from transferlab.models.gray import apply_gray
from transferlab.models.builder import LoadedModel


@dataclass
class GrayRow:
    gray: str
    channels: int
    max_rel_diff: float  # max |Δ feature| / max |replicate feature|
    cosine: float  # with the replicate features


@dataclass
class GrayCheckRecord:
    image: str
    image_mode: str
    layer: str
    label: str
    provenance: dict
    rows: list[GrayRow]


def gray_check(model: LoadedModel, image: Path) -> GrayCheckRecord:
    """Features of ``image`` (as gray) at the last pretrained map, each gray mode on its own copy of the network."""
    img = load_image(image).convert("L")  # a colour image is compared on its luma, the same for every mode
    layer = "pool5" if "pool5" in model.net.layer_names() else model.usable_layers()[-1]
    with torch.inference_mode():
        ref = model.net.forward_layers(model.preprocess.pixels(img, 3)[None], [layer])[layer].flatten()
    rows = [GrayRow("replicate", 3, 0.0, 1.0)]
    for mode in ("conv1-sum", "conv1-mean"):
        net = copy.deepcopy(model.net)  # the shared network stays as it is
        channels = apply_gray(net, mode)
        with torch.inference_mode():
            out = net.forward_layers(model.preprocess.pixels(img, channels)[None], [layer])[layer].flatten()
        rel = float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
        rows.append(GrayRow(mode, channels, rel, float(torch.nn.functional.cosine_similarity(out, ref, dim=0))))
    return GrayCheckRecord(str(image), img.mode, layer, model.label(), model.provenance(), rows)
