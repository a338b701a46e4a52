"""The record of ``transferlab run`` (``result.json``): scores over train/test splits, how the features were
obtained, and their provenance."""
from __future__ import annotations

from dataclasses import dataclass, field

from transferlab.provenance.base import Provenance, _dicts, _ItemAccess, _known, _Record, _synthetic

RUN_FILE = "result.json"


@dataclass
class Misclassified:
    path: str
    true: str
    predicted: str


@dataclass
class BadFile:
    path: str
    reason: str


@dataclass
class SplitResult(_ItemAccess):
    """One train/test split of a run: its classifier's C (and cross-validation), scores and errors."""

    accuracy: float
    train_images: int | None = None
    test_images: int | None = None
    mean_class_accuracy: float | None = None
    per_class_accuracy: dict[str, float] = field(default_factory=dict)
    confusion_matrix: list[list[int]] = field(default_factory=list)
    misclassified: list[Misclassified] = field(default_factory=list)
    seed: int | None = None
    C: float | None = None
    cv: dict | None = None
    fit_seconds: float | None = None
    predict_seconds: float | None = None

    @classmethod
    def from_dict(cls, data: dict) -> SplitResult:
        if "accuracy" not in data:
            raise ValueError("a split in 'runs' without 'accuracy'")
        return _known(cls, data, misclassified=[_known(Misclassified, m) for m in _dicts(data.get("misclassified"))
                                                if {"path", "true", "predicted"} <= set(m)])


@dataclass
class Scores(_ItemAccess):
    """Accuracy over the splits of one feature set and classifier (mean ± std), and each split's details."""

    accuracy: float
    accuracy_std: float
    mean_class_accuracy: float | None
    fit_seconds: float | None
    runs: list[SplitResult]


@dataclass
class Extraction:
    """How the features were obtained: computed and cached counts and speed, or the feature store read."""

    seconds: float | None = None
    computed_images: int | None = None
    cached_images: int | None = None
    images_per_s: float | None = None
    bad_files: list[BadFile] = field(default_factory=list)
    feature_store: str | None = None

    @classmethod
    def from_dict(cls, data) -> Extraction:
        data = data if isinstance(data, dict) else {}
        return _known(cls, data, bad_files=[BadFile(str(b.get("path", "?")), str(b.get("reason", "")))
                                            for b in _dicts(data.get("bad_files"))])


@dataclass
class RunRecord(Scores, _Record):
    """``transferlab run``: features + classifier on a dataset, evaluated on held-out images (``result.json``)."""

    feature_dim: int | None = None
    classes: list[str] = field(default_factory=list)
    extraction: Extraction = field(default_factory=Extraction)
    provenance: Provenance = field(default_factory=Provenance)
    synthetic: str | None = None  # set on test fixtures: not a measurement

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        for key in ("accuracy", "runs", "classes"):
            if key not in data:
                raise ValueError(f"not a transferlab run record: no {key!r}")
        if not (isinstance(data["runs"], list) and _dicts(data["runs"])):
            raise ValueError("a run record without any split in 'runs'")
        runs = [SplitResult.from_dict(r) for r in _dicts(data["runs"])]
        return _known(cls, data, accuracy=float(data["accuracy"]), accuracy_std=float(data.get("accuracy_std") or 0),
                      mean_class_accuracy=data.get("mean_class_accuracy"), fit_seconds=data.get("fit_seconds"),
                      runs=runs, extraction=Extraction.from_dict(data.get("extraction")),
                      provenance=Provenance.from_dict(data.get("provenance")), synthetic=_synthetic(data))
