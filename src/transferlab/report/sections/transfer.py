"""Part 2 of the practical, transfer to 15 Scene: the measured runs, why not train VGG16 directly (q5), what
pre-training brings (q6) and the limits of fixed features (q7)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from transferlab.classify.scores import most_confused
from transferlab.plots import data_uri, thumbnail_jpeg
from transferlab.plots.bars import bar_figure, per_class_figure
from transferlab.plots.confusion import draw_confusion
from transferlab.report.inputs import Source
from transferlab.report.sections.common import (
    FULL_15SCENE,
    PART2,
    QUESTIONS,
    Context,
    Section,
    Todo,
    acc_column,
    columns,
    num,
    pretrain_pair,
)
from transferlab.report.sections.studies import study_view

# configuration keys that do not change what a run measures (compared when pairing pretrained and random runs)
_NOT_MEASURED = {"weights", "cache", "workers", "progress", "batch_size", "runtime", "device", "strict"}


def _section(qid: str, data: dict, todo: list[Todo] | None = None) -> Section:
    return Section(PART2, qid, QUESTIONS[qid][0], f"{qid}.html.j2", {"question": QUESTIONS[qid][1], **data},
                   todo or [])


def runs(ctx: Context) -> Section:
    title = "Measured runs (features + classifier)"
    if not ctx.inputs.runs:
        todo = Todo("runs", "a run of pretrained features + linear SVM on 15 Scene",
                    f"transferlab run --data {ctx.data_hint} --model vgg16 --weights imagenet-conv --layer pool5 "
                    "--out runs/vgg16-pool5")
        return Section(PART2, "runs", title, "runs.html.j2", {"missing": todo}, [todo])
    figure = None
    if len(ctx.inputs.runs) > 1:
        rs = ctx.inputs.runs
        figure = data_uri(bar_figure(
            [f"{r.sid} {r.title}"[:70] for r in rs], [r.record.accuracy for r in rs], "test accuracy of each run",
            errors=[r.record.accuracy_std for r in rs],
            colors=["tab:blue" if r.provenance.is_pretrained else "tab:red" for r in rs],
            legend=[("tab:blue", "pretrained"), ("tab:red", "random weights")]))
    return Section(PART2, "runs", title, "runs.html.j2", {"runs": ctx.inputs.runs, "figure": figure})


def pretraining_evidence(ctx: Context) -> list[dict]:
    """Pretrained vs random accuracy: from pre-training studies, else from runs that differ only by weights."""
    out = []
    for st in ctx.studies("pretraining", "random-vs-pretrained"):
        pair, col = pretrain_pair(st.record), acc_column(columns(st.record))
        if pair and col:
            out.append({"study": st, "pre": pair[0], "rnd": pair[1], "col": col})
    for a in ctx.inputs.runs:
        if not a.provenance.is_pretrained:
            continue
        for b in ctx.inputs.runs:
            ca, cb = a.provenance.config, b.provenance.config
            if b.provenance.is_pretrained or not ca or not cb:
                continue
            if all(ca.get(k) == cb.get(k) for k in set(ca) | set(cb) if k not in _NOT_MEASURED):
                out.append({"study": None, "a": a, "b": b})
    return out


def q5(ctx: Context) -> Section:
    evidence = pretraining_evidence(ctx)
    a = ctx.analyses.architecture
    todo = None if evidence else Todo("q5", "random-weight features versus pretrained ones (the pre-training study)",
                                      ctx.study_cmd("pretraining"))
    return _section("q5", {
        "a": a, "arch_sid": ctx.computed["architecture"].sid if a else None, "full_train": FULL_15SCENE["train"],
        "n_train": max((r.record.runs[0].train_images or 0 for r in ctx.inputs.runs), default=0),
        "evidence": evidence, "chance": ctx.chance(), "missing": todo,
        "scratch": [ft for ft in ctx.inputs.finetunes if "scratch" in str(ft.record.mode or "").casefold()],
        "studies": ctx.studies("pretraining", "random-vs-pretrained")}, [todo] if todo else [])


def q6(ctx: Context) -> Section:
    evidence = pretraining_evidence(ctx)
    todo = None if evidence else Todo("q6", "pretrained versus random-weight accuracy at the same layer",
                                      ctx.study_cmd("pretraining"))
    return _section("q6", {"evidence": evidence, "chance": ctx.chance(), "missing": todo,
                           "studies": [study_view(st) for st in ctx.studies("pretraining", "random-vs-pretrained")]},
                    [todo] if todo else [])


def _examples(ctx: Context, run: Source, true: str, pred: str, n: int = 4) -> list[dict]:
    """Up to ``n`` misclassified test images of a confused pair, as thumbnails (or why each is not shown)."""
    ds = run.provenance.dataset
    recorded_root = ds.root if ds else ""
    out = []
    for m in run.record.runs[0].misclassified:
        if m.true != true or m.predicted != pred:
            continue
        path = Path(m.path)
        candidates = [path]
        if ctx.data_root and recorded_root and str(path).startswith(recorded_root):
            candidates.append(ctx.data_root / str(path)[len(recorded_root):].lstrip("/"))
        found = next((c for c in candidates if c.is_file()), None)
        item = {"name": path.name, "alt": f"{true} predicted as {pred}: {path.name}", "uri": None, "problem": None}
        if found is None:
            item["problem"] = "file not found"
        else:
            try:
                item["uri"] = data_uri(thumbnail_jpeg(found), mime="image/jpeg")
            except OSError:
                item["problem"] = "unreadable"
        out.append(item)
        if len(out) >= n:
            break
    return out


def q7(ctx: Context) -> Section:
    run = ctx.main_run()
    if run is None:
        todo = Todo("q7", "per-class accuracy, confusion matrix and cost of a run",
                    f"transferlab run --data {ctx.data_hint} --model vgg16 --weights imagenet-conv --layer pool5 "
                    "--out runs/vgg16-pool5")
        return _section("q7", {"missing": todo}, [todo])
    rec = run.record
    r0 = rec.runs[0]
    cm = np.array(r0.confusion_matrix, dtype=int)
    data = {"run": run, "r0": r0, "splits": len(rec.runs), "finetuned": bool(ctx.inputs.finetunes),
            "per_class": sorted(r0.per_class_accuracy.items(), key=lambda kv: kv[1]), "per_class_figure": None,
            "confusion_figure": None, "pairs": [], "cost": None, "layer_costs": []}
    if r0.per_class_accuracy:
        data["per_class_figure"] = data_uri(per_class_figure(r0.per_class_accuracy,
                                                             f"per-class accuracy · {run.title}"[:110],
                                                             rec.mean_class_accuracy))
    if cm.size:
        png = run.folder / "confusion.png"
        data["confusion_figure"] = data_uri(png.read_bytes() if png.is_file() else
                                            draw_confusion(cm, rec.classes, run.title), dpi=120)
        data["pairs"] = [{**q, "examples": _examples(ctx, run, q["true"], q["predicted"])}
                         for q in most_confused(cm, rec.classes, 6)]
    ips = num(rec.extraction.images_per_s)
    if ips:
        data["cost"] = {"ips": ips, "minutes": FULL_15SCENE["images"] / ips / 60}
    for st in ctx.studies("layers"):
        ms = [(r.get("layer"), num(r.get("ms_per_image"))) for r in st.record.rows]
        ms = [(layer, v) for layer, v in ms if v is not None]
        if ms:
            data["layer_costs"].append({"study": st, "ms": ms[:: max(1, len(ms) // 6)]})
    return _section("q7", data)
