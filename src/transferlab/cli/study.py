"""``transferlab study NAME``: one of the practical's questions, answered with a measured table and figure."""
from __future__ import annotations

import time
from pathlib import Path

from transferlab.options import STUDIES
from transferlab.cli.run import LAYER_HELP, add_classifier_args, add_extraction_args, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("study", help="run one of the practical's studies (" + ", ".join(STUDIES) + ")")
    p.add_argument("name", choices=STUDIES, help="the study: which question of the practical it answers")
    add_extraction_args(p)
    p.add_argument("--layer", nargs="+", default=None,
                   help="layers the study uses; the layers and backbones studies choose their own " + LAYER_HELP)
    add_classifier_args(p)
    p.add_argument("--out", default=None, help="output folder (default studies/<name>-<time>)")


def run(args) -> int:
    from tabulate import tabulate

    from transferlab.workflows.studies import run_study

    cfg = config_from_args(args, layers=args.layer)
    out = Path(args.out or f"studies/{args.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    record = run_study(args.name, cfg, out, log=print)
    print(record.question)
    print(tabulate([[r.get(c) for c in record.columns] for r in record.rows], headers=record.columns, floatfmt=".4g"))
    for note in record.notes:
        print("·", note)
    print(f"saved {out / 'study.json'} and {out / 'study.png'}")
    return 0
