"""Part 2 of the practical, q10: the network itself as the classifier — each fine-tuning against the linear SVM."""
from __future__ import annotations

import numpy as np

from transferlab.plots.confusion import draw_confusion
from transferlab.plots import data_uri
from transferlab.plots.bars import bar_figure, paired_bars_figure, per_class_figure
from transferlab.plots.training import training_curves_figure
from transferlab.report.inputs import Source
from transferlab.report.sections.common import PART2, QUESTIONS, Context, Section, Todo

EPOCH_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")


def _view(ctx: Context, ft: Source) -> dict:
    """One fine-tuning's facts, curves, comparison with the SVM, per-class accuracy and confusion matrix."""
    d = ft.record
    counts = (d.images.train, d.images.val, d.images.test) if d.images else ()
    run, planned = len(d.history) if d.epochs_run is None else d.epochs_run, d.epochs_planned
    out = {"src": ft, "epoch_columns": [c for c in EPOCH_COLUMNS if any(getattr(h, c) is not None for h in d.history)],
           "images": " / ".join("?" if v is None else str(v) for v in counts) or None,
           "epochs": f"{run} ({'?' if planned is None else planned})", "curves": None, "versus_svm": None,
           "per_class_paired": None, "per_class": None, "confusion": None}
    if d.history:
        out["curves"] = data_uri(training_curves_figure(d.history, d.best_epoch, ft.title))
    bars = [(f"fine-tuned ({d.mode or '?'})", d.test_accuracy, "tab:green")] if d.test_accuracy is not None else []
    if d.svm_accuracy is not None:
        bars.append(("linear SVM on the network's features (same split)", d.svm_accuracy, "tab:blue"))
    else:
        bars += [(f"SVM run {r.sid} (its own split)", r.record.accuracy, "tab:gray") for r in ctx.inputs.runs
                 if r.provenance.model == d.model]
    if len(bars) > 1:
        out["versus_svm"] = data_uri(bar_figure([b[0] for b in bars], [b[1] for b in bars],
                                                f"fine-tuning vs SVM · {d.model or ''}", colors=[b[2] for b in bars]))
    pc = d.test_per_class_accuracy
    svm_pc = d.svm.per_class_accuracy if d.svm else {}
    if pc and svm_pc and set(svm_pc) == set(pc):
        out["per_class_paired"] = data_uri(paired_bars_figure(list(pc), list(pc.values()), [svm_pc[c] for c in pc],
                                                              ("fine-tuned", "linear SVM"),
                                                              f"per-class test accuracy · {ft.title}"))
    elif pc:
        out["per_class"] = data_uri(per_class_figure(pc, f"per-class accuracy · {ft.title}",
                                                     d.test_mean_class_accuracy))
    cm, classes = d.test_confusion_matrix, d.classes or list(pc)
    if cm and classes and len(cm) == len(classes):
        png = ft.folder / "confusion.png"
        out["confusion"] = data_uri(png.read_bytes() if png.is_file() else
                                    draw_confusion(np.array(cm), classes, ft.title), dpi=120)
    return out


def q10(ctx: Context) -> Section:
    todo = None if ctx.inputs.finetunes else Todo(
        "q10", "fine-tuning versus the SVM on the same split",
        f"transferlab finetune --data {ctx.data_hint} --model efficientnet_lite0 --out finetune/effnet")
    return Section(PART2, "q10", QUESTIONS["q10"][0], "q10.html.j2",
                   {"question": QUESTIONS["q10"][1], "missing": todo,
                    "finetunes": [_view(ctx, ft) for ft in ctx.inputs.finetunes]}, [todo] if todo else [])
