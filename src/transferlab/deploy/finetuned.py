"""A ``transferlab finetune`` folder (``model.pth`` + ``finetune.json``) as a saved model: the fine-tuned network up
to the layer that feeds its head, and that head as an exact :class:`~transferlab.classify.linear.LinearHead`
(softmax of its scores: the network's probabilities); and the card and training images ``finetune`` writes at the
end."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from torch import nn

from transferlab.classify.linear import LinearHead
from transferlab.data.datasets import load_dataset
from transferlab.deploy.card import make_card, write_card
from transferlab.deploy.folder import TRAINING, ModelFolderError, read_json, write_json
from transferlab.deploy.training import summary, training_images
from transferlab.finetune.checkpoint import FORMAT as FINETUNE_FORMAT, MODEL, RECORD
from transferlab.finetune.config import FinetuneConfig
from transferlab.finetune.data import training_split
from transferlab.models.builder import load_model
from transferlab.models.loaded import LoadedModel
from transferlab.models.sources import load_torch_file
from transferlab.provenance import FinetuneRecord


def finetuned_model(folder: Path) -> tuple[LoadedModel, list[tuple[str, str]], LinearHead]:
    """The fine-tuned network of ``folder/model.pth``, the (layer, pooling) feeding its head, and the head."""
    path = folder / MODEL
    _, meta = load_torch_file(path)
    if meta.get("format") != FINETUNE_FORMAT:
        raise ModelFolderError(path, f"format {meta.get('format')!r} is not the {FINETUNE_FORMAT!r} this version of "
                                     f"transferlab reads")
    if not meta.get("classes") or not isinstance(meta.get("head"), dict) or not meta.get("model"):
        raise ModelFolderError(path, "damaged: its metadata lacks the model, head or classes")
    model = load_model(meta["model"], str(path))
    fc = model.net.steps()[-1][1]
    if not isinstance(fc, nn.Linear) or fc.out_features != len(meta["classes"]):
        raise ModelFolderError(path, f"the network does not end in a {len(meta['classes'])}-way Linear head")
    head = LinearHead(fc.weight.detach().double().numpy(), fc.bias.detach().double().numpy(), list(meta["classes"]))
    return model, [(meta["head"]["layer"], meta["head"]["pool"])], head


def finetune_record(folder: Path) -> FinetuneRecord:
    data = read_json(folder / RECORD)
    try:
        return FinetuneRecord.from_dict(data)
    except ValueError as e:
        raise ModelFolderError(folder / RECORD, str(e)) from None


def finetune_training(record: FinetuneRecord) -> dict:
    """``training.json`` of a fine-tuning: its training images (the validation ones apart), found again by its
    recorded settings and bad files."""
    cfg = FinetuneConfig.from_dict(record.provenance.config).resolved()
    dataset = load_dataset(cfg.run.data, cfg.run.limit_per_class)
    bad = {str(b["path"]) for b in (record.images.bad_files if record.images else [])}
    ok = np.array([i for i, p in enumerate(dataset.paths) if str(p) not in bad], dtype=int)
    train, val, _ = training_split(dataset.labels[ok], dataset.split[ok], cfg, dataset)
    training = training_images(dataset.root, [dataset.paths[ok[i]] for i in train], dataset.labels[ok[train]],
                               dataset.classes)
    return {**training, "validation_images": int(len(val))}


def write_finetune_card(folder: str | Path) -> Path:
    """``training.json``, ``card.json`` and ``card.md`` of a finished fine-tuning folder (``finetune`` writes them
    at the end); returns the path of ``card.md``."""
    folder = Path(folder)
    record = finetune_record(folder)
    if record.status != "finished":
        raise ModelFolderError(folder / RECORD, f"the fine-tuning is {record.status}, not finished: run it to the end "
                                                f"first")
    training = finetune_training(record)
    write_json(folder / TRAINING, training)
    prov = record.provenance
    evaluation = {"protocol": prov.protocol, "test_images": record.images.test if record.images else None,
                  "accuracy": record.test_accuracy, "mean_class_accuracy": record.test_mean_class_accuracy,
                  "per_class_accuracy": record.test_per_class_accuracy, "splits": 1,
                  "record": str(folder / RECORD), "linear_svm_accuracy": record.svm_accuracy}
    model = {"kind": f"{record.model} fine-tuned ({record.mode}, from {prov.trained_from_layer}; best of "
                     f"{record.epochs_run} epochs: {record.best_epoch})",
             "label": f"{record.model} fine-tuned ({record.mode})", "classifier": "fine-tuned network's softmax",
             "scores": "probabilities", "gray": "replicate", "pretrained": prov.pretrained,
             "limit_per_class": prov.extra.get("limit_per_class")}
    provenance = {"base_weights": prov.weights, "base_weights_sha256": prov.weights_sha256,
                  "weights_source": prov.extra.get("weights_source"), "preprocess": prov.extra.get("preprocess"),
                  "head": prov.extra.get("head"), "trained_from_layer": prov.trained_from_layer,
                  "validation_images": training["validation_images"], "seed": prov.seed,
                  "optimizer": prov.extra.get("optimizer"), "augmentation": prov.extra.get("augmentation"),
                  "versions": prov.versions, "trained": prov.date, "saved": time.strftime("%Y-%m-%d %H:%M:%S")}
    return write_card(folder, make_card(record.classes, summary(training), evaluation, model, provenance))
