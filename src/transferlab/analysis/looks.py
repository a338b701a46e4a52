"""Where a fitted classifier looks on its test images: the most confidently right ones and the worst errors of its
most confused class pairs, each with its class maps — a record for the report (the section draws the figures)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferlab.analysis.cam import ClassMaps
from transferlab.analysis.gradcam import explain, resolve_method
from transferlab.analysis.pipeline import Pipeline
from transferlab.classify.scores import most_confused, scores


@dataclass
class LookedAt:
    """One test image: why it was picked, its truth and prediction, and its class maps."""

    kind: str  # "correct" | "confused"
    true: str
    predicted: str
    maps: ClassMaps

    @property
    def top(self) -> list[tuple[str, float, float | None]]:
        """(class, score, probability or None) of the mapped classes, highest score first."""
        m = self.maps
        order = sorted(m.shown, key=lambda c: -m.scores[c])
        return [(m.classes[c], float(m.scores[c]),
                 None if m.probabilities is None else float(m.probabilities[c])) for c in order]


@dataclass
class LooksRecord:
    """What the report's 'where the classifier looks' section shows, and how it was measured."""

    label: str
    provenance: dict
    method: str  # "cam" | "grad-cam"
    layers: list[str]
    images: int  # test images scored
    accuracy: float
    pairs: list[dict]  # most_confused's (true, predicted, count, share)
    looked: list[LookedAt]
    bad: list[tuple[str, str]] = field(default_factory=list)
    # cam: max over the mapped classes of |mean of the map − (the extractor's score − bias)|, relative to the
    # largest |score − bias| of the image; None for Grad-CAM
    exactness: float | None = None


def pick(values: np.ndarray, y: np.ndarray, pairs: list[dict], classes: list[str],
         correct: int) -> list[tuple[str, int, int]]:
    """(kind, row, true class) of the images to show: for each confused pair the error with the largest margin of
    the wrong class over the true one; then up to ``correct`` right answers with the largest margin over the
    runner-up, one per class, the classes of the confused pairs first."""
    pred = values.argmax(1)
    index = {c: i for i, c in enumerate(classes)}
    chosen = []
    for p in pairs:
        t, q = index[p["true"]], index[p["predicted"]]
        rows = np.flatnonzero((y == t) & (pred == q))
        if len(rows):
            chosen.append(("confused", int(max(rows, key=lambda r: values[r, q] - values[r, t])), t))
    order = list(dict.fromkeys([index[p["true"]] for p in pairs] + [index[p["predicted"]] for p in pairs]
                               + list(range(len(classes)))))
    runner_up = np.sort(values, 1)[:, -2]
    right = []
    for t in order:
        rows = np.flatnonzero((y == t) & (pred == t))
        if len(rows) and len(right) < correct:
            right.append(("correct", int(max(rows, key=lambda r: values[r, t] - runner_up[r])), t))
    return chosen + right


def shown_classes(values: np.ndarray, true: int, top: int) -> list[int]:
    """The ``top`` best-scoring classes, the true one always among them (last, when it is not in the top)."""
    best = [int(c) for c in np.argsort(-values, kind="stable")[:top]]
    return best if true in best else best[:-1] + [true]


def where_it_looks(pipe: Pipeline, paths: Sequence[str | Path], labels: Sequence[int | str], *, pairs: int = 3,
                   correct: int = 3, top: int = 3, method: str = "auto", layer: str | None = None) -> LooksRecord:
    """Score the test images ``paths`` (true ``labels``: class indices or names of ``pipe.classes``) through the
    feature cache, and map the worst error of each of the ``pairs`` most confused class pairs and ``correct``
    confident right answers, at ``top`` classes each (the true class among them)."""
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} test images but {len(labels)} labels")
    method = resolve_method(pipe, method)
    y_all = np.array([pipe.class_index(c) for c in labels])
    ok, values, bad = pipe.decision_values(list(paths))
    if not ok:
        raise ValueError(f"none of the {len(paths)} test images could be read (first: {bad[0][0]}: {bad[0][1]})")
    y = y_all[ok]
    cm = np.array(scores(y, values.argmax(1), pipe.classes)["confusion_matrix"])
    confused = most_confused(cm, pipe.classes, pairs) if pairs else []
    looked, worst = [], 0.0
    for kind, row, t in pick(values, y, confused, pipe.classes, correct):
        (maps,), _ = explain(pipe, [paths[ok[row]]], method, shown_classes(values[row], t, top), layer=layer)
        if method == "cam":
            target = values[row] - maps.bias
            err = np.abs(maps.maps.mean((1, 2)) - target[maps.shown]).max() / np.abs(target).max()
            worst = max(worst, float(err))
        looked.append(LookedAt(kind, pipe.classes[t], pipe.classes[int(values[row].argmax())], maps))
    return LooksRecord(pipe.describe(), pipe.model.provenance(), method,
                       looked[0].maps.layers if looked else pipe.layers, len(ok),
                       float((values.argmax(1) == y).mean()), confused, looked, bad,
                       worst if method == "cam" else None)
