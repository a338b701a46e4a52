"""Reading images of any common format and mode into 8-bit RGB or grayscale, with one clear error per bad file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageError(ValueError):
    """A file that cannot be used as an image; the message names the file and the reason."""

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float modes scaled to 0..255 by their own range type (I;16 → /257, F → clip 0..1)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        scale = 257.0 if img.mode.startswith("I;16") or a.max() > 255 else 1.0
        return Image.fromarray(np.clip(a / scale + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        a = a / 255.0 if a.max() > 1.0 else a
        return Image.fromarray(np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return img


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Transparent pixels composited on white, as viewers show them."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img


def is_gray(img: Image.Image) -> bool:
    """True for mode L, and for RGB files whose three channels are equal (15 Scene stores gray images so)."""
    if img.mode == "L":
        return True
    a = np.asarray(img)
    return a.ndim == 3 and bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())


def load_image(path: str | Path) -> Image.Image:
    """Open ``path`` as an upright 8-bit image in mode ``L`` (gray content) or ``RGB``.

    EXIF orientation is applied; palette, alpha, CMYK, 16-bit and float modes are converted. Raises
    :class:`ImageError` for missing, empty, non-image or truncated files.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(path, "no such file")
    if path.is_dir():
        raise ImageError(path, "is a directory, not an image")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()
            return normalize_image(img)
    except UnidentifiedImageError:
        raise ImageError(path, "not an image (Pillow cannot identify the format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(path, f"unreadable image ({e})") from None


def normalize_image(img: Image.Image) -> Image.Image:
    """An opened image as :func:`load_image` returns it (upright, 8-bit, ``L`` for gray content, else ``RGB``):
    the one conversion files and in-memory images share."""
    img = _flatten_alpha(_to_8bit(ImageOps.exif_transpose(img)))
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    if img.mode == "RGB" and is_gray(img):
        img = img.convert("L")
    return img


def as_image(sample, name: str = "image") -> Image.Image:
    """An in-memory image — a PIL image, or a uint8 array (H, W) gray or (H, W, 3) RGB — converted as
    :func:`load_image` converts a file; anything else raises :class:`ImageError` naming ``name``."""
    if isinstance(sample, Image.Image):
        if sample.width == 0 or sample.height == 0:
            raise ImageError(name, f"empty image ({sample.width}x{sample.height})")
        return normalize_image(sample)
    a = np.asarray(sample)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)) or 0 in a.shape:
        raise ImageError(name, f"an array of shape {a.shape} and dtype {a.dtype} is not an image: arrays must be "
                               "uint8 (H, W) gray or (H, W, 3) RGB")
    return normalize_image(Image.fromarray(np.ascontiguousarray(a)))  # uint8 (H, W) → L, (H, W, 3) → RGB
