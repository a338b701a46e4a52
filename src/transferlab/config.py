"""The settings of one run — data, network, features, classifier, protocol, runtime — in one light dataclass that
every stage reads: the experiment, the engines, fine-tuning, the studies and the report's command lines."""
from __future__ import annotations

from dataclasses import dataclass

from transferlab.options import CALIBRATION_IMAGES


@dataclass
class RunConfig:
    """What ``transferlab run`` (and ``run_experiment``) does; ``None`` leaves a choice to the defaults, which are said
    and recorded."""

    data: str
    model: str = "vgg16"
    weights: str = "auto"
    layers: list[str] | None = None  # None: the model's default feature layer
    pool: str = "avg"
    l2: bool = True
    gray: str = "replicate"
    resize: str = "crop"
    input_size: int | None = None  # crop side through the network (None: the weights' own, 224 for VGG)
    scales: list[int] | None = None  # input sizes a scale-aware study compares (None: input_size only)
    classifier: str = "linear-svm"
    C: float | str = 1.0
    pca: int | None = None
    standardize: bool = False
    protocol: str = "auto"  # fixed with train/ and test/ folders, else holdout (datasets.resolve_protocol)
    train_per_class: int = 100
    limit_per_class: int | None = None
    seed: int = 0
    runtime: str = "eager"
    calibration_images: int = CALIBRATION_IMAGES  # runtime int8: training images calibrated on
    batch_size: int = 16
    workers: int | None = None
    device: str = "cpu"
    cache: str | None = None
    strict: bool = False
    progress: bool | None = None
    features: str | None = None  # a Parquet store or .npz file (transferlab extract) instead of extracting
    trust_pickle: bool = False  # a model file may be a torch.save(model) pickle (loading it runs its code)
