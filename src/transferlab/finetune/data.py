"""The images of a fine-tuning: the dataset (with the head layer's cached features when a head is trained on
them), its train / validation / test positions, and the loaders that decode and augment images in workers.
Reproducible whatever the worker layout: batches come from a permutation per (seed, epoch), crops from a
generator per (seed, epoch, image)."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from transferlab.data.augment import RandomResizedCropFlip, sample_rng
from transferlab.data.datasets import ImageDataset, load_dataset, make_splits, parse_protocol
from transferlab.experiment import extract_dataset
from transferlab.data.images import ImageError, load_image
from transferlab.data.transforms import Preprocess, to_tensor
from transferlab.finetune.config import FinetuneConfig


@dataclass
class TrainingData:
    """Readable images (``paths``, ``labels``) and positions into them; ``features`` (the head layer's, one row
    per image) only when needed."""

    dataset: ImageDataset
    paths: list[Path]
    labels: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    features: torch.Tensor | None
    bad_files: list[dict]

    @property
    def classes(self) -> list[str]:
        return self.dataset.classes

    def batch_order(self, seed: int, epoch: int, batch_size: int) -> list[np.ndarray]:
        """The epoch's training batches: a permutation per (seed, epoch)."""
        perm = np.random.default_rng([seed, epoch, 3]).permutation(self.train_idx)
        return [perm[i:i + batch_size] for i in range(0, len(perm), batch_size)]


def load_data(cfg: FinetuneConfig, layer: str, pool: str) -> TrainingData:
    """The dataset split for ``cfg``, with the features of (``layer``, ``pool``) read through the cache when the
    probe or the SVM comparison needs them (then the unreadable files are left out and listed)."""
    run = cfg.run
    features, bad = None, []
    if cfg.trains_probe or cfg.compare_svm:
        dataset, _, ext = extract_dataset(cfg.features_run(layer, pool), [(layer, pool)])
        ok = np.array(ext.ok, dtype=int)
        features = torch.from_numpy(ext.features[(layer, pool)])
        bad = [{"path": p, "reason": r} for p, r in ext.bad]
    else:
        dataset = load_dataset(run.data, run.limit_per_class)
        ok = np.arange(len(dataset.paths))
    labels = dataset.labels[ok]
    train, val, test = training_split(labels, dataset.split[ok], cfg, dataset)
    return TrainingData(dataset, [dataset.paths[i] for i in ok], labels, train, val, test, features, bad)


def training_split(labels: np.ndarray, side: np.ndarray, cfg: FinetuneConfig, dataset) -> tuple[np.ndarray, ...]:
    """Positions (into the readable images of ``dataset``, labelled ``labels``, on dataset sides ``side``) of the
    training, validation and test images of ``cfg``'s one split."""
    run = cfg.run
    kind, n = parse_protocol(run.protocol)
    if kind == "random" and n != 1:
        raise ValueError(f"fine-tuning uses one split, not --protocol {run.protocol}: use fixed or random:1")
    (split,) = make_splits(labels, side, run.protocol, run.train_per_class, run.seed, dataset.classes)
    train, test = split.train, split.test
    tr, va = split_train_val(labels[train], cfg.val_fraction, run.seed)
    if not len(va):
        most = int(np.bincount(labels[train]).max())
        raise ValueError(f"{dataset.root}: too few training images to carve a validation set (at most {most} per "
                         f"class; fine-tuning needs 2 per class)")
    return train[tr], train[va], test


def split_train_val(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``labels``) of a stratified, seeded validation part: ``round(fraction × n)`` per class, at
    least 1 for a class with 2 or more images."""
    rng = np.random.default_rng([seed, 104])
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n = max(1, int(round(fraction * len(members)))) if len(members) >= 2 else 0
        val += list(rng.choice(members, n, replace=False)) if n else []
    val = np.sort(np.array(val, dtype=int))
    return np.setdiff1d(np.arange(len(labels)), val), val


class ImageSet(torch.utils.data.Dataset):
    """Decoded in the loader's workers: a random crop + flip (``augment``) or the model's eval preprocessing."""

    def __init__(self, paths, labels, preprocess: Preprocess, augment: RandomResizedCropFlip | None, seed: int,
                 epoch: int):
        self.paths, self.labels, self.preprocess, self.augment = paths, labels, preprocess, augment
        self.seed, self.epoch = seed, epoch

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        try:
            img = load_image(self.paths[i])
        except ImageError as e:
            return i, None, int(self.labels[i]), e.reason
        if self.augment is None:
            x = self.preprocess.pixels(img, 3)
        else:
            x = to_tensor(self.augment(img, sample_rng(self.seed, self.epoch, i)), 3)
        return i, x, int(self.labels[i]), ""


def _collate(items):
    good = [(x, y) for _, x, y, _ in items if x is not None]
    if not good:
        return None, None
    return torch.stack([x for x, _ in good]), torch.tensor([y for _, y in good])


def _worker_init(worker_id: int) -> None:
    seed = torch.initial_seed() % 2 ** 32
    random.seed(seed)
    np.random.seed(seed)


def image_loader(data: TrainingData, idx_batches, preprocess: Preprocess, augment: RandomResizedCropFlip | None,
                 seed: int, epoch: int, workers: int | None, pin_memory: bool) -> torch.utils.data.DataLoader:
    """(pixels, labels) of each batch of positions, decoded in ``workers`` processes; (None, None) for a batch
    with no readable image."""
    ds = ImageSet(data.paths, data.labels, preprocess, augment, seed, epoch)
    workers = workers if workers is not None else max(1, min(4, (os.cpu_count() or 2) - 1))
    gen = torch.Generator().manual_seed(seed * 1000 + epoch)
    return torch.utils.data.DataLoader(
        ds, batch_sampler=[list(map(int, b)) for b in idx_batches], num_workers=workers, collate_fn=_collate,
        worker_init_fn=_worker_init, generator=gen, pin_memory=pin_memory)
