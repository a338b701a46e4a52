"""Grayscale input for RGB networks: replicate the channel, or give the first convolution one input channel."""
from __future__ import annotations

import copy

import torch
from torch import nn

from transferlab.models.base import Backbone, Normalize
from transferlab.options import GRAY_MODES


def _one_channel(conv: nn.Conv2d, weight: torch.Tensor, bias: bool) -> nn.Conv2d:
    new = copy.deepcopy(conv)
    new.in_channels = 1
    new.weight = nn.Parameter(weight.contiguous())
    if not bias:
        new.bias = None
    return new


class FoldedGrayConv(nn.Module):
    """The RGB first convolution applied to a replicated, normalised gray image — as one-channel convolutions.

    conv(norm(x,x,x)) = conv_{Σ W_c/s_c}(x) − conv_{Σ W_c m_c/s_c}(1) + b, where the second term is computed on
    an all-ones image with the same zero padding, so borders match the replicated input exactly.
    """

    def __init__(self, conv: nn.Conv2d, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        w = conv.weight.detach()
        m, s = mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)
        self.conv = _one_channel(conv, (w / s).sum(1, keepdim=True), bias=True)
        self.offset = _one_channel(conv, (w * m / s).sum(1, keepdim=True), bias=False)
        self._offsets: dict = {}

    def forward(self, x):
        key = (tuple(x.shape[-2:]), x.dtype, x.device)
        if key not in self._offsets:
            with torch.no_grad():
                self._offsets[key] = self.offset(torch.ones(1, 1, *x.shape[-2:], dtype=x.dtype, device=x.device))
        return self.conv(x) - self._offsets[key]


def gray_channels(mode: str) -> int:
    """Input channels a network adapted for gray ``mode`` takes: 3 when the gray image is replicated, else 1."""
    return 3 if mode == "replicate" else 1


def apply_gray(net: Backbone, mode: str) -> int:
    """Adapt ``net`` in place for ``mode`` and return the number of input channels it now takes."""
    if mode not in GRAY_MODES:
        raise ValueError(f"unknown gray mode {mode!r}; choose one of {', '.join(GRAY_MODES)}")
    if mode == "replicate":
        return gray_channels(mode)
    conv = net.get_submodule(net.first_conv)
    mean, std = net.input.mean.flatten(), net.input.std.flatten()
    if mode == "conv1-sum":
        net.input = nn.Identity()
        net.set_submodule(net.first_conv, FoldedGrayConv(conv, mean, std))
    else:  # conv1-mean: the practical's naive answer — mean kernel, one scalar normalisation
        net.input = Normalize([mean.mean().item()], [std.mean().item()])
        net.set_submodule(net.first_conv, _one_channel(conv, conv.weight.detach().mean(1, keepdim=True),
                                                       bias=conv.bias is not None))
    return gray_channels(mode)
