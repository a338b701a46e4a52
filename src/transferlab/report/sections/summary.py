"""The page's first section: the key numbers, one line per input, and what was not used."""
from __future__ import annotations

from transferlab.report.sections.common import Context, Section, best, row_label


def summary(ctx: Context) -> Section:
    a = ctx.analyses.architecture
    studies = []
    for st in ctx.inputs.studies:
        b = best(st.record)
        if b:
            studies.append({"src": st, "label": row_label(st.record, b[0]), "accuracy": b[1]})
    return Section("", "summary", "Key results", "summary.html.j2", {
        "a": a, "arch_sid": ctx.computed["architecture"].sid if a else None, "best_run": ctx.main_run(),
        "finetunes": [ft for ft in ctx.inputs.finetunes if ft.record.test_accuracy is not None],
        "studies": studies, "inputs": ctx.inputs, "synthetic": any(s.synthetic for s in ctx.inputs.all())})
