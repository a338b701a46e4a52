"""A saved model's network: identified, not copied, when ``load_model`` can build it again (a registry name with its
weights tag or file, a model file, a timm:/torchvision: name), and checked against the recorded weights id when
it is; a user's module (``load_model(nn.Module)``) is kept as its state dict, loaded back into the module the
user gives."""
from __future__ import annotations

from pathlib import Path

import safetensors.torch
from torch import nn

from transferlab.data.transforms import Preprocess
from transferlab.deploy.folder import BACKBONE, SETTINGS, ModelFolderError
from transferlab.files import atomic_path, sha256_file
from transferlab.models.builder import load_model
from transferlab.models.foreign import wrap_module
from transferlab.models.loaded import REGISTRY, LoadedModel

MODULE = "module"  # the origin of a user's module


def preprocess_from(described: dict) -> Preprocess:
    """The :class:`Preprocess` that ``describe()`` gave (JSON lists back to tuples)."""
    return Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in described.items()})


def load_args(model: LoadedModel, seed: int, weights: str) -> dict:
    """The ``load_model`` arguments that build ``model`` again: a file by its absolute path; ``weights``: what the
    run asked for (a library model's tag)."""
    if model.origin == REGISTRY:
        tag = model.source if model.tag == "file" else model.tag
        return {"model": model.name, "weights": tag, "seed": seed}
    if model.origin in ("torchscript", "export", "pickle"):
        return {"model": model.source, "weights": "auto", "seed": seed}
    return {"model": model.name, "weights": model.source if model.tag == "file" else weights, "seed": seed}


def backbone_settings(model: LoadedModel, seed: int, weights: str, gray: str, folder: Path) -> dict:
    """The network's identity for ``model.json``; a user's module's state dict written to ``backbone.safetensors``
    (its sha256 under ``file``)."""
    identity = {"origin": model.origin, "name": model.name, "weights": model.tag, "weights_sha256": model.weights_id,
                "weights_source": model.source, "pretrained": model.pretrained, "label": model.label(),
                "preprocess": model.preprocess.describe()}
    if model.origin != MODULE:
        return {**identity, "load": load_args(model, seed, weights)}
    if gray != "replicate":
        raise ValueError(f"a user's module is saved as its state dict, which gray mode {gray!r} has changed in place "
                         f"(its first convolution); save a run with --gray replicate")
    module = model.net.module
    with atomic_path(folder / BACKBONE) as tmp:
        safetensors.torch.save_model(module, str(tmp))
    return {**identity, "class": f"{type(module).__module__}.{type(module).__qualname__}", "claim": model.claim,
            "file": BACKBONE, "sha256": sha256_file(folder / BACKBONE)}


def load_backbone(settings: dict, folder: Path, module: nn.Module | None = None,
                  trust_pickle: bool = False) -> LoadedModel:
    """The network of a saved model, built again (or the user's ``module`` with the saved state dict loaded into it)
    and checked: its weights id must be the one recorded."""
    path = folder / SETTINGS
    if settings.get("origin") == MODULE:
        if module is None:
            raise ModelFolderError(folder, f"the network is a user's module ({settings.get('class')}) saved as its state "
                                           f"dict: load it in Python with load_classifier(DIR, module=<a new "
                                           f"{settings.get('class', '?').rpartition('.')[2]}>)")
        try:
            missing, unexpected = safetensors.torch.load_model(module, str(folder / BACKBONE), strict=False)
        except Exception as e:  # a shape that does not fit, or a damaged file
            raise ModelFolderError(folder / BACKBONE, f"does not fit the given {type(module).__name__} "
                                                      f"({type(e).__name__}: {e})") from None
        if missing or unexpected:
            raise ModelFolderError(folder / BACKBONE, f"does not fit the given {type(module).__name__} (missing "
                                                      f"{sorted(missing)[:2]}, unexpected {sorted(unexpected)[:2]})")
        model = wrap_module(module, name=settings["name"], preprocess=preprocess_from(settings["preprocess"]),
                            pretrained=settings.get("claim"))
    else:
        args = settings.get("load")
        if not isinstance(args, dict):
            raise ModelFolderError(path, "damaged: the backbone has no 'load' arguments")
        model = load_model(args["model"], args["weights"], seed=int(args.get("seed", 0)), trust_pickle=trust_pickle)
    if model.weights_id != settings.get("weights_sha256"):
        raise ModelFolderError(path, f"the network {model.name} now has weights {model.weights_id[:12]}…, not the "
                                     f"{str(settings.get('weights_sha256'))[:12]}… it was trained with "
                                     f"({model.source or model.tag}): these are other weights")
    return model
