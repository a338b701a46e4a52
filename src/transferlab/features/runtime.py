"""Execution modes of a feature network: how a batch of pixels becomes feature arrays on this machine."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

# runtime -> numerics recorded with (and keying) every feature it produces; exact modes share "fp32"
RUNTIMES = {"eager": "fp32"}


def make_runner(net: nn.Module, runtime: str = "eager", device: str = "cpu") -> Callable[[torch.Tensor], list[np.ndarray]]:
    """A callable: (N, C, H, W) float batch → one float32 array (N, D) per output of ``net``."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    net = net.eval().to(device)
    channels_last = device == "cpu"
    if channels_last:
        net = net.to(memory_format=torch.channels_last)

    def run(x: torch.Tensor) -> list[np.ndarray]:
        with torch.inference_mode():
            x = x.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if device.startswith("cuda"):
                with torch.autocast("cuda", dtype=torch.float16):
                    outs = net(x)
            else:
                outs = net(x)
            return [o.float().cpu().numpy() for o in outs]

    return run
