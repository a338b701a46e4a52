"""``transferlab study NAME``: one of the practical's questions, answered with a measured table and figure."""
from __future__ import annotations

import time
from pathlib import Path

from tabulate import tabulate

from ..classify import CLASSIFIERS
from ..study import STUDIES, run_study
from .run import add_extraction_args, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("study", help="run one of the practical's studies (" + ", ".join(STUDIES) + ")")
    p.add_argument("name", choices=list(STUDIES))
    add_extraction_args(p)
    p.add_argument("--layer", nargs="+", default=None, help="layers the study uses (default: the model's last "
                                                            "pretrained map: pool5 / head)")
    p.add_argument("--pool", default="avg")
    p.add_argument("--no-l2", action="store_true")
    p.add_argument("--classifier", default="linear-svm", choices=CLASSIFIERS)
    p.add_argument("--C", default="1.0")
    p.add_argument("--protocol", default="fixed")
    p.add_argument("--train-per-class", type=int, default=100)
    p.add_argument("--out", default=None, help="output folder (default studies/<name>-<time>)")


def default_layers(model: str) -> list[str]:
    return ["head"] if model.startswith("efficientnet") else ["pool5"]


def run(args) -> int:
    cfg = config_from_args(args, layers=args.layer or default_layers(args.model), pool=args.pool,
                           l2=not args.no_l2, classifier=args.classifier,
                           C="auto" if args.C == "auto" else float(args.C), protocol=args.protocol,
                           train_per_class=args.train_per_class)
    out = Path(args.out or f"studies/{args.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    record = run_study(args.name, cfg, out)
    print(record.question)
    print(tabulate([[r.get(c) for c in record.columns] for r in record.rows], headers=record.columns, floatfmt=".4g"))
    for note in record.notes:
        print("·", note)
    print(f"saved {out / 'study.json'} and {out / 'study.png'}")
    return 0
