"""Fine-tuned networks in the fusion study: each network alone (plain and with flip test-time augmentation), and
late fusion of the SVM chosen by cross-validation with the networks' log-probabilities.

A fine-tuned network has seen every training image except its validation split, so its choices (flip TTA or not,
fusion weights, and which of these rows to use) are made on that split, the one part of train it did not learn:
the SVM is refitted on the rest of train to decide those images. The test set is scored once per row."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from transferlab.classify.fusion import ascent_weights, weighted_sum
from transferlab.classify.selection import accuracy, fit_decide
from transferlab.features.views import PLAIN
from transferlab.finetune.checkpoint import MODEL
from transferlab.finetune.data import split_train_val
from transferlab.provenance import FINETUNE_FILE, FinetuneRecord, RecordError, read_record
from transferlab.studies.members import MemberSet, load_members

FLIP = "hflip"


@dataclass
class FinetunedNet:
    """A finished fine-tuning run: its network's log-probabilities per view, aligned with the fusion's images."""

    name: str
    folder: str
    record: FinetuneRecord
    logp: dict[str, np.ndarray]  # view -> (images, classes) log-probabilities
    ms_per_image: float
    weights_sha256: str  # of the fine-tuned model.pth


def read_run(folder: str | Path) -> FinetuneRecord:
    """The record of a finished fine-tuning run in ``folder``; one line naming the folder otherwise."""
    folder = Path(folder)
    if not (folder / FINETUNE_FILE).exists():
        raise ValueError(f"{folder}: no {FINETUNE_FILE} here; give the --out folder of a `transferlab finetune` run")
    try:
        record = read_record(folder / FINETUNE_FILE)
    except RecordError as e:
        raise ValueError(f"{e.path}: not a fine-tuning record ({e.reason})") from None
    if record.status != "finished" or not (folder / MODEL).exists():
        raise ValueError(f"{folder}: the fine-tuning has not finished (status {record.status!r}); run the same "
                         "`transferlab finetune` command again to resume it")
    return record


def _check_same_split(folder, record: FinetuneRecord, cfg, ms: MemberSet) -> None:
    """The run must have split the fusion's images the same way, or its validation images are not held out here."""
    config, images = record.provenance.config, record.images
    mine = {"protocol": cfg.protocol, "limit_per_class": cfg.limit_per_class, "seed": cfg.seed,
            "classes": list(ms.dataset.classes), "train+val": len(ms.train), "test": len(ms.test)}
    theirs = {"protocol": config["protocol"], "limit_per_class": config["limit_per_class"], "seed": config["seed"],
              "classes": record.classes, "train+val": images.train + images.val, "test": images.test}
    if config["protocol"] == "auto":
        theirs["protocol"] = record.provenance.protocol
    diff = [k for k in mine if mine[k] != theirs[k]]
    if diff:
        raise ValueError(f"{folder}: fine-tuned on another split of the data ({', '.join(diff)} differ: "
                         f"{', '.join(f'{k} {theirs[k]!r} vs {mine[k]!r}' for k in diff if k != 'classes')}); "
                         "fine-tune with this study's --data, --protocol, --limit-per-class and --seed")


def load_finetuned(cfg, folders, ms: MemberSet) -> list[FinetunedNet]:
    """Each run's network on every image of ``ms``, plain and mirrored (logits through the feature cache)."""
    nets = []
    for folder in folders:
        record = read_run(folder)
        _check_same_split(folder, record, cfg, ms)
        got = load_members(replace(cfg, pool="avg"), [(record.model, str(Path(folder) / MODEL), None)],
                           views=(PLAIN, FLIP), l2=False)
        if got.paths != ms.paths:
            raise ValueError(f"{folder}: the network read other images than the feature members "
                             f"({len(got.paths)} vs {len(ms.paths)})")
        m = next(iter(got.members.values()))
        logp = {v: torch.from_numpy(m.x[v]).log_softmax(1).numpy() for v in (PLAIN, FLIP)}
        nets.append(FinetunedNet(f"fine-tuned {record.model} ({record.mode})", str(folder), record, logp,
                                 m.ms_per_image, got.model.weights_id))
    if len({n.record.provenance.config["val_fraction"] for n in nets}) > 1:
        raise ValueError("the fine-tuned networks held out different validation images (their --val-fraction "
                         "differs); fuse networks fine-tuned with one")
    return nets


