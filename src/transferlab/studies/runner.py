"""Running a study by name: the defaults its settings leave open are chosen (and said) first, then its function
returns its record."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from transferlab.config import RunConfig
from transferlab.data.datasets import load_dataset
from transferlab.experiment import default_layers, fill_defaults
from transferlab.models.builder import load_run_model
from transferlab.provenance import StudyRecord
from transferlab.studies.registry import STUDIES


def run_study(name: str, cfg: RunConfig, log: Callable[[str], None] = lambda msg: None,
              options: dict | None = None) -> StudyRecord:
    """Study ``name``'s record on ``cfg`` (not written: ``record.write(folder / STUDY_FILE)``). The defaults ``cfg``
    leaves open (layers, protocol ``auto``) are chosen first and said through ``log``; a study that picks its own
    layers gets none. ``options``: the study's own keyword arguments (``variants`` of tta and augment,
    ``finetuned`` of fusion)."""
    if name not in STUDIES:
        raise KeyError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}")
    study = STUDIES[name]
    dataset = load_dataset(cfg.data, cfg.limit_per_class)
    cfg, _ = fill_defaults(replace(cfg, layers=[]) if study.own_layers and not cfg.layers else cfg,
                           lambda: default_layers(load_run_model(cfg)), dataset.has_fixed_split, log, dataset.root)
    return study.load()(cfg, **(options or {}))
