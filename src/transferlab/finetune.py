"""Fine-tuning: replace a backbone's classifier by a new N-way head and train it — the head alone on frozen, cached
features (``head``), the last block and the head (``last-block``), or the whole network (``full``).

Protocol: the dataset's own split (15 Scene: train/ and test/); a validation set carved from the training images
only (stratified, seeded) drives early stopping and the choice of the best epoch; the test images are used once,
at the end, on the best epoch's weights. Reproducible on CPU: crops come from a generator per (seed, epoch, image),
batches from a permutation per (seed, epoch), and the global RNG (dropout) is saved in every checkpoint.

Files written to the output folder:
  ``checkpoint.pth``  training state after every epoch (and on Ctrl-C, mid-epoch): resumed automatically;
  ``model.pth``       the best weights as a loadable model: ``{"state_dict": …, "transferlab": metadata}`` —
                      ``load_model(name, weights="model.pth")``, ``transferlab predict/run --weights model.pth``;
  ``finetune.json``   history, test accuracy, per-class accuracy, confusion matrix, SVM comparison, provenance.

The head. When the weights cover the backbone's own classifier (EfficientNet-Lite ``imagenet``, VGG ``imagenet``)
its last Linear is replaced (``replace_head``) and, for ``head``, trained on the cached features of the layer
feeding it (EfficientNet-Lite: ``avgpool``). When they stop before it (VGG16/AlexNet ``imagenet-conv``: conv layers
only) the fully connected layers are dropped and the head is a new Linear on the globally average-pooled deepest
pretrained map (``pool5 → avg → Linear(512, N)``): :class:`PooledHeadNet`. Its checkpoint metadata carries
``"head": {"kind": "pooled", "layer", "pool", "in_features", "num_classes"}``, from which ``load_model`` rebuilds
the same network (:func:`pooled_head_net`).
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .augment import RandomResizedCropFlip, sample_rng, to_tensor
from .backbones.base import Backbone
from .backbones.efficientnet_lite import EfficientNetLite
from .classify import scores
from .datasets import load_dataset, make_splits
from .features.pooling import Pool
from .images import ImageError, load_image
from .options import FINETUNE_MODES as MODES, OPTIMIZERS
from .preprocess import Preprocess

CHECKPOINT, MODEL, RECORD = "checkpoint.pth", "model.pth", "finetune.json"
FORMAT = "transferlab-finetune/1"


# ---------------------------------------------------------------------------------------------------- the network
class PooledHeadNet(Backbone):
    """A backbone cut at ``layer``, its map pooled (``pool``, e.g. global average) and classified by a new Linear.

    Steps: the backbone's ``input`` … ``layer``, then ``gap`` and ``fc``. The backbone's later layers (its fully
    connected classifier) are replaced by ``nn.Identity`` so that their random weights are neither kept nor saved.
    State-dict keys: ``base.<the backbone's keys>``, ``fc.weight``, ``fc.bias``.
    """

    fc_layers = ("gap", "fc")

    def __init__(self, base: Backbone, layer: str, pool: str, in_features: int, num_classes: int):
        nn.Module.__init__(self)
        names = base.layer_names()
        if layer not in names:
            raise KeyError(f"{type(base).__name__} has no layer {layer!r}")
        self.base, self.layer, self.pool_spec = base, layer, pool
        self.keep = names.index(layer) + 1
        self.input = base.input
        for _, module in base.steps()[self.keep:]:
            if any(True for _ in module.parameters(recurse=True)):
                qualified = next(n for n, m in base.named_modules() if m is module)
                base.set_submodule(qualified, nn.Identity())
        self.first_conv = f"base.{base.first_conv}"
        self.gap = Pool(pool)
        self.fc = nn.Linear(in_features, num_classes)

    def steps(self):
        return ([("input", self.input)] + self.base.steps()[1:self.keep] + [("gap", self.gap), ("fc", self.fc)])

    def replace_head(self, num_classes: int) -> nn.Linear:
        self.fc = nn.Linear(self.fc.in_features, num_classes)
        return self.fc


def pooled_head_net(base: Backbone, head: dict) -> PooledHeadNet:
    """The network that a checkpoint's ``"head"`` metadata describes (used by ``load_model``)."""
    return PooledHeadNet(base, head["layer"], head["pool"], int(head["in_features"]), int(head["num_classes"]))


