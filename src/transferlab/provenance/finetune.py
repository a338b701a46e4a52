"""The record of ``transferlab finetune`` (``finetune.json``): the training history, the test scores and the
linear SVM it is compared with."""
from __future__ import annotations

from dataclasses import dataclass, field

from transferlab.provenance.base import Provenance, _dicts, _known, _Record, _synthetic

FINETUNE_FILE = "finetune.json"


@dataclass
class EpochRow:
    epoch: int
    train_loss: float | None = None
    train_acc: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    lr: float | None = None
    seconds: float | None = None


@dataclass
class FinetuneImages:
    train: int | None = None
    val: int | None = None
    test: int | None = None
    bad_files: list = field(default_factory=list)


@dataclass
class SvmComparison:
    """The linear SVM on the fine-tuned network's features and the same split (what fine-tuning is compared with)."""

    accuracy: float
    mean_class_accuracy: float | None = None
    layer: str | None = None
    pool: str | None = None
    l2: bool | None = None
    C: float | None = None
    train_images: int | None = None
    test_images: int | None = None
    per_class_accuracy: dict[str, float] = field(default_factory=dict)


@dataclass
class FinetuneRecord(_Record):
    """``transferlab finetune``: a new head (and possibly blocks) trained on the images, tested (``finetune.json``)."""

    status: str | None = None
    model: str | None = None
    mode: str | None = None
    epochs_run: int | None = None
    epochs_planned: int | None = None
    stopped_early: bool | None = None
    best_epoch: int | None = None
    history: list[EpochRow] = field(default_factory=list)
    train_seconds: float | None = None
    linear_probe: dict | None = None
    classes: list[str] = field(default_factory=list)
    images: FinetuneImages | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    test_seconds: float | None = None
    test_mean_class_accuracy: float | None = None
    test_per_class_accuracy: dict[str, float] = field(default_factory=dict)
    test_confusion_matrix: list[list[int]] = field(default_factory=list)
    svm_accuracy: float | None = None
    svm: SvmComparison | None = None
    model_file: str | None = None
    provenance: Provenance = field(default_factory=Provenance)
    synthetic: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> FinetuneRecord:
        if not any(k in data for k in ("history", "test_accuracy")):
            raise ValueError("not a transferlab finetune record: neither 'history' nor 'test_accuracy'")
        svm = data.get("svm")
        typed = {f"test_{k}": data[k] for k in ("per_class_accuracy", "confusion_matrix", "mean_class_accuracy")
                 if k in data and f"test_{k}" not in data}  # the first records' names
        return _known(cls, {**data, **typed}, history=[_known(EpochRow, {"epoch": i + 1, **h})
                                                       for i, h in enumerate(_dicts(data.get("history")))],
                      images=_known(FinetuneImages, data["images"]) if isinstance(data.get("images"), dict) else None,
                      svm=_known(SvmComparison, svm) if isinstance(svm, dict) and "accuracy" in svm else None,
                      provenance=Provenance.from_dict(data.get("provenance")), synthetic=_synthetic(data))
