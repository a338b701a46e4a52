"""Fine-tuning: replace a backbone's classifier by a new N-way head and train it — the head alone on frozen, cached
features (``head``, :mod:`.probe`), the last block and the head (``last-block``), or the whole network (``full``;
both :mod:`.trainer`).

Protocol: the dataset's own split (15 Scene: train/ and test/); a validation set carved from the training images
only (stratified, seeded) drives early stopping and the choice of the best epoch; the test images are used once,
at the end, on the best epoch's weights. Reproducible on CPU, and resumable at the exact batch (:mod:`.checkpoint`).
Where the head goes: :mod:`transferlab.models.heads`. Settings: :mod:`.config`.
"""
from __future__ import annotations

import sys
import types
from collections.abc import Callable

from transferlab.finetune.checkpoint import CHECKPOINT, MODEL, RECORD
from transferlab.finetune.config import MODES, OPTIMIZERS, FinetuneConfig
from transferlab.finetune.loop import EpochLoop, prepare
from transferlab.finetune.probe import ProbeTrainer
from transferlab.finetune.trainer import ImageTrainer
from transferlab.provenance import FinetuneRecord

__all__ = ["CHECKPOINT", "MODEL", "RECORD", "MODES", "OPTIMIZERS", "FinetuneConfig", "EpochLoop", "ImageTrainer",
           "ProbeTrainer", "make_trainer", "finetune"]


def make_trainer(cfg: FinetuneConfig, on_step: Callable | None = None) -> EpochLoop:
    """The trainer of ``cfg``'s mode, set up (model loaded, data split, features read through the cache).
    ``on_step(trainer, epoch, step)`` is called after every training batch."""
    setup = prepare(cfg)
    return (ProbeTrainer if setup.cfg.mode == "head" else ImageTrainer)(setup, on_step)


def finetune(cfg: FinetuneConfig, stop_after: int | None = None, on_step: Callable | None = None) -> FinetuneRecord:
    """Run (or resume) ``cfg``; returns its record (written as ``finetune.json``). ``stop_after``: at most that many
    epochs."""
    return make_trainer(cfg, on_step).run(stop_after=stop_after)


class _CallablePackage(types.ModuleType):
    """``transferlab.finetune(cfg)`` runs :func:`finetune`, while ``transferlab.finetune`` stays this package."""

    def __call__(self, cfg: FinetuneConfig, stop_after: int | None = None,
                 on_step: Callable | None = None) -> FinetuneRecord:
        return finetune(cfg, stop_after, on_step)


sys.modules[__name__].__class__ = _CallablePackage
