"""Any ``torch.nn.Module`` as a backbone: its own dotted module names are the layers, in execution order, and
features of several come from one forward pass that stops once the last one asked for is computed.

Normalisation happens once, in the ``input`` step (as in every transferlab backbone), with the mean and std of
the model's :class:`Preprocess`: the module receives normalised pixels. A module that normalises by itself is
loaded with ``Preprocess(mean=(0, 0, 0), std=(1, 1, 1))``.

An eager module's outputs are taken by forward hooks. A TorchScript module runs its compiled graph, which no
Python hook reaches: its layers are its final ``output`` and, through ``Sequential`` containers (which the adapter
runs child by child), their children's outputs.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import torch
from torch import nn

from transferlab.data.transforms import Preprocess
from transferlab.models.base import Backbone

OUTPUT = "output"  # the layer name of the module's own (final) output


class _Stop(Exception):
    """Raised by the hook of the last layer needed, to leave the module's forward early: a module's forward is
    arbitrary Python, so an exception is the one way to stop it from outside without computing the rest."""


def is_script(module: nn.Module) -> bool:
    return isinstance(module, torch.jit.ScriptModule)


def kind_of(module: nn.Module) -> str:
    """The class name of a module (a TorchScript module's original one)."""
    return getattr(module, "original_name", None) if is_script(module) else type(module).__name__


def module_digest(module: nn.Module) -> str:
    """sha256 of what decides a module's numbers: its class and structure (and TorchScript code) and every
    parameter and buffer (persistent or not), so that two different modules never share cache entries."""
    h = hashlib.sha256()
    h.update(f"{type(module).__module__}.{type(module).__qualname__}:{kind_of(module)}\n{module!r}".encode())
    if is_script(module):
        for name, sub in module.named_modules():
            h.update(f"{name}:{getattr(sub, 'code', '')}".encode())
    tensors = sorted([*module.named_parameters(), *module.named_buffers()], key=lambda kv: kv[0])
    for name, t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class ModuleBackbone(Backbone):
    """A user's (or a library's) module as a :class:`Backbone`.

    ``layer_names()``: ``input``, then every module with a tensor output in the order its forward completes
    (recorded by one traced forward of a blank ``crop``×``crop`` image, since ``named_modules`` order is not
    always execution order), then ``output``. A module called more than once gives its first call's output.
    ``aliases`` maps extra names (our architectures' stable ones, ``pool5``) to dotted names.
    """

    def __init__(self, module: nn.Module, preprocess: Preprocess = Preprocess(), aliases: dict | None = None):
        super().__init__(preprocess.mean, preprocess.std)
        self.module = module.eval()
        self.aliases = dict(aliases or {})
        self.script = is_script(module)
        self.order, self.shapes, self.kinds, self.overwritten = self._trace(preprocess.crop)

    # ------------------------------------------------------------------------------------------ running
    def _chain(self) -> list[tuple[str, nn.Module, bool]]:
        """TorchScript: (dotted name, module, runs) through Sequential containers; a container's own entry comes
        after its children (runs=False: its output is its last child's)."""
        def walk(prefix: str, mod: nn.Module):
            if kind_of(mod) != "Sequential":
                return [(prefix, mod, True)]
            items = [e for n, c in mod.named_children() for e in walk(f"{prefix}.{n}" if prefix else n, c)]
            return items + ([(prefix, mod, False)] if prefix else [])
        return walk("", self.module)

    def _run(self, x, names: set[str] | None, emit: Callable[[str, torch.Tensor], None]):
        """The module's forward on normalised ``x``, calling ``emit(name, tensor)`` as each layer (all of them
        when ``names`` is None) completes; returns the final output."""
        if self.script:
            for name, mod, runs in self._chain():
                x = mod(x) if runs else x
                if name and (names is None or name in names):
                    emit(name, x)
            return x
        mods = {n: m for n, m in self.module.named_modules() if n and (names is None or n in names)}
        handles = [m.register_forward_hook(lambda _m, _i, out, n=n: emit(n, out)) for n, m in mods.items()]
        try:
            return self.module(x)
        finally:
            for h in handles:
                h.remove()

    def _trace(self, size: int):
        """Execution order, output shapes and module kinds of the layers, and which outputs a later in-place
        operation overwrites (their version counter moved by the end of the forward): those get cloned."""
        order, seen = [], {}

        def emit(name, out):
            if isinstance(out, torch.Tensor) and name not in seen:
                order.append(name)
                seen[name] = (out, out._version)

        with torch.no_grad():
            x = self.input(torch.zeros(1, len(self.input.mean.flatten()), size, size))
            emit("input", x)
            emit(OUTPUT, self._run(x, None, emit))
        named = dict(self.module.named_modules())
        shapes = {n: tuple(t.shape[1:]) for n, (t, _) in seen.items()}
        kinds = {n: "Normalize" if n == "input" else kind_of(self.module if n == OUTPUT else named[n]) for n in order}
        overwritten = {n for n, (t, v) in seen.items() if t._version != v}
        return order, shapes, kinds, overwritten

    # ------------------------------------------------------------------------------------------ Backbone API
    def steps(self) -> list[tuple[str, nn.Module]]:
        """The layers with their modules (a module's output is not the next one's input: run ``forward``)."""
        named = dict(self.module.named_modules())
        return [(n, self.input if n == "input" else self.module if n == OUTPUT else named[n]) for n in self.order]

    def layer_names(self) -> list[str]:
        return list(self.order)

    def step_params(self, module: nn.Module) -> int:
        """A layer's own parameters (not its children's, which are layers of their own)."""
        return sum(p.numel() for p in module.parameters(recurse=False))

    def resolve(self, layer: str) -> str:
        layer = self.aliases.get(layer, layer)
        if layer not in self.order:
            raise KeyError(f"unknown layer {layer!r}; layers are: {', '.join(self.order)}")
        return layer

    @property
    def first_conv(self) -> str:
        """Dotted path of the first convolution to run (what the gray modes adapt)."""
        first = next((n for n in self.order if self.kinds[n] == "Conv2d"), None)
        if first is None or self.script:
            why = "a TorchScript module's cannot be replaced" if self.script else "this module runs none"
            raise ValueError(f"the gray modes conv1-sum/conv1-mean adapt the first Conv2d a module runs; {why} "
                             f"(use --gray replicate)")
        return f"module.{first}"

    def default_layer(self) -> str:
        """The input of the last Linear layer to run (the penultimate representation); else the output."""
        linear = [i for i, n in enumerate(self.order) if self.kinds[n] == "Linear"]
        return self.order[linear[-1] - 1] if linear and linear[-1] > 1 else OUTPUT

    def forward(self, x):
        return self.module(self.input(x))

    def forward_layers(self, x, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Outputs of the named layers from one forward pass that stops after the last of them."""
        asked = {layer: self.resolve(layer) for layer in layers}
        wanted, out = set(asked.values()), {}

        def emit(name, t):
            if name in wanted and name not in out:
                out[name] = t.clone() if name in self.overwritten else t
                if len(out) == len(wanted):
                    raise _Stop

        try:
            x = self.input(x)
            emit("input", x)
            emit(OUTPUT, self._run(x, wanted, emit))
        except _Stop:
            pass
        return {layer: out[name] for layer, name in asked.items()}
