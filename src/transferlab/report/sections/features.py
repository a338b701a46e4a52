"""Part 2 of the practical, which features: the impact of the layer (q8) and grayscale input for an RGB network (q9)."""
from __future__ import annotations

from pathlib import Path

from transferlab.report.inputs import Source
from transferlab.report.sections.common import PART2, QUESTIONS, Context, Section, Todo, best, find_row, num, row_label, scored
from transferlab.report.sections.studies import study_view

# what must be equal for two runs to differ only by their layers
_SAME_SETTING = ("model", "weights", "pool", "l2", "gray", "classifier", "C", "protocol", "limit_per_class", "data")


def _section(qid: str, data: dict, todo: Todo | None) -> Section:
    return Section(PART2, qid, QUESTIONS[qid][0], f"{qid}.html.j2",
                   {"question": QUESTIONS[qid][1], "missing": todo, **data}, [todo] if todo else [])


def layer_runs(ctx: Context) -> list[Source]:
    """Runs that differ only by their layers (the same model, weights, pooling, classifier …)."""
    groups: dict[tuple, list[Source]] = {}
    for r in ctx.inputs.runs:
        groups.setdefault(tuple(str(r.provenance.config.get(k)) for k in _SAME_SETTING), []).append(r)
    largest = max(groups.values(), key=len, default=[])
    return largest if len({"+".join(r.provenance.layers) for r in largest}) > 1 else []


def q8(ctx: Context) -> Section:
    studies = ctx.studies("layers")
    found = []
    for st in studies:
        b, (_, rows) = best(st.record), scored(st.record)
        if not b or not rows:
            continue
        combos = st.record.tables.get("combinations", [])
        top = max(combos, key=lambda c: num(c.get("accuracy")) or 0) if combos else None
        found.append({"study": st, "best": b[0], "best_acc": b[1], "best_label": row_label(st.record, b[0]),
                      "first": rows[0], "last": rows[-1],
                      "combination": top, "gain": (num(top.get("accuracy")) or 0) - b[1] if top else None})
    runs = layer_runs(ctx)
    todo = None if found or runs else Todo("q8", "accuracy, dimension and cost for each layer (the layer study)",
                                           ctx.study_cmd("layers"))
    return _section("q8", {"found": found, "runs": runs, "studies": [study_view(st) for st in studies]}, todo)


def q9(ctx: Context) -> Section:
    gc = ctx.analyses.gray_check
    data = {"check": gc, "image_name": Path(gc.image).name if gc else None,
            "check_sid": ctx.computed["gray_check"].sid if gc else None,
            "by_mode": {r.gray: r for r in gc.rows} if gc else {}, "data_hint": ctx.data_hint}
    studies = ctx.studies("gray")
    data["gray_studies"] = []
    for st in studies:
        col = scored(st.record)[0]
        rep, fold, mean = (find_row(st.record, gray=m) for m in ("replicate", "conv1-sum", "conv1-mean"))
        if col and rep and fold:
            data["gray_studies"].append({
                "study": st, "col": col, "replicate": rep, "sum": fold, "mean": mean,
                "same": abs((num(rep.get(col)) or 0) - (num(fold.get(col)) or 0)) < 1e-9,
                "diff": num(fold.get("max_rel_diff_vs_replicate"))})
    data["gray_run"] = next((r for r in ctx.inputs.runs if r.provenance.gray), None)
    data["studies"] = [study_view(st) for st in studies]
    todo = None if studies else Todo("q9", "accuracy with each gray mode (the gray study)", ctx.study_cmd("gray"))
    return _section("q9", data, todo)
