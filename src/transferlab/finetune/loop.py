"""What both trainers share: the set-up (the pretrained model, where its new head goes, the data, the network with
that head) and the epoch loop — early stopping on the validation split, a checkpoint after every epoch (and on
Ctrl-C, mid-epoch) from which a re-run resumes, the best epoch's model, the test evaluation and the record."""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from transferlab.classify.scores import scores
from transferlab.finetune.checkpoint import (
    CHECKPOINT,
    MODEL,
    STATE_KEYS,
    fresh_state,
    resume,
    save_checkpoint,
    save_model,
    write_record,
)
from transferlab.finetune.config import FinetuneConfig
from transferlab.finetune.data import TrainingData, load_data
from transferlab.models.base import Backbone
from transferlab.models.heads import attach_head, head_plan
from transferlab.experiment import run_experiment
from transferlab.models.builder import load_model
from transferlab.models.loaded import LoadedModel
from transferlab.provenance import FinetuneRecord, library_versions


@dataclass
class Setup:
    """What a trainer starts from: the resolved config, the pretrained model, where its new head goes (``plan``),
    the data, and the network with that head."""

    cfg: FinetuneConfig
    model: LoadedModel
    plan: dict
    data: TrainingData
    net: Backbone
    head: nn.Linear


def prepare(cfg: FinetuneConfig) -> Setup:
    """Load the model (seeded), plan its head, read the data (features through the cache), attach the head."""
    cfg = cfg.resolved()
    torch.manual_seed(cfg.run.seed)
    model = load_model(cfg.run.model, cfg.run.weights, seed=cfg.run.seed)
    plan = head_plan(model.net, model.covers, model.preprocess.crop, model.name)
    data = load_data(cfg, plan["layer"], plan["pool"])
    torch.manual_seed(cfg.run.seed)  # the new head's init must not depend on whether extraction drew from the RNG
    net, head = attach_head(model.net, plan, len(data.classes))
    net.to(torch.device(cfg.run.device))
    return Setup(cfg, model, plan, data, net, head)


