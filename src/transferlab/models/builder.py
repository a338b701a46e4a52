"""Loading a model by name: build it, load its described weights (or a file, or seeded random ones), and know how
far they reach and which layer to take features from by default."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from transferlab.data.transforms import Preprocess
from transferlab.files import sha256_file
from transferlab.models.base import Backbone
from transferlab.models.heads import pooled_head_net
from transferlab.models.registry import get_spec
from transferlab.models.sources import WeightsError, load_torch_file
from transferlab.models.spec import ModelSpec
from transferlab.models.weights import Weights, load_state_dict_for


def default_feature_layer(model: LoadedModel) -> tuple[str, str]:
    """The model's default feature layer (its spec's first ``feature_layers`` entry its weights reach), and why."""
    choices = get_spec(model.name).feature_layers
    usable = model.usable_layers()
    (first, first_is), *_ = choices
    for layer, what in choices:
        if layer == first and layer in usable:
            return layer, f"{model.name}'s default feature layer ({what})"
        if layer in usable:
            return layer, (f"{what}; {model.name}'s default {first} ({first_is}) lies past {model.covers}, where its "
                           f"{model.tag!r} weights stop")
    raise WeightsError(f"{model.name} weights {model.tag!r} reach none of its default feature layers "
                       f"({', '.join(l for l, _ in choices)}); choose one with --layer: {', '.join(usable[1:])}")


def imagenet_categories() -> list[str]:
    path = Path(__file__).parents[1] / "data" / "imagenet_classes.txt"
    return path.read_text().splitlines()


@dataclass
class LoadedModel:
    """A backbone in eval mode with the identity of its weights, how far they reach, and their preprocessing."""

    name: str
    net: Backbone
    tag: str  # a weights tag, "file", or "none" (random initialisation)
    weights_id: str  # sha256 of the weights file, or "random-init-seed-N"
    covers: str | None  # deepest pretrained layer; None for random weights
    preprocess: Preprocess
    categories: list[str] | None
    source: str = ""  # URL, package or path the weights came from
    meta: dict = field(default_factory=dict)  # fine-tuning record of a transferlab checkpoint

    @property
    def pretrained(self) -> bool:
        return self.covers is not None

    def label(self) -> str:
        if not self.pretrained:
            return f"{self.name} [RANDOM WEIGHTS, not pretrained; {self.weights_id}]"
        reach = "" if self.covers == self.net.layer_names()[-1] else f", pretrained up to {self.covers}"
        return f"{self.name} [{self.tag} weights {self.weights_id[:12]}{reach}]"

    def usable_layers(self) -> list[str]:
        """Layers whose output depends on pretrained weights only (all layers for explicitly random weights)."""
        steps = self.net.steps()
        if not self.pretrained:
            return [n for n, _ in steps]
        names = [n for n, _ in steps]
        end = names.index(self.covers) + 1
        while end < len(steps) and self.net.step_params(steps[end][1]) == 0:
            end += 1
        return names[:end]

    def check_layers(self, layers) -> None:
        names = self.net.layer_names()
        usable = set(self.usable_layers())
        for layer in layers:
            if layer not in names:
                raise KeyError(f"{self.name} has no layer {layer!r}; layers: {', '.join(names[1:])}")
            if layer not in usable:
                raise WeightsError(
                    f"{self.name} weights {self.tag!r} are pretrained only up to {self.covers}; {layer} would come "
                    f"from random weights. Use --weights imagenet (the full official file) or a layer up to "
                    f"{self.covers}")

    def provenance(self) -> dict:
        return {"model": self.name, "weights": self.tag, "weights_sha256": self.weights_id,
                "weights_source": self.source, "pretrained": self.pretrained, "pretrained_up_to": self.covers,
                "preprocess": self.preprocess.describe()}


def _head_key(net: nn.Module) -> str:
    return [n for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1] + ".weight"


def _step_keys(net: Backbone, module: nn.Module) -> set[str]:
    """State-dict keys of the parameters a step owns."""
    return {f"{prefix}.{k}" for prefix, m in net.step_owners(module) for k, _ in m.named_parameters()}


def _covered(net: Backbone, missing: set[str]) -> str | None:
    """The deepest step up to which every parameter was loaded."""
    covers = None
    for name, module in net.steps():
        if _step_keys(net, module) & missing:
            break
        covers = name
    return covers


def resolve_tag(spec: ModelSpec, weights: str) -> Weights:
    """``auto``: a cached file first, then one a package registry can give, then the first described."""
    if weights != "auto":
        return spec.get_weights(weights)
    if not spec.weights:
        raise WeightsError(f"{spec.name} has no pretrained weights described; use --weights none or a file")
    for wanted in ("cached", "installable"):
        for w in spec.weights:
            if w.availability() == wanted:
                return w
    return spec.weights[0]


def load_model(name: str, weights: str = "auto", seed: int = 0) -> LoadedModel:
    """Build ``name`` and load ``weights``: a tag of the registry, ``auto``, ``none`` (random, seeded) or a file."""
    spec = get_spec(name)
    default_pre = spec.weights[0].preprocess if spec.weights else Preprocess()
    if weights == "none":
        torch.manual_seed(seed)
        net = spec.builder().eval()
        return LoadedModel(name, net, "none", f"random-init-seed-{seed}", None, default_pre, None, "random")
    is_file = weights not in {w.tag for w in spec.weights} | {"auto"} and (
        Path(weights).suffix in (".pth", ".pt", ".ckpt", ".bin") or "/" in weights or Path(weights).exists())
    meta: dict = {}
    with torch.random.fork_rng(devices=[]):  # layers the weights do not set get the same numbers in every process
        torch.manual_seed(seed)
        net = spec.builder()
    if is_file:
        sd, meta = load_torch_file(Path(weights))
        tag, source, wid = "file", str(Path(weights).resolve()), sha256_file(Path(weights))
        preprocess = Preprocess(**meta["preprocess"]) if "preprocess" in meta else default_pre
        if meta.get("head", {}).get("kind") == "pooled":  # `transferlab finetune`'s head on a pooled layer
            net = pooled_head_net(net, meta["head"])
    else:
        w = resolve_tag(spec, weights)
        sd = load_state_dict_for(w, net)
        tag, source, wid, preprocess = w.tag, w.url or w.requirement, w.identity(), w.preprocess
        meta = {"declared_covers": w.covers}
    head = _head_key(net)
    if head in sd and sd[head].shape[0] != net.state_dict()[head].shape[0]:
        net = spec.builder(num_classes=sd[head].shape[0])
    missing, unexpected = net.load_state_dict(sd, strict=False)
    if unexpected:
        raise WeightsError(f"{source}: keys that {name} does not have, e.g. {unexpected[0]!r} — "
                           f"these weights are for another architecture")
    covers = _covered(net, set(missing))
    if covers in (None, "input"):
        raise WeightsError(f"{source}: no weights for {name}'s first layer; wrong file for this model?")
    names = net.layer_names()
    declared = meta.pop("declared_covers", covers)
    if names.index(covers) < names.index(declared):
        raise WeightsError(f"{source}: weights stop at {covers}, but are described as reaching {declared}")
    covers = declared
    categories = meta.get("classes") or (imagenet_categories() if sd.get(head) is not None
                                         and sd[head].shape[0] == 1000 else None)
    return LoadedModel(name, net.eval(), tag, wid, covers, preprocess, categories, source, meta)
