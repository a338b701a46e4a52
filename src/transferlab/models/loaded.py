"""A loaded network: a backbone in eval mode with the identity of its weights, how far they reach, and its
preprocessing — whether it came from the registry or from the user (a module, a file, timm or torchvision)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transferlab.data.transforms import Preprocess
from transferlab.models.base import Backbone
from transferlab.models.sources import WeightsError

REGISTRY = "registry"


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
    # where a network not of the registry came from (module, torchscript, pickle, timm, torchvision), and whether
    # it is pretrained as its library or its user says (None: unknown — transferlab cannot tell from the numbers)
    origin: str = REGISTRY
    claim: bool | None = None

    @property
    def pretrained(self) -> bool | None:
        if self.origin != REGISTRY:
            return self.claim
        return self.covers is not None

    def label(self) -> str:
        if self.origin != REGISTRY:
            said = {True: "pretrained", False: "not pretrained", None: "pretrained: unknown"}[self.claim]
            tag = "" if self.tag == "own" else f" {self.tag}"
            return f"{self.name} [{self.origin}{tag} weights {self.weights_id[:12]}; {said}]"
        if not self.pretrained:
            return f"{self.name} [RANDOM WEIGHTS, not pretrained; {self.weights_id}]"
        reach = "" if self.covers == self.net.layer_names()[-1] else f", pretrained up to {self.covers}"
        return f"{self.name} [{self.tag} weights {self.weights_id[:12]}{reach}]"

    def usable_layers(self) -> list[str]:
        """Layers whose output depends on pretrained weights only (all layers for explicitly random weights, and
        for a foreign network, whose weights are the user's to judge)."""
        steps = self.net.steps()
        names = [n for n, _ in steps]
        if self.origin != REGISTRY or not self.pretrained:
            return names
        end = names.index(self.covers) + 1
        while end < len(steps) and self.net.step_params(steps[end][1]) == 0:
            end += 1
        return names[:end]

    def check_layers(self, layers) -> None:
        usable = set(self.usable_layers())
        for layer in layers:
            try:
                layer = self.net.resolve(layer)
            except KeyError:
                raise KeyError(f"{self.name} has no layer {layer!r}; layers: "
                               f"{', '.join(self.net.layer_names()[1:])}") from None
            if layer not in usable:
                raise WeightsError(
                    f"{self.name} weights {self.tag!r} are pretrained only up to {self.covers}; {layer} would come "
                    f"from random weights. Use --weights imagenet (the full official file) or a layer up to "
                    f"{self.covers}")

    def provenance(self) -> dict:
        return {"model": self.name, "weights": self.tag, "weights_sha256": self.weights_id,
                "weights_source": self.source, "pretrained": self.pretrained,
                "pretrained_up_to": self.covers if self.origin == REGISTRY else None,
                "preprocess": self.preprocess.describe(),
                **({"origin": self.origin} if self.origin != REGISTRY else {})}
