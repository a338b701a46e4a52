"""The model registry: every architecture's specs (builder, weights, default layers) by name."""
from __future__ import annotations

from transferlab.models import alexnet, efficientnet_lite, vgg
from transferlab.models.spec import ModelSpec

MODELS: dict[str, ModelSpec] = {s.name: s for s in (*vgg.SPECS, *alexnet.SPECS, *efficientnet_lite.SPECS)}


def list_models() -> list[str]:
    """The names ``load_model`` takes."""
    return list(MODELS)


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None
