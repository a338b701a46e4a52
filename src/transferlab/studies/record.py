"""A study's record with its provenance: shared by every study module."""
from __future__ import annotations

import time
from dataclasses import asdict

from transferlab.provenance import Provenance, StudyRecord, library_versions


def make_record(name: str, question: str, cfg, model, dataset, columns, rows, best, notes,
                extra: dict | None = None, numerics: dict | None = None) -> StudyRecord:
    """Study ``name``'s record: its table, best row and notes, with the model, dataset and config it ran on."""
    provenance = Provenance.from_dict({
        **model.provenance(), "label": model.label(), "dataset": dataset.describe(), "protocol": cfg.protocol,
        "classifier": cfg.classifier, "C": cfg.C, "l2": cfg.l2, "seed": cfg.seed, "runtime": cfg.runtime,
        **(numerics or {}), "config": asdict(cfg),
        "versions": library_versions(), "date": time.strftime("%Y-%m-%d %H:%M:%S")})
    return StudyRecord(study=name, question=question, columns=columns, rows=rows, best=best, notes=notes,
                       tables=extra or {}, provenance=provenance)
