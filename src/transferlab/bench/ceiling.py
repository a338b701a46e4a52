"""The fastest this torch build computes on this machine, and the CPU it runs on.

The ceiling of a numerics (fp32, bf16, fp16) is the best of its kernels, in GFLOP/s: an n×n matmul through
torch.mm (MKL on a CPU) and through oneDNN, and each distinct convolution/linear layer of the benchmarked network
alone, at the bench batch size, through every way the rows run it (the baseline's NCHW ``no_grad``, each
runtime). A network's GFLOP/s is a time-weighted mean of its layers' rates plus overhead, so it cannot beat the
fastest of them. :func:`transferlab.machine.cpu_info` describes the CPU that sets those speeds.
"""
from __future__ import annotations

import copy
import time

import torch
from torch import nn

from transferlab.features.extractor import FeatureNet
from transferlab.machine import onednn_bf16
from transferlab.features.runtimes import RUNTIMES, make_runner
from transferlab.machine import onednn_bf16

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
TIMED_CALLS = 2  # per kernel and round, after one warm-up call; the ceiling keeps the fastest


def layer_calls(net: nn.Module, shape: tuple[int, ...]) -> list[tuple[nn.Module, tuple[int, ...], float]]:
    """Each convolution and linear layer call of ``net`` on one input of ``shape``: (module, input shape, GFLOP
    as 2 × multiply-accumulates)."""
    calls = []

    def hook(m, inp, out):
        conv = isinstance(m, nn.Conv2d)
        k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1] if conv else m.in_features
        calls.append((m, tuple(inp[0].shape), 2 * out.numel() * k / 1e9))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.inference_mode():
            net(torch.zeros(1, *shape))
    finally:
        for h in handles:
            h.remove()
    return calls


def gflop_per_image(net: nn.Module, shape: tuple[int, ...]) -> float:
    """GFLOP (2 × multiply-accumulates) of convolutions and linear layers for one input of ``shape``."""
    return sum(g for _, _, g in layer_calls(net, shape))


def _sync(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def best_seconds(fn, device: str) -> float:
    """The fastest of ``TIMED_CALLS`` calls of ``fn`` after a warm-up call."""
    times = []
    for i in range(TIMED_CALLS + 1):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        if i:
            times.append(time.perf_counter() - t)
    return min(times)


class _Alone(nn.Module):
    """One layer of the network on its own, returning one value per image so the runner's copy of its output
    to numpy costs nothing."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        y = self.layer(x)
        return [y[(slice(None),) + (slice(0, 1),) * (y.dim() - 1)].flatten(1)]  # flatten: a dynamic batch in ONNX


def layer_names(net: nn.Module) -> dict[int, str]:
    """id(module) -> a readable name: the backbone's step name (``conv3_2``, ``block4._expand_conv``)."""
    names = {id(m): n for n, m in net.named_modules()}
    for step, module in net.steps():
        for sub, m in module.named_modules():
            names[id(m)] = step + (f".{sub}" if sub else "")
    return names


def matmul_kernels(n: int, numerics: str, device: str):
    """(name, call, GFLOP) of n×n matmuls in ``numerics``: torch.mm (MKL's for fp32 on a CPU) and, on a CPU,
    oneDNN's (its linear layer on oneDNN tensors) where oneDNN has kernels for that dtype."""
    dtype = DTYPES[numerics]
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    yield f"torch.mm: matmul {n}²", lambda: torch.mm(a, b), 2 * n**3 / 1e9
    if device == "cpu" and (numerics == "fp32" or numerics == "bf16" and onednn_bf16()):
        x, w = a.to_mkldnn(dtype), b.to_mkldnn(dtype)
        yield f"oneDNN: matmul {n}²", lambda: torch._C._nn.mkldnn_linear(x, w, None), 2 * n**3 / 1e9


def layer_kernels(model, output: tuple[str, str], batch_size: int, numerics: str, runtimes: list[str],
                  device: str):
    """(name, call, GFLOP) of each distinct convolution/linear layer of ``model``'s network up to ``output``
    (layer, pool) alone at ``batch_size``, run each way a row of ``numerics`` runs it: ``nchw`` (the baseline's
    NCHW ``no_grad``) and the runtimes. One at a time, so that only one layer's tensors are alive."""
    shape = (3, model.preprocess.crop, model.preprocess.crop)
    names = layer_names(model.net)
    layers = {}
    for m, in_shape, gflop in layer_calls(FeatureNet(model.net, [output]).eval(), shape):
        key = (repr(m), in_shape)
        if key in layers:
            layers[key][3] += 1
        else:
            layers[key] = [names.get(id(m), type(m).__name__), m, in_shape, 1, gflop]
    ways = (["nchw"] if numerics == "fp32" else []) + [r for r in runtimes if RUNTIMES[r] == numerics]
    for name, m, in_shape, count, gflop in layers.values():
        label = f"{name}{f' (×{count})' if count > 1 else ''} {'×'.join(map(str, in_shape[1:]))}"
        x = torch.randn(batch_size, *in_shape[1:])
        for way in ways:
            layer = _Alone(copy.deepcopy(m)).eval()
            if way == "nchw":
                layer, xd = layer.to(device), x.to(device)

                def fn(layer=layer, xd=xd):
                    with torch.no_grad():
                        layer(xd)[0].cpu()
            else:
                run = make_runner(layer, way, device)
                xd = x
                if way != "onnx":  # in the network the previous layer hands over channels_last maps in its dtype
                    xd = x.to(device, DTYPES[numerics])
                    if xd.dim() == 4:
                        xd = xd.contiguous(memory_format=torch.channels_last)

                def fn(run=run, xd=xd):
                    run(xd)
            yield f"{way}: {label}", fn, gflop * batch_size
