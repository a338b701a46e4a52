"""Typed records of a run (``result.json``), a study (``study.json``) and a fine-tuning (``finetune.json``): each
written by its ``write`` and read by :func:`read_record` (or :func:`parse_record`), the only places their JSON is
made or parsed.

Fields that are None are left out of the JSON (a reader sees a missing key as None), and so are the empty ones of
the descriptive records (provenance, dataset); older files, which wrote them as ``null`` or lacked them, load
unchanged. A file that is not such a record fails with one line naming it.
"""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path

import numpy as np
import PIL
import sklearn
import torch

RUN_FILE, STUDY_FILE, FINETUNE_FILE = "result.json", "study.json", "finetune.json"


def library_versions() -> dict:
    """The versions of the libraries that change the numbers, and the platform."""
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "pillow": PIL.__version__, "platform": platform.platform()}


class RecordError(ValueError):
    """A file that is not a readable record; ``reason`` without the path, for lists that show the path apart."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def _json(value):
    """``value`` as JSON data: dataclasses as objects without their None fields, ``extra`` merged into its owner."""
    if is_dataclass(value):
        out = {}
        for f in fields(value):
            v = getattr(value, f.name)
            if f.name == "extra":
                out.update(_json(v))
            elif v is not None and not (getattr(value, "omit_empty", False) and v in ("", [], {})):
                out[f.name] = _json(v)
        return out
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _known(cls, data: dict, **typed):
    """``cls`` from the keys of ``data`` that are its fields (``typed`` replaces converted ones); others go to
    ``extra`` when ``cls`` has one, else are ignored."""
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names and k != "extra"}
    if "extra" in names:
        kwargs["extra"] = {k: v for k, v in data.items() if k not in names}
    return cls(**(kwargs | typed))


def _dicts(value) -> list[dict]:
    """The objects of a JSON list (anything else in it dropped)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


class _ItemAccess:
    """``record["key"]`` reads the attribute ``key`` (or a key of ``extra``): for the callers of ``run_experiment``
    still written for its former dict (``finetune.py``'s SVM comparison, ``bench.py``'s accuracy check) until they
    read attributes."""

    def __getitem__(self, key: str):
        if key in {f.name for f in fields(self)}:
            return getattr(self, key)
        extra = getattr(self, "extra", {})
        if key in extra:
            return extra[key]
        raise KeyError(key)


class _Record:
    """A record file's JSON (``to_dict``) and its writer."""

    def to_dict(self) -> dict:
        return _json(self)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path


# ------------------------------------------------------------------------------------------------ provenance


@dataclass
class DatasetInfo:
    """The dataset a record measured: its folder, classes and image counts."""

    omit_empty = True  # its empty fields are left out of the JSON

    root: str = ""
    classes: list[str] = field(default_factory=list)
    images: int | None = None
    train: int | None = None
    test: int | None = None
    matched_folders: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data) -> DatasetInfo | None:
        return _known(cls, data) if isinstance(data, dict) else None


@dataclass
class Provenance(_ItemAccess):
    """Where a record's numbers come from: the fields the project reads, and every other recorded key in ``extra``."""

    omit_empty = True  # its empty fields are left out of the JSON

    model: str = ""
    weights: str | None = None
    weights_sha256: str | None = None
    pretrained: bool | None = None
    pretrained_up_to: str | None = None
    label: str = ""
    dataset: DatasetInfo | None = None
    layers: list[str] = field(default_factory=list)
    pool: str | None = None
    l2: bool | None = None
    gray: str | None = None
    classifier: str | None = None
    C: float | str | None = None
    protocol: str | None = None
    seed: int | None = None
    trained_from_layer: str | None = None
    command: str | None = None
    versions: dict = field(default_factory=dict)
    date: str | None = None
    config: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data) -> Provenance:
        data = data if isinstance(data, dict) else {}
        prov = _known(cls, data, dataset=DatasetInfo.from_dict(data.get("dataset")))
        prov.layers = [str(x) for x in prov.layers] if isinstance(prov.layers, list) else []
        prov.config = prov.config if isinstance(prov.config, dict) else {}
        return prov

    @property
    def is_pretrained(self) -> bool:
        """Pretrained weights, or not recorded (only explicitly random weights are not)."""
        return self.pretrained is not False

    def to_dict(self) -> dict:
        return _json(self)


# ------------------------------------------------------------------------------------------------ run


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


# ------------------------------------------------------------------------------------------------ study


@dataclass
class StudyRecord(_Record):
    """``transferlab study``: one question of the practical as a table of measured rows (``study.json``).

    Rows are plain dicts because each study has its own columns; ``tables`` holds further tables (the layer
    study's ``combinations``), written as top-level keys."""

    study: str
    rows: list[dict]
    question: str = ""
    columns: list[str] = field(default_factory=list)
    best: dict | None = None
    notes: list[str] = field(default_factory=list)
    tables: dict[str, list[dict]] = field(default_factory=dict)
    figure: str | None = None
    command: str | None = None
    provenance: Provenance = field(default_factory=Provenance)
    synthetic: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> StudyRecord:
        if "rows" not in data:
            raise ValueError("not a transferlab study record: no 'rows'")
        if not isinstance(data["rows"], list):
            raise ValueError("a study record whose 'rows' is not a list")
        own = {f.name for f in fields(cls)} | {"_fixture"}
        tables = {k: _dicts(v) for k, v in data.items()
                  if k not in own and isinstance(v, list) and v and all(isinstance(x, dict) for x in v)}
        columns = data["columns"] if isinstance(data.get("columns"), list) else []
        return cls(study=str(data.get("study", "?")), rows=_dicts(data["rows"]),
                   question=str(data.get("question") or ""), columns=[str(c) for c in columns],
                   best=data["best"] if isinstance(data.get("best"), dict) else None,
                   notes=[n for n in data.get("notes") or [] if isinstance(n, str)], tables=tables,
                   figure=str(data["figure"]) if data.get("figure") else None,
                   command=str(data["command"]) if data.get("command") else None,
                   provenance=Provenance.from_dict(data.get("provenance")), synthetic=_synthetic(data))

    def to_dict(self) -> dict:
        out = _json(self)
        out.update(out.pop("tables", {}))
        return out


# ------------------------------------------------------------------------------------------------ fine-tuning


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


# ------------------------------------------------------------------------------------------------ files

RECORDS = {RUN_FILE: RunRecord, STUDY_FILE: StudyRecord, FINETUNE_FILE: FinetuneRecord}
Record = RunRecord | StudyRecord | FinetuneRecord


def _synthetic(data: dict) -> str | None:
    mark = data.get("synthetic") or data.get("_fixture")
    return str(mark) if mark else None


def parse_record(kind: type[Record], raw: bytes, path: str | Path) -> Record:
    """The record of type ``kind`` in the bytes ``raw`` of file ``path``; RecordError names what is wrong."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(path, f"unreadable JSON ({e})") from None
    if not isinstance(data, dict):
        raise RecordError(path, "not a JSON object")
    try:
        return kind.from_dict(data)
    except (ValueError, TypeError) as e:
        raise RecordError(path, str(e)) from None


def read_record(path: str | Path) -> Record:
    """The record in ``path`` (result.json, study.json or finetune.json), typed by its file name."""
    path = Path(path)
    if path.name not in RECORDS:
        raise RecordError(path, f"not one of {', '.join(RECORDS)}")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RecordError(path, f"unreadable ({e.strerror or e})") from None
    return parse_record(RECORDS[path.name], raw, path)
