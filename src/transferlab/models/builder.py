"""Loading a model: by registry name (build it, load its described weights, a file, or seeded random ones, and
know how far they reach), or any other network — a module, a model file, ``timm:NAME``, ``torchvision:NAME`` —
and which layer to take features from by default."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from transferlab.data.transforms import Preprocess
from transferlab.files import sha256_file
from transferlab.models.base import Backbone
from transferlab.models.foreign import LIBRARIES, is_model_file, load_library_model, load_model_file, wrap_module
from transferlab.models.heads import pooled_head_net
from transferlab.models.loaded import LoadedModel, imagenet_categories
from transferlab.models.module import ModuleBackbone
from transferlab.models.registry import MODELS, get_spec
from transferlab.models.sources import WeightsError, load_torch_file
from transferlab.models.spec import ModelSpec
from transferlab.models.weights import Weights, load_state_dict_for


def default_feature_layer(model: LoadedModel) -> tuple[str, str]:
    """The model's default feature layer (its spec's first ``feature_layers`` entry its weights reach), and why."""
    if isinstance(model.net, ModuleBackbone):
        arch = model.name.partition(":")[2]
        if arch in MODELS and model.net.aliases:  # torchvision:vgg16: our vgg16's default, by its stable name
            layer, what = get_spec(arch).feature_layers[0]
            return layer, f"{arch}'s default feature layer ({what})"
        layer = model.net.default_layer()
        return layer, (f"{model.name}'s output" if layer == "output" else
                       f"the input of {model.name}'s last Linear layer (its penultimate representation)")
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


def registry_aliases(name: str) -> dict[str, str]:
    """Our architecture's stable layer names → its modules' dotted names (VGG16: ``pool5`` → ``features.30``)."""
    with torch.device("meta"):
        net = get_spec(name).builder()
    dotted = {id(m): n for n, m in net.named_modules() if n}
    return {step: dotted[id(m)] for step, m in net.steps() if id(m) in dotted}


def model_kind(name) -> str:
    """What ``load_model`` was given, decided here only: a ``module``, a ``library`` name (``timm:NAME``,
    ``torchvision:NAME``), a model ``file``, or a ``registry`` name."""
    if isinstance(name, nn.Module):
        return "module"
    if not isinstance(name, str):
        raise TypeError(f"a model is a registry name, timm:/torchvision: name, model file or torch.nn.Module, not "
                        f"{type(name).__name__}")
    if name.partition(":")[0] in LIBRARIES:
        return "library"
    if name not in MODELS and is_model_file(name):
        return "file"
    return "registry"


def weights_kind(spec: ModelSpec, weights: str) -> str:
    """What ``--weights`` names for a registry architecture: ``none`` (random, seeded), a described ``tag``
    (or ``auto``), or a state-dict ``file``."""
    if weights == "none":
        return "none"
    if weights == "auto" or weights in {w.tag for w in spec.weights}:
        return "tag"
    if Path(weights).suffix in (".pth", ".pt", ".ckpt", ".bin") or "/" in weights or Path(weights).exists():
        return "file"
    return "tag"  # an unknown tag: ModelSpec.get_weights names the known ones


def _load_module(module: nn.Module, weights: str, seed: int, preprocess, trust_pickle, pretrained) -> LoadedModel:
    if weights != "auto":
        raise ValueError(f"a module holds its own weights; load {weights!r} into it before load_model")
    return wrap_module(module, preprocess=preprocess, pretrained=pretrained)


def _load_library(name: str, weights: str, seed: int, preprocess, trust_pickle, pretrained) -> LoadedModel:
    arch = name.partition(":")[2]
    aliases = registry_aliases(arch) if name.startswith("torchvision:") and arch in MODELS else None
    return load_library_model(name, weights, seed, aliases)


def _load_file(name: str, weights: str, seed: int, preprocess, trust_pickle, pretrained) -> LoadedModel:
    if weights != "auto":
        raise ValueError(f"{name}: a model file holds its own weights; --weights {weights} applies to named "
                         f"architectures only")
    return load_model_file(name, trust_pickle, preprocess, pretrained)


def _check_loaded(net: Backbone, name: str, source: str, missing: set[str], unexpected: list[str],
                  declared: str | None) -> str:
    """How far the loaded weights reach (the deepest fully loaded step), or one line saying why they do not fit."""
    if unexpected:
        raise WeightsError(f"{source}: keys that {name} does not have, e.g. {unexpected[0]!r} — "
                           f"these weights are for another architecture")
    covers = _covered(net, missing)
    if covers in (None, "input"):
        raise WeightsError(f"{source}: no weights for {name}'s first layer; wrong file for this model?")
    names = net.layer_names()
    declared = declared or covers
    if names.index(covers) < names.index(declared):
        raise WeightsError(f"{source}: weights stop at {covers}, but are described as reaching {declared}")
    return declared


def _load_registry(name: str, weights: str, seed: int, preprocess, trust_pickle, pretrained) -> LoadedModel:
    """Our architecture ``name`` with random (``none``), described (a tag, ``auto``) or file weights."""
    spec = get_spec(name)
    default_pre = spec.weights[0].preprocess if spec.weights else Preprocess()
    kind = weights_kind(spec, weights)
    if kind == "none":
        torch.manual_seed(seed)
        return LoadedModel(name, spec.builder().eval(), "none", f"random-init-seed-{seed}", None, default_pre, None,
                           "random")
    with torch.random.fork_rng(devices=[]):  # layers the weights do not set get the same numbers in every process
        torch.manual_seed(seed)
        net = spec.builder()
    if kind == "file":
        sd, meta = load_torch_file(Path(weights))
        tag, source, wid = "file", str(Path(weights).resolve()), sha256_file(Path(weights))
        preprocess = Preprocess(**meta["preprocess"]) if "preprocess" in meta else default_pre
        if meta.get("head", {}).get("kind") == "pooled":  # `transferlab finetune`'s head on a pooled layer
            net = pooled_head_net(net, meta["head"])
        declared = None
    else:
        w = resolve_tag(spec, weights)
        sd, meta = load_state_dict_for(w, net), {}
        tag, source, wid, preprocess, declared = w.tag, w.url or w.requirement, w.identity(), w.preprocess, w.covers
    head = _head_key(net)
    if head in sd and sd[head].shape[0] != net.state_dict()[head].shape[0]:
        net = spec.builder(num_classes=sd[head].shape[0])
    missing, unexpected = net.load_state_dict(sd, strict=False)
    covers = _check_loaded(net, name, source, set(missing), unexpected, declared)
    categories = meta.get("classes") or (imagenet_categories() if sd.get(head) is not None
                                         and sd[head].shape[0] == 1000 else None)
    return LoadedModel(name, net.eval(), tag, wid, covers, preprocess, categories, source, meta)


LOADERS = {"module": _load_module, "library": _load_library, "file": _load_file, "registry": _load_registry}


def load_model(name, weights: str = "auto", seed: int = 0, *, preprocess: Preprocess | None = None,
               trust_pickle: bool = False, pretrained: bool | None = None) -> LoadedModel:
    """Build ``name`` and load ``weights``: a tag of the registry, ``auto``, ``none`` (random, seeded) or a
    state-dict file.

    ``name`` may also be any ``torch.nn.Module`` (with the ``preprocess`` it expects, default ImageNet's, and
    whether it is ``pretrained``, default unknown), a TorchScript file, a ``torch.save(model)`` pickle (only with
    ``trust_pickle``: unpickling runs code), or ``timm:NAME`` / ``torchvision:NAME``. :func:`model_kind` decides
    which; each kind has its own loader (:data:`LOADERS`).
    """
    return LOADERS[model_kind(name)](name, weights, seed, preprocess, trust_pickle, pretrained)


def load_run_model(cfg) -> LoadedModel:
    """The model a run's settings name (``cfg.model``, ``cfg.weights``, ``cfg.seed``; a trusted pickle only with
    ``cfg.trust_pickle``)."""
    return load_model(cfg.model, cfg.weights, seed=cfg.seed, trust_pickle=cfg.trust_pickle)
