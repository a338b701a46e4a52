"""Networks transferlab did not define: a user's module, a TorchScript or pickled model file, or a timm or
torchvision model by name — each wrapped as a :class:`ModuleBackbone` with honest provenance."""
from __future__ import annotations

import math
import zipfile
from pathlib import Path

import torch
from torch import nn

from transferlab.data.transforms import Preprocess
from transferlab.models.loaded import LoadedModel, imagenet_categories
from transferlab.models.module import ModuleBackbone, kind_of, module_digest
from transferlab.models.sources import WeightsError, load_torch_file

LIBRARIES = {"timm": "pip install timm torchvision", "torchvision": "pip install torchvision"}
MODEL_FILE_SUFFIXES = (".pt", ".pth", ".ts", ".pt2", ".ckpt", ".bin", ".pkl")


def wrap_module(module: nn.Module, *, name: str | None = None, preprocess: Preprocess | None = None,
                pretrained: bool | None = None, origin: str = "module", tag: str = "own", source: str = "",
                aliases: dict | None = None, categories: list[str] | None = None) -> LoadedModel:
    """``module`` as a LoadedModel; its weights id is :func:`module_digest` (structure, parameters, buffers).

    ``preprocess`` defaults to ImageNet's (shorter side 256, centre crop 224, ImageNet mean/std), recorded as
    such. ``pretrained``: what the user (or library) says; None records "unknown".
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, not {type(module).__name__}")
    preprocess = preprocess or Preprocess()
    digest = module_digest(module)  # before any gray adaptation, which the cache key records apart
    net = ModuleBackbone(module, preprocess, aliases)
    if categories is None and net.shapes.get("output") == (1000,):
        categories = imagenet_categories()  # 1000 scores: taken to be ImageNet-1k's classes, in their usual order
    return LoadedModel(name or kind_of(module), net, tag, digest, net.layer_names()[-1], preprocess, categories,
                       source or f"python:{type(module).__module__}.{type(module).__qualname__}",
                       origin=origin, claim=pretrained)


def is_model_file(name: str) -> bool:
    """A ``--model`` argument that names a file (rather than a registry or library name)."""
    return ":" not in name.split("/")[0] and (Path(name).suffix in MODEL_FILE_SUFFIXES or "/" in name
                                              or Path(name).is_file())


def archive_kind(path: Path) -> str:
    """``export`` (torch.export.save: a serialised graph, ``models/model.json``), ``torchscript`` (compiled code:
    ``code/``, ``constants.pkl``), ``pickle`` (torch.save, whose files are zip archives, or a bare pickle of the
    legacy format), ``damaged`` (a zip archive that does not read: cut short or corrupted), or ``unknown``
    (neither a zip archive nor a pickle)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except zipfile.BadZipFile:
        with open(path, "rb") as f:
            head = f.read(2)
        return "damaged" if head == b"PK" else "pickle" if head[:1] == b"\x80" else "unknown"
    if any(n.endswith("/models/model.json") for n in names):
        return "export"
    return "torchscript" if any(n.endswith("/constants.pkl") or "/code/" in n for n in names) else "pickle"


