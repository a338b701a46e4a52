"""Real sample photos shipped with scikit-image and scikit-learn, written as files so the CLI can read them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_image

from transferlab.extras import require
from transferlab.files import atomic_path, cache_dir

# name -> (package, loader argument): skimage.data.<name>() or sklearn's load_sample_image(<file>)
SAMPLES = {"chelsea": ("skimage", "chelsea"), "coffee": ("skimage", "coffee"),
           "astronaut": ("skimage", "astronaut"), "rocket": ("skimage", "rocket"),
           "china": ("sklearn", "china.jpg"), "flower": ("sklearn", "flower.jpg")}


def sample_array(name: str) -> np.ndarray:
    """The RGB uint8 array of sample ``name``."""
    package, arg = SAMPLES[name]
    if package == "sklearn":
        return load_sample_image(arg)
    return getattr(require("skimage.data", f"the sample photo {name!r}"), arg)()


def sample_path(name: str, folder: str | Path | None = None) -> Path:
    """The PNG file of sample ``name`` in ``folder`` (default: transferlab's cache), written on first use."""
    if name not in SAMPLES:
        raise KeyError(f"unknown sample {name!r}; samples: {', '.join(SAMPLES)}")
    path = (Path(folder) if folder else cache_dir() / "samples") / f"{name}.png"
    if not path.exists():
        with atomic_path(path) as tmp:
            Image.fromarray(sample_array(name)).save(tmp, format="PNG")
    return path


def sample_paths(folder: str | Path | None = None) -> list[Path]:
    """The files of every sample, in the order of :data:`SAMPLES`."""
    return [sample_path(name, folder) for name in SAMPLES]


def resolve(arg: str) -> Path:
    """An image argument: ``sample:NAME`` is that sample's file, anything else a path."""
    return sample_path(arg.removeprefix("sample:")) if arg.startswith("sample:") else Path(arg)
