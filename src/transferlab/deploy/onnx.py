"""A trained pipeline as one ONNX file that plain ``onnxruntime`` + numpy run: uint8 images in, ``scores`` and
``label`` out, with what to do before the graph, the class names and the provenance in its metadata; in int8,
quantized by the int8 runtime's recipe and calibrated on training images only."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from transferlab.deploy.pipeline import PipelineNet, describe, prepare, preprocess_steps
from transferlab.features.extractor import file_calibration
from transferlab.features.quantize import Calibration, int8_deviation, recipe_for
from transferlab.features.runtimes import checked_int8, export_onnx, require_onnx
from transferlab.files import atomic_path

INPUT = "images"  # (N, crop, crop, 3) uint8 RGB
OUTPUTS = ["scores", "label"]  # (N, K) float32, (N,) int64


def calibration(net: PipelineNet, paths: Sequence[str | Path]) -> Calibration:
    """The int8 calibration set of the pipeline: training image files only (the caller's to choose), each
    prepared as the graph's input, under the int8 runtime's recipe for the backbone on this CPU."""
    if not paths:
        raise ValueError("an int8 export calibrates on training images: give at least one")
    pre = net.preprocess
    return file_calibration(paths, lambda img: prepare(img, pre), recipe_for(net.model.net))


def export_pipeline(net: PipelineNet, path: str | Path, *, classifier: str = "linear",
                    provenance: dict | None = None, calibration_paths: Sequence[str | Path] | None = None,
                    cache: Path | None = None) -> Path:
    """``net`` as one ONNX file at ``path`` (written atomically), fp32, or int8 when ``calibration_paths``
    (training images) are given. Metadata: ``classes`` (JSON list), ``preprocess`` (JSON: the steps before the
    graph), ``provenance`` (JSON: :func:`~transferlab.deploy.pipeline.describe`, the int8 calibration identity
    and its measured deviation, then ``provenance``). The fp32 and int8 graphs are cached (``cache``: the
    cache's ``onnx/`` folder by default), so a second export costs a copy."""
    require_onnx()
    import onnx

    steps = preprocess_steps(net.preprocess)
    crop = net.preprocess.crop
    graph = export_onnx(net, (crop, crop, 3), cache, dtype=torch.uint8, input_name=INPUT, output_names=OUTPUTS)
    record = describe(net, classifier, "int8" if calibration_paths else "fp32")
    if calibration_paths:
        cal = calibration(net, calibration_paths)
        graph = checked_int8(graph, cal)
        record["calibration"] = cal.identity()
        record["int8_deviation"] = {"value": int8_deviation(graph), "on": "scores of calibration images"}
    model = onnx.load(str(graph))
    meta = {"classes": json.dumps(net.classes), "preprocess": json.dumps(steps),
            "provenance": json.dumps({**record, **(provenance or {})}, default=str)}
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return Path(path)


def read_metadata(path: str | Path) -> dict:
    """The metadata of an exported pipeline, decoded: ``classes``, ``preprocess``, ``provenance``."""
    require_onnx()
    import onnxruntime as ort

    try:
        meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
    except Exception as e:  # ORT raises its own exception types for unreadable graphs
        raise ValueError(f"{path}: not an ONNX model ONNX Runtime can load ({str(e).splitlines()[0]})") from None
    props = meta.custom_metadata_map
    missing = [k for k in ("classes", "preprocess", "provenance") if k not in props]
    if missing:
        raise KeyError(f"{path}: not a transferlab pipeline (metadata lacks {', '.join(missing)})")
    return {k: json.loads(props[k]) for k in ("classes", "preprocess", "provenance")}


def run_pipeline(path: str | Path, images: np.ndarray, chunk: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` and ``label`` of an exported pipeline for (N, crop, crop, 3) uint8 images, by ONNX Runtime, in
    runs of ``chunk`` images (a run holds every activation of its images at once)."""
    require_onnx()
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if not len(images):
        raise ValueError(f"{path}: no images to run the pipeline on")
    parts = [session.run(OUTPUTS, {INPUT: images[i:i + chunk]}) for i in range(0, len(images), chunk)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
