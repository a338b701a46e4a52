"""What the registry knows of an architecture: its builder, its described weights, its default feature layers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from transferlab.models.base import Backbone
from transferlab.models.weights import Weights

# (layer, what it is) of the convolutional nets with a fully connected classifier: the practical's layer first,
# then where to fall back when the weights stop at the convolutions
FC_THEN_CONV = (("relu7", "the practical's layer, the last hidden fully connected one"),
                ("pool5", "the last convolutional map"))


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