def flip_tta(net: FinetunedNet) -> np.ndarray:
    """Log of the mean of the plain and mirrored images' probabilities."""
    return torch.from_numpy(np.stack([net.logp[PLAIN], net.logp[FLIP]])).logsumexp(0).numpy() - np.log(2)


def validation_rows(ms: MemberSet, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``ms`` the fine-tunings trained on, and their validation rows (as ``finetune`` carved them)."""
    fit, val = split_train_val(ms.y[ms.train], val_fraction, seed)
    return ms.train[fit], ms.train[val]


def finetuned_rows(cfg, ms: MemberSet, svm: dict, x_svm: np.ndarray, d_test_svm: np.ndarray,
                   nets: list[FinetunedNet]) -> tuple[list[dict], list[dict], dict]:
    """Rows for the fine-tuned networks and their fusion with ``svm`` (a row of the study, its features
    ``x_svm`` and test decision values), each with its validation and test accuracy; the fusion weights; and
    the validation split's description."""
    fit, val = validation_rows(ms, nets[0].record.provenance.config["val_fraction"], cfg.seed)
    y, te = ms.y, ms.test
    d_val = fit_decide(x_svm[fit], y[fit], x_svm[val], svm["C"], classifier=cfg.classifier, seed=cfg.seed)
    rows = [{"features": f"SVM: {svm['features']} (refitted without validation)", "kind": "svm",
             "dim": svm["dim"], "C": svm["C"], "val_accuracy": round(accuracy(d_val, y[val]), 4),
             "test_accuracy": svm["test_accuracy"], "ms_per_image": svm["ms_per_image"]}]
    val_scores, test_scores, names = [d_val / d_val.std()], [d_test_svm / d_val.std()], [svm["features"]]
    for net in nets:
        variants = {"": net.logp[PLAIN], " + flip TTA": flip_tta(net)}
        accs = {k: accuracy(v[val], y[val]) for k, v in variants.items()}
        pick = max(variants, key=lambda k: accs[k])  # ties keep the plain view (max keeps the first)
        for k, v in variants.items():
            rows.append({"features": net.name + k, "kind": "fine-tuned", "dim": v.shape[1], "C": None,
                         "val_accuracy": round(accs[k], 4), "test_accuracy": round(accuracy(v[te], y[te]), 4),
                         "ms_per_image": round(net.ms_per_image * (2 if k else 1), 2),
                         "train_seconds": net.record.train_seconds, "tta_chosen_on_val": k == pick})
        chosen = variants[pick]
        scale = chosen[val].std()
        val_scores.append(chosen[val] / scale)
        test_scores.append(chosen[te] / scale)
        names.append(net.name + pick)
    cost = round(svm["ms_per_image"] + sum(r["ms_per_image"] for r in rows if r.get("tta_chosen_on_val")), 2)
    weights = []
    for label, w in (("equal weights", np.ones(len(names))), ("weights on the validation split",
                                                              ascent_weights(val_scores, y[val]))):
        rows.append({"features": f"SVM + fine-tuned: late fusion, {label}", "kind": "fine-tuned fusion",
                     "dim": len(names), "C": None,
                     "val_accuracy": round(accuracy(weighted_sum(w, val_scores), y[val]), 4),
                     "test_accuracy": round(accuracy(weighted_sum(w, test_scores), y[te]), 4),
                     "ms_per_image": cost})
        weights.append({"combiner": label, **{n: float(wi) for n, wi in zip(names, w)}})
    split = {"validation_images": len(val), "fit_images": len(fit), "runs": [
        {"folder": n.folder, "model": n.record.model, "mode": n.record.mode, "best_epoch": n.record.best_epoch,
         "weights_sha256": n.weights_sha256, "base_weights_sha256": n.record.provenance.weights_sha256,
         "train_seconds": n.record.train_seconds, "test_accuracy_in_its_record": n.record.test_accuracy}
        for n in nets]}
    return rows, weights, split
