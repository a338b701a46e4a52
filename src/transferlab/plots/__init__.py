"""Figures as matplotlib Figures (drawn off-screen, see :mod:`transferlab.plots.base`), and their encodings: PNG bytes,
data URIs for a self-contained page, small JPEG thumbnails of image files."""
from __future__ import annotations

import base64
import io
from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image


def png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (``plots.base.save`` writes it to a file instead)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def compact_png(data: bytes, limit: int = 400_000) -> bytes:
    """A PNG over ``limit`` bytes re-encoded with an adaptive 256-colour palette (photo mosaics shrink 2–4×)."""
    if len(data) <= limit or not data.startswith(b"\x89PNG"):
        return data
    with Image.open(io.BytesIO(data)) as im:
        q = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    buf = io.BytesIO()
    q.save(buf, format="PNG", optimize=True)
    return buf.getvalue() if buf.tell() < len(data) else data


def data_uri(image: Figure | bytes, dpi: int = 110, mime: str = "image/png") -> str:
    """A figure (as PNG) or encoded image bytes as a ``data:`` URI; large PNGs are made compact first."""
    data = png(image, dpi) if isinstance(image, Figure) else image
    if mime == "image/png":
        data = compact_png(data)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnail_jpeg(path: str | Path, side: int = 150) -> bytes:
    """A small JPEG of an image file (for example images in tables)."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        img.thumbnail((side, side))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=82)
    return buf.getvalue()
