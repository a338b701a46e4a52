"""Where transferlab keeps what it fetches and computes, and how it identifies files: their sha256."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from platformdirs import user_cache_dir


def cache_dir() -> Path:
    """transferlab's cache root: ``$TRANSFERLAB_CACHE`` or the platform's user cache (``~/.cache/transferlab``)."""
    return Path(os.environ.get("TRANSFERLAB_CACHE") or user_cache_dir("transferlab"))



def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
