"""What every record shares: its JSON (``_json``: dataclasses without their None fields) and its reading
(``_known``: a record from the keys that are its fields), the writer (``_Record.write``), :class:`RecordError`,
and the descriptive records of where numbers come from (:class:`Provenance`, :class:`DatasetInfo`) with the
library versions."""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path

import numpy as np
import PIL
import sklearn
import torch

from transferlab.files import atomic_write
from transferlab.machine import machine

def library_versions() -> dict:
    """The versions of the libraries that change the numbers, the platform, and the machine (CPU, ISA, load)."""
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "pillow": PIL.__version__, "platform": platform.platform(),
            "machine": machine()}


class RecordError(ValueError):
    """A file that is not a readable record; ``reason`` without the path, for lists that show the path apart."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def _json(value):
    """``value`` as JSON data: dataclasses as objects without their None fields, ``extra`` merged into its owner."""
    if is_dataclass(value):
        out = {}
        for f in fields(value):
            v = getattr(value, f.name)
            if f.name == "extra":
                out.update(_json(v))
            elif v is not None and not (getattr(value, "omit_empty", False) and v in ("", [], {})):
                out[f.name] = _json(v)
        return out
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _known(cls, data: dict, **typed):
    """``cls`` from the keys of ``data`` that are its fields (``typed`` replaces converted ones); others go to
    ``extra`` when ``cls`` has one, else are ignored."""
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names and k != "extra"}
    if "extra" in names:
        kwargs["extra"] = {k: v for k, v in data.items() if k not in names}
    return cls(**(kwargs | typed))


def _dicts(value) -> list[dict]:
    """The objects of a JSON list (anything else in it dropped)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


class _ItemAccess:
    """``record["key"]`` reads the attribute ``key`` (or a key of ``extra``): code written for ``run_experiment``'s
    former dict results keeps working; the project's own code reads attributes."""

    def __getitem__(self, key: str):
        if key in {f.name for f in fields(self)}:
            return getattr(self, key)
        extra = getattr(self, "extra", {})
        if key in extra:
            return extra[key]
        raise KeyError(key)


class _Record:
    """A record file's JSON (``to_dict``) and its writer."""

    def to_dict(self) -> dict:
        return _json(self)

    def write(self, path: str | Path) -> Path:
        """The record as JSON in ``path``, written atomically."""
        return atomic_write(path, json.dumps(self.to_dict(), indent=2))


def _synthetic(data: dict) -> str | None:
    """The mark of a record made for a test (``synthetic`` or ``_fixture``), None for a measurement."""
    mark = data.get("synthetic") or data.get("_fixture")
    return str(mark) if mark else None


# ------------------------------------------------------------------------------------------------ provenance


@dataclass
class DatasetInfo:
    """The dataset a record measured: its folder, classes and image counts."""

    omit_empty = True  # its empty fields are left out of the JSON

    root: str = ""
    classes: list[str] = field(default_factory=list)
    images: int | None = None
    train: int | None = None
    test: int | None = None
    matched_folders: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data) -> DatasetInfo | None:
        return _known(cls, data) if isinstance(data, dict) else None


@dataclass
class Provenance(_ItemAccess):
    """Where a record's numbers come from: the fields the project reads, and every other recorded key in ``extra``."""

    omit_empty = True  # its empty fields are left out of the JSON

    model: str = ""
    weights: str | None = None
    weights_sha256: str | None = None
    pretrained: bool | None = None
    pretrained_up_to: str | None = None
    label: str = ""
    dataset: DatasetInfo | None = None
    layers: list[str] = field(default_factory=list)
    pool: str | None = None
    l2: bool | None = None
    gray: str | None = None
    classifier: str | None = None
    C: float | str | None = None
    protocol: str | None = None
    seed: int | None = None
    trained_from_layer: str | None = None
    command: str | None = None
    versions: dict = field(default_factory=dict)
    date: str | None = None
    config: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data) -> Provenance:
        data = data if isinstance(data, dict) else {}
        prov = _known(cls, data, dataset=DatasetInfo.from_dict(data.get("dataset")))
        prov.layers = [str(x) for x in prov.layers] if isinstance(prov.layers, list) else []
        prov.config = prov.config if isinstance(prov.config, dict) else {}
        return prov

    @property
    def is_pretrained(self) -> bool:
        """Pretrained weights, or not recorded (only explicitly random weights are not)."""
        return self.pretrained is not False

    def to_dict(self) -> dict:
        return _json(self)

