"""The exact preprocessing a backbone's weights expect: resize, crop, scale and normalise, without torchvision."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from PIL import Image

from transferlab.options import RESIZE_MODES, VIEWS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESAMPLING = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


@dataclass(frozen=True)
class Preprocess:
    """``crop``: shorter side to ``resize`` then centre ``crop`` (torchvision's ImageClassification);
    ``resize``: straight to ``crop``×``crop``; ``native``: the image as it is (adaptive pooling absorbs the size).
    Antialiased resampling (Pillow), bilinear unless the weights' own transforms say ``bicubic`` (timm's often
    do); values scaled to 0..1 then normalised by ``mean``/``std``.
    ``view`` (test-time or training-set augmentation): ``hflip`` mirrors the picture; ``long-start`` and
    ``long-end`` (``crop`` mode) take the crop at either end of the resized image's long side, not its centre.
    """

    resize: int = 256
    crop: int = 224
    mode: str = "crop"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    view: str = ""

    def __post_init__(self):
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {self.mode!r}; choose one of {', '.join(RESIZE_MODES)}")
        if self.interpolation not in RESAMPLING:
            raise ValueError(f"unknown interpolation {self.interpolation!r}; choose one of {', '.join(RESAMPLING)}")
        if self.view and self.view not in VIEWS:
            raise ValueError(f"unknown view {self.view!r}; choose one of {', '.join(VIEWS)}")
        if self.view not in ("", "hflip") and self.mode != "crop":
            raise ValueError(f"view {self.view!r} moves the crop: it needs resize mode 'crop', not {self.mode!r}")

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
        out = asdict(self)
        if not self.view:  # the plain view leaves the records of earlier versions as they were
            del out["view"]
        return out

    def key(self) -> str:
        """A short stable string naming these exact settings (for caches and provenance)."""
        m = ",".join(f"{v:g}" for v in self.mean)
        s = ",".join(f"{v:g}" for v in self.std)
        return f"{self.mode}:{self.resize}/{self.crop}:mean={m}:std={s}:{self.interpolation}-aa" + (
            f":view={self.view}" if self.view else "")

    def geometry(self, img: Image.Image) -> Image.Image:
        """Resize and crop only (the picture a figure shows next to its numbers)."""
        if self.mode == "resize":
            img = img.resize((self.crop, self.crop), RESAMPLING[self.interpolation])
        elif self.mode == "crop":
            w, h = img.size
            if w <= h:
                nw, nh = self.resize, int(self.resize * h / w)
            else:
                nw, nh = int(self.resize * w / h), self.resize
            img = img.resize((nw, nh), RESAMPLING[self.interpolation])
            left, top = int(round((nw - self.crop) / 2.0)), int(round((nh - self.crop) / 2.0))
            if self.view in ("long-start", "long-end"):  # slide the crop along the long side only
                end = self.view == "long-end"
                if nw >= nh:
                    left = nw - self.crop if end else 0
                else:
                    top = nh - self.crop if end else 0
            img = img.crop((left, top, left + self.crop, top + self.crop))
        return img.transpose(Image.FLIP_LEFT_RIGHT) if self.view == "hflip" else img

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
