"""Do ``torchvision:vgg16`` and transferlab's own ``vgg16`` give the same features with the same weights?

Loads our VGG16 ``imagenet-conv`` weights, writes its state dict to a file, loads that file into torchvision's
``vgg16()`` through ``load_model("torchvision:vgg16", weights=FILE)``, and compares the pool5 maps (ours by its
stable name, torchvision's by its dotted one, ``features.30``) of the first K images of each 15 Scene class.
Needs an environment where torchvision imports (docs/models.md, `timm:` and `torchvision:` names).

    PYTHONPATH=src python benchmarks/torchvision_parity.py [DATA_DIR] [K]
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from transferlab.data.images import load_image
from transferlab.models.builder import load_model


def main(data: str = "../shared/data/15scene", k: int = 2) -> None:
    ours = load_model("vgg16", "imagenet-conv")
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "vgg16.pth"
        torch.save(ours.net.state_dict(), file)
        tv = load_model("torchvision:vgg16", weights=str(file))
    paths = [p for d in sorted(Path(data, "train").iterdir()) for p in sorted(d.iterdir())[:k]]
    assert ours.preprocess.key() == tv.preprocess.key(), (ours.preprocess.key(), tv.preprocess.key())
    x = torch.stack([ours.preprocess.pixels(load_image(p)) for p in paths])
    with torch.inference_mode():
        a = ours.net.forward_layers(x, ["pool5"])["pool5"]
        b = tv.net.forward_layers(x, ["features.30"])["features.30"]
        c = tv.net.forward_layers(x, ["pool5"])["pool5"]  # the alias names the same module
    print(f"torch {torch.__version__}, torchvision {__import__('torchvision').__version__}; {len(paths)} images; "
          f"preprocess {ours.preprocess.key()} (both)")
    print(f"pool5 {tuple(a.shape)}: max |ours - torchvision:vgg16 features.30| = {(a - b).abs().max().item()!r}, "
          f"alias pool5 = {(a - c).abs().max().item()!r}, max |ours| = {a.abs().max().item():.3f}")
    print(f"labels: {ours.label()} | {tv.label()}")


if __name__ == "__main__":
    main(*sys.argv[1:2], *(int(a) for a in sys.argv[2:3]))
