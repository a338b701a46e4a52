"""What every section builder shares: the context it reads (typed records and computed analyses), the section it
returns, and the generic reading of a study's table (its accuracy column, row labels, best row)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from transferlab.analysis import Analyses
from transferlab.provenance import StudyRecord
from transferlab.report.formatting import fmt
from transferlab.report.inputs import Inputs, Source
from transferlab.studies.registry import STUDIES

FULL_15SCENE = {"train": 1500, "test": 2985, "images": 4485}

QUESTIONS = {
    "q1": ("1. How many parameters does VGG16 have?",
           "How many parameters does VGG16 have, given that the fully connected layers hold most of them?"),
    "q2": ("2. The output of the last layer", "What is the output size of the last layer, and what does it mean?"),
    "q3": ("3. ImageNet predictions on photos", "Apply the network to images of your choice and comment."),
    "q4": ("4. Activation maps of the first convolution",
           "Show activation maps after the first convolution and interpret them."),
    "q5": ("5. Why not train VGG16 directly on 15 Scene?", "Why not train VGG16 directly on 15 Scene?"),
    "q6": ("6. What ImageNet pre-training brings", "How does ImageNet pre-training help?"),
    "q7": ("7. Limits of feature extraction", "What are the limits of feature extraction?"),
    "q8": ("8. Impact of the layer", STUDIES["layers"].question),
    "q9": ("9. Grayscale images into an RGB network", STUDIES["gray"].question),
    "q10": ("10. Using the network itself instead of an SVM",
            "Instead of an independent classifier, can the network itself be used?"),
}
PART1, PART2 = "Part 1 — VGG16 itself", "Part 2 — transfer to 15 Scene"


@dataclass
class Todo:
    """A part of the page without its input, and the command that would measure it."""

    sid: str
    what: str
    command: str


@dataclass
class Section:
    """One section of the page: its template and what the template needs; ``todo`` feeds 'To complete this report'."""

    part: str
    id: str
    title: str
    template: str
    data: dict
    todo: list[Todo] = field(default_factory=list)

    def __post_init__(self):
        self.data.setdefault("missing", None)  # the part's own 'not measured' box, if any


@dataclass
class ComputedSource:
    """A part the report computed itself (cited as C1, C2 …)."""

    sid: str
    title: str
    data: dict
    command: str


@dataclass
class Meta:
    date: str
    command: str
    version: str
    versions: dict
    title: str


@dataclass
class Context:
    """Everything a section may read: the input records, the computed analyses and the report's own metadata."""

    inputs: Inputs
    analyses: Analyses
    meta: Meta
    data_root: Path | None
    data_hint: str
    computed: dict[str, ComputedSource] = field(default_factory=dict)

    def studies(self, *names: str) -> list[Source]:
        return [s for s in self.inputs.studies if s.record.study in names]

    def study_cmd(self, name: str, model: str = "vgg16", weights: str = "imagenet-conv") -> str:
        return (f"transferlab study {name} --data {self.data_hint} --model {model} --weights {weights} "
                f"--out studies/{name}")

    def main_run(self) -> Source | None:
        """The run whose confusion matrix and errors are discussed: the most accurate pretrained run."""
        runs = [r for r in self.inputs.runs if r.provenance.is_pretrained] or self.inputs.runs
        return max(runs, key=lambda r: r.record.accuracy) if runs else None

    def chance(self) -> float | None:
        for r in self.inputs.runs:
            return 1.0 / len(r.record.classes)
        for st in self.inputs.studies:
            ds = st.provenance.dataset
            if ds and ds.classes:
                return 1.0 / len(ds.classes)
        return None


# ------------------------------------------------------------------------------------------------ study tables

LABEL_COLUMNS = {"layers": ["layer", "layers"], "pooling": ["layer", "pool", "l2"], "gray": ["gray", "mode"],
                 "C": ["C", "c"], "classifiers": ["classifier"], "pca": ["pca_dims", "pca", "dims"],
                 "backbones": ["features", "backbone", "model"], "protocol": ["protocol"],
                 "pretraining": ["pretrained"], "random-vs-pretrained": ["pretrained"], "fusion": ["features"],
                 "tta": ["variant"], "augment": ["variant", "test"]}


def columns(study: StudyRecord) -> list[str]:
    """The study's columns: as recorded, else every key of its rows."""
    if study.columns:
        return study.columns
    return list(dict.fromkeys(str(k) for r in study.rows for k in r))


def acc_column(cols: list[str]) -> str | None:
    """The accuracy column: 'accuracy', else 'test_accuracy', else the first with 'acc' in its name (not std/cv)."""
    for c in ("accuracy", "test_accuracy"):
        if c in cols:
            return c
    return next((c for c in cols if "acc" in c.lower() and "std" not in c.lower() and "cv" not in c.lower()
                 and "train" not in c.lower()), None)


def row_label(study: StudyRecord, row: dict) -> str:
    """A row's name: its setting columns (layer, pooling, gray mode …), else its first text column."""
    cols = [c for c in LABEL_COLUMNS.get(study.study, []) if c in row]
    if not cols:
        cols = [next((c for c in columns(study) if isinstance(row.get(c), str)), columns(study)[0])]
    parts = []
    for c in cols:
        v = row.get(c)
        if c == "l2":
            parts.append("+ L2" if v else "no L2")
        elif c == "pretrained":
            parts.append("pretrained" if v else "random")
        else:
            parts.append(fmt(v, c))
    return " ".join(parts)


def num(v) -> float | None:
    """``v`` as a number, or None (missing, text, NaN)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def scored(study: StudyRecord) -> tuple[str | None, list[tuple[dict, float]]]:
    """The accuracy column and the rows that have a number in it, with that number."""
    col = acc_column(columns(study))
    return col, [(r, num(r.get(col))) for r in study.rows if col and num(r.get(col)) is not None]


def best(study: StudyRecord) -> tuple[dict, float] | None:
    """The best row (as recorded, else the most accurate) and its accuracy."""
    col, rows = scored(study)
    if study.best is not None and num(study.best.get(col)) is not None:
        return study.best, num(study.best[col])
    return max(rows, key=lambda t: t[1]) if rows else None


def find_row(study: StudyRecord, **match) -> dict | None:
    """The first row whose columns equal ``match`` (ignoring case)."""
    for r in study.rows:
        if all(str(r.get(k)).casefold() == str(v).casefold() for k, v in match.items()):
            return r
    return None


def pretrain_pair(study: StudyRecord) -> tuple[dict, dict] | None:
    """(pretrained row, random row) of a pre-training study."""
    pre = rnd = None
    for r in study.rows:
        text = f"{r.get('weights', '')} {r.get('init', '')}".casefold()
        is_random = (r.get("pretrained") is False) or ("random" in text) or ("none" in text.split())
        if is_random and rnd is None:
            rnd = r
        elif not is_random and pre is None:
            pre = r
    return (pre, rnd) if pre and rnd else None