def head_plan(model) -> dict:
    """Where the new head goes: ``native`` (replace the last Linear; features of the layer feeding it) when the
    weights cover the classifier, else ``pooled`` (global average of the deepest pretrained layer)."""
    steps = model.net.steps()
    names = [n for n, _ in steps]
    if model.covers == names[-1] and isinstance(steps[-1][1], nn.Linear):
        i = len(steps) - 2
        while i > 0 and isinstance(steps[i][1], (nn.Dropout, nn.Flatten)):
            i -= 1  # identities at evaluation time on the pooled vector
        return {"kind": "native", "layer": names[i], "pool": "avg", "in_features": steps[-1][1].in_features}
    layer = model.covers
    if layer is None:
        raise ValueError(f"{model.name}: random weights have nothing to fine-tune from; give pretrained weights")
    with torch.no_grad():
        crop = model.preprocess.crop
        out = model.net.forward_layers(torch.zeros(1, 3, crop, crop), [layer])[layer]
    return {"kind": "pooled", "layer": layer, "pool": "avg", "in_features": int(Pool("avg")(out).shape[1])}


def build_net(model, plan: dict, num_classes: int) -> tuple[Backbone, nn.Linear]:
    """The model's network with a new ``num_classes``-way head (modifies ``model.net``)."""
    if plan["kind"] == "native":
        net = model.net
        return net, net.replace_head(num_classes)
    net = PooledHeadNet(model.net, plan["layer"], plan["pool"], plan["in_features"], num_classes)
    return net, net.fc


def step_modules(module: nn.Module) -> list[nn.Module]:
    """The modules that own a step's parameters (EfficientNet's stem/head steps call methods of the network)."""
    parts = getattr(module, "parts", None)
    if parts:
        owner = module.method.__self__
        return [getattr(owner, p) for p in parts]
    return [module]


def trainable_from(net: Backbone, mode: str) -> int:
    """Index of the first trained step: ``full`` 0; ``head`` the head; ``last-block``: EfficientNet-Lite's last
    stage (+ head conv + fc), VGG's conv5_x, AlexNet's conv3–conv5 (after the next-to-last pooling)."""
    steps = net.steps()
    names = [n for n, _ in steps]
    if mode == "full":
        return 0
    if mode == "head":
        return len(steps) - 1
    base = net.base if isinstance(net, PooledHeadNet) else net
    if isinstance(base, EfficientNetLite):
        blocks = list(base._blocks)
        last = blocks[-1]._project_conv.out_channels
        first = len(blocks) - 1
        while first > 0 and blocks[first - 1]._project_conv.out_channels == last:
            first -= 1
        return names.index(f"block{first}")
    pools = [i for i, n in enumerate(names) if n.startswith("pool")]
    if len(pools) < 2:
        raise ValueError(f"no last-block rule for {type(base).__name__}; use --mode head or full")
    return pools[-2] + 1


