"""VGG11/13/16/19, with and without batch norm, from one definition (torchvision's module layout and keys)."""
from __future__ import annotations

from torch import nn

from transferlab.models.base import ConvClassifier

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
