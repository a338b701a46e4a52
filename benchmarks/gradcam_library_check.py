"""transferlab's Grad-CAM against PyPI's grad-cam (pytorch-grad-cam) ``GradCAM``, on 15 Scene test images.

grad-cam imports torchvision at the top of three modules (for image transforms this check does not call), and
PyPI's torchvision does not import beside the CPU build of torch (docs/explain.md), so this script runs in a
scratch environment that sees transferlab's packages, with torchvision replaced by an empty stand-in:

    python3 -m venv /tmp/gc
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/gc/lib/python3.11/site-packages/main.pth
    /tmp/gc/bin/pip install --no-deps grad-cam ttach opencv-python-headless
    PYTHONPATH=src /tmp/gc/bin/python benchmarks/gradcam_library_check.py [DATA_DIR] [K] [CACHE_DIR]

A linear SVM on pool5 max-pooled + L2 features of the first K training images per class (default 4) gives the
class scores; both implementations map three test images at relu5_3, and, to show what an in-place ReLU does to
the library's saved activations, one at conv5_3 (whose output VGG's ReLU overwrites) with and without it in place.
The library scales each map to 0..1 and resizes it (OpenCV) to the input; ours is put through the same steps.
"""
from __future__ import annotations

import copy
import sys
import types

import numpy as np
import torch

for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["torchvision.transforms"].__dict__.update(Compose=None, Normalize=None, ToTensor=None)
sys.modules["torchvision.transforms.functional"].resize = None

import cv2  # noqa: E402
import pytorch_grad_cam  # noqa: E402
from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

from transferlab.analysis.gradcam import gradcam_maps  # noqa: E402
from transferlab.analysis.pipeline import Pipeline  # noqa: E402
from transferlab.features.blocks import join_blocks  # noqa: E402
from transferlab.classify.estimators import make_pipeline  # noqa: E402
from transferlab.classify.linear import fold_pipeline  # noqa: E402
from transferlab.data.datasets import load_dataset  # noqa: E402
from transferlab.features.cache import FeatureCache  # noqa: E402
from transferlab.features.extractor import Extractor  # noqa: E402
from transferlab.models.builder import load_model  # noqa: E402

OUTPUTS = [("pool5", "max")]


class Scores(torch.nn.Module):
    """The pipeline's class scores as the model grad-cam expects (a module returning (N, K) logits)."""

    def __init__(self, pipe: Pipeline):
        super().__init__()
        self.pipe, self.net = pipe, pipe.net

    def forward(self, x):
        return self.pipe.scores(x)


def library_map(pipe: Pipeline, layer: str, pixels: torch.Tensor, c: int) -> np.ndarray:
    with GradCAM(model=Scores(pipe), target_layers=[dict(pipe.net.steps())[layer]]) as cam:
        return cam(input_tensor=pixels[None], targets=[ClassifierOutputTarget(c)])[0]


def as_library_scales(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """grad-cam's own post-processing: min-max scaling, OpenCV resize to the input, min-max scaling again."""
    def scaled(a):
        a = a - a.min()
        return a / (a.max() + 1e-7)
    return scaled(cv2.resize(scaled(m).astype(np.float32), shape[::-1]))


def with_plain_relu(model):
    model = copy.deepcopy(model)
    for module in model.net.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False
    return model


def main(data: str = "../shared/data/15scene", k: str = "4", cache: str | None = None) -> None:
    print(f"grad-cam {pytorch_grad_cam.__file__}, opencv {cv2.__version__}, torch {torch.__version__}")
    ds = load_dataset(data, limit_per_class=int(k))
    train, test = np.flatnonzero(ds.split == "train"), np.flatnonzero(ds.split == "test")
    store = FeatureCache(cache) if cache else None
    feats = Extractor(load_model("vgg16", "imagenet-conv"), OUTPUTS, cache=store, workers=0).extract(
        [ds.paths[i] for i in train])
    x = join_blocks([feats.features[o] for o in OUTPUTS], True)
    head = fold_pipeline(make_pipeline("linear-svm", 1.0, True).fit(x, ds.labels[train][feats.ok]), ds.classes)
    pipe = Pipeline(load_model("vgg16", "imagenet-conv"), OUTPUTS, True, "replicate", head, cache=store)
    worst = 0.0
    for i in test[::4][:3]:
        pic = pipe.picture(ds.paths[i])
        ours = gradcam_maps(pipe, pic, "relu5_3", top=3)
        for c, m in zip(ours.shown, ours.maps):
            lib = library_map(pipe, "relu5_3", pic.pixels, c)
            worst = max(worst, float(np.abs(as_library_scales(m, lib.shape) - lib).max()))
    print(f"relu5_3, 3 images x 3 classes: max |ours - grad-cam| = {worst:.1e} (maps scaled to 0..1)")
    pic = pipe.picture(ds.paths[test[0]])
    ours = gradcam_maps(pipe, pic, "conv5_3", top=1)
    c, mine = ours.shown[0], as_library_scales(ours.maps[0], pic.pixels.shape[1:])
    plain = Pipeline(with_plain_relu(pipe.model), OUTPUTS, True, "replicate", head, cache=store)
    ours_plain = gradcam_maps(plain, pic, "conv5_3", classes=[c])
    print(f"conv5_3 (in-place ReLU after it): max |ours - grad-cam| = "
          f"{np.abs(mine - library_map(pipe, 'conv5_3', pic.pixels, c)).max():.2f}; with the ReLU not in place: "
          f"{np.abs(mine - library_map(plain, 'conv5_3', pic.pixels, c)).max():.1e}; ours in place vs not: "
          f"{np.abs(ours.maps - ours_plain.maps).max():.1e}")


if __name__ == "__main__":
    main(*sys.argv[1:])
