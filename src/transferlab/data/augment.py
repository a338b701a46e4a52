"""Training augmentation without torchvision: random resized crop and horizontal flip with Pillow, driven by an
explicit random generator so that every (seed, epoch, image) gets the same crop whatever the worker layout."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class RandomResizedCropFlip:
    """torchvision's RandomResizedCrop (area ``scale``, aspect ``ratio``, 10 tries then a centre crop) resized to
    ``size``×``size`` (bilinear, antialiased), then a horizontal flip with probability ``flip``."""

    size: int = 224
    scale: tuple[float, float] = (0.5, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5

    def box(self, width: int, height: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the crop."""
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                left = int(rng.integers(0, width - w + 1))
                top = int(rng.integers(0, height - h + 1))
                return left, top, left + w, top + h
        aspect = width / height  # fallback: the largest centre crop within the ratio bounds
        if aspect < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif aspect > self.ratio[1]:
            w, h = int(round(height * self.ratio[1])), height
        else:
            w, h = width, height
        left, top = (width - w) // 2, (height - h) // 2
        return left, top, left + w, top + h

    def __call__(self, img: Image.Image, rng: np.random.Generator) -> Image.Image:
        out = img.resize((self.size, self.size), Image.BILINEAR, box=self.box(*img.size, rng))
        if rng.uniform() < self.flip:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        return out

    def describe(self) -> dict:
        return {"random_resized_crop": {"size": self.size, "scale": list(self.scale),
                                        "ratio": [round(r, 4) for r in self.ratio]},
                "horizontal_flip": self.flip}


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one image in one epoch: independent of workers, batch order and interruptions."""
    return np.random.default_rng([seed, epoch, index])
