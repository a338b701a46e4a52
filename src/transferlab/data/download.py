"""Fetching a known dataset into the cache when it is not on disk (needs the internet)."""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import torch

from transferlab.models.sources import cache_dir, sha256_file

# The 15 Scene categories (Lazebnik et al. 2006) as distributed on figshare (CC BY 4.0).
SOURCES = {"15scene": "https://figshare.com/ndownloader/files/12406043"}


def fetch_dataset(name: str) -> Path:
    """Download and unpack ``name`` into ``<cache>/data/<name>``; checked by its image counts after unpacking
    (the archive's sha256 is printed and recorded in ``SOURCE.txt``)."""
    from transferlab.data.datasets import KNOWN, DatasetError, load_dataset

    dest = cache_dir() / "data" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        archive = Path(tmp) / f"{name}.zip"
        try:
            torch.hub.download_url_to_file(SOURCES[name], str(archive), progress=True)
        except Exception as e:
            raise DatasetError(f"cannot download {name} from {SOURCES[name]} ({type(e).__name__}: {e}); "
                               f"without network, put the dataset folder at {dest} or set TRANSFERLAB_DATA") from None
        digest = sha256_file(archive)
        with zipfile.ZipFile(archive) as z:
            z.extractall(Path(tmp) / "unpacked")
        tops = [p for p in (Path(tmp) / "unpacked").rglob("*") if p.is_dir()]
        root = min(tops, key=lambda p: len(p.parts)) if tops else Path(tmp) / "unpacked"
        found = load_dataset(root)
        if len(found.paths) != KNOWN[name]["images"] or len(found.classes) != KNOWN[name]["classes"]:
            raise DatasetError(f"{SOURCES[name]}: unpacked {len(found.paths)} images in {len(found.classes)} classes, "
                               f"expected {KNOWN[name]['images']} in {KNOWN[name]['classes']}")
        shutil.move(str(root), dest)
        (dest / "SOURCE.txt").write_text(f"{SOURCES[name]}\nsha256 {digest}\n")
    return dest
