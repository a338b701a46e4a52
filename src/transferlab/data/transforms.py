"""The exact preprocessing a backbone's weights expect: resize, crop, scale and normalise, without torchvision."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from PIL import Image

from transferlab.options import RESIZE_MODES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """``crop``: shorter side to ``resize`` then centre ``crop`` (torchvision's ImageClassification);
    ``resize``: straight to ``crop``×``crop``; ``native``: the image as it is (adaptive pooling absorbs the size).
    Bilinear, antialiased resampling (Pillow); values scaled to 0..1 then normalised by ``mean``/``std``.
    """

    resize: int = 256
    crop: int = 224
    mode: str = "crop"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self):
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {self.mode!r}; choose one of {', '.join(RESIZE_MODES)}")

    def with_mode(self, mode: str) -> "Preprocess":
        return replace(self, mode=mode)

    def with_size(self, size: int | None) -> "Preprocess":
        """The same preprocessing at input ``size`` (crop side; the resize side scales with it, 256/224 for
        ImageNet weights): VGG's convolutions take any size, so a larger input gives larger maps."""
        if size is None or size == self.crop:
            return self
        if size < 32:
            raise ValueError(f"input size {size} is too small (at least 32 pixels)")
        return replace(self, crop=size, resize=round(size * self.resize / self.crop))

    def describe(self) -> dict:
        return asdict(self)

    def key(self) -> str:
        """A short stable string naming these exact settings (for caches and provenance)."""
        m = ",".join(f"{v:g}" for v in self.mean)
        s = ",".join(f"{v:g}" for v in self.std)
        return f"{self.mode}:{self.resize}/{self.crop}:mean={m}:std={s}:bilinear-aa"

    def geometry(self, img: Image.Image) -> Image.Image:
        """Resize and crop only (the picture a figure shows next to its numbers)."""
        if self.mode == "native":
            return img
        if self.mode == "resize":
            return img.resize((self.crop, self.crop), Image.BILINEAR)
        w, h = img.size
        if w <= h:
            nw, nh = self.resize, int(self.resize * h / w)
        else:
            nw, nh = int(self.resize * w / h), self.resize
        img = img.resize((nw, nh), Image.BILINEAR)
        left, top = int(round((nw - self.crop) / 2.0)), int(round((nh - self.crop) / 2.0))
        return img.crop((left, top, left + self.crop, top + self.crop))

    def pixels(self, img: Image.Image, channels: int = 3) -> torch.Tensor:
        """Geometry plus scaling to 0..1: a float tensor (channels, H, W), not normalised.

        ``channels=3`` replicates a gray image; ``channels=1`` takes the luma of a colour one. Normalisation
        happens in the network's input step, so that a one-channel first convolution can fold it in.
        """
        return to_tensor(self.geometry(with_channels(img, channels)), channels)


def with_channels(img: Image.Image, channels: int) -> Image.Image:
    """``img`` as RGB (``channels=3``, gray replicated) or as luma (``channels=1``)."""
    mode = "RGB" if channels == 3 else "L"
    return img if img.mode == mode else img.convert(mode)


def to_tensor(img: Image.Image, channels: int = 3) -> torch.Tensor:
    """The one image-to-tensor conversion: a float tensor (channels, H, W) in 0..1, not normalised."""
    a = np.asarray(with_channels(img, channels), dtype=np.float32) * (1.0 / 255.0)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(a))
