"""The image loop (``last-block``, ``full``): the network itself is trained on augmented images decoded in workers,
the frozen steps run without gradients, and the head starts from a linear probe unless ``--init-head random``."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from transferlab.data.augment import RandomResizedCropFlip
from transferlab.models.base import Backbone
from transferlab.models.efficientnet_lite import EfficientNetLite
from transferlab.models.heads import PooledHeadNet
from transferlab.finetune.data import image_loader
from transferlab.finetune.loop import EpochLoop, Setup
from transferlab.finetune.probe import linear_probe


def trainable_from(net: Backbone, mode: str) -> int:
    """Index of the first trained step: ``full`` 0; ``last-block``: EfficientNet-Lite's last stage (+ head conv +
    fc), VGG's conv5_x, AlexNet's conv3–conv5 (after the next-to-last pooling)."""
    if mode == "full":
        return 0
    names = net.layer_names()
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


class ImageTrainer(EpochLoop):
    """``last-block`` / ``full``: the steps from :func:`trainable_from` on are trained (the backbone's at
    ``lr × backbone_lr_scale``), channels-last on CPU, BatchNorm statistics frozen unless ``--bn train``."""

    def __init__(self, setup: Setup, on_step: Callable | None = None):
        super().__init__(setup, on_step)
        cfg = self.cfg
        self.channels_last = self.device.type == "cpu"
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.trained_modules = [m for _, s in self.steps[self.start:] for _, m in self.net.step_owners(s)]
        for p in self.net.parameters():
            p.requires_grad_(False)
        for m in self.trained_modules:
            for p in m.parameters():
                p.requires_grad_(True)
        self.build_optimizer([p for p in self.net.parameters() if p.requires_grad],
                             {id(p) for p in self.head.parameters()})
        self.augment = RandomResizedCropFlip(self.model.preprocess.crop, (cfg.crop_scale, 1.0)) \
            if cfg.augment else None
        self.augmentation = self.augment.describe() if self.augment else "none (--no-augment)"
        self.init_head_name = cfg.init_head

    def first_trained_step(self) -> int:
        return trainable_from(self.net, self.cfg.mode)

    def init_head(self) -> dict | None:
        return linear_probe(self.setup) if self.cfg.init_head == "lp" else None

    def train_mode(self) -> None:
        self.net.eval()
        for m in self.trained_modules:
            m.train()
        if self.cfg.bn == "frozen":
            for m in self.net.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _loader(self, idx_batches, augment: RandomResizedCropFlip | None, epoch: int):
        run = self.cfg.run
        return image_loader(self.data, idx_batches, self.model.preprocess, augment, run.seed, epoch, run.workers,
                            pin_memory=self.device.type == "cuda")

    def batches(self, epoch: int, start_step: int):
        order = self.data.batch_order(self.cfg.run.seed, epoch, self.cfg.run.batch_size)
        return self._loader(order[start_step:], self.augment, epoch)

    def eval_batches(self, idx: np.ndarray):
        bs = self.cfg.run.batch_size * 2
        return self._loader([idx[i:i + bs] for i in range(0, len(idx), bs)], None, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for _, m in self.steps[:self.start]:
                x = m(x)
        for _, m in self.steps[self.start:]:
            x = m(x)
        return x

    def trained_weights(self) -> dict:
        return {"net": dict(self.net.state_dict())}

    def load_weights(self, ck: dict) -> None:
        self.net.load_state_dict(ck["net"])
