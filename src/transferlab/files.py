"""Where transferlab keeps what it fetches and computes, how it identifies files (their sha256), and how it writes
them (atomically)."""
from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer to fill; renamed onto ``path`` when the block ends without an
    error, removed otherwise. A kill never leaves half a file, and concurrent writers of the same content (each
    with its own temporary name) never see each other's. The temporary name ends in ``.tmp``: a writer that
    chooses its format by suffix must be told the format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)
