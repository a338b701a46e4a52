"""The files of a fine-tuning run, each written atomically (a kill never leaves half a file):

``checkpoint.pth``  the training state after every epoch (and on Ctrl-C, mid-epoch) with the optimizer, scheduler
                    and global RNG states, from which a re-run resumes at the exact batch;
``model.pth``       the best epoch's weights as a loadable model: ``{"state_dict": …, "transferlab": metadata}``;
``finetune.json``   the record (history, test scores, SVM comparison, provenance).
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transferlab.files import atomic_path
from transferlab.provenance import FINETUNE_FILE, FinetuneRecord

CHECKPOINT, MODEL, RECORD = "checkpoint.pth", "model.pth", FINETUNE_FILE
FORMAT = "transferlab-finetune/1"
# the loop's state, saved in every checkpoint beside the weights
STATE_KEYS = ("epoch", "step", "sums", "history", "best", "bad_epochs", "finished", "stopped_early", "linear_probe",
              "seconds", "epoch_seconds")


def fresh_state(linear_probe: dict | None) -> dict:
    """The loop's state before the first epoch (``sums``: loss sum, correct, seen of the epoch so far)."""
    return {"epoch": 0, "step": 0, "sums": [0.0, 0, 0], "history": [], "best": None, "bad_epochs": 0,
            "finished": False, "stopped_early": False, "linear_probe": linear_probe, "seconds": 0.0,
            "epoch_seconds": 0.0}


def atomic_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def rng_state() -> dict:
    """The global RNG states (torch, Python, NumPy, CUDA) as tensors and lists that ``weights_only`` loads."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(v if not isinstance(v, list) else tuple(v) for v in state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(out: Path, identity: dict, state: dict, weights: dict, opt, sched) -> None:
    """``weights``: what the trainer trains, under its own key (``net`` or ``fhead``)."""
    atomic_save({"format": FORMAT, "config": identity, **state, **weights, "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "rng": rng_state()}, out / CHECKPOINT)


def resume(out: Path, identity: dict, opt, sched) -> dict | None:
    """The checkpoint in ``out`` if there is one, after checking it was made with the same settings and restoring
    the optimizer, the scheduler and the RNG states from it (the caller loads its weights)."""
    path = out / CHECKPOINT
    if not path.exists():
        return None
    ck = torch.load(path, map_location="cpu", weights_only=True)
    if ck.get("format") != FORMAT:
        raise ValueError(f"{path}: not a transferlab fine-tuning checkpoint")
    diff = [k for k in identity if ck["config"].get(k) != identity[k]]
    if diff:
        was = ", ".join(f"{k}={ck['config'].get(k)!r}" for k in diff)
        raise ValueError(f"{path} was made with other settings ({was}); "
                         f"use the same settings to resume, another --out, or --fresh to start over")
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    set_rng_state(ck["rng"])
    return ck


def save_model(out: Path, net: nn.Module, metadata: dict) -> Path:
    """The network as a file that ``load_model(name, weights=path)`` reads."""
    sd = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    path = out / MODEL
    atomic_save({"state_dict": sd, "transferlab": {"format": FORMAT, **metadata}}, path)
    return path


def write_record(out: Path, record: dict) -> FinetuneRecord:
    """The run's record, typed, written as ``finetune.json``."""
    typed = FinetuneRecord.from_dict(record)
    typed.write(out / RECORD)
    return typed