class EpochLoop:
    """One fine-tuning run: :meth:`run` trains (resuming from ``out/checkpoint.pth`` if there is one), evaluates the
    best epoch on the test images and writes ``model.pth`` and ``finetune.json``. Subclasses say what is trained,
    on what, and how it goes into the network (the hooks at the end)."""

    verbose = True  # epoch lines, kept epoch bars, evaluation bars
    channels_last = False
    augmentation: dict | str  # for the record
    init_head_name: str

    def __init__(self, setup: Setup, on_step: Callable | None = None, cfg: FinetuneConfig | None = None):
        self.setup, self.cfg = setup, cfg or setup.cfg
        self.model, self.plan, self.data = setup.model, setup.plan, setup.data
        self.net, self.head = setup.net, setup.head
        self.out = Path(self.cfg.out)
        self.device = torch.device(self.cfg.run.device)
        self.on_step = on_step  # called after every training batch with (trainer, epoch, step)
        self.stop_requested = False
        self.steps = self.net.steps()
        self.start = self.first_trained_step()

    def build_optimizer(self, params: list, head_ids: set[int]) -> None:
        """AdamW or SGD in groups (head / backbone × decayed / not: no decay on biases and norms) and a cosine
        schedule to 0 over every step."""
        cfg = self.cfg
        groups = []
        for is_head in (True, False):
            for decay in (True, False):
                ps = [p for p in params if (id(p) in head_ids) == is_head and (p.ndim > 1) == decay]
                if ps:
                    groups.append({"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0,
                                   "lr": cfg.lr * (1.0 if is_head else cfg.backbone_lr_scale)})
        if cfg.optimizer == "adamw":
            self.opt = torch.optim.AdamW(groups, lr=cfg.lr)
        else:
            self.opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
        self.steps_per_epoch = math.ceil(len(self.data.train_idx) / cfg.run.batch_size)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=cfg.epochs * self.steps_per_epoch)

    @property
    def progress(self) -> bool:
        return sys.stderr.isatty() if self.cfg.run.progress is None else self.cfg.run.progress

    def _to(self, x, y):
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def train_step(self, x, y) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimiser step on a batch; returns the logits, the labels (on the device) and the loss."""
        x, y = self._to(x, y)
        with self._autocast():
            logits = self.forward(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.cfg.label_smoothing)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return logits, y, loss

    def predict(self, idx: np.ndarray, desc: str = "") -> tuple[np.ndarray, np.ndarray, float]:
        """True and predicted classes of ``idx`` (unreadable images left out) and their mean cross-entropy
        (evaluation mode, eval preprocessing)."""
        self.eval_mode()
        preds, y_all, losses, n = [], [], 0.0, 0
        with torch.inference_mode(), self._autocast(), tqdm(
                total=len(idx), desc=desc, unit="img", disable=not self.progress or not self.verbose,
                leave=False, dynamic_ncols=True) as bar:
            for x, y in self.eval_batches(idx):
                if self.stop_requested:
                    break
                if x is None:
                    continue
                x, y = self._to(x, y)
                logits = self.forward(x).float()
                losses += F.cross_entropy(logits, y, reduction="sum").item()
                n += len(y)
                preds.append(logits.argmax(1).cpu())
                y_all.append(y.cpu())
                bar.update(len(y))
        return torch.cat(y_all).numpy(), torch.cat(preds).numpy(), losses / max(n, 1)

    # ---------------------------------------------------------------- the loop
    def _install_sigint(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True
            print("\ninterrupt: finishing this step and saving a checkpoint (Ctrl-C again to abort)",
                  file=sys.stderr)

        return signal.signal(signal.SIGINT, handler)

    def run(self, stop_after: int | None = None) -> FinetuneRecord:
        """Train (resuming), then evaluate. ``stop_after``: train at most that many epochs in this call."""
        self.out.mkdir(parents=True, exist_ok=True)
        ck = resume(self.out, self.cfg.identity(), self.opt, self.sched)
        if ck is None:
            torch.manual_seed(self.cfg.run.seed)
            state = fresh_state(self.init_head())
        else:
            self.load_weights(ck)
            state = {k: ck[k] for k in STATE_KEYS}
            print(f"resuming {self.out / CHECKPOINT}: epoch {state['epoch'] + 1}, step {state['step']}"
                  + (" (finished)" if state["finished"] else ""), file=sys.stderr)
        old = self._install_sigint()
        epochs_this_call = 0
        try:
            while not state["finished"] and not self.stop_requested:
                if stop_after is not None and epochs_this_call >= stop_after:
                    break
                self._epoch(state)
                if self.stop_requested:
                    break
                epochs_this_call += 1
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)
        if not state["finished"]:
            return write_record(self.out, self.record(state, "interrupted" if self.stop_requested else "paused"))
        return self.finish(state)

    def _epoch(self, state: dict) -> None:
        cfg = self.cfg
        epoch, step0 = state["epoch"], state["step"]
        sums = state["sums"]  # loss sum, correct, seen
        t0 = time.perf_counter()
        self.train_mode()
        total = self.steps_per_epoch
        with tqdm(total=total, initial=step0, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                  disable=not self.progress, dynamic_ncols=True, leave=self.verbose) as bar:
            step = step0
            for x, y in self.batches(epoch, step0):
                if x is not None:
                    logits, y, loss = self.train_step(x, y)
                    sums[0] += loss.item() * len(y)
                    sums[1] += int((logits.argmax(1) == y).sum())
                    sums[2] += len(y)
                self.sched.step()
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{sums[0] / max(sums[2], 1):.3f}", acc=f"{sums[1] / max(sums[2], 1):.3f}")
                if self.on_step is not None:
                    self.on_step(self, epoch, step)
                if self.stop_requested:
                    break
        state["step"] = step
        state["epoch_seconds"] += time.perf_counter() - t0
        if self.stop_requested and step < total:
            self.save_checkpoint(state)  # mid-epoch: resumes at this batch
            return
        t1 = time.perf_counter()
        y, pred, val_loss = self.predict(self.data.val_idx, desc="validation")
        if self.stop_requested:  # interrupted during validation: redo it on resume
            self.save_checkpoint(state)
            return
        val_acc = float((pred == y).mean())
        seconds = state["epoch_seconds"] + time.perf_counter() - t1
        row = {"epoch": epoch + 1, "train_loss": round(sums[0] / max(sums[2], 1), 5),
               "train_acc": round(sums[1] / max(sums[2], 1), 5), "val_loss": round(val_loss, 5),
               "val_acc": round(val_acc, 5), "lr": self.opt.param_groups[0]["lr"], "seconds": round(seconds, 2)}
        state["history"].append(row)
        state["seconds"] += seconds
        best = state["best"]
        if best is None or (val_acc, -val_loss) > (best["val_acc"], -best["val_loss"]):
            state["best"] = {"epoch": epoch + 1, "val_acc": val_acc, "val_loss": val_loss}
            state["bad_epochs"] = 0
            self.save_model({"history": state["history"], "best_epoch": epoch + 1, "status": "training"})
        else:
            state["bad_epochs"] += 1
        if self.verbose:
            print(f"epoch {epoch + 1}/{cfg.epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} · "
                  f"val loss {val_loss:.4f} acc {val_acc:.4f} · {seconds:.0f} s"
                  + (" · best" if state["best"]["epoch"] == epoch + 1 else ""), file=sys.stderr)
        state.update(epoch=epoch + 1, step=0, sums=[0.0, 0, 0], epoch_seconds=0.0)
        if state["bad_epochs"] >= cfg.patience:
            state["finished"] = state["stopped_early"] = True
        if state["epoch"] >= cfg.epochs:
            state["finished"] = True
        self.save_checkpoint(state)

    # ---------------------------------------------------------------- files
    def save_checkpoint(self, state: dict) -> None:
        save_checkpoint(self.out, self.cfg.identity(), state, self.trained_weights(), self.opt, self.sched)

    def save_model(self, extra: dict) -> Path:
        """The network with the current head as ``model.pth`` (``extra``: training facts for its metadata)."""
        self.sync_head()
        m = self.model
        return save_model(self.out, self.net, {
            "model": m.name, "base_weights": m.tag, "base_weights_sha256": m.weights_id, "mode": self.cfg.mode,
            "head": {**self.plan, "num_classes": len(self.data.classes)}, "classes": list(self.data.classes),
            "preprocess": m.preprocess.describe(), "training": {"config": self.cfg.as_dict(), **extra}})

    def record(self, state: dict, status: str) -> dict:
        """The ``finetune.json`` record of the run so far."""
        cfg, run, data = self.cfg, self.cfg.run, self.data
        return {
            "status": status, "model": run.model, "mode": cfg.mode, "epochs_run": len(state["history"]),
            "epochs_planned": cfg.epochs, "stopped_early": state["stopped_early"],
            "best_epoch": state["best"]["epoch"] if state["best"] else None, "history": state["history"],
            "train_seconds": round(state["seconds"], 1), "linear_probe": state["linear_probe"],
            "classes": list(data.classes),
            "images": {"train": int(len(data.train_idx)), "val": int(len(data.val_idx)),
                       "test": int(len(data.test_idx)), "bad_files": data.bad_files},
            "provenance": {
                **self.model.provenance(), "base_weights_sha256": self.model.weights_id, "head": self.plan,
                "trained_from_layer": self.steps[self.start][0], "seed": run.seed,
                "augmentation": self.augmentation,
                "optimizer": {"name": cfg.optimizer, "lr_head": cfg.lr, "lr_backbone": cfg.lr * cfg.backbone_lr_scale,
                              "weight_decay": cfg.weight_decay, "batch_size": run.batch_size,
                              "label_smoothing": cfg.label_smoothing},
                "schedule": f"cosine to 0 over {cfg.epochs} epochs × {self.steps_per_epoch} steps, per step",
                "early_stopping": {"monitor": "val_acc (ties: val_loss)", "patience": cfg.patience},
                "batchnorm": cfg.bn, "init_head": self.init_head_name,
                "validation": f"{cfg.val_fraction:g} of each training class, stratified, seeded (train only)",
                "protocol": run.protocol, "limit_per_class": run.limit_per_class, "dataset": data.dataset.describe(),
                "device": run.device, "torch_threads": torch.get_num_threads(), "versions": library_versions(),
                "date": time.strftime("%Y-%m-%d %H:%M:%S"), "config": cfg.as_dict()},
        }

    def finish(self, state: dict) -> FinetuneRecord:
        """The best epoch's network on the test images, the SVM comparison, and the final files."""
        best = load_model(self.cfg.run.model, str(self.out / MODEL))
        self.net.load_state_dict(best.net.state_dict())
        self.restore_best()
        t0 = time.perf_counter()
        y_test, pred, test_loss = self.predict(self.data.test_idx, desc="test")
        record = self.record(state, "finished")
        test = scores(y_test, pred, self.data.classes)
        record.update(test_accuracy=test["accuracy"], test_loss=round(test_loss, 5),
                      test_seconds=round(time.perf_counter() - t0, 1), **{f"test_{k}": v for k, v in test.items()
                                                                          if k != "accuracy"})
        if self.cfg.compare_svm:
            svm = run_experiment(self.cfg.features_run(self.plan["layer"], self.plan["pool"],
                                                       classifier="linear-svm", C=1.0))
            run0 = svm.runs[0]
            record["svm_accuracy"] = svm.accuracy
            record["svm"] = {"accuracy": svm.accuracy, "mean_class_accuracy": svm.mean_class_accuracy,
                             "layer": self.plan["layer"], "pool": self.plan["pool"], "l2": True, "C": 1.0,
                             "train_images": run0.train_images, "test_images": run0.test_images,
                             "per_class_accuracy": run0.per_class_accuracy}
        self.save_model({"history": state["history"], "best_epoch": record["best_epoch"], "status": "finished",
                         "test_accuracy": record["test_accuracy"], "svm_accuracy": record.get("svm_accuracy")})
        record["model_file"] = str(self.out / MODEL)
        return write_record(self.out, record)

    # ---------------------------------------------------------------- what a trainer says
    def first_trained_step(self) -> int:
        """Index into ``steps`` of the first step whose parameters are trained (for the record)."""
        raise NotImplementedError

    def init_head(self) -> dict | None:
        """Prepare the head before the first epoch; the linear probe's summary if one was trained."""
        raise NotImplementedError

    def train_mode(self) -> None:
        raise NotImplementedError

    def eval_mode(self) -> None:
        self.net.eval()

    def batches(self, epoch: int, start_step: int) -> Iterable:
        """(inputs, labels) of the epoch's training batches from ``start_step`` on ((None, None): nothing readable)."""
        raise NotImplementedError

    def eval_batches(self, idx: np.ndarray) -> Iterable:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def trained_weights(self) -> dict:
        """What is trained, under its checkpoint key."""
        raise NotImplementedError

    def load_weights(self, ck: dict) -> None:
        raise NotImplementedError

    def sync_head(self) -> None:
        """Bring the network's head up to date before it is saved (a head trained elsewhere is copied in)."""

    def restore_best(self) -> None:
        """After the best epoch's network is loaded back: bring what is trained in line with it."""
