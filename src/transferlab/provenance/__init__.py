"""Typed records of a run (``result.json``), a study (``study.json``) and a fine-tuning (``finetune.json``): each
written by its ``write`` and read by :func:`read_record` (or :func:`parse_record`), the only places their JSON is
made or parsed.

Fields that are None are left out of the JSON (a reader sees a missing key as None), and so are the empty ones of
the descriptive records (provenance, dataset); older files, which wrote them as ``null`` or lacked them, load
unchanged. A file that is not such a record fails with one line naming it.

The package: :mod:`~transferlab.provenance.base` (the JSON writer and field reader every record shares,
:class:`Provenance`, :func:`library_versions`), one module per record (:mod:`~transferlab.provenance.run`,
:mod:`~transferlab.provenance.study`, :mod:`~transferlab.provenance.finetune`) and
:mod:`~transferlab.provenance.files`, which reads a record file by its name. Import the names from here.
"""
from __future__ import annotations

from transferlab.provenance.base import DatasetInfo, Provenance, RecordError, library_versions
from transferlab.provenance.files import RECORDS, Record, parse_record, read_record
from transferlab.provenance.finetune import FINETUNE_FILE, EpochRow, FinetuneImages, FinetuneRecord, SvmComparison
from transferlab.provenance.run import (RUN_FILE, BadFile, Extraction, Misclassified, RunRecord, Scores,
                                        SplitResult)
from transferlab.provenance.study import STUDY_FILE, StudyRecord

__all__ = ["BadFile", "DatasetInfo", "EpochRow", "Extraction", "FINETUNE_FILE", "FinetuneImages", "FinetuneRecord",
           "Misclassified", "Provenance", "RECORDS", "RUN_FILE", "Record", "RecordError", "RunRecord", "STUDY_FILE",
           "Scores", "SplitResult", "StudyRecord", "SvmComparison", "library_versions", "parse_record",
           "read_record"]
