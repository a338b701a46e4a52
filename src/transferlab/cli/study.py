"""``transferlab study NAME``: one of the practical's questions, answered with a measured table and figure."""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from tabulate import tabulate

from transferlab.cli.run import config_from_args
from transferlab.plots.base import save
from transferlab.plots.studies import study_figure
from transferlab.provenance import STUDY_FILE, StudyRecord
from transferlab.studies.runner import run_study


def save_study(record: StudyRecord, out: Path) -> Path:
    """``study.png`` drawn from the record, then ``study.json`` naming it, in ``out``."""
    save(study_figure(record), out / "study.png")
    record.figure = "study.png"
    return record.write(out / STUDY_FILE)


def run(args) -> int:
    cfg = config_from_args(args, layers=args.layer, scales=args.scales)
    out = Path(args.out or f"studies/{args.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.variants and args.name not in ("tta", "augment"):
        raise ValueError(f"--variants applies to the tta and augment studies, not {args.name}")
    if args.finetuned and args.name != "fusion":
        raise ValueError(f"--finetuned applies to the fusion study, not {args.name}")
    options = {"variants": tuple(args.variants)} if args.variants else {}
    if args.finetuned:
        options["finetuned"] = tuple(args.finetuned)
    record = run_study(args.name, cfg, log=print, options=options)
    if sys.argv[1:2] == ["study"]:  # started as `transferlab study …` (from Python, argv is not ours: the report
        record.command = "transferlab " + shlex.join(sys.argv[1:])  # rebuilds the command from the config)
    save_study(record, out)
    print(record.question)
    print(tabulate([[r.get(c) for c in record.columns] for r in record.rows], headers=record.columns, floatfmt=".4g"))
    for note in record.notes:
        print("·", note)
    print(f"saved {out / STUDY_FILE} and {out / 'study.png'}")
    return 0
