"""The page: its sections in the order of the practical, rendered by the Jinja2 templates (autoescaped) with
``report.css``, written as one self-contained HTML file."""
from __future__ import annotations

import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from transferlab.analysis import Analyses
from transferlab.provenance import library_versions
from transferlab.report.formatting import FILTERS
from transferlab.report.inputs import Inputs
from transferlab.report.sections import build_sections
from transferlab.report.sections.common import ComputedSource, Context, Meta

HERE = Path(__file__).parent  # templates and CSS are package data beside this file
DEFAULT_TITLE = "Transfer learning on 15 Scene — report"


@dataclass
class ReportInfo:
    """What was written: the file, its inputs and sections, the parts awaiting an input, the computed parts that
    failed."""

    path: Path
    bytes: int
    runs: int
    studies: int
    finetunes: int
    skipped: list[tuple[str, str]]
    sections: list[str]
    missing: list[tuple[str, str, str]]  # (section id, what is missing, command)
    computed_errors: dict[str, str]


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True, undefined=StrictUndefined)
    env.filters.update(FILTERS)
    return env


def computed_sources(an: Analyses) -> dict[str, ComputedSource]:
    """The parts the report computed, cited C1, C2 … in the order the page first shows them."""
    parts = []
    if an.architecture:
        a = an.architecture
        parts.append(("architecture", f"{a.model} architecture (no weights: PyTorch meta device)",
                      {"model": a.model, "description": a.description, "input_shape": a.input_shape,
                       "method": "transferlab.analysis.summary.summarize: the architecture built on PyTorch's meta device; "
                                 "shapes and counts, no weights"}, a.command))
    if an.predictions and an.predictions.models:
        p = an.predictions
        parts.append(("predictions", "ImageNet predictions on sample photos",
                      {"images": p.images, "models": [m.provenance for m in p.models]},
                      "; ".join(m.command for m in p.models)))
    if an.activations:
        act = an.activations
        parts.append(("activations", f"{act.layer} activation maps",
                      {"image": act.image, "layer": act.layer, "model": act.provenance,
                       "test_card": "transferlab.analysis.filters.synthetic_pattern"}, act.command))
    if an.gray_check:
        gc = an.gray_check
        parts.append(("gray_check", "replicate vs conv1-sum vs conv1-mean on one gray image",
                      {"image": gc.image, "layer": gc.layer, "model": gc.provenance},
                      "transferlab report (transferlab.analysis.gray_check)"))
    return {key: ComputedSource(f"C{i}", title, data, command)
            for i, (key, title, data, command) in enumerate(parts, start=1)}


def render_report(inputs: Inputs, analyses: Analyses, out: str | Path, command: str, data_root: Path | None = None,
                  data_hint: str = "15scene", title: str | None = None) -> ReportInfo:
    """Write the report of ``inputs`` and ``analyses`` to ``out``."""
    try:
        own_version = version("transferlab")
    except PackageNotFoundError:  # run from the source tree
        own_version = "unknown"
    meta = Meta(date=time.strftime("%Y-%m-%d %H:%M:%S"), command=command, version=own_version,
                versions=library_versions(), title=title or DEFAULT_TITLE)
    ctx = Context(inputs, analyses, meta, data_root, data_hint, computed_sources(analyses))
    sections = build_sections(ctx)
    html = environment().get_template("page.html.j2").render(
        sections=sections, meta=meta, inputs=inputs, css=Markup((HERE / "report.css").read_text(encoding="utf-8")))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return ReportInfo(out, out.stat().st_size, len(inputs.runs), len(inputs.studies), len(inputs.finetunes),
                      inputs.skipped, [s.id for s in sections],
                      [(t.sid, t.what, t.command) for s in sections for t in s.todo], dict(analyses.errors))
