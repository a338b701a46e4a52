"""The files of a model folder: settings and records in JSON, arrays in safetensors (no pickle anywhere), each
written atomically; ``model.json`` carries the format version and every other file's sha256, so that a missing,
damaged or replaced file is named in one line when the folder is read."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import safetensors.numpy

from transferlab.files import atomic_write, sha256_file

FORMAT = "transferlab-model/1"
SETTINGS = "model.json"  # written last: a folder without it was never finished
CLASSIFIER = "classifier.safetensors"  # a linear classifier's arrays
CLASSIFIER_SKOPS = "classifier.skops"  # a classifier without a linear form (knn, rbf-svm), as skops writes it
BACKBONE = "backbone.safetensors"  # a user's module's state dict (registry weights are identified, not copied)
TRAINING = "training.json"  # the training images: paths relative to the dataset root, sha256 of each
CARD_JSON, CARD_MD = "card.json", "card.md"
ALL_FILES = (SETTINGS, CLASSIFIER, CLASSIFIER_SKOPS, BACKBONE, TRAINING, CARD_JSON, CARD_MD)


class ModelFolderError(ValueError):
    """A model folder (or one of its files) that cannot be used; the message names the file and the problem."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def write_json(path: Path, data: dict) -> str:
    """``data`` as indented JSON in ``path`` (atomically); returns the file's sha256."""
    atomic_write(path, json.dumps(data, indent=1) + "\n")
    return sha256_file(path)


def read_json(path: Path) -> dict:
    """The JSON object in ``path``; one line naming the file when it is missing, not JSON or not an object."""
    if not path.is_file():
        raise ModelFolderError(path, "missing")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFolderError(path, f"damaged: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise ModelFolderError(path, f"damaged: a JSON {type(data).__name__}, not an object")
    return data


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """Named arrays as a safetensors file (atomically); returns its sha256."""
    atomic_write(path, safetensors.numpy.save({k: np.ascontiguousarray(v) for k, v in arrays.items()}))
    return sha256_file(path)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        return safetensors.numpy.load_file(str(path))
    except Exception as e:  # SafetensorError: a truncated or foreign file
        raise ModelFolderError(path, f"damaged: not a safetensors file ({e})") from None


def check_files(folder: Path, files: dict) -> None:
    """Every file ``model.json`` lists is there with the sha256 it recorded."""
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            raise ModelFolderError(path, f"missing ({SETTINGS} lists it)")
        actual = sha256_file(path)
        if actual != digest:
            raise ModelFolderError(path, f"damaged or replaced: sha256 {actual[:12]}… is not the {digest[:12]}… "
                                         f"that {SETTINGS} records")


def entry(data: dict, key: str, path: Path, kind: type = dict):
    """``data[key]`` of the type ``kind``, or one line naming the file and the missing key."""
    value = data.get(key)
    if not isinstance(value, kind):
        raise ModelFolderError(path, f"damaged: no {key!r} {kind.__name__}")
    return value


def read_settings(folder: Path) -> dict:
    """``model.json`` of a folder of this format, its listed files checked."""
    path = folder / SETTINGS
    settings = read_json(path)
    if settings.get("format") != FORMAT:
        raise ModelFolderError(path, f"format {settings.get('format')!r} is not the {FORMAT!r} this version of "
                                     f"transferlab reads; save the model again with this version")
    check_files(folder, entry(settings, "files", path))
    return settings
