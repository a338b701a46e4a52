"""A network's architecture as a record: per-layer output shapes and parameters, and the fully connected share."""
from __future__ import annotations

from dataclasses import dataclass

from transferlab.analysis.summary import summarize


@dataclass
class LayerRow:
    name: str
    output_shape: list[int]
    params: int


@dataclass
class OutputLayer:
    layer: str
    size: int
    meaning: str


@dataclass
class ArchitectureRecord:
    """:func:`transferlab.analysis.summary.summarize` as a record (same field names), with the command that prints it."""

    model: str
    description: str
    input_shape: list[int]
    total_params: int
    conv_params: int
    fc_params: int
    fc_layers: list[str]
    fc_share: float
    output: OutputLayer
    layers: list[LayerRow]
    command: str


def architecture(model: str = "vgg16") -> ArchitectureRecord:
    """The layer table of ``model``, built on PyTorch's meta device: no weights, no memory, no forward pass."""
    s = summarize(model)
    return ArchitectureRecord(**{**s, "output": OutputLayer(**s["output"]),
                                 "layers": [LayerRow(**row) for row in s["layers"]]},
                              command=f"transferlab inspect {model} --figure {model}_params.png")
