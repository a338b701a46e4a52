"""Image datasets on disk: class folders, train/test layouts matched case-insensitively, and split protocols."""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from transferlab.files import cache_dir, sha256_file
from transferlab.options import HOLDOUT_FRACTION

KNOWN = {"15scene": {"classes": 15, "images": 4485, "train": 1500, "test": 2985}}


class DatasetError(ValueError):
    """A dataset layout that cannot be used; the message names the folder or class."""


@dataclass
class ImageDataset:
    """Image paths with integer labels; ``split`` is 'train'/'test' for a fixed-split layout, else ''."""

    root: Path
    classes: list[str]
    paths: list[Path]
    labels: np.ndarray
    split: np.ndarray  # 'train' | 'test' | ''
    matched: dict[str, list[str]] = field(default_factory=dict)  # class -> the folder names it matched

    @property
    def has_fixed_split(self) -> bool:
        return bool((self.split == "train").any())

    def describe(self) -> dict:
        counts = {s: int((self.split == s).sum()) for s in ("train", "test") if (self.split == s).any()}
        return {"root": str(self.root), "classes": self.classes, "images": len(self.paths), **counts,
                "matched_folders": {c: v for c, v in self.matched.items() if len(set(v)) > 1}}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _class_folders(folder: Path) -> dict[str, Path]:
    """Class folders keyed by case-folded name; two folders differing only by case are an error."""
    out: dict[str, Path] = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        key = d.name.casefold()
        if key in out:
            raise DatasetError(f"{folder}: class folders {out[key].name!r} and {d.name!r} differ only by case")
        out[key] = d
    if not out:
        raise DatasetError(f"{folder}: no class folders (expected one folder per class)")
    return out


def resolve_data(data: str | Path) -> Path:
    """A folder, or a known dataset name (``15scene``) found under ``$TRANSFERLAB_DATA`` or the cache."""
    if str(data) in KNOWN:
        for base in (os.environ.get("TRANSFERLAB_DATA"), cache_dir() / "data"):
            if base and (Path(base) / str(data)).is_dir():
                return Path(base) / str(data)
        return fetch_dataset(str(data))
    path = Path(data)
    if not path.is_dir():
        raise DatasetError(f"{path}: no such dataset folder (give a folder of class folders, train/ and test/ "
                           f"folders, or a known name: {', '.join(KNOWN)})")
    return path


def load_dataset(data: str | Path, limit_per_class: int | None = None) -> ImageDataset:
    """Read ``root/<class>/*`` or ``root/{train,test}/<class>/*``; ``limit_per_class`` keeps the first K files
    (by name) of each class in each split — a deterministic subset."""
    root = resolve_data(data)
    sub = {p.name.casefold(): p for p in root.iterdir() if p.is_dir()}
    if "train" in sub and "test" in sub:
        sides = {"train": _class_folders(sub["train"]), "test": _class_folders(sub["test"])}
        only = set(sides["train"]) ^ set(sides["test"])
        if only:
            name = sorted(only)[0]
            side = "train" if name in sides["train"] else "test"
            raise DatasetError(f"{root}: class {sides[side][name].name!r} is in {side}/ only "
                               f"(classes are matched between train/ and test/ ignoring case)")
    else:
        sides = {"": _class_folders(root)}
    keys = sorted(next(iter(sides.values())))
    classes = [sides.get("train", sides.get(""))[k].name for k in keys]
    paths, labels, split, matched = [], [], [], {}
    for label, key in enumerate(keys):
        matched[classes[label]] = [folders[key].name for folders in sides.values()]
        for side, folders in sides.items():
            files = _files(folders[key])
            if not files:
                raise DatasetError(f"{folders[key]}: class {folders[key].name!r} is empty")
            files = files[:limit_per_class] if limit_per_class else files
            paths += files
            labels += [label] * len(files)
            split += [side] * len(files)
    return ImageDataset(root, classes, paths, np.array(labels), np.array(split), matched)


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # indices into the dataset
    test: np.ndarray
    seed: int | None


