"""The studies' figures: one function per study, drawn from the rows of its record (``StudyRecord.rows``)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from transferlab.plots.base import new_figure
from transferlab.plots.orderless import orderless_figure
from transferlab.provenance import StudyRecord


def layers_figure(rows: list[dict], title: str) -> Figure:
    """Test accuracy per layer above; below, the forward cost up to each layer and its feature dimension."""
    fig = new_figure(10, 6.5)
    (a1, a2) = fig.subplots(2, 1, sharex=True)
    xs = np.arange(len(rows))
    a1.plot(xs, [r["accuracy"] for r in rows], "o-", label="test accuracy")
    a1.set_ylabel("test accuracy")
    a1.grid(alpha=0.3)
    a1.set_title(title, fontsize=9)
    a1.legend(loc="lower right")
    a2.bar(xs, [r["ms_per_image"] for r in rows], color="tab:gray", label="forward cost up to the layer")
    a2.set_ylabel("ms per image")
    a2b = a2.twinx()
    a2b.plot(xs, [r["dim"] for r in rows], "s--", color="tab:orange", label="feature dimension")
    a2b.set_yscale("log")
    a2b.set_ylabel("feature dimension")
    a2.set_xticks(xs, [r["layer"] for r in rows], rotation=60, ha="right", fontsize=8)
    a2.legend(loc="upper left", fontsize=8)
    a2b.legend(loc="upper right", fontsize=8)
    return fig


def pooling_figure(rows: list[dict], title: str) -> Figure:
    """Test accuracy of each layer and pooling, with and without L2 normalisation (rows in pairs: L2 first)."""
    fig = new_figure(9, 4)
    ax = fig.subplots()
    labels = [f"{r['layer']} {r['pool']}" for r in rows if r["l2"]]
    xs = np.arange(len(labels))
    ax.bar(xs - 0.2, [r["accuracy"] for r in rows if r["l2"]], 0.4, label="with L2")
    ax.bar(xs + 0.2, [r["accuracy"] for r in rows if not r["l2"]], 0.4, label="without L2")
    ax.set_xticks(xs, labels, rotation=30, ha="right")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(max(0, min(r["accuracy"] for r in rows) - 0.05), 1)
    ax.legend()
    ax.set_title(title, fontsize=9)
    return fig


def gray_figure(rows: list[dict], title: str) -> Figure:
    """Test accuracy and mean |conv1 output| of each way to feed a gray image to an RGB network."""
    fig = new_figure(9, 3.5)
    (a1, a2) = fig.subplots(1, 2)
    colors = ["tab:blue", "tab:orange", "tab:green"]
    a1.bar([r["gray"] for r in rows], [r["accuracy"] for r in rows], color=colors)
    a1.set_ylabel("test accuracy")
    a1.set_ylim(max(0, min(r["accuracy"] for r in rows) - 0.05), 1)
    a2.bar([r["gray"] for r in rows], [r["conv1_mean_abs"] for r in rows], color=colors)
    a2.set_ylabel("mean |conv1 output|")
    fig.suptitle(title, fontsize=9)
    return fig


def c_figure(rows: list[dict], title: str) -> Figure:
    """Cross-validated (training set) and test accuracy over the C grid, the C chosen by cross-validation marked."""
    grid = [r["C"] for r in rows]
    chosen = next(r["C"] for r in rows if r["chosen_by_cv"])
    fig = new_figure(7, 4)
    ax = fig.subplots()
    ax.semilogx(grid, [r["cv_accuracy_on_train"] for r in rows], "o-", label="5-fold CV accuracy (train only)")
    ax.semilogx(grid, [r["test_accuracy"] for r in rows], "s--", label="test accuracy (reported only)")
    ax.axvline(chosen, color="k", ls=":", label=f"chosen by CV: C={chosen}")
    ax.set_xlabel("C")
    ax.set_ylabel("accuracy")
    ax.legend()
    ax.set_title(title, fontsize=9)
    return fig


def classifiers_figure(rows: list[dict], title: str) -> Figure:
    """Test accuracy of each classifier, labelled with its accuracy and fit time."""
    fig = new_figure(7, 3.5)
    ax = fig.subplots()
    ax.bar([r["classifier"] for r in rows], [r["accuracy"] for r in rows])
    for i, r in enumerate(rows):
        ax.text(i, r["accuracy"], f"{r['accuracy']:.3f}\n{r['fit_seconds']:.1f}s fit", ha="center", va="bottom",
                fontsize=8)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(max(0, min(r["accuracy"] for r in rows) - 0.1), 1.02)
    ax.set_title(title, fontsize=9)
    return fig


def pca_figure(rows: list[dict], title: str) -> Figure:
    """Test accuracy and fit time over the dimensions kept by PCA (the last point: no PCA)."""
    fig = new_figure(7, 4)
    ax = fig.subplots()
    ax.semilogx([r["pca_dims"] for r in rows], [r["accuracy"] for r in rows], "o-", base=2)
    ax.set_xlabel("dimensions after PCA (last point: no PCA)")
    ax.set_ylabel("test accuracy")
    ax2 = ax.twinx()
    ax2.semilogx([r["pca_dims"] for r in rows], [r["fit_seconds"] for r in rows], "s--", color="tab:gray", base=2)
    ax2.set_ylabel("fit seconds", color="tab:gray")
    ax.set_title(title, fontsize=9)
    return fig


def backbones_figure(rows: list[dict]) -> Figure:
    """Test accuracy of each backbone's features (blue) and of their concatenations (green)."""
    fig = new_figure(9, 0.45 * len(rows) + 1.5)
    ax = fig.subplots()
    ax.barh(range(len(rows)), [r["accuracy"] for r in rows], color=["tab:blue" if r["images_per_s"] else "tab:green"
                                                                     for r in rows])
    ax.set_yticks(range(len(rows)), [r["features"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(max(0, min(r["accuracy"] for r in rows) - 0.05), 1)
    ax.set_xlabel("test accuracy (blue: one backbone, green: concatenations)")
    for i, r in enumerate(rows):
        ax.text(r["accuracy"], i, f" {r['accuracy']:.3f}", va="center", fontsize=8)
    return fig


def protocol_figure(rows: list[dict], title: str) -> Figure:
    """Mean ± std test accuracy over the splits of each evaluation protocol."""
    fig = new_figure(5, 3.5)
    ax = fig.subplots()
    ax.bar([r["protocol"] for r in rows], [r["accuracy"] for r in rows], yerr=[r["accuracy_std"] for r in rows],
           capsize=6)
    ax.set_ylabel("test accuracy (mean ± std over splits)")
    ax.set_ylim(max(0, min(r["accuracy"] for r in rows) - 0.1), 1)
    ax.set_title(title, fontsize=9)
    return fig


def pretraining_figure(rows: list[dict], chance: float, title: str) -> Figure:
    """Test accuracy with ImageNet-pretrained and with random weights (rows in that order), chance marked."""
    fig = new_figure(6, 3.5)
    ax = fig.subplots()
    ax.bar(["ImageNet-pretrained", "random weights"], [r["accuracy"] for r in rows], color=["tab:blue", "tab:red"])
    ax.axhline(chance, color="k", ls=":", label="chance")
    ax.set_ylabel("test accuracy")
    ax.legend()
    ax.set_title(title, fontsize=9)
    return fig


def _cv_and_test_bars(ax, labels: list[str], rows: list[dict], chosen_key: str = "chosen") -> None:
    """Horizontal bars: what chooses (CV accuracy on train, or accuracy on a validation split carved from train;
    light) and test accuracy (dark) per row; the chosen row starred."""
    ys = np.arange(len(rows))
    chooses = [r["cv_accuracy"] if r.get("cv_accuracy") is not None else r["val_accuracy"] for r in rows]
    basis = "5-fold CV on train" + (", or validation split" if any(r.get("val_accuracy") for r in rows) else "")
    ax.barh(ys - 0.2, chooses, 0.4, color="tab:gray", label=basis + " (chooses)")
    ax.barh(ys + 0.2, [r["test_accuracy"] for r in rows], 0.4, color="tab:blue", label="test (reported once)")
    ax.set_yticks(ys, [("★ " if r.get(chosen_key) else "") + lab for lab, r in zip(labels, rows)], fontsize=8)
    ax.invert_yaxis()
    lo = min(min(c, r["test_accuracy"]) for c, r in zip(chooses, rows))
    ax.set_xlim(max(0, lo - 0.03), 1)
    for i, r in enumerate(rows):
        ax.text(r["test_accuracy"], i + 0.2, f" {r['test_accuracy']:.4f}", va="center", fontsize=7)
    ax.set_xlabel("accuracy")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.04), ncol=2, fontsize=8)


def fusion_figure(rows: list[dict], weights: list[dict], title: str) -> Figure:
    """Members, their concatenation and late fusions (CV and test accuracy); right: the fusion weights."""
    fig = new_figure(11, 0.45 * len(rows) + 2)
    a1, a2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1.3]})
    _cv_and_test_bars(a1, [r["features"] for r in rows], rows)
    fig.suptitle(title, fontsize=9)
    members = [r["features"] for r in rows if r["kind"] == "member"]
    for k, w in enumerate(weights):
        a2.barh(np.arange(len(members)) + 0.4 * k - 0.2, [w[m] for m in members], 0.4, label=w["combiner"])
    a2.set_yticks(np.arange(len(members)), members, fontsize=7)
    a2.invert_yaxis()
    a2.set_xlabel("weight (unit-std decision values)")
    a2.legend(fontsize=7)
    return fig


