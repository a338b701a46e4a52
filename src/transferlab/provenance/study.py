"""The record of ``transferlab study`` (``study.json``): one question of the practical as a table of rows."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from transferlab.provenance.base import Provenance, _dicts, _json, _Record, _synthetic

STUDY_FILE = "study.json"


@dataclass
class StudyRecord(_Record):
    """``transferlab study``: one question of the practical as a table of measured rows (``study.json``).

    Rows are plain dicts because each study has its own columns; ``tables`` holds further tables (the layer
    study's ``combinations``), written as top-level keys."""

    study: str
    rows: list[dict]
    question: str = ""
    columns: list[str] = field(default_factory=list)
    best: dict | None = None
    notes: list[str] = field(default_factory=list)
    tables: dict[str, list[dict]] = field(default_factory=dict)
    figure: str | None = None
    command: str | None = None
    provenance: Provenance = field(default_factory=Provenance)
    synthetic: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> StudyRecord:
        if "rows" not in data:
            raise ValueError("not a transferlab study record: no 'rows'")
        if not isinstance(data["rows"], list):
            raise ValueError("a study record whose 'rows' is not a list")
        own = {f.name for f in fields(cls)} | {"_fixture"}
        tables = {k: _dicts(v) for k, v in data.items()
                  if k not in own and isinstance(v, list) and v and all(isinstance(x, dict) for x in v)}
        columns = data["columns"] if isinstance(data.get("columns"), list) else []
        return cls(study=str(data.get("study", "?")), rows=_dicts(data["rows"]),
                   question=str(data.get("question") or ""), columns=[str(c) for c in columns],
                   best=data["best"] if isinstance(data.get("best"), dict) else None,
                   notes=[n for n in data.get("notes") or [] if isinstance(n, str)], tables=tables,
                   figure=str(data["figure"]) if data.get("figure") else None,
                   command=str(data["command"]) if data.get("command") else None,
                   provenance=Provenance.from_dict(data.get("provenance")), synthetic=_synthetic(data))

    def to_dict(self) -> dict:
        out = _json(self)
        out.update(out.pop("tables", {}))
        return out
