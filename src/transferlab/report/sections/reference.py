"""The closing sections: this report's numbers beside the practical's reference figures, the commands that would
complete it, and the provenance of every number."""
from __future__ import annotations

from transferlab.plots import data_uri
from transferlab.plots.bars import bar_figure
from transferlab.provenance import FinetuneRecord, RunRecord
from transferlab.report.inputs import Source
from transferlab.report.sections.common import FULL_15SCENE, Context, Section, Todo, best, row_label

# The practical's reference figures (../shared/PRACTICAL.md and ASSETS.md), quoted, not measured here.
REFERENCE = [
    ("VGG16 relu6 + L2 + LinearSVC (best published answers to the practical)", 0.91, "≈ 0.91", "fixed 1,500 / 2,985"),
    ("VGG16 relu7 + L2 + LinearSVC", 0.90, "≈ 0.90", "fixed 1,500 / 2,985"),
    ("VGG16 fc8 + L2 + LinearSVC", 0.88, "≈ 0.88", "fixed 1,500 / 2,985"),
    ("ViT-B/16 backbone", 0.93, "≈ 0.93", "fixed 1,500 / 2,985"),
    ("Spatial pyramid matching (Lazebnik et al. 2006)", 0.814, "0.814", "random 100 per class"),
    ("ImageNet-trained CNN features (literature)", 0.85, "0.84–0.86", "random 100 per class"),
    ("Places-trained CNN features (literature)", 0.91, "0.90–0.92", "random 100 per class"),
    ("Best multi-scale or ensemble methods", 0.9575, "0.95–0.965", "random 100 per class"),
    ("VGG16 pool5 avg + LinearSVC, offline conv weights (ASSETS.md)", 0.884, "0.884",
     "train 1,500, first 995 test images"),
    ("EfficientNet-Lite0 avg-pooled + LinearSVC, offline weights (ASSETS.md)", 0.918, "0.918",
     "train 1,500, first 995 test images"),
]
PART = "Reference"


def reference(ctx: Context) -> Section:
    ours = []
    for r in ctx.inputs.runs:
        prov, r0 = r.provenance, r.record.runs[0]
        full = (prov.protocol == "fixed" and r0.test_images == FULL_15SCENE["test"]
                and r0.train_images == FULL_15SCENE["train"])
        ours.append({"name": f"{r.sid} {prov.model or '?'} {'+'.join(prov.layers)} {prov.pool or ''}",
                     "accuracy": r.record.accuracy, "protocol": f"{prov.protocol} {r0.train_images} / {r0.test_images}",
                     "full": full, "sid": r.sid})
    for st in ctx.inputs.studies:
        b = best(st.record)
        if b:
            prov = st.provenance
            ds = prov.dataset
            ours.append({"name": f"{st.sid} study {st.record.study}: {row_label(st.record, b[0])}"[:60],
                         "accuracy": b[1],
                         "full": prov.protocol == "fixed" and bool(ds) and ds.test == FULL_15SCENE["test"],
                         "protocol": f"{prov.protocol or '?'} {(ds and ds.train) or '?'} / {(ds and ds.test) or '?'}",
                         "sid": st.sid})
    figure = bar_figure([n for n, *_ in REFERENCE] + [o["name"][:70] for o in ours],
                        [v for _, v, *_ in REFERENCE] + [o["accuracy"] for o in ours],
                        "15 Scene accuracy: reference figures and this report",
                        colors=["tab:gray"] * len(REFERENCE) + ["tab:blue"] * len(ours),
                        legend=[("tab:gray", "reference (quoted)"), ("tab:blue", "measured here")])
    return Section(PART, "reference", "Comparison with reference figures", "reference.html.j2",
                   {"reference": REFERENCE, "ours": ours, "figure": data_uri(figure)})


def todo(sections: list[Section]) -> Section:
    """Every missing part of the sections before it, once each, with its command."""
    items: dict[tuple[str, str], Todo] = {}
    for s in sections:
        for t in s.todo:
            items.setdefault((t.what, t.command), t)
    return Section(PART, "todo", "To complete this report", "todo.html.j2", {"entries": list(items.values())})


def _described(src: Source) -> dict:
    """The values of a source's provenance facts that are not plain fields of its records."""
    rec, prov, ds = src.record, src.provenance, src.provenance.dataset
    out = {"src": src, "model": prov.label or prov.model or (rec.model if isinstance(rec, FinetuneRecord) else None),
           "dataset": f"{ds.root or '?'}: {ds.images or '?'} images, train {ds.train or '?'}, test {ds.test or '?'}"
           if ds else None}
    if isinstance(rec, RunRecord):
        bad = rec.extraction.bad_files
        out["bad_files"] = f"{len(bad)}" + (": " + ", ".join(b.path for b in bad[:5]) if bad else "")
        out["matched"] = "; ".join(f"{k}: {'/'.join(v)}" for k, v in ds.matched_folders.items()) if ds else None
    return out


def provenance(ctx: Context) -> Section:
    return Section(PART, "provenance", "Provenance of every number", "provenance.html.j2",
                   {"sources": [_described(s) for s in ctx.inputs.all()], "computed": list(ctx.computed.values()),
                    "meta": ctx.meta, "skipped": ctx.inputs.skipped})
