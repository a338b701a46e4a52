"""The whole report: records found in folders, what the report computes itself, the page written."""
from __future__ import annotations

import shlex
from pathlib import Path

from transferlab.analysis import analyse
from transferlab.report.inputs import data_hint, dataset_root, find_inputs
from transferlab.report.render import ReportInfo, render_report


def build_report(paths, out: str | Path, data: str | Path | None = None, compute: bool = True, samples_dir=None,
                 command: str | None = None, title: str | None = None, log=None) -> ReportInfo:
    """Find the records in ``paths``, compute what the report computes itself (only the architecture without
    ``compute``), and write the page to ``out``."""
    inputs = find_inputs(paths)
    root = dataset_root(inputs, data)
    analyses = analyse(root, samples_dir, networks=compute, log=log, models=inputs.models)
    return render_report(inputs, analyses, out, command or "transferlab report " + shlex.join(map(str, paths)),
                         data_root=root, data_hint=data_hint(inputs, data), title=title)
