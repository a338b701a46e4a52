"""``transferlab report RUN_OR_STUDY_DIR… --out report.html``: one self-contained HTML report of the practical."""
from __future__ import annotations

import shlex
import sys

from transferlab.report.build import build_report
from transferlab.report.markdown import write_markdown


def markdown(args) -> int:
    """``--markdown``: the measured tables of the records as one Markdown page; the page names the command that
    regenerates it, in one canonical order."""
    out = args.out or "results.md"
    title = ["--title", args.title] if args.title else []
    command = shlex.join(["transferlab", "report", "--markdown", *args.inputs, "--out", out, *title])
    info = write_markdown(args.inputs, out, command, title=args.title)
    for path, why in info.skipped:
        print(f"transferlab report: skipped {path}: {why}", file=sys.stderr)
    n = info.inputs
    print(f"results page: {info.path} ({len(n.runs)} run(s), {len(n.studies)} study(ies), "
          f"{len(n.finetunes)} fine-tuning record(s))")
    return 0


def run(args) -> int:
    if args.markdown:
        return markdown(args)
    command = "transferlab " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["report"] else None
    log = None if args.quiet else (lambda msg: print(f"  {msg}", file=sys.stderr))
    info = build_report(args.inputs, args.out or "report.html", data=args.data, compute=not args.no_compute,
                        samples_dir=args.samples_dir, command=command, title=args.title, log=log)
    for path, why in info.skipped:
        print(f"transferlab report: skipped {path}: {why}", file=sys.stderr)
    for key, err in info.computed_errors.items():
        print(f"transferlab report: {key} not computed: {err}", file=sys.stderr)
    print(f"report: {info.path} ({info.bytes / 1e6:.1f} MB; {info.runs} run(s), {info.studies} study(ies), "
          f"{info.finetunes} fine-tuning record(s))")
    if info.missing:
        print(f"{len(info.missing)} part(s) await an input; the section 'To complete this report' lists the "
              "commands")
    return 0
