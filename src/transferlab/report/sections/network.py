"""Part 1 of the practical, VGG16 itself: its parameters (q1), its output (q2), its predictions (q3) and its first
layer's activation maps (q4), from the parts the report computed."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from transferlab.plots import data_uri
from transferlab.plots.activations import draw_activations
from transferlab.plots.architecture import draw_params
from transferlab.plots.filters import filters_figure, pattern_figure
from transferlab.plots.predictions import draw_predictions
from transferlab.report.sections.common import PART1, QUESTIONS, Context, Section, Todo


def _section(qid: str, data: dict, todo: list[Todo] | None = None) -> Section:
    return Section(PART1, qid, QUESTIONS[qid][0], f"{qid}.html.j2", {"question": QUESTIONS[qid][1], **data},
                   todo or [])


def q1(ctx: Context) -> Section:
    a = ctx.analyses.architecture
    if a is None:
        todo = Todo("q1", f"the VGG16 architecture table ({ctx.analyses.why_missing('architecture')})",
                    "transferlab inspect vgg16")
        return _section("q1", {"missing": todo}, [todo])
    fc_rows = []
    for prev, row in zip(a.layers, a.layers[1:]):
        if row.name in a.fc_layers and row.params:
            fan_in, out = int(np.prod(prev.output_shape)), row.output_shape[0]
            fc_rows.append({"layer": row, "fan_in": fan_in, "out": out, "exact": (fan_in + 1) * out == row.params})
    main = [r for r in a.layers if r.params or r.name.startswith(("pool", "input"))]
    return _section("q1", {"a": a, "sid": ctx.computed["architecture"].sid, "fc_rows": fc_rows, "main": main,
                           "figure": data_uri(draw_params(asdict(a)), dpi=120)})


def q2(ctx: Context) -> Section:
    a, preds = ctx.analyses.architecture, ctx.analyses.predictions
    todo = None if a else Todo("q2", "the output layer of VGG16", "transferlab inspect vgg16")
    data = {"a": a, "missing": todo, "model": None}
    if a:
        data["arch_sid"] = ctx.computed["architecture"].sid
    if preds and preds.models:
        m = preds.models[0]
        data |= {"model": m, "preds_sid": ctx.computed["predictions"].sid,
                 "mass": [(r.name, sum(t.probability for t in r.top)) for r in m.rows]}
    return _section("q2", data, [todo] if todo else [])


def q3(ctx: Context) -> Section:
    preds = ctx.analyses.predictions
    if not (preds and preds.models):
        todo = Todo("q3", f"ImageNet predictions ({ctx.analyses.why_missing('predictions')})",
                    "transferlab predict efficientnet_lite0 --samples --figure predictions.png")
        return _section("q3", {"missing": todo}, [todo])
    todo = []
    if not preds.vgg16_full_cached:
        todo.append(Todo("q3", "VGG16's own ImageNet predictions (full weights file)",
                         f"transferlab predict vgg16 --weights imagenet --samples  (needs {preds.vgg16_file} in "
                         f"{preds.vgg16_path})"))
    models = []
    for m in preds.models:
        photos = [r for r in m.rows if r.scene_class is None]
        models.append({"m": m, "figure": data_uri(draw_predictions(m.results, m.label), dpi=120),
                       "k": len(m.rows[0].top) if m.rows else 5, "photos": photos,
                       "scenes": [r for r in m.rows if r.scene_class is not None],
                       "sure": [r for r in photos if r.top[0].probability >= 0.5],
                       "unsure": [r for r in photos if r.top[0].probability < 0.5]})
    return _section("q3", {"preds": preds, "sid": ctx.computed["predictions"].sid, "models": models}, todo)


def _card_sentences(picks, panels: list[str]) -> list[dict]:
    """What each picked kernel responds to most and least on the test card, from the measured responses."""
    out = []
    for pk in picks:
        v = np.array(pk.responses[:5], dtype=float)  # the disk (all orientations) left out
        if v.max() <= 0:
            continue
        v = v / v.max()
        pool = [0, 1, 2] if pk.label.startswith("edge") else [3, 4] if pk.label == "colour-opponent" \
            else list(range(5))
        lo = min(pool, key=lambda j: v[j])
        out.append({"pick": pk, "strongest": panels[int(v.argmax())], "ratio": v[lo], "weakest": panels[lo]})
    return out


def q4(ctx: Context) -> Section:
    act = ctx.analyses.activations
    if act is None:
        todo = Todo("q4", f"the first-layer activation maps ({ctx.analyses.why_missing('activations')})",
                    "transferlab activations vgg16 IMAGE --weights imagenet-conv --figure act.png")
        return _section("q4", {"missing": todo}, [todo])
    data = {"act": act, "sid": ctx.computed["activations"].sid, "image_name": Path(act.image).name,
            "figure": data_uri(draw_activations(act.crop, act.maps, act.layer,
                                                f"{act.label}: {Path(act.image).name}"), dpi=110)}
    f = data["filters"] = act.filters
    if f is not None:
        data |= {"card": _card_sentences(f.picks, f.panels),
                 "relative": [[v / (max(pk.responses) or 1) for v in pk.responses] for pk in f.picks],
                 "filters_figure": data_uri(filters_figure(f.weight, f.groups, (
                     f"the {len(f.groups)} kernels of {act.layer} ({act.label}), grouped by the rule stated in the "
                     "text")), dpi=120),
                 "pattern_figure": data_uri(pattern_figure(f.card, f.card_maps, f.weight, f.picks,
                                                           f"{act.layer} responses to a synthetic test card "
                                                           f"({act.label})"), dpi=110)}
    return _section("q4", data)
