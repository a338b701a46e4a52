"""The one reader of record files: :func:`read_record` types a file by its name, :func:`parse_record` reads
bytes already loaded."""
from __future__ import annotations

import json
from pathlib import Path

from transferlab.provenance.base import RecordError
from transferlab.provenance.finetune import FINETUNE_FILE, FinetuneRecord
from transferlab.provenance.run import RUN_FILE, RunRecord
from transferlab.provenance.study import STUDY_FILE, StudyRecord

RECORDS = {RUN_FILE: RunRecord, STUDY_FILE: StudyRecord, FINETUNE_FILE: FinetuneRecord}
Record = RunRecord | StudyRecord | FinetuneRecord


def parse_record(kind: type[Record], raw: bytes, path: str | Path) -> Record:
    """The record of type ``kind`` in the bytes ``raw`` of file ``path``; RecordError names what is wrong."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(path, f"unreadable JSON ({e})") from None
    if not isinstance(data, dict):
        raise RecordError(path, "not a JSON object")
    try:
        return kind.from_dict(data)
    except (ValueError, TypeError) as e:
        raise RecordError(path, str(e)) from None


def read_record(path: str | Path) -> Record:
    """The record in ``path`` (result.json, study.json or finetune.json), typed by its file name."""
    path = Path(path)
    if path.name not in RECORDS:
        raise RecordError(path, f"not one of {', '.join(RECORDS)}")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RecordError(path, f"unreadable ({e.strerror or e})") from None
    return parse_record(RECORDS[path.name], raw, path)
