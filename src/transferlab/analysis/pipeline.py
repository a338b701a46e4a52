"""A fitted pipeline as the class-map explainers see it: a network adapted for its gray mode with the extractor's own
preprocessing, its (layer, pooling) outputs, per-layer L2 and a linear head — or, without a head, the network's own
class logits (a fine-tuned network). Scores are computed from pixels, differentiably, exactly as the extractor pools."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from transferlab.features.blocks import join_blocks
from transferlab.classify.linear import LinearHead
from transferlab.config import RunConfig
from transferlab.data.images import ImageError, load_image
from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import Extractor, as_source
from transferlab.models.loaded import LoadedModel


@dataclass
class Picture:
    """One image as the network sees it: its name, the resized and cropped picture, and the input tensor."""

    name: str
    crop: Image.Image
    pixels: torch.Tensor  # (channels, H, W) in 0..1


class Pipeline:
    """``model`` → ``outputs`` pooled → per-layer L2 (``l2``) → concatenation → ``head``; ``head=None`` scores with
    the network's last layer (its class logits, named by ``model.categories``), with ``outputs`` left empty.

    The model is adapted in place for ``gray`` (through the :class:`Extractor` this pipeline owns, whose
    preprocessing it uses): give each Pipeline its own ``load_model`` result."""

    def __init__(self, model: LoadedModel, outputs: Sequence[tuple[str, str]] | None, l2: bool = True,
                 gray: str = "replicate", head: LinearHead | None = None, *, resize: str = "crop",
                 input_size: int | None = None, cache: FeatureCache | None = None, workers: int | None = None):
        if head is None:
            if outputs:
                raise ValueError("outputs need the linear head that reads them; without a head the scores are the "
                                 "network's own logits")
            if not model.categories:
                raise ValueError(f"{model.name} has no class names for its last layer: give the linear head of "
                                 "a fitted pipeline instead")
            outputs = [(model.net.layer_names()[-1], "avg")]  # a vector passes the pooling unchanged
        elif not outputs:
            raise ValueError("a linear head needs the (layer, pooling) outputs whose features it reads")
        self.model, self.l2, self.gray, self.head = model, l2, gray, head
        settings = RunConfig(data="", model=model.name, gray=gray, resize=resize, input_size=input_size,
                             workers=workers, progress=False)
        self.extractor = Extractor.from_run(settings, model, outputs, cache=cache)
        self.outputs = self.extractor.outputs
        self.classes = list(head.classes) if head is not None else list(model.categories)

    @property
    def net(self):
        return self.model.net

    @property
    def layers(self) -> list[str]:
        """The layers the scores read, each once, in the order of the outputs."""
        return list(dict.fromkeys(layer for layer, _ in self.outputs))

    def describe(self) -> str:
        if self.head is None:
            return f"{self.model.label()} · its own {len(self.classes)} class logits"
        outs = " + ".join(f"{layer} {pool}" for layer, pool in self.outputs)
        return f"{self.model.label()} · {outs}{' + L2' if self.l2 else ''} · gray {self.gray} · linear head"

    def picture(self, image, i: int = 0) -> Picture:
        """``image`` (a path, a PIL image or a uint8 array) decoded and preprocessed as the extractor does;
        a bad file raises :class:`ImageError` naming it."""
        src = as_source(image, i)
        img = load_image(src) if not isinstance(src, Image.Image) else src
        pre, channels = self.extractor.preprocess, self.extractor.channels
        return Picture(str(src) if not isinstance(src, Image.Image) else f"<in-memory image {i}>",
                       pre.geometry(img.convert("RGB")), pre.pixels(img, channels))

    def pictures(self, images: Sequence) -> tuple[list[Picture], list[tuple[str, str]]]:
        """The good images as pictures, and (name, reason) of the bad ones."""
        good, bad = [], []
        for i, image in enumerate(images):
            try:
                good.append(self.picture(image, i))
            except ImageError as e:
                bad.append((e.path, e.reason))
        return good, bad

    def scores(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, K) class scores of a (N, channels, H, W) batch, in float64, with the autograd graph when gradients
        are enabled: the extractor's own pooling (its FeatureNet), then the head."""
        pooled = self.extractor.featurenet(pixels)
        if self.head is None:
            return pooled[0].double()
        blocks = [F.normalize(b.double(), dim=1, eps=1e-12) if self.l2 else b.double() for b in pooled]
        x = torch.cat(blocks, 1)
        coef = torch.from_numpy(self.head.coef).to(x.device)
        return x @ coef.T + torch.from_numpy(self.head.intercept).to(x.device)

    def decision_values(self, paths: Sequence) -> tuple[list[int], np.ndarray, list[tuple[str, str]]]:
        """Scores of many images through the feature cache, as the fitted pipeline computed them: (indices of
        the good images, their (n, K) scores, (path, reason) of the bad ones)."""
        ex = self.extractor.extract(paths)
        blocks = [ex.features[o] for o in self.outputs]
        if self.head is None:
            return ex.ok, blocks[0].astype(np.float64), ex.bad
        return ex.ok, self.head.decision_function(join_blocks(blocks, self.l2)), ex.bad

    def probabilities(self, scores: np.ndarray) -> np.ndarray | None:
        """Softmax of a network's logits; None for a linear head (its decision values are not probabilities)."""
        if self.head is not None:
            return None
        z = np.exp(scores - scores.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)

    def class_index(self, c: int | str) -> int:
        """A class by index or by name (ignoring case); one line naming the classes otherwise."""
        if isinstance(c, (int, np.integer)) and 0 <= c < len(self.classes):
            return int(c)
        folded = {name.casefold(): i for i, name in enumerate(self.classes)}
        if str(c).casefold() in folded:
            return folded[str(c).casefold()]
        shown = ", ".join(self.classes[:20]) + (" …" if len(self.classes) > 20 else "")
        raise KeyError(f"unknown class {c!r}; classes: {shown}")

    def chosen(self, scores: np.ndarray, classes: Sequence[int | str] | None, top: int) -> list[int]:
        """The classes to map: those given, else the ``top`` highest-scoring ones."""
        if classes:
            return [self.class_index(c) for c in classes]
        return [int(i) for i in np.argsort(-scores, kind="stable")[:top]]
