"""A saved model's card: its classes, training set, measured test accuracy, provenance, and its intended use and
limits written from those facts — ``card.json`` for programs and ``card.md`` for people, with the same content."""
from __future__ import annotations

import json
from pathlib import Path

from tabulate import tabulate

from transferlab.deploy.folder import CARD_JSON, CARD_MD, write_json
from transferlab.files import atomic_write

CARD_FORMAT = "transferlab-card/1"


def _gray_words(training: dict) -> tuple[str, bool]:
    g = training["gray_content"]
    all_gray = g["sampled"] > 0 and g["gray"] == g["sampled"]
    return ("grayscale " if all_gray else "colour " if g["gray"] == 0 else ""), all_gray


def intended_use(classes: list[str], training: dict, evaluation: dict) -> str:
    gray, _ = _gray_words(training)
    lo, hi = min(training["per_class"].values()), max(training["per_class"].values())
    return (f"Sorting images into one of {len(classes)} classes ({', '.join(classes)}), for images like its "
            f"training set: {training['images']:,} {gray}images from {training['dataset']}, "
            f"{lo if lo == hi else f'{lo}–{hi}'} per class. Measured "
            f"accuracy on {evaluation['test_images']:,} held-out images of the same collection: "
            f"{evaluation['accuracy']:.2%}.")


def limits(classes: list[str], training: dict, evaluation: dict, model: dict) -> list[str]:
    """What the facts say the model should not be trusted with."""
    gray, all_gray = _gray_words(training)
    per_class = evaluation.get("per_class_accuracy") or {}
    out = [f"Every image gets one of the {len(classes)} classes: there is no 'none of these' answer, so an image "
           f"unlike the training images (another subject, a drawing, a screenshot"
           + (", a colour photo" if all_gray else "") + ") is still given a class, often with a high score."]
    if per_class:
        lo, hi = min(per_class, key=per_class.get), max(per_class, key=per_class.get)
        out.append(f"Tested only on {evaluation['test_images']:,} images of the collection it was trained on "
                   f"({evaluation['protocol']}): per class from {per_class[lo]:.0%} ({lo}) to {per_class[hi]:.0%} "
                   f"({hi}). Images from another source (camera, region, era) will likely score lower.")
    if all_gray:
        seen = ("converted to gray before the network" if model["gray"] != "replicate" else
                "passed to the network in colour, which it never saw in training")
        out.append(f"Trained on grayscale images only ({training['gray_content']['gray']} of "
                   f"{training['gray_content']['sampled']} sampled are gray): colour images are {seen}.")
    if model["scores"] == "decision values":
        out.append(f"Scores are the {model['classifier']}'s decision values, not probabilities: compare them within "
                   f"one image, not across images or against a fixed threshold.")
    else:
        out.append(f"Probabilities come from a {model['classifier']} fitted on {training['images']:,} images; they "
                   f"are not calibrated for other data.")
    if evaluation.get("splits", 1) > 1:
        out.append(f"The model of split 1 of {evaluation['splits']} is saved; the run's accuracy over all splits was "
                   f"{evaluation['run_accuracy']:.2%} ± {evaluation['run_accuracy_std']:.2%}.")
    if model.get("limit_per_class"):
        out.append(f"Trained on a subset: the first {model['limit_per_class']} images per class and split.")
    if model.get("pretrained") is False:
        out.append("The network has RANDOM WEIGHTS (not pretrained): its features carry no ImageNet knowledge.")
    return out


def make_card(classes: list[str], training: dict, evaluation: dict, model: dict, provenance: dict) -> dict:
    """The card of a model from its facts: ``training`` (:func:`~transferlab.deploy.training.summary`),
    ``evaluation`` (test images, accuracy, per class, protocol), ``model`` (label, classifier, scores, gray mode)
    and ``provenance`` (weights, preprocessing, seeds, versions, machine, date)."""
    return {"format": CARD_FORMAT, "model": model, "classes": list(classes), "training_set": training,
            "evaluation": evaluation, "provenance": provenance,
            "intended_use": intended_use(classes, training, evaluation),
            "limits": limits(classes, training, evaluation, model)}


def _facts(d: dict) -> str:
    return "\n".join(f"- **{k}**: {v}" for k, v in d.items() if v not in (None, "", [], {}))


def card_markdown(card: dict) -> str:
    """``card.md``: the card's facts as a page."""
    m, t, e, p = card["model"], card["training_set"], card["evaluation"], card["provenance"]
    per_class = e.get("per_class_accuracy") or {}
    rows = [(c, t["per_class"].get(c, 0), f"{per_class[c]:.4f}" if c in per_class else "—") for c in card["classes"]]
    gray = t["gray_content"]
    return "\n".join([
        f"# Model card: {m['label']}", "",
        f"{m['kind']}; scores: {m['scores']}.", "",
        "## Intended use", "", card["intended_use"], "",
        "## Limits", "", *[f"- {line}" for line in card["limits"]], "",
        "## Training set", "",
        _facts({"images": f"{t['images']:,}", "dataset": f"{t['dataset']} ({t['root']})",
                "content hash": f"`{t['content_sha256']}` (sha256 of the sorted sha256 of each image, one per line)",
                "gray content": f"{gray['gray']} of {gray['sampled']} sampled images"}), "",
        "## Evaluation", "",
        _facts({"protocol": e["protocol"], "test images": f"{e['test_images']:,}", "accuracy": f"{e['accuracy']:.4f}",
                "mean per-class accuracy": f"{e['mean_class_accuracy']:.4f}" if e.get("mean_class_accuracy") else None,
                "record": e.get("record")}), "",
        tabulate(rows, headers=["class", "training images", "test accuracy"], tablefmt="github"), "",
        "## Provenance", "", _facts({k: f"`{json.dumps(v)}`" if isinstance(v, (dict, list)) else v
                                     for k, v in p.items()}), "",
        *_exports(card.get("exports", [])),
    ])


def _exports(exports: list[dict]) -> list[str]:
    """The card's section on the ONNX graphs exported from the model, with the int8 ones' measured agreement."""
    if not exports:
        return []
    lines = ["## Exported graphs", ""]
    for e in exports:
        a = e.get("agreement_with_fp32")
        lines.append(f"- `{e['out']}`: ONNX, {e['numerics']}, {e['bytes']:,} bytes"
                     + (f"; labels agree with the fp32 graph on {a['label_agreement']:.2%} of {a['images']} training "
                        f"images not calibrated on (largest score difference {a['max_score_difference']})"
                        if a else ""))
    return [*lines, ""]


def write_card(folder: Path, card: dict) -> Path:
    """``card.json`` and ``card.md`` in ``folder`` (not listed in ``model.json``: a note added to a card does not
    make the model unreadable); returns the path of ``card.md``."""
    write_json(folder / CARD_JSON, card)
    return atomic_write(folder / CARD_MD, card_markdown(card))
