"""A whole trained pipeline as one torch module: uint8 RGB images at the crop size in, class scores and labels
out, computing what ``Extractor`` features through a fitted ``LinearHead`` give (the graph the ONNX export
traces)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from transferlab.classify.linear import LinearHead
from transferlab.data.transforms import Preprocess, with_channels
from transferlab.features.extractor import FeatureNet
from transferlab.models.loaded import LoadedModel
from transferlab.models.gray import apply_gray

# Pillow's RGB → L conversion, in 16-bit fixed point: L = (19595 R + 38470 G + 7471 B + 2^15) >> 16
LUMA = (19595.0, 38470.0, 7471.0)


class PipelineNet(nn.Module):
    """(N, H, W, 3) uint8 RGB at the crop size → ``scores`` (N, K) float32 and ``label`` (N,) int64.

    Inside: scaling to 0..1 (Pillow's luma first for the one-channel gray modes), the backbone with its
    normalisation and gray adaptation up to the deepest layer (``FeatureNet``), each output's pooling, per-layer
    L2 (``features.blocks.l2_normalize``) when ``l2``, concatenation, and the head's affine map in float32.
    The model is adapted in place for ``gray``, as ``Extractor`` does: give it its own ``load_model`` result.
    """

    def __init__(self, model: LoadedModel, outputs: Sequence[tuple[str, str]], l2: bool, gray: str,
                 head: LinearHead):
        super().__init__()
        outputs = list(dict.fromkeys(outputs))
        model.check_layers([layer for layer, _ in outputs])
        self.model, self.outputs, self.l2, self.gray = model, outputs, l2, gray
        self.classes = list(head.classes)
        self.luma = apply_gray(model.net, gray) == 1
        self.features = FeatureNet(model.net, outputs)
        coef = np.asarray(head.coef, dtype=np.float32)
        self.register_buffer("coef", torch.from_numpy(np.ascontiguousarray(coef.T)))  # (D, K)
        self.register_buffer("intercept", torch.from_numpy(np.asarray(head.intercept, dtype=np.float32)))
        self.register_buffer("luma_weights", torch.tensor(LUMA).view(1, 3, 1, 1))

    def extra_repr(self) -> str:  # part of the export's cache key (runtimes.onnx_key), with the buffers
        return f"l2={self.l2}, luma={self.luma}"

    @property
    def preprocess(self) -> Preprocess:
        return self.model.preprocess

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.permute(0, 3, 1, 2).to(torch.float32)
        if self.luma:  # exact in float32: every intermediate is an integer below 2^24
            x = torch.floor(((x * self.luma_weights).sum(1, keepdim=True) + 32768.0) * (1.0 / 65536.0))
        x = x * (1.0 / 255.0)  # as data.transforms.to_tensor
        blocks = self.features(x)
        if self.l2:
            blocks = [b / b.norm(dim=1, keepdim=True).clamp_min(1e-12) for b in blocks]
        scores = torch.cat(blocks, 1) @ self.coef + self.intercept
        return scores, scores.argmax(1)


def prepare(img: Image.Image, preprocess: Preprocess) -> np.ndarray:
    """An image as the pipeline's input: ``preprocess``'s geometry (resize, crop) in RGB, (H, W, 3) uint8. What
    the script of ``docs/export.md`` does with Pillow alone, for an image as ``data.images.load_image`` gives."""
    return np.array(preprocess.geometry(with_channels(img, 3)), dtype=np.uint8)


def preprocess_steps(preprocess: Preprocess) -> dict:
    """What must happen before the graph, as its ``preprocess`` metadata: shorter side to ``resize`` then a centre
    ``crop`` (mode ``crop``), or straight to ``crop``×``crop`` (mode ``resize``), with Pillow's antialiased
    ``interpolation``; RGB, uint8."""
    if preprocess.mode == "native" or preprocess.view:
        raise ValueError(f"an exported pipeline takes one input size: resize mode {preprocess.mode!r}"
                         f"{' view ' + repr(preprocess.view) if preprocess.view else ''} cannot be exported "
                         f"(use resize mode crop or resize, without a view)")
    return {"mode": preprocess.mode, "resize": preprocess.resize, "crop": preprocess.crop,
            "interpolation": preprocess.interpolation}


def describe(net: PipelineNet, classifier: str, numerics: str) -> dict:
    """The pipeline's provenance: what the graph computes and from which weights."""
    m = net.model
    return {"model": m.name, "weights": m.tag, "weights_sha256": m.weights_id, "pretrained": m.pretrained,
            "layers": [layer for layer, _ in net.outputs], "pool": [pool for _, pool in net.outputs],
            "l2": net.l2, "gray": net.gray, "classifier": classifier, "numerics": numerics,
            "preprocess": m.preprocess.key()}
