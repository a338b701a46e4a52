"""``transferlab inspect MODEL``: layers, output shapes and parameter counts, without loading any weights."""
from __future__ import annotations

import json
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="per-layer output shapes and parameters of a model")
    p.add_argument("model", help="a model name: see `transferlab models`")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--figure", metavar="FILE.png", help="also draw parameters per layer with the FC share")


def run(args) -> int:
    from transferlab.analysis.summary import format_summary, params_figure, summarize

    s = summarize(args.model)
    print(json.dumps(s, indent=1) if args.json else format_summary(s))
    if args.figure:
        print(f"figure: {params_figure(s, args.figure)}", file=sys.stderr if args.json else sys.stdout)
    return 0
