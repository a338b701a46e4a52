"""``transferlab export``: a saved model as one ONNX graph of its whole pipeline, fp32 or int8; an int8 graph is
calibrated on the model's own training images and its agreement with the fp32 graph is measured on other
training images, then stated in the model's card."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from transferlab.data.images import ImageError, load_image
from transferlab.deploy.card import write_card
from transferlab.deploy.folder import ModelFolderError
from transferlab.deploy.onnx import export_pipeline, run_pipeline
from transferlab.deploy.pipeline import PipelineNet, prepare
from transferlab.deploy.saved import SavedClassifier
from transferlab.features.quantize import pick_calibration
from transferlab.options import CALIBRATION_IMAGES

CHECK_IMAGES = 200  # training images not calibrated on, on which an int8 graph is compared with the fp32 one


def pipeline_net(clf: SavedClassifier) -> PipelineNet:
    """The saved model's pipeline as one torch module (a fresh copy of its network, adapted for its gray mode)."""
    if clf.head is None:
        raise ValueError(f"{clf.path}: a {clf.classifier} model has no linear form to export; export a model of "
                         "linear-svm, logreg or ridge, or a fine-tuned network")
    if clf.resize != "crop" or clf.input_size:
        raise ValueError(f"{clf.path}: the graph takes images at the weights' own crop; this model was trained with "
                         f"--resize {clf.resize}{f' --input-size {clf.input_size}' if clf.input_size else ''}")
    return PipelineNet(clf.load_backbone(), clf.outputs, clf.l2, clf.gray, clf.head)


def _images(paths, preprocess) -> np.ndarray:
    """The graph's input for image files (unreadable ones left out)."""
    good = []
    for p in paths:
        try:
            good.append(prepare(load_image(p), preprocess))
        except ImageError:
            continue
    return np.stack(good)


def agreement(fp32: Path, int8: Path, paths, preprocess) -> dict:
    """How the int8 graph's labels and scores compare with the fp32 graph's on ``paths``."""
    x = _images(paths, preprocess)
    s32, l32 = run_pipeline(fp32, x)
    s8, l8 = run_pipeline(int8, x)
    return {"images": int(len(x)), "label_agreement": round(float((l32 == l8).mean()), 4),
            "max_score_difference": round(float(np.abs(s32 - s8).max()), 4)}


def export_model(clf: SavedClassifier, out: str | Path, *, int8: bool = False,
                 calibration_images: int = CALIBRATION_IMAGES, check_images: int = CHECK_IMAGES,
                 cache: Path | None = None, note_in_card: bool = True) -> dict:
    """Write ``clf`` as one ONNX file at ``out``; with ``int8``, quantized on ``calibration_images`` of its
    training images (at most half of them) and compared with fp32 on up to ``check_images`` others. The card
    records the export unless ``note_in_card`` is false. Returns a summary."""
    t0 = time.perf_counter()
    net = pipeline_net(clf)
    card = clf.card() or {}
    provenance = {"model_folder": str(clf.path), "card": card.get("provenance", {})}
    fp32 = export_pipeline(net, Path(out) if not int8 else Path(out).with_suffix(".fp32.onnx"),
                           classifier=clf.classifier, provenance=provenance, cache=cache)
    summary = {"out": str(out), "format": "onnx", "numerics": "int8" if int8 else "fp32", "classes": len(net.classes)}
    if int8:
        train = clf.training_paths()
        calibration = pick_calibration(train, min(calibration_images, (len(train) + 1) // 2))  # keep half to check
        calibrated = set(calibration)
        held = [p for p in sorted(train) if p not in calibrated]
        export_pipeline(net, out, classifier=clf.classifier, provenance=provenance, calibration_paths=calibration,
                        cache=cache)
        check = pick_calibration(held, check_images) if held else []
        if not check:
            raise ModelFolderError(clf.path, "every training image was used for calibration: none is left to compare "
                                             "the int8 graph with fp32 on (give fewer --calibration-images)")
        summary |= {"calibration_images": len(calibration), "fp32_graph": str(fp32),
                    "agreement_with_fp32": agreement(fp32, Path(out), check, net.preprocess)}
    summary |= {"bytes": Path(out).stat().st_size, "seconds": round(time.perf_counter() - t0, 1)}
    if card and note_in_card:
        card["exports"] = [e for e in card.get("exports", []) if e.get("out") != str(out)] + [summary]
        write_card(clf.path, card)
    return summary
