"""The feature-space head: a new Linear trained on the cached features of the layer that feeds the network's head —
the ``head`` mode, and with a shorter recipe the image modes' linear-probe start (LP-FT) — then folded exactly into
the network's head on raw features."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from transferlab.finetune.config import FinetuneConfig
from transferlab.finetune.loop import EpochLoop, Setup

EVAL_BATCH = 256
PROBE_EPOCHS, PROBE_PATIENCE = 30, 5  # the image modes' linear probe


class FeatureHead:
    """A Linear on standardised features: centred per dimension and scaled by one overall factor (a per-dimension
    one would blow up near-constant features when folded back into the network's head)."""

    def __init__(self, train_features: torch.Tensor, like: nn.Linear, device: torch.device):
        mu = train_features.mean(0)
        sd = (train_features - mu).pow(2).mean().sqrt().clamp_min(1e-6).expand_as(mu).clone()
        self.mu, self.sd = mu.to(device), sd.to(device)
        self.linear = nn.Linear(like.in_features, like.out_features).to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mu) / self.sd)

    def fold_into(self, head: nn.Linear) -> None:
        """The same function on raw features, written into ``head``: W/sd, b − (W/sd)·mu."""
        w = self.linear.weight.detach() / self.sd
        b = self.linear.bias.detach() - w @ self.mu
        with torch.no_grad():
            head.weight.copy_(w.to(head.weight.device))
            head.bias.copy_(b.to(head.bias.device))

    def unfold_from(self, head: nn.Linear) -> None:
        """The inverse of :meth:`fold_into`: W = W' sd, b = b' + W' mu."""
        with torch.no_grad():
            self.linear.weight.copy_(head.weight * self.sd)
            self.linear.bias.copy_(head.bias + head.weight @ self.mu)


class ProbeTrainer(EpochLoop):
    """``head`` mode: only the head is trained, on the cached features (eval preprocessing, no augmentation), in
    feature space; the network's head receives it, folded, whenever the model is saved."""

    verbose = False
    augmentation = "none (head mode trains on cached features of the eval preprocessing)"
    init_head_name = "random"

    def __init__(self, setup: Setup, on_step: Callable | None = None, cfg: FinetuneConfig | None = None):
        super().__init__(setup, on_step, cfg)
        self.fhead = FeatureHead(self.data.features[self.data.train_idx], self.head, self.device)
        params = list(self.fhead.linear.parameters())
        self.build_optimizer(params, {id(p) for p in params})

    def first_trained_step(self) -> int:
        return len(self.steps) - 1

    def init_head(self) -> None:
        return None

    def train_mode(self) -> None:
        self.net.eval()
        self.fhead.linear.train()

    def eval_mode(self) -> None:
        super().eval_mode()
        self.fhead.linear.eval()

    def _feature_batches(self, batches):
        for b in batches:
            yield self.data.features[b], torch.from_numpy(self.data.labels[b])

    def batches(self, epoch: int, start_step: int):
        order = self.data.batch_order(self.cfg.run.seed, epoch, self.cfg.run.batch_size)
        return self._feature_batches(order[start_step:])

    def eval_batches(self, idx: np.ndarray):
        return self._feature_batches(idx[i:i + EVAL_BATCH] for i in range(0, len(idx), EVAL_BATCH))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fhead(x)

    def trained_weights(self) -> dict:
        return {"fhead": self.fhead.linear.state_dict()}

    def load_weights(self, ck: dict) -> None:
        self.fhead.linear.load_state_dict(ck["fhead"])

    def sync_head(self) -> None:
        self.fhead.fold_into(self.head)

    def restore_best(self) -> None:
        self.fhead.unfold_from(self.head)

    def fit(self) -> dict:
        """Train in memory with early stopping (no checkpoint, no record), keep the best epoch's head and return
        a summary of it."""
        best, best_state, bad = (-1.0, 0.0), None, 0
        for epoch in range(self.cfg.epochs):
            self.train_mode()
            for x, y in self.batches(epoch, 0):
                self.train_step(x, y)
                self.sched.step()
            y, pred, vloss = self.predict(self.data.val_idx)
            key = (float((pred == y).mean()), -vloss)
            if key > best:
                best, bad, best_epoch = key, 0, epoch
                best_state = {k: v.clone() for k, v in self.fhead.linear.state_dict().items()}
            else:
                bad += 1
                if bad >= self.cfg.patience:
                    break
        self.fhead.linear.load_state_dict(best_state)
        return {"epochs": epoch + 1, "best_epoch": best_epoch + 1, "val_acc": round(best[0], 4),
                "val_loss": round(-best[1], 4)}


def linear_probe(setup: Setup) -> dict:
    """The image modes' start: a head trained on cached features with the ``head`` mode's default optimiser
    settings (at most 30 epochs, patience 5), written into the network's head; returns its summary."""
    cfg = replace(setup.cfg, mode="head", epochs=None, patience=None, lr=None, weight_decay=None).resolved()
    cfg = replace(cfg, epochs=PROBE_EPOCHS, patience=PROBE_PATIENCE)
    torch.manual_seed(cfg.run.seed)
    probe = ProbeTrainer(setup, cfg=cfg)
    summary = probe.fit()
    probe.sync_head()
    return summary
