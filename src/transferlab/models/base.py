"""What every backbone shares: an input stage, an ordered list of named steps, and forward passes that stop early."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """(x - mean) / std per channel; buffers are not saved, so state dicts stay torchvision's."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


class MethodStep(nn.Module):
    """A step that calls a method of the owning network, so that its parameters keep the checkpoint's key layout;
    ``parts`` names the network's attributes that own them. (A bound method, not a lambda: ``copy.deepcopy``
    rebinds it to the copy.)"""

    def __init__(self, method, parts: tuple[str, ...]):
        super().__init__()
        self.method, self.parts = method, parts

    def forward(self, x):
        return self.method(x)


class Backbone(nn.Module):
    """A network whose forward pass is ``steps()``, an ordered list of (stable layer name, module).

    Subclasses build their modules under torchvision's (or the weights' own) attribute names, so official
    state dicts load unchanged, and name each step once in ``steps()``. Inputs are pixels in 0..1; the first
    step, ``input``, normalises them. A step is a module of the network, or a :class:`MethodStep` whose ``parts``
    own its parameters.
    """

    first_conv: str = ""  # dotted path of the first convolution (gray adaptation replaces it)
    fc_layers: tuple[str, ...] = ()  # steps belonging to the fully connected classifier
    # the family's int8 rules (features.quantize.recipe_for), from measured per-node sensitivity: module paths
    # whose convolutions stay in float, and those given 8-bit uint8 weights on CPUs without VNNI
    int8_fp32: tuple[str, ...] = ()
    int8_avx2_u8: tuple[str, ...] = ()

    def __init__(self, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
        super().__init__()
        self.input = Normalize(mean, std)

    def steps(self) -> list[tuple[str, nn.Module]]:
        """The forward pass as (stable layer name, module) pairs, ``input`` first."""
        raise NotImplementedError

    def replace_head(self, num_classes: int) -> nn.Linear:
        """Replace the final Linear by a new, freshly initialised ``num_classes``-way one, and return it."""
        raise NotImplementedError

    def step_owners(self, module: nn.Module) -> list[tuple[str, nn.Module]]:
        """(qualified name, module) of what owns a step's parameters: the step itself, or a MethodStep's parts."""
        if isinstance(module, MethodStep):
            owner = module.method.__self__
            prefix = next(n for n, m in self.named_modules() if m is owner)
            return [(f"{prefix}.{p}" if prefix else p, getattr(owner, p)) for p in module.parts]
        return [(n, m) for n, m in self.named_modules() if m is module][:1]

    def step_params(self, module: nn.Module) -> int:
        """Parameters a step owns (for the per-layer table)."""
        return sum(p.numel() for _, m in self.step_owners(module) for p in m.parameters())

    def layer_names(self) -> list[str]:
        """The steps' names, in order."""
        return [name for name, _ in self.steps()]

    def forward(self, x):
        for _, module in self.steps():
            x = module(x)
        return x

    def resolve(self, layer: str) -> str:
        """The stable name of ``layer``: a step's name, or the module's own dotted name of a step (``features.30``
        is VGG16's ``pool5``), so that either names the same numbers (and the same cache entries)."""
        steps = self.steps()
        if any(layer == n for n, _ in steps):
            return layer
        module = dict(self.named_modules()).get(layer) if layer else None
        for name, step in steps:
            if module is not None and step is module:
                return name
        raise KeyError(f"unknown layer {layer!r}; layers are: {', '.join(n for n, _ in steps)}")

    def forward_layers(self, x, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Outputs of the named layers (step names or their modules' dotted names), computing only as deep as the
        deepest one."""
        asked = {layer: self.resolve(layer) for layer in layers}
        out = self._forward_steps(x, set(asked.values()))
        return {layer: out[name] for layer, name in asked.items()}

    def _forward_steps(self, x, wanted: set[str]) -> dict[str, torch.Tensor]:
        steps = self.steps()
        names = [n for n, _ in steps]
        last = max(names.index(l) for l in wanted)
        out = {}
        for i in range(last + 1):
            name, module = steps[i]
            x = module(x)
            if name in wanted:
                # the next step may be an in-place ReLU that would overwrite this output
                overwrite = i < last and getattr(steps[i + 1][1], "inplace", False)
                out[name] = x.clone() if overwrite else x
        return out


class ConvClassifier(Backbone):
    """torchvision's ``features`` → ``avgpool`` → ``flatten`` → ``classifier`` layout (VGG, AlexNet): the steps of
    ``features`` are named ``feature_names``, those of ``classifier`` ``fc_layers``; the head is its last Linear."""

    feature_names: tuple[str, ...] = ()

    def steps(self):
        return (
            [("input", self.input)]
            + list(zip(self.feature_names, self.features))
            + [("avgpool", self.avgpool), ("flatten", self.flatten)]
            + list(zip(self.fc_layers, self.classifier))
        )

    def replace_head(self, num_classes: int) -> nn.Linear:
        last = len(self.classifier) - 1
        self.classifier[last] = nn.Linear(self.classifier[last].in_features, num_classes)
        return self.classifier[last]
