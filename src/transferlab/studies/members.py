"""Feature sets of several (model, weights, layer) members under several views, aligned on the images every one
of them could read: what the fusion and augmentation studies classify. Everything goes through the cache."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from transferlab.features.blocks import l2_normalize
from transferlab.data.datasets import load_dataset, make_splits
from transferlab.features.extractor import FeatureNet
from transferlab.features.views import PLAIN, view_preprocess
from transferlab.models.builder import load_model
from transferlab.models.registry import MODELS
from transferlab.config import RunConfig
from transferlab.experiment import extract_dataset


def default_backbones() -> list[tuple[str, str, list[str]]]:
    """(model, weights tag, layers) for every backbone whose weights this machine has or can install."""
    out = []
    for name, layers_ in (("vgg16", ["pool4", "relu5_1", "pool5"]), ("alexnet", ["pool5"]), ("efficientnet_lite0", ["avgpool"]),
                          ("efficientnet_lite1", ["avgpool"]), ("efficientnet_lite2", ["avgpool"])):
        for w in MODELS[name].weights:
            if w.availability() in ("cached", "installable"):
                out.append((name, w.tag, layers_))
                break
    return out


def forward_ms(model, layers, size: int, batch: int = 8, repeats: int = 3) -> float:
    """Milliseconds per image of one forward pass up to the deepest of ``layers`` at ``size``×``size`` (median)."""
    net, x = FeatureNet(model.net, [(layer, "avg") for layer in layers]), torch.rand(batch, 3, size, size)
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)) / batch, 2)


@dataclass
class Member:
    """One feature set: ``x[view]`` holds its L2-normalised rows (aligned with :class:`MemberSet`'s images)."""

    name: str  # model:layer
    label: str  # the weights' label
    x: dict[str, np.ndarray] = field(default_factory=dict)
    extract_seconds: dict[str, float] = field(default_factory=dict)  # what this run spent extracting, per view
    ms_per_image: float = 0.0  # measured forward cost of the plain view
    spec: dict = field(default_factory=dict)


@dataclass
class MemberSet:
    members: dict[str, Member]
    y: np.ndarray
    train: np.ndarray  # row indices (the fixed split, or the first split of the protocol): what studies choose on
    test: np.ndarray
    dataset: object
    model: object  # the first member's model (for the record's provenance)
    paths: list[str]
    splits: list = field(default_factory=list)  # every split of the protocol (random:N gives N)


def load_members(cfg: RunConfig, backbones, views=(PLAIN,), time_forward: bool = True, l2: bool = True) -> MemberSet:
    """Extract (or read from the cache) every backbone's layers (None: its output layer) under every view; keep the
    images every extraction read; each layer is one member, L2-normalised per view (``l2``; not for logits)."""
    dataset = load_dataset(cfg.data, cfg.limit_per_class)
    members, oks, first = {}, [], None
    for name, tag, layers in backbones:
        for view in views:
            model = load_model(name, tag, cfg.seed)  # each Extractor adapts its own model (gray mode)
            model.preprocess = view_preprocess(model.preprocess, view)
            layers = layers or model.net.layer_names()[-1:]
            run = replace(cfg, model=name, weights=tag, layers=layers)
            _, model, ext = extract_dataset(run, [(layer, cfg.pool) for layer in layers], dataset, model)
            first = first or model
            oks.append(ext.ok)
            ms = forward_ms(model, layers, model.preprocess.crop) if time_forward and view == PLAIN else 0.0
            for layer in layers:
                m = members.setdefault(f"{name}:{layer}", Member(f"{name}:{layer}", model.label()))
                m.x[view] = (ext.ok, ext.features[(layer, cfg.pool)])
                m.extract_seconds[view] = round(ext.seconds, 2)
                m.ms_per_image = m.ms_per_image or ms
                if view == PLAIN:
                    m.spec = ext.specs[(layer, cfg.pool)]
    ok = sorted(set.intersection(*[set(o) for o in oks]))
    for m in members.values():
        for view, (rows, feats) in m.x.items():
            where = {r: i for i, r in enumerate(rows)}
            kept = feats[[where[r] for r in ok]]
            m.x[view] = l2_normalize(kept) if l2 else kept
    y, split = dataset.labels[ok], dataset.split[ok]
    splits = make_splits(y, split, cfg.protocol, cfg.train_per_class, cfg.seed, dataset.classes)
    return MemberSet(members, y, np.asarray(splits[0].train), np.asarray(splits[0].test), dataset, first,
                     [str(dataset.paths[i]) for i in ok], splits)
