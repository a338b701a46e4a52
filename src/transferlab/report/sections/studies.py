"""Any study as a block of the page (its answer, table, further tables and figure), and Part 3 of the practical:
the studies the questions do not cover, and the ones still to run."""
from __future__ import annotations

import numpy as np

from transferlab.plots import data_uri
from transferlab.plots.bars import study_fallback_figure
from transferlab.plots.studies import study_figure
from transferlab.report.inputs import Source
from transferlab.studies.registry import STUDIES
from transferlab.report.sections.common import Context, Section, Todo, best, columns, num, pretrain_pair, row_label, scored

LEGACY_IN_QUESTIONS = {"random-vs-pretrained"}  # an earlier name of the pretraining study
SHOWN_IN_QUESTIONS = {name for name, st in STUDIES.items() if st.section != "further"} | LEGACY_IN_QUESTIONS
FURTHER = tuple((name, st.summary) for name, st in STUDIES.items() if st.section == "further")


def study_answer(st: Source) -> dict | None:
    """What the study's answer quotes; ``kind`` picks its sentence (None: the study gets no answer here)."""
    d = st.record
    col, rows = scored(d)
    b = best(d)
    if not rows or not b:
        return None
    out = {"col": col, "best": b[0], "best_acc": b[1], "best_label": row_label(d, b[0])}
    if d.study == "pooling":
        gains = []
        for row in d.rows:
            if row.get("l2") is True:
                other = next((o for o in d.rows if o.get("l2") is False and o.get("pool") == row.get("pool")
                              and o.get("layer") == row.get("layer")), None)
                if other and num(other.get(col)) is not None:
                    gains.append(num(row[col]) - num(other[col]))
        return out | {"kind": "pooling", "gains": gains, "mean_gain": float(np.mean(gains)) if gains else None}
    if d.study == "C":
        chosen = next((row for row in d.rows if row.get("chosen_by_cv")), None)
        return out | {"kind": "C", "chosen": chosen, "oracle": max(rows, key=lambda t: t[1])}
    if d.study == "pca":
        return out | {"kind": "pca", "full": next((row for row in d.rows if row.get("pca") is False), None)}
    if d.study == "protocol":
        fixed = next((row for row in d.rows if str(row.get("protocol")) == "fixed"), None)
        rnd = next((row for row in d.rows if str(row.get("protocol")).startswith("random")), None)
        if fixed and rnd:
            return out | {"kind": "protocol", "fixed": fixed, "random": rnd}
    if d.study in ("pretraining", "random-vs-pretrained") and pretrain_pair(d):
        return out | {"kind": "pretraining", "pair": pretrain_pair(d)}
    if d.study == "gray":
        return None  # answered in question 9
    worst = min(rows, key=lambda t: t[1])
    return out | {"kind": "generic", "worst_label": row_label(d, worst[0]), "worst_acc": worst[1]}


def study_view(st: Source) -> dict:
    """What the study template needs: the source, its answer, table (best rows marked), further tables, figure."""
    d = st.record
    cols = columns(d)
    hl = {i for i, r in enumerate(d.rows) if d.best and all(r.get(k) == v for k, v in d.best.items() if k in cols)}
    tables = [(key, list(dict.fromkeys(k for x in rows for k in x)), rows) for key, rows in d.tables.items()]
    fig_path = (st.folder / d.figure) if d.figure else None
    figure, own = None, False
    if fig_path and fig_path.is_file() and fig_path.resolve().parent == st.folder.resolve():
        figure, own = data_uri(fig_path.read_bytes()), True
    else:
        figure = _drawn(d)
    return {"src": st, "answer": study_answer(st), "columns": cols, "highlight": hl, "tables": tables,
            "figure": figure, "own_figure": own, "acc_col": scored(d)[0]}


def _drawn(d) -> str | None:
    """The study's figure drawn from its record; a bar chart of its accuracy column for a record this version's
    figures do not know (another study, or rows of another shape)."""
    if d.study in STUDIES:
        try:
            return data_uri(study_figure(d))
        except (KeyError, TypeError, ValueError, IndexError):
            pass
    col, rows = scored(d)
    if not rows:
        return None
    return data_uri(study_fallback_figure([row_label(d, r) for r, _ in rows], [v for _, v in rows],
                                          f"study {d.study}: {col}", col))


def further(ctx: Context) -> Section:
    present = {st.record.study for st in ctx.inputs.studies}
    absent = [(what, ctx.study_cmd(name), name) for name, what in FURTHER if name not in present]
    return Section("Part 3 — going further", "further", "SVM, C, pooling, classifiers, PCA, networks, protocol",
                   "further.html.j2", {"studies": [study_view(st) for st in ctx.inputs.studies
                                                   if st.record.study not in SHOWN_IN_QUESTIONS],
                                       "absent": absent},
                   [Todo("further", f"{what} (study {name})", command) for what, command, name in absent])
