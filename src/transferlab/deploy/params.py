"""A fitted classifier pipeline as files: a linear one (standardisation, PCA, linear estimator) as its arrays in
safetensors, read back as the exact affine :class:`~transferlab.classify.linear.LinearHead`; one without a linear
form (knn, rbf-svm) as skops writes it, read back only if it holds scikit-learn's own types."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from transferlab.classify.estimators import make_pipeline
from transferlab.classify.linear import LINEAR, LinearHead, fold_pipeline
from transferlab.deploy.folder import ModelFolderError, read_arrays, write_arrays
from transferlab.files import atomic_path, sha256_file

NONLINEAR = ("knn", "rbf-svm")  # saved with skops (the extra `skops`)
PROBABILITIES = ("logreg", "knn")  # the classifiers whose scores are probabilities
ATTRIBUTES = {"scale": ("mean", "scale"), "pca": ("components", "mean"), "clf": ("coef", "intercept")}
SKOPS_HINT = "pip install 'transferlab[skops]'"


def skops_io():
    try:
        import skops.io
    except ImportError:
        raise RuntimeError(f"a {' or '.join(NONLINEAR)} classifier is saved and read with skops, which is not "
                           f"installed: {SKOPS_HINT}") from None
    return skops.io


def linear_arrays(pipeline: Pipeline) -> dict[str, np.ndarray]:
    """The fitted parameters of each step: ``scale.mean``, ``scale.scale``, ``pca.components``, ``pca.mean``,
    ``clf.coef``, ``clf.intercept`` (the steps the pipeline has)."""
    return {f"{step}.{attr}": np.asarray(getattr(est, f"{attr}_"), dtype=np.float64)
            for step, est in pipeline.named_steps.items() for attr in ATTRIBUTES[step]}


def save_classifier(pipeline: Pipeline, settings: dict, path: Path) -> str:
    """The fitted ``pipeline`` of ``settings["name"]`` into ``path`` (``.safetensors`` or ``.skops``); its sha256."""
    if settings["name"] in LINEAR:
        return write_arrays(path, linear_arrays(pipeline))
    sio = skops_io()
    with atomic_path(path) as tmp:
        sio.dump(pipeline, tmp)
    return sha256_file(path)


def linear_head(path: Path, settings: dict, classes: list[str]) -> LinearHead:
    """The affine map of the arrays in ``path``: the same pipeline rebuilt with them, then folded."""
    arrays = read_arrays(path)
    pipeline = make_pipeline(settings["name"], float(settings["C"]), bool(settings["standardize"]),
                             settings.get("pca"), int(settings.get("seed", 0)))
    for step, est in pipeline.named_steps.items():
        for attr in ATTRIBUTES[step]:
            if f"{step}.{attr}" not in arrays:
                raise ModelFolderError(path, f"damaged: no array {step}.{attr}")
            setattr(est, f"{attr}_", arrays[f"{step}.{attr}"])
    head = fold_pipeline(pipeline, classes)
    if head.coef.shape[0] != len(classes):
        raise ModelFolderError(path, f"{head.coef.shape[0]} classes in the arrays, {len(classes)} named")
    return head


def load_skops(path: Path, settings: dict) -> Pipeline:
    """The pipeline in a skops file, refused in one line unless it holds only the types skops trusts (scikit-learn's
    and NumPy's own) and is a pipeline of the recorded classifier."""
    sio = skops_io()
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as e:  # not a zip archive, or no schema
        raise ModelFolderError(path, f"damaged: not a skops file ({type(e).__name__}: {e})") from None
    if untrusted:
        raise ModelFolderError(path, f"holds types that are not scikit-learn's or NumPy's ({', '.join(untrusted)}): "
                                     f"refused, loading them could run code")
    pipeline = sio.load(path)
    expected = type(make_pipeline(settings["name"]).steps[-1][1])
    if not (isinstance(pipeline, Pipeline) and isinstance(pipeline.steps[-1][1], expected)):
        raise ModelFolderError(path, f"holds a {type(pipeline).__name__}, not the pipeline of the recorded "
                                     f"{settings['name']} ({expected.__name__})")
    return pipeline
