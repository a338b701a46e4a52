"""The report's inputs: run, study and fine-tune records found in folders, each with an id, a title and the command
that reproduces it."""
from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from transferlab.config import RunConfig
from transferlab.deploy.folder import SETTINGS
from transferlab.provenance import (RECORDS, FinetuneRecord, Provenance, RecordError, Record, RunRecord, StudyRecord,
                          parse_record)

DEPLOY_SPEED = "deploy_speed.json"  # what benchmarks/deploy_speed.py writes: a saved model's export, speed, agreement
KINDS = {RunRecord: ("run", "R"), StudyRecord: ("study", "S"), FinetuneRecord: ("finetune", "F")}


@dataclass
class Source:
    """One input record, its file and the command that made it; ``sid`` (R1, S1, F1 …) is how the page cites it."""

    sid: str
    record: Record
    path: Path
    sha256: str
    title: str = ""
    command: str = ""

    @property
    def kind(self) -> str:
        return KINDS[type(self.record)][0]

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def provenance(self) -> Provenance:
        return self.record.provenance

    @property
    def synthetic(self) -> bool:
        return self.record.synthetic is not None


@dataclass
class Inputs:
    runs: list[Source] = field(default_factory=list)
    studies: list[Source] = field(default_factory=list)
    finetunes: list[Source] = field(default_factory=list)
    models: list[Path] = field(default_factory=list)  # saved model folders (`transferlab run --save`)
    deploys: list[Path] = field(default_factory=list)  # deploy_speed.json records
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)

    def all(self) -> list[Source]:
        return self.runs + self.studies + self.finetunes


def _record_files(given: Path, inputs: Inputs) -> list[Path]:
    if not given.exists():
        inputs.skipped.append((str(given), "no such file or folder"))
        return []
    if given.is_file():
        if given.name not in RECORDS:
            inputs.skipped.append((str(given), f"not one of {', '.join(RECORDS)}"))
            return []
        return [given]
    files = [given / n for n in RECORDS if (given / n).is_file()]
    files = files or sorted(f for n in RECORDS for f in given.rglob(n))
    if not files and not any(given.rglob(SETTINGS)):
        inputs.skipped.append((str(given), f"holds no {', '.join(RECORDS)} nor a saved model"))
    return files


def find_inputs(paths) -> Inputs:
    """Run, study and fine-tune records in ``paths``: folders holding result.json / study.json / finetune.json,
    those files themselves, or folders of such folders (searched recursively); and the saved model folders there."""
    inputs, seen = Inputs(), set()
    groups = {RunRecord: inputs.runs, StudyRecord: inputs.studies, FinetuneRecord: inputs.finetunes}
    for given in map(Path, paths):
        inputs.models += [] if not given.is_dir() else [f.parent for f in sorted(given.rglob(SETTINGS))]
        inputs.deploys += [] if not given.is_dir() else sorted(given.rglob(DEPLOY_SPEED))
        for f in _record_files(given, inputs):
            if f.resolve() in seen:
                continue
            seen.add(f.resolve())
            raw = f.read_bytes()
            try:
                record = parse_record(RECORDS[f.name], raw, f)
            except RecordError as e:
                inputs.skipped.append((str(f), e.reason))
                continue
            group = groups[type(record)]
            src = Source(f"{KINDS[type(record)][1]}{len(group) + 1}", record, f, hashlib.sha256(raw).hexdigest())
            src.title, src.command = _title(src), _command(src)
            group.append(src)
    return inputs


def _title(src: Source) -> str:
    rec, prov = src.record, src.provenance
    numerics = prov.extra.get("numerics", "fp32")
    inexact = f" · {numerics} features" if numerics != "fp32" else ""  # bf16, fp16, int8: labelled
    if isinstance(rec, RunRecord):
        return (f"{prov.label or prov.model or '?'} · {'+'.join(prov.layers)} {prov.pool or ''} · "
                f"{prov.classifier or ''}{inexact}")
    if isinstance(rec, StudyRecord):
        return f"study {rec.study} · {prov.label or prov.model}{inexact}"
    return f"fine-tuning {rec.model or prov.model or '?'} ({rec.mode or '?'})"


def _quoted(args: list[str]) -> str:
    return " ".join(shlex.quote(str(a)) for a in args)


def run_command(prov: Provenance, out: Path | None = None) -> str:
    """The ``transferlab run`` command line of a run's recorded configuration (non-default options only)."""
    cfg = prov.config
    if not cfg.get("data"):
        return ""
    default = RunConfig(data="")
    args = ["transferlab", "run", "--data", cfg["data"], "--model", cfg.get("model", default.model),
            "--weights", cfg.get("weights", default.weights), "--layer", *cfg.get("layers", ["pool5"])]
    flags = [("pool", "--pool"), ("gray", "--gray"), ("resize", "--resize"), ("classifier", "--classifier"),
             ("C", "--C"), ("pca", "--pca"), ("protocol", "--protocol"), ("train_per_class", "--train-per-class"),
             ("limit_per_class", "--limit-per-class"), ("seed", "--seed"), ("runtime", "--runtime"),
             ("calibration_images", "--calibration-images"),
             ("device", "--device")]
    for key, flag in flags:
        if key in cfg and cfg[key] != getattr(default, key) and cfg[key] is not None:
            args += [flag, cfg[key]]
    if cfg.get("l2") is False:
        args.append("--no-l2")
    if cfg.get("standardize"):
        args.append("--standardize")
    if out is not None:
        args += ["--out", out]
    return _quoted(args)


def _command(src: Source) -> str:
    return record_command(src.record, src.folder)


def record_command(rec: Record, out: Path | None = None) -> str:
    """The command that made ``rec``: the one it recorded, else rebuilt from its configuration (with ``--out out``
    when ``out`` is given)."""
    prov = rec.provenance
    cfg = prov.config
    if isinstance(rec, StudyRecord) and rec.command:
        return rec.command
    if prov.command:
        return prov.command
    if isinstance(rec, RunRecord):
        return run_command(prov, out)
    if isinstance(rec, FinetuneRecord) and cfg.get("data"):
        args = ["transferlab", "finetune", "--data", cfg["data"], "--model", cfg.get("model", rec.model),
                "--weights", cfg.get("weights", "auto"), "--mode", cfg.get("mode", rec.mode or "head")]
        for key, flag in (("epochs", "--epochs"), ("limit_per_class", "--limit-per-class"), ("seed", "--seed"),
                          ("protocol", "--protocol")):
            if cfg.get(key) is not None:
                args += [flag, cfg[key]]
        return _quoted(args + (["--out", out] if out is not None else []))
    if isinstance(rec, StudyRecord) and cfg.get("data"):
        args = ["transferlab", "study", rec.study, "--data", cfg["data"], "--model", cfg.get("model"),
                "--weights", cfg.get("weights"), "--layer", *cfg.get("layers", [])]
        return _quoted(args + (["--out", out] if out is not None else []))
    return ""


def dataset_root(inputs: Inputs, data) -> Path | None:
    """The dataset folder for scene images and example thumbnails: ``data``, else the one a record names."""
    if data:
        return Path(data) if Path(data).is_dir() else None
    for src in inputs.all():
        ds = src.provenance.dataset
        if ds and ds.root and Path(ds.root).is_dir():
            return Path(ds.root)
    return None


def data_hint(inputs: Inputs, data) -> str:
    """The --data value for suggested commands: what the records used, else ``data``, else the dataset's name."""
    for src in inputs.all():
        if src.provenance.config.get("data"):
            return str(src.provenance.config["data"])
    return str(data) if data else "15scene"