def parse_protocol(protocol: str) -> tuple[str, float]:
    """(kind, parameter): ``fixed``/``auto`` → 1, ``random:N`` → N splits, ``holdout:F`` → the test fraction F."""
    if protocol in ("fixed", "auto"):
        return protocol, 1
    if protocol.startswith("random:") and protocol[7:].isdigit() and int(protocol[7:]) > 0:
        return "random", int(protocol[7:])
    if protocol.startswith("holdout:"):
        try:
            fraction = float(protocol[8:])
        except ValueError:
            fraction = 0.0
        if 0 < fraction < 1:
            return "holdout", fraction
    raise ValueError(f"unknown protocol {protocol!r}; use auto, fixed, random:N (N seeded random splits) or "
                     f"holdout:F (a seeded split holding out the fraction F of each class)")


def resolve_protocol(protocol: str, fixed_split: bool, where: str | Path | None = None) -> tuple[str, str]:
    """``auto`` → ``fixed`` when the dataset has train/ and test/ folders, else ``holdout:{HOLDOUT_FRACTION}``;
    with the reason, said to the user and recorded. Other protocols are returned as given; ``fixed`` without
    those folders is refused (naming the dataset, ``where``, when given)."""
    parse_protocol(protocol)
    if protocol == "fixed" and not fixed_split:
        raise DatasetError(f"{f'{where}: ' if where else ''}protocol 'fixed' needs train/ and test/ folders; use "
                           "auto, holdout:F or random:N for a layout of class folders")
    if protocol != "auto":
        return protocol, "as asked"
    if fixed_split:
        return "fixed", "auto: the dataset's own train/ and test/ folders"
    return f"holdout:{HOLDOUT_FRACTION}", (
        f"auto: no train/ and test/ folders, so one split seeded by --seed holding out {HOLDOUT_FRACTION:.0%} of each "
        f"class for testing (at least one image of each class on each side)")


def make_splits(labels: np.ndarray, split: np.ndarray, protocol: str, train_per_class: int = 100,
                seed: int = 0, classes: list[str] | None = None) -> list[Split]:
    """``fixed``: the dataset's own train/ and test/; ``random:N``: N seeded draws of ``train_per_class``
    training images per class from everything pooled, the rest for testing (the literature's protocol);
    ``holdout:F``: one seeded draw of round(F × n) test images from each class of n (at least one image on each
    side); ``auto``: see :func:`resolve_protocol`. ``classes`` (names by label) lets errors name the class."""
    kind, n = parse_protocol(resolve_protocol(protocol, bool((split == "train").any()))[0])
    idx = np.arange(len(labels))
    name = (lambda c: repr(classes[c])) if classes else (lambda c: str(int(c)))
    if kind == "fixed":
        return [Split(idx[split == "train"], idx[split == "test"], None)]
    if kind == "holdout":
        rng = np.random.default_rng(seed)
        test = []
        for c in np.unique(labels):
            members = idx[labels == c]
            if len(members) < 2:
                raise DatasetError(f"class {name(c)} has {len(members)} image; a hold-out split needs at least 2 (one to "
                                   f"train on, one to test)")
            k = min(len(members) - 1, max(1, round(n * len(members))))
            test += list(rng.choice(members, k, replace=False))
        test = np.sort(np.array(test))
        return [Split(np.setdiff1d(idx, test), test, seed)]
    splits = []
    for s in range(seed, seed + n):
        rng = np.random.default_rng(s)
        train = []
        for c in np.unique(labels):
            members = idx[labels == c]
            if len(members) <= train_per_class:
                raise DatasetError(f"class {name(c)} has {len(members)} images; a "
                                   f"random split needs more than --train-per-class {train_per_class}")
            train += list(rng.choice(members, train_per_class, replace=False))
        train = np.sort(np.array(train))
        splits.append(Split(train, np.setdiff1d(idx, train), s))
    return splits


# The 15 Scene categories (Lazebnik et al. 2006) as distributed on figshare (CC BY 4.0).
SOURCES = {"15scene": "https://figshare.com/ndownloader/files/12406043"}


def fetch_dataset(name: str) -> Path:
    """Download and unpack ``name`` into ``<cache>/data/<name>``; checked by its image counts after unpacking
    (the archive's sha256 is printed and recorded in ``SOURCE.txt``)."""
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
