"""``transferlab report RUN_OR_STUDY_DIR… --out report.html``: one self-contained HTML report of the practical."""
from __future__ import annotations

import shlex
import sys



def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="one self-contained HTML report answering the practical's questions",
        description=__doc__.splitlines()[0],
        epilog="Folders are recognised by the file they hold: result.json (transferlab run), study.json "
               "(transferlab study), finetune.json (transferlab finetune); folders of such folders are searched. "
               "The report also computes VGG16's layer table, ImageNet predictions on sample photos and the first "
               "layer's activation maps itself (--no-compute skips the last two). A part without its input says "
               "which command fills it.")
    p.add_argument("inputs", nargs="*", metavar="RUN_OR_STUDY_DIR", help="run, study or fine-tune folders")
    p.add_argument("--out", default="report.html", help="the HTML file to write (default report.html)")
    p.add_argument("--data", default=None,
                   help="dataset folder for the scene images and the example thumbnails (default: the one the "
                        "runs recorded, if it exists)")
    p.add_argument("--no-compute", action="store_true",
                   help="skip the parts that run networks (predictions, activation maps, gray check)")
    p.add_argument("--samples-dir", default=None, help="where the sample photos are written (default: the cache)")
    p.add_argument("--title", default=None, help="the report's title")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args) -> int:
    from transferlab.report.build import build_report

    command = "transferlab " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["report"] else None
    log = None if args.quiet else (lambda msg: print(f"  {msg}", file=sys.stderr))
    info = build_report(args.inputs, args.out, data=args.data, compute=not args.no_compute,
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