def load_model_file(path: str | Path, trust_pickle: bool = False, preprocess: Preprocess | None = None,
                    pretrained: bool | None = None) -> LoadedModel:
    """A whole network from a file: an exported program (``torch.export.save``, unflattened back into its
    module tree so that every module is a layer), TorchScript (``torch.jit.save``), or a ``torch.save(model)``
    pickle — the latter only with ``trust_pickle``, because unpickling a model runs code from the file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: model file not found")
    common = dict(name=path.stem, preprocess=preprocess, pretrained=pretrained, source=str(path.resolve()),
                  tag="file")
    kind = archive_kind(path)
    if kind in ("damaged", "unknown"):
        raise WeightsError(f"{path}: not a readable model file (" + (
            "a damaged or truncated zip archive; torch.save, torch.jit.save and torch.export.save write whole ones"
            if kind == "damaged" else "neither a zip archive nor a pickle") + ")")
    if kind == "export":
        try:
            module = torch.export.unflatten(torch.export.load(str(path)))
        except Exception as e:
            raise WeightsError(f"{path}: not a loadable torch.export program ({type(e).__name__}: {e})") from None
        return wrap_module(module, origin="export", **common)
    if kind == "torchscript":
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:
            raise WeightsError(f"{path}: not a loadable TorchScript file ({type(e).__name__}: {e})") from None
        return wrap_module(module, origin="torchscript", **common)
    if not trust_pickle:
        try:
            load_torch_file(path)
        except WeightsError:
            raise WeightsError(f"{path}: a pickled model (torch.save(model)) cannot be read without running code "
                               f"from the file; if you trust it, pass --trust-pickle (Python: trust_pickle=True), "
                               f"or save it as TorchScript (torch.jit.save) or a state dict") from None
        raise WeightsError(f"{path}: a state dict, not a whole network; give it as --weights {path} with the "
                           f"--model it belongs to (a registry, timm: or torchvision: name)")
    try:
        module = torch.load(path, map_location="cpu", weights_only=False)  # trusted by the user: runs code
    except Exception as e:
        raise WeightsError(f"{path}: cannot unpickle the model ({type(e).__name__}: {e})") from None
    if not isinstance(module, nn.Module):
        raise WeightsError(f"{path}: holds a {type(module).__name__}, not a torch.nn.Module")
    return wrap_module(module, origin="pickle", **common)


def _library(lib: str):
    """``timm`` or ``torchvision`` imported, or one line saying why not and what to install."""
    try:
        if lib == "timm":
            import timm
            import timm.data
            return timm
        import torchvision
        return torchvision
    except Exception as e:  # ImportError, or RuntimeError "operator torchvision::nms does not exist" and the like
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{lib}: models need the {lib} package, which does not import here ({reason}); "
                           f"{LIBRARIES[lib]} (a torchvision built for this torch {torch.__version__})") from None


def _timm_model(timm, name: str, weights: str, file: bool):
    pretrained = not file and weights != "none"
    arch = name if weights in ("auto", "none") or file else f"{name}.{weights}"
    model = timm.create_model(arch, pretrained=pretrained)
    cfg = timm.data.resolve_data_config({}, model=model)
    crop = int(cfg["input_size"][-1])
    pre = Preprocess(resize=int(math.floor(crop / cfg.get("crop_pct", 0.875))), crop=crop, mode="crop",
                     mean=tuple(cfg["mean"]), std=tuple(cfg["std"]), interpolation=cfg.get("interpolation", "bilinear"))
    tag = getattr(model, "pretrained_cfg", {}).get("tag") or "default"
    return model, pre, pretrained, tag, None


def _torchvision_model(tv, name: str, weights: str, file: bool):
    enum = tv.models.get_model_weights(name)
    w = None if file or weights == "none" else enum.DEFAULT if weights == "auto" else enum[weights]
    model = tv.models.get_model(name, weights=w)
    t = (w or enum.DEFAULT).transforms()
    pre = Preprocess(resize=int(t.resize_size[0]), crop=int(t.crop_size[0]), mode="crop", mean=tuple(t.mean),
                     std=tuple(t.std), interpolation=t.interpolation.value)
    return model, pre, w is not None, w.name if w else "none", list(w.meta["categories"]) if w else None


def load_library_model(spec: str, weights: str = "auto", seed: int = 0, aliases: dict | None = None) -> LoadedModel:
    """``timm:NAME`` or ``torchvision:NAME`` with the library's pretrained weights (``auto``: its default; or a
    tag it knows), ``none`` (seeded random, labelled so) or a state-dict file, and the library's own
    preprocessing mapped to a :class:`Preprocess`."""
    lib, _, name = spec.partition(":")
    module = _library(lib)
    file = weights not in ("auto", "none") and (Path(weights).is_file() or "/" in weights)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            build = _timm_model if lib == "timm" else _torchvision_model
            net, pre, pretrained, tag, categories = build(module, name, weights, file)
        except Exception as e:  # unknown name or tag, or weights that cannot be downloaded (no network)
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            hint = "" if "unknown model" in reason.lower() else "; offline, use --weights none or a state-dict file"
            raise WeightsError(f"{spec} (weights {weights!r}): {lib} cannot build it ({type(e).__name__}: "
                               f"{reason}){hint}") from None
    source = f"{lib} {module.__version__}: {name}"
    if file:
        sd, _ = load_torch_file(Path(weights))
        missing, unexpected = net.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise WeightsError(f"{weights}: does not fit {spec} (missing {missing[:1]}, unexpected {unexpected[:1]})")
        tag, source, pretrained = "file", str(Path(weights).resolve()), None
    elif weights == "none":
        tag = f"random-init-seed-{seed}"
    return wrap_module(net, name=spec, preprocess=pre, pretrained=pretrained, origin=lib, tag=tag, source=source,
                       aliases=aliases, categories=categories)
