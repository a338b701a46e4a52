"""``transferlab run … --save DIR``: the classifier a run fitted (not fitted again), the identity of its network, its
feature settings and training images, and its card, as a model folder that ``classify`` and
:func:`~transferlab.deploy.saved.load_classifier` read."""
from __future__ import annotations

import time
from pathlib import Path

from transferlab.classify.linear import LINEAR
from transferlab.deploy.backbone import backbone_settings
from transferlab.deploy.card import make_card, write_card
from transferlab.deploy.folder import (
    ALL_FILES,
    BACKBONE,
    CARD_JSON,
    CARD_MD,
    CLASSIFIER,
    CLASSIFIER_SKOPS,
    FORMAT,
    SETTINGS,
    TRAINING,
    write_json,
)
from transferlab.deploy.params import PROBABILITIES, save_classifier
from transferlab.deploy.training import summary, training_images
from transferlab.experiment import TrainedRun
from transferlab.features.quantize import training_calibration
from transferlab.provenance import RunRecord


def scores_kind(classifier: str) -> str:
    return "probabilities" if classifier in PROBABILITIES else "decision values"


def run_card(record: RunRecord, training: dict, record_path: Path | None) -> dict:
    """The card of a saved run: the first split's measured scores, and the run's provenance."""
    prov, run0, cfg = record.provenance, record.runs[0], record.provenance.config
    layers = "+".join(prov.layers)
    evaluation = {"protocol": prov.protocol, "test_images": run0.test_images, "accuracy": run0.accuracy,
                  "mean_class_accuracy": run0.mean_class_accuracy, "per_class_accuracy": run0.per_class_accuracy,
                  "splits": len(record.runs), "run_accuracy": record.accuracy, "run_accuracy_std": record.accuracy_std,
                  "record": str(record_path) if record_path else None}
    model = {"kind": f"{layers} {prov.pool}{' + L2' if prov.l2 else ''} features of {prov.label}, then "
                     f"{prov.classifier} (C={run0.C})",
             "label": prov.label, "classifier": prov.classifier, "scores": scores_kind(prov.classifier),
             "gray": prov.gray, "pretrained": prov.pretrained, "limit_per_class": cfg.get("limit_per_class")}
    extra = prov.extra
    provenance = {"weights": prov.weights, "weights_sha256": prov.weights_sha256,
                  "weights_source": extra.get("weights_source"), "pretrained_up_to": prov.pretrained_up_to,
                  "preprocess": extra.get("preprocess"), "gray": prov.gray, "resize": extra.get("resize"),
                  "layers": prov.layers, "pool": prov.pool, "l2": prov.l2, "numerics": extra.get("numerics"),
                  "calibration": extra.get("calibration"), "classifier": prov.classifier, "C": run0.C,
                  "pca": extra.get("pca"), "standardize": extra.get("standardize"), "seed": prov.seed,
                  "split_seed": run0.seed, "versions": prov.versions, "trained": prov.date,
                  "saved": time.strftime("%Y-%m-%d %H:%M:%S")}
    return make_card(record.classes, summary(training), evaluation, model, provenance)


def save_model(trained: TrainedRun, folder: str | Path, record_path: str | Path | None = None) -> Path:
    """Write the model folder of ``trained`` (:func:`~transferlab.experiment.train_experiment`): the fitted
    classifier of its first split, its network's identity (a user's module: its state dict), its features'
    settings, its training images and its card. ``record_path``: where the run's ``result.json`` was written.
    Returns the path of ``model.json``."""
    record = trained.record
    if trained.model is None:
        raise ValueError(f"--save needs --data: features read from a store ({record.provenance.extra.get('feature_store')}) "
                         f"come without the network that computes them for new images")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    prov, run0, cfg = record.provenance, record.runs[0], record.provenance.config
    split, name = trained.splits[0], prov.classifier
    classifier = {"name": name, "C": run0.C, "standardize": bool(cfg["standardize"]), "pca": cfg["pca"],
                  "seed": cfg["seed"], "scores": scores_kind(name),
                  "file": CLASSIFIER if name in LINEAR else CLASSIFIER_SKOPS}
    files = {classifier["file"]: save_classifier(trained.pipelines[0], classifier, folder / classifier["file"])}
    backbone = backbone_settings(trained.model, cfg["seed"], cfg["weights"], cfg["gray"], folder)
    if backbone.get("file"):
        files[BACKBONE] = backbone["sha256"]
    training = training_images(trained.dataset.root, [trained.paths[i] for i in split.train],
                               trained.labels[split.train], record.classes)
    if cfg["runtime"] == "int8":  # the same calibration images as the run's, for the same int8 graph
        root = Path(training["root"])
        training["calibration"] = [Path(p).resolve().relative_to(root).as_posix()
                                   for p in training_calibration(trained.dataset, cfg["calibration_images"])]
    files[TRAINING] = write_json(folder / TRAINING, training)
    settings = {
        "format": FORMAT, "kind": "features", "classes": list(record.classes), "backbone": backbone,
        "features": {"outputs": [list(o) for o in trained.outputs], "l2": cfg["l2"], "gray": cfg["gray"],
                     "resize": cfg["resize"], "input_size": cfg["input_size"], "runtime": cfg["runtime"],
                     "dim": record.feature_dim, "specs": prov.extra["feature_specs"]},
        "classifier": classifier,
        "split": {"protocol": prov.protocol, "index": 0, "of": len(trained.splits), "seed": split.seed,
                  "train_images": int(len(split.train)), "test_images": int(len(split.test))},
        "record": str(record_path) if record_path else None, "files": files}
    write_card(folder, run_card(record, training, Path(record_path) if record_path else None))
    for stale in set(ALL_FILES) - set(files) - {SETTINGS, CARD_JSON, CARD_MD}:  # left by an earlier save
        (folder / stale).unlink(missing_ok=True)
    write_json(folder / SETTINGS, settings)
    return folder / SETTINGS
