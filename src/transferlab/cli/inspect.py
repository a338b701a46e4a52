"""``transferlab inspect MODEL``: layers, output shapes and parameter counts, without loading any weights."""
from __future__ import annotations

import json
import sys

from transferlab.analysis.summary import format_summary, summarize
from transferlab.plots.architecture import params_figure


def run(args) -> int:
    s = summarize(args.model, trust_pickle=args.trust_pickle)
    print(json.dumps(s, indent=1) if args.json else format_summary(s))
    if args.figure:
        print(f"figure: {params_figure(s, args.figure)}", file=sys.stderr if args.json else sys.stdout)
    return 0
