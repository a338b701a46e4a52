"""New N-way heads on a pretrained backbone (fine-tuning): the backbone's own last Linear replaced when its weights
cover it (``native``), else a Linear on the globally pooled deepest pretrained map (``pooled``, :class:`PooledHeadNet`).
A fine-tuned ``model.pth`` records the plan as ``"head": {"kind", "layer", "pool", "in_features", "num_classes"}``,
from which ``load_model`` rebuilds the network (:func:`pooled_head_net`)."""
from __future__ import annotations

import torch
from torch import nn

from transferlab.models.pooling import Pool
from transferlab.models.base import Backbone


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


def head_plan(net: Backbone, covers: str | None, crop: int, name: str) -> dict:
    """Where the new head goes for weights pretrained up to ``covers``: ``native`` (replace the last Linear; features
    of the layer feeding it) when they cover the classifier, else ``pooled`` (global average of ``covers``)."""
    steps = net.steps()
    names = [n for n, _ in steps]
    if covers == names[-1] and isinstance(steps[-1][1], nn.Linear):
        i = len(steps) - 2
        while i > 0 and isinstance(steps[i][1], (nn.Dropout, nn.Flatten)):
            i -= 1  # identities at evaluation time on the pooled vector
        return {"kind": "native", "layer": names[i], "pool": "avg", "in_features": steps[-1][1].in_features}
    if covers is None:
        raise ValueError(f"{name}: random weights have nothing to fine-tune from; give pretrained weights")
    with torch.no_grad():
        out = net.forward_layers(torch.zeros(1, 3, crop, crop), [covers])[covers]
    return {"kind": "pooled", "layer": covers, "pool": "avg", "in_features": int(Pool("avg")(out).shape[1])}


def attach_head(net: Backbone, plan: dict, num_classes: int) -> tuple[Backbone, nn.Linear]:
    """``net`` with a new ``num_classes``-way head where ``plan`` puts it, and that head (modifies ``net``)."""
    if plan["kind"] == "native":
        return net, net.replace_head(num_classes)
    pooled = PooledHeadNet(net, plan["layer"], plan["pool"], plan["in_features"], num_classes)
    return pooled, pooled.fc
