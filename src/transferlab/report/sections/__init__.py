"""The sections of the page, one module per part of the practical; each builder reads typed records and returns
what its template needs (never prose or markup, never running a model)."""
from __future__ import annotations

from transferlab.report.sections.common import Context, Section
from transferlab.report.sections.features import q8, q9
from transferlab.report.sections.finetuning import q10
from transferlab.report.sections.looks import looks
from transferlab.report.sections.network import q1, q2, q3, q4
from transferlab.report.sections.reference import provenance, reference, todo
from transferlab.report.sections.studies import further
from transferlab.report.sections.summary import summary
from transferlab.report.sections.transfer import q5, q6, q7, runs


def build_sections(ctx: Context) -> list[Section]:
    """Every section in page order; 'To complete this report' gathers what the others miss."""
    sections = [build(ctx) for build in (summary, q1, q2, q3, q4, runs, q5, q6, q7)]
    sections.append(looks(ctx.analyses.looks, ctx.analyses.why_missing("looks") if ctx.inputs.models
                          else "no saved model among the inputs"))
    sections += [build(ctx) for build in (q8, q9, q10, further, reference)]
    return sections + [todo(sections), provenance(ctx)]