def augment_figure(rows: list[dict], title: str) -> Figure:
    """CV and test accuracy of each augmentation variant, labelled with its extraction cost (passes)."""
    fig = new_figure(9, 0.5 * len(rows) + 1.8)
    ax = fig.subplots()
    labels = [f"{r['variant']}{' · test ' + r['test'] if 'test' in r else ''} ({r['passes']:g}×)" for r in rows]
    _cv_and_test_bars(ax, labels, rows)
    fig.suptitle(title, fontsize=9)
    return fig


def _title(record: StudyRecord, *parts: str) -> str:
    """The model's label, the layers and pooling the study ran on, then ``parts``, from the record's provenance."""
    prov = record.provenance
    layers = "+".join(prov.config.get("layers") or [])
    pool = prov.config.get("pool", "")
    return " · ".join(p for p in (prov.label or prov.model, f"{layers} {pool}".strip(), *parts) if p)


def study_figure(record: StudyRecord) -> Figure:
    """The figure of any study, drawn from its record alone (rows, tables, provenance)."""
    prov, rows, name = record.provenance, record.rows, record.study
    classifier = prov.classifier or prov.config.get("classifier", "")
    if name == "layers":
        return layers_figure(rows, " · ".join([prov.label, f"{prov.config.get('pool')} pooling"
                                                             f"{' + L2' if prov.l2 else ''}", classifier]))
    if name == "pooling":
        return pooling_figure(rows, _title(record, classifier))
    if name == "gray":
        return gray_figure(rows, _title(record))
    if name == "C":
        return c_figure(rows, _title(record, classifier))
    if name == "classifiers":
        return classifiers_figure(rows, _title(record, f"C={prov.C}"))
    if name == "pca":
        return pca_figure(rows, _title(record, classifier))
    if name == "backbones":
        return backbones_figure(rows)
    if name == "protocol":
        return protocol_figure(rows, _title(record))
    if name == "pretraining":
        classes = prov.dataset.classes if prov.dataset else []
        return pretraining_figure(rows, 1 / len(classes) if classes else 0.0, _title(record, classifier))
    if name == "fusion":
        return fusion_figure(rows, record.tables.get("fusion_weights", []),
                             f"{classifier} per member · C by 5-fold CV on train")
    if name in ("tta", "augment"):
        return augment_figure(rows, _title(record, classifier))
    if name == "orderless":
        return orderless_figure(rows, f"{prov.label} · {classifier} C={prov.C}")
    raise ValueError(f"no figure for study {name!r}")