# ---------------------------------------------------------------------------------------------- configuration
@dataclass
class FinetuneConfig:
    data: str
    out: str
    model: str = "efficientnet_lite0"
    weights: str = "auto"
    mode: str = "head"
    epochs: int | None = None  # default: 60 for head, 10 otherwise
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float | None = None  # head's learning rate; default AdamW 1e-3, SGD 1e-2
    backbone_lr_scale: float = 0.1  # the backbone's learning rate = lr × this
    weight_decay: float | None = None  # default AdamW 0.01, SGD 1e-4 (not on biases and norms)
    label_smoothing: float = 0.1
    patience: int | None = None  # epochs without validation improvement; default 10 for head, 3 otherwise
    val_fraction: float = 0.1
    augment: bool = True
    crop_scale: float = 0.5  # random resized crop: area fraction from crop_scale to 1
    bn: str = "frozen"  # BatchNorm statistics: frozen (ImageNet's, eval mode) or train (only in trained steps)
    init_head: str = "lp"  # image modes: start from the head trained on cached features (lp) or a random one
    protocol: str = "fixed"
    train_per_class: int = 100
    limit_per_class: int | None = None
    seed: int = 0
    workers: int | None = None
    device: str = "cpu"
    cache: str | None = None
    compare_svm: bool = True
    progress: bool | None = None

    def resolved(self) -> "FinetuneConfig":
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.bn not in ("frozen", "train"):
            raise ValueError(f"--bn must be frozen or train, not {self.bn!r}")
        if self.init_head not in ("lp", "random"):
            raise ValueError(f"--init-head must be lp or random, not {self.init_head!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError("--val-fraction must be between 0 and 1")
        head = self.mode == "head"
        sgd = self.optimizer == "sgd"
        return replace(
            self, epochs=self.epochs or (60 if head else 10), lr=self.lr or (1e-2 if sgd else 1e-3),
            weight_decay=self.weight_decay if self.weight_decay is not None else (1e-4 if sgd else 0.01),
            patience=self.patience or (10 if head else 3))

    def identity(self) -> dict:
        """What a checkpoint must agree on to be resumed."""
        d = asdict(self)
        for k in ("out", "workers", "device", "cache", "compare_svm", "progress"):
            d.pop(k)
        return d


# -------------------------------------------------------------------------------------------------------- data
class ImageSet(torch.utils.data.Dataset):
    """Decoded in the loader's workers: a random crop + flip (``augment``) or the model's eval preprocessing."""

    def __init__(self, paths, labels, preprocess: Preprocess, augment: RandomResizedCropFlip | None, seed: int):
        self.paths, self.labels, self.preprocess, self.augment, self.seed = paths, labels, preprocess, augment, seed
        self.epoch = 0

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


def _worker_init(worker_id: int) -> None:
    seed = torch.initial_seed() % 2 ** 32
    random.seed(seed)
    np.random.seed(seed)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(v if not isinstance(v, list) else tuple(v) for v in state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------------------------------- trainer
class Finetuner:
    """One fine-tuning run; :meth:`run` trains (resuming from ``out/checkpoint.pth`` if there is one), evaluates
    the best epoch on the test images and writes ``model.pth`` and ``finetune.json``."""

    def __init__(self, cfg: FinetuneConfig, on_step: Callable | None = None):
        from .registry import load_model

        self.cfg = cfg.resolved()
        self.out = Path(self.cfg.out)
        self.on_step = on_step  # called after every training batch with (finetuner, epoch, step)
        self.stop_requested = False
        self.device = torch.device(self.cfg.device)
        torch.manual_seed(self.cfg.seed)
        self.model = load_model(self.cfg.model, self.cfg.weights, seed=self.cfg.seed)
        self.base_provenance = self.model.provenance()
        self.plan = head_plan(self.model)
        self._prepare_data()
        self.net, self.head = build_net(self.model, self.plan, len(self.classes))
        self.start = trainable_from(self.net, self.cfg.mode)
        self.steps = self.net.steps()
        self.net.to(self.device)
        self.channels_last = self.device.type == "cpu" and self.cfg.mode != "head"
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self._configure_trainable()
        self.augment = RandomResizedCropFlip(self.model.preprocess.crop, (self.cfg.crop_scale, 1.0)) \
            if self.cfg.augment else None

    # ---------------------------------------------------------------- data
    def _prepare_data(self):
        cfg = self.cfg
        self.features = None
        self.lp_needed = cfg.mode == "head" or cfg.init_head == "lp"
        if self.lp_needed or cfg.compare_svm:
            from .experiment import extract_dataset

            dataset, _, ext = extract_dataset(self.run_config(), [(self.plan["layer"], self.plan["pool"])])
            ok = np.array(ext.ok, dtype=int)
            self.features = torch.from_numpy(ext.features[(self.plan["layer"], self.plan["pool"])])
            self.bad_files = [{"path": p, "reason": r} for p, r in ext.bad]
        else:
            dataset = load_dataset(cfg.data, cfg.limit_per_class)
            ok = np.arange(len(dataset.paths))
            self.bad_files = []
        self.dataset, self.classes = dataset, dataset.classes
        self.paths = [dataset.paths[i] for i in ok]
        self.labels = dataset.labels[ok]
        splits = make_splits(self.labels, dataset.split[ok], cfg.protocol, cfg.train_per_class, cfg.seed)
        if len(splits) != 1:
            raise ValueError("fine-tuning uses one split: --protocol fixed or random:1")
        train, self.test_idx = splits[0].train, splits[0].test
        tr, va = split_train_val(self.labels[train], cfg.val_fraction, cfg.seed)
        self.train_idx, self.val_idx = train[tr], train[va]
        if not len(self.val_idx):
            raise ValueError("too few training images to carve a validation set (need 2 per class)")

    def run_config(self, **extra):
        from .experiment import RunConfig

        cfg = self.cfg
        return RunConfig(data=cfg.data, model=cfg.model, weights=cfg.weights, layers=[self.plan["layer"]],
                         pool=self.plan["pool"], protocol=cfg.protocol, train_per_class=cfg.train_per_class,
                         limit_per_class=cfg.limit_per_class, seed=cfg.seed, batch_size=cfg.batch_size,
                         workers=cfg.workers, device=cfg.device, cache=cfg.cache, progress=cfg.progress, **extra)

    def _feature_scale(self):
        """Per-dimension mean and one overall scale (a per-dimension one would blow up near-constant features
        when folded back into the head)."""
        x = self.features[self.train_idx]
        mu = x.mean(0)
        return mu, (x - mu).pow(2).mean().sqrt().clamp_min(1e-6).expand_as(mu).clone()

    # ---------------------------------------------------------------- model state
    def _configure_trainable(self):
        self.trained_modules = [m for _, s in self.steps[self.start:] for m in step_modules(s)]
        for p in self.net.parameters():
            p.requires_grad_(False)
        for m in self.trained_modules:
            for p in m.parameters():
                p.requires_grad_(True)
        if self.cfg.mode == "head":  # trained in feature space (standardised), folded into the net at the end
            self.mu, self.sd = (t.to(self.device) for t in self._feature_scale())
            self.fhead = nn.Linear(self.head.in_features, self.head.out_features)
            params = list(self.fhead.parameters())
            self.fhead.to(self.device)
        else:
            params = [p for p in self.net.parameters() if p.requires_grad]
        head_ids = {id(p) for p in self.head.parameters()}
        cfg = self.cfg
        groups = []
        for is_head in (True, False):
            for decay in (True, False):
                ps = [p for p in params if (cfg.mode == "head" or (id(p) in head_ids) == is_head)
                      and (p.ndim > 1) == decay]
                if ps and (is_head or cfg.mode != "head"):
                    groups.append({"params": ps, "weight_decay": cfg.weight_decay if decay else 0.0,
                                   "lr": cfg.lr * (1.0 if is_head else cfg.backbone_lr_scale)})
        if cfg.optimizer == "adamw":
            self.opt = torch.optim.AdamW(groups, lr=cfg.lr)
        else:
            self.opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
        self.steps_per_epoch = math.ceil(len(self.train_idx) / cfg.batch_size)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=cfg.epochs * self.steps_per_epoch)

    def _train_mode(self):
        self.net.eval()
        if self.cfg.mode == "head":
            self.fhead.train()
            return
        for m in self.trained_modules:
            m.train()
        if self.cfg.bn == "frozen":
            for m in self.net.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _forward(self, x):
        if self.cfg.mode == "head":
            return self.fhead((x - self.mu) / self.sd)
        with torch.no_grad():
            for _, m in self.steps[:self.start]:
                x = m(x)
        for _, m in self.steps[self.start:]:
            x = m(x)
        return x

    def folded_head(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The feature-space head as weights on raw features: W/sd, b − (W/sd)·mu."""
        w = self.fhead.weight.detach() / self.sd
        return w, self.fhead.bias.detach() - w @ self.mu

    def _sync_head(self):
        if self.cfg.mode == "head":
            w, b = self.folded_head()
            with torch.no_grad():
                self.head.weight.copy_(w)
                self.head.bias.copy_(b)

    # ---------------------------------------------------------------- batches
    def _order(self, epoch: int) -> list[np.ndarray]:
        perm = np.random.default_rng([self.cfg.seed, epoch, 3]).permutation(self.train_idx)
        bs = self.cfg.batch_size
        return [perm[i:i + bs] for i in range(0, len(perm), bs)]

    def _loader(self, idx_batches, augment: bool, epoch: int = 0):
        ds = ImageSet(self.paths, self.labels, self.model.preprocess, self.augment if augment else None,
                      self.cfg.seed)
        ds.epoch = epoch
        workers = self.cfg.workers if self.cfg.workers is not None else max(1, min(4, (os.cpu_count() or 2) - 1))
        gen = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)
        return torch.utils.data.DataLoader(
            ds, batch_sampler=[list(map(int, b)) for b in idx_batches], num_workers=workers, collate_fn=_collate,
            worker_init_fn=_worker_init, generator=gen, pin_memory=self.device.type == "cuda")

    def _batches(self, epoch: int, start_step: int):
        order = self._order(epoch)[start_step:]
        if self.cfg.mode == "head":
            for b in order:
                yield self.features[b], torch.from_numpy(self.labels[b])
        else:
            yield from self._loader(order, self.cfg.augment, epoch)

    def _to(self, x, y):
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def predict(self, idx: np.ndarray, desc: str = "") -> tuple[np.ndarray, np.ndarray, float]:
        """True and predicted classes of ``idx`` (unreadable images left out) and their mean cross-entropy
        (evaluation mode, eval preprocessing)."""
        self.net.eval()
        preds, losses, n = [], 0.0, 0
        y_all = []
        if self.cfg.mode == "head":
            self.fhead.eval()
            source = ((self.features[idx[i:i + 256]], torch.from_numpy(self.labels[idx[i:i + 256]]))
                      for i in range(0, len(idx), 256))
        else:
            bs = self.cfg.batch_size * 2
            source = self._loader([idx[i:i + bs] for i in range(0, len(idx), bs)], augment=False)
        with torch.inference_mode(), self._autocast(), tqdm(
                total=len(idx), desc=desc, unit="img", disable=not self.progress or self.cfg.mode == "head",
                leave=False, dynamic_ncols=True) as bar:
            for x, y in source:
                if self.stop_requested:
                    break
                if x is None:
                    continue
                x, y = self._to(x, y)
                logits = self._forward(x).float()
                losses += F.cross_entropy(logits, y, reduction="sum").item()
                n += len(y)
                preds.append(logits.argmax(1).cpu())
                y_all.append(y.cpu())
                bar.update(len(y))
        return torch.cat(y_all).numpy(), torch.cat(preds).numpy(), losses / max(n, 1)

    @property
    def progress(self) -> bool:
        return sys.stderr.isatty() if self.cfg.progress is None else self.cfg.progress

    # ---------------------------------------------------------------- checkpoints
    def _net_state(self) -> dict:
        if self.cfg.mode == "head":
            return {"fhead": self.fhead.state_dict()}
        return {"net": {k: v for k, v in self.net.state_dict().items()}}

    def save_checkpoint(self, state: dict) -> None:
        _atomic_save({"format": FORMAT, "config": self.cfg.identity(), **state, **self._net_state(),
                      "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                      "rng": _rng_state()}, self.out / CHECKPOINT)

    def load_checkpoint(self) -> dict | None:
        path = self.out / CHECKPOINT
        if not path.exists():
            return None
        ck = torch.load(path, map_location="cpu", weights_only=True)
        if ck.get("format") != FORMAT:
            raise ValueError(f"{path}: not a transferlab fine-tuning checkpoint")
        mine = self.cfg.identity()
        diff = [k for k in mine if ck["config"].get(k) != mine[k]]
        if diff:
            was = ", ".join(f"{k}={ck['config'].get(k)!r}" for k in diff)
            raise ValueError(f"{path} was made with other settings ({was}); "
                             f"use the same settings to resume, another --out, or --fresh to start over")
        if "fhead" in ck:
            self.fhead.load_state_dict(ck["fhead"])
        else:
            self.net.load_state_dict(ck["net"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        _set_rng_state(ck["rng"])
        return ck

    def metadata(self, extra: dict | None = None) -> dict:
        m = self.model
        return {"format": FORMAT, "model": m.name, "base_weights": m.tag, "base_weights_sha256": m.weights_id,
                "mode": self.cfg.mode, "head": {**self.plan, "num_classes": len(self.classes)},
                "classes": list(self.classes), "preprocess": m.preprocess.describe(),
                "training": {"config": asdict(self.cfg), **(extra or {})}}

    def save_model(self, extra: dict | None = None) -> Path:
        self._sync_head()
        sd = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        path = self.out / MODEL
        _atomic_save({"state_dict": sd, "transferlab": self.metadata(extra)}, path)
        return path

    # ---------------------------------------------------------------- linear probe (head initialisation)
    def linear_probe(self) -> dict:
        """Train the head on cached features (the ``head`` mode's recipe) and copy it into the network."""
        sub = Finetuner.__new__(Finetuner)
        sub.__dict__.update(self.__dict__)
        sub.cfg = replace(self.cfg, mode="head", epochs=None, patience=None, lr=None, weight_decay=None).resolved()
        sub.cfg = replace(sub.cfg, epochs=30, patience=5)
        sub.steps, sub.start, sub.channels_last = self.steps, len(self.steps) - 1, False
        torch.manual_seed(self.cfg.seed)
        sub._configure_trainable()
        best, best_state, bad = (-1.0, 0.0), None, 0
        for epoch in range(sub.cfg.epochs):
            sub._train_mode()
            for x, y in sub._batches(epoch, 0):
                loss = F.cross_entropy(sub._forward(x), y, label_smoothing=self.cfg.label_smoothing)
                sub.opt.zero_grad(set_to_none=True)
                loss.backward()
                sub.opt.step()
                sub.sched.step()
            y, pred, vloss = sub.predict(self.val_idx)
            key = (float((pred == y).mean()), -vloss)
            if key > best:
                best, best_state, bad, best_epoch = key, {k: v.clone() for k, v in sub.fhead.state_dict().items()}, 0, epoch
            else:
                bad += 1
                if bad >= sub.cfg.patience:
                    break
        sub.fhead.load_state_dict(best_state)
        w, b = sub.folded_head()
        with torch.no_grad():
            self.head.weight.copy_(w.to(self.head.weight.device))
            self.head.bias.copy_(b.to(self.head.bias.device))
        for p in self.net.parameters():  # _configure_trainable of the probe froze everything
            p.requires_grad_(False)
        for m in self.trained_modules:
            for p in m.parameters():
                p.requires_grad_(True)
        return {"epochs": epoch + 1, "best_epoch": best_epoch + 1, "val_acc": round(best[0], 4),
                "val_loss": round(-best[1], 4)}

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

    def run(self, stop_after: int | None = None) -> dict:
        """Train (resuming), then evaluate. ``stop_after``: train at most that many epochs in this call."""
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        ck = self.load_checkpoint()
        if ck is None:
            torch.manual_seed(cfg.seed)
            lp = self.linear_probe() if cfg.mode != "head" and cfg.init_head == "lp" else None
            state = {"epoch": 0, "step": 0, "sums": [0.0, 0, 0], "history": [], "best": None, "bad_epochs": 0,
                     "finished": False, "stopped_early": False, "linear_probe": lp, "seconds": 0.0,
                     "epoch_seconds": 0.0}
        else:
            state = {k: ck[k] for k in ("epoch", "step", "sums", "history", "best", "bad_epochs", "finished",
                                        "stopped_early", "linear_probe", "seconds", "epoch_seconds")}
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
            status = "interrupted" if self.stop_requested else "paused"
            record = self.record(state, status)
            (self.out / RECORD).write_text(json.dumps(record, indent=2, default=str))
            return record
        return self.finish(state)

    def _epoch(self, state: dict) -> None:
        cfg = self.cfg
        epoch, step0 = state["epoch"], state["step"]
        sums = state["sums"]  # loss sum, correct, seen
        t0 = time.perf_counter()
        self._train_mode()
        total = self.steps_per_epoch
        with tqdm(total=total, initial=step0, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                  disable=not self.progress, dynamic_ncols=True, leave=cfg.mode != "head") as bar:
            step = step0
            for x, y in self._batches(epoch, step0):
                if x is not None:
                    x, y = self._to(x, y)
                    with self._autocast():
                        logits = self._forward(x)
                        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.opt.step()
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
        y, pred, val_loss = self.predict(self.val_idx, desc="validation")
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
        if cfg.mode != "head":
            print(f"epoch {epoch + 1}/{cfg.epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} · "
                  f"val loss {val_loss:.4f} acc {val_acc:.4f} · {seconds:.0f} s"
                  + (" · best" if state["best"]["epoch"] == epoch + 1 else ""), file=sys.stderr)
        state.update(epoch=epoch + 1, step=0, sums=[0.0, 0, 0], epoch_seconds=0.0)
        if state["bad_epochs"] >= cfg.patience:
            state["finished"] = state["stopped_early"] = True
        if state["epoch"] >= cfg.epochs:
            state["finished"] = True
        self.save_checkpoint(state)

    # ---------------------------------------------------------------- the end
    def record(self, state: dict, status: str) -> dict:
        from .experiment import library_versions

        cfg = self.cfg
        return {
            "status": status, "model": cfg.model, "mode": cfg.mode, "epochs_run": len(state["history"]),
            "epochs_planned": cfg.epochs, "stopped_early": state["stopped_early"],
            "best_epoch": state["best"]["epoch"] if state["best"] else None, "history": state["history"],
            "train_seconds": round(state["seconds"], 1), "linear_probe": state["linear_probe"],
            "classes": list(self.classes),
            "images": {"train": int(len(self.train_idx)), "val": int(len(self.val_idx)),
                       "test": int(len(self.test_idx)), "bad_files": self.bad_files},
            "provenance": {
                **self.base_provenance, "base_weights_sha256": self.model.weights_id, "head": self.plan,
                "trained_from_layer": self.steps[self.start][0], "seed": cfg.seed,
                "augmentation": (self.augment.describe() if self.augment and cfg.mode != "head"
                                 else "none (head mode trains on cached features of the eval preprocessing)"),
                "optimizer": {"name": cfg.optimizer, "lr_head": cfg.lr, "lr_backbone": cfg.lr * cfg.backbone_lr_scale,
                              "weight_decay": cfg.weight_decay, "batch_size": cfg.batch_size,
                              "label_smoothing": cfg.label_smoothing},
                "schedule": f"cosine to 0 over {cfg.epochs} epochs × {self.steps_per_epoch} steps, per step",
                "early_stopping": {"monitor": "val_acc (ties: val_loss)", "patience": cfg.patience},
                "batchnorm": cfg.bn, "init_head": cfg.init_head if cfg.mode != "head" else "random",
                "validation": f"{cfg.val_fraction:g} of each training class, stratified, seeded (train only)",
                "protocol": cfg.protocol, "limit_per_class": cfg.limit_per_class, "dataset": self.dataset.describe(),
                "device": cfg.device, "torch_threads": torch.get_num_threads(), "versions": library_versions(),
                "date": time.strftime("%Y-%m-%d %H:%M:%S"), "config": asdict(cfg)},
        }

    def finish(self, state: dict) -> dict:
        from .registry import load_model

        best = load_model(self.cfg.model, str(self.out / MODEL))
        self.net.load_state_dict(best.net.state_dict())
        if self.cfg.mode == "head":  # the best epoch's head, back in feature space: W = W' sd, b = b' + W' mu
            with torch.no_grad():
                self.fhead.weight.copy_(self.head.weight * self.sd)
                self.fhead.bias.copy_(self.head.bias + self.head.weight @ self.mu)
        t0 = time.perf_counter()
        y_test, pred, test_loss = self.predict(self.test_idx, desc="test")
        record = self.record(state, "finished")
        test = scores(y_test, pred, self.classes)
        record.update(test_accuracy=test["accuracy"], test_loss=round(test_loss, 5),
                      test_seconds=round(time.perf_counter() - t0, 1), **{f"test_{k}": v for k, v in test.items()
                                                                          if k != "accuracy"})
        if self.cfg.compare_svm:
            from .experiment import run_experiment

            svm = run_experiment(self.run_config(classifier="linear-svm", C=1.0))
            record["svm_accuracy"] = svm["accuracy"]
            record["svm"] = {"accuracy": svm["accuracy"], "mean_class_accuracy": svm["mean_class_accuracy"],
                             "layer": self.plan["layer"], "pool": self.plan["pool"], "l2": True, "C": 1.0,
                             "train_images": svm["runs"][0]["train_images"],
                             "test_images": svm["runs"][0]["test_images"],
                             "per_class_accuracy": svm["runs"][0]["per_class_accuracy"]}
        self.save_model({"history": state["history"], "best_epoch": record["best_epoch"], "status": "finished",
                         "test_accuracy": record["test_accuracy"], "svm_accuracy": record.get("svm_accuracy")})
        record["model_file"] = str(self.out / MODEL)
        (self.out / RECORD).write_text(json.dumps(record, indent=2, default=str))
        try:
            from .confusion import confusion_figure

            confusion_figure(np.array(test["confusion_matrix"]), self.classes,
                             title=f"fine-tuned {self.cfg.model} ({self.cfg.mode}) · test acc {test['accuracy']:.3f}",
                             path=self.out / "confusion.png")
        except Exception as e:  # a figure is a convenience: never lose the run for it
            print(f"(no confusion figure: {e})", file=sys.stderr)
        return record


def finetune(cfg: FinetuneConfig, stop_after: int | None = None, on_step: Callable | None = None) -> dict:
    """Run (or resume) ``cfg``; returns the ``finetune.json`` record."""
    return Finetuner(cfg, on_step=on_step).run(stop_after=stop_after)
