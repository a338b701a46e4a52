"""A saved model put to work: ``load_classifier(DIR)`` reads a model folder (``transferlab run --save``) or a
fine-tuning folder (``transferlab finetune``) and classifies images — paths, PIL images or uint8 arrays — with
features computed as in training (checked: the same network, weights, layers, preprocessing and numerics) and
through the feature cache."""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.utils.extmath import softmax
from torch import nn

from transferlab.classify.linear import LinearHead
from transferlab.classify.selection import class_scores
from transferlab.config import RunConfig
from transferlab.deploy.backbone import load_backbone
from transferlab.deploy.finetuned import finetuned_model
from transferlab.deploy.folder import (
    CARD_JSON,
    SETTINGS,
    TRAINING,
    ModelFolderError,
    entry,
    read_json,
    read_settings,
)
from transferlab.deploy.params import linear_head, load_skops
from transferlab.features.blocks import join_blocks
from transferlab.features.extractor import ExtractedFeatures, Extractor
from transferlab.features.transformer import image_samples
from transferlab.finetune.checkpoint import MODEL
from transferlab.models.loaded import LoadedModel

FINETUNED, FEATURES = "finetuned", "features"


@dataclass
class SavedClassifier:
    """A saved model: its network (``model``), the (layer, pooling) ``outputs`` joined into one vector per image
    (each L2-normalised when ``l2``), with ``gray``, ``resize``, ``input_size`` and ``runtime`` as in training,
    then ``head`` (the exact affine map of a linear classifier or a fine-tuned network's last layer) or
    ``estimator`` (knn, rbf-svm); ``classes_`` by column. ``training_paths()``: the images it was trained on."""

    path: Path
    kind: str  # "features" (run --save) or "finetuned"
    classifier: str
    classes_: list[str]
    model: LoadedModel
    outputs: list[tuple[str, str]]
    l2: bool
    gray: str
    resize: str
    input_size: int | None
    runtime: str
    probabilities: bool
    head: LinearHead | None = None
    estimator: object = None
    settings: dict = field(default_factory=dict)
    specs: list[dict] | None = None  # the training run's feature specs, which the extractor must reproduce
    options: dict = field(default_factory=dict)  # the extractor's batching, workers, device, cache, progress
    _extractor: Extractor | None = field(default=None, repr=False)

    @property
    def scores_name(self) -> str:
        return "probability" if self.probabilities else "decision"

    def training(self) -> dict | None:
        """``training.json``: the dataset root, the training images (relative paths, classes, sha256), the set's
        content hash (None for a fine-tuning folder whose ``finetune`` did not write it)."""
        path = self.path / TRAINING
        return read_json(path) if path.is_file() or self.kind == FEATURES else None

    def training_paths(self) -> list[Path]:
        """The training images, as paths under the recorded dataset root."""
        training = self.training()
        if training is None:
            raise ModelFolderError(self.path / TRAINING, "missing: `transferlab finetune` writes it when it finishes")
        return [Path(training["root"]) / i["path"] for i in training["images"]]

    def card(self) -> dict | None:
        path = self.path / CARD_JSON
        return read_json(path) if path.is_file() else None

    def load_backbone(self) -> LoadedModel:
        """A fresh copy of the network, checked as on loading (what an export adapts in place for the gray mode)."""
        options = {**self.options, "module": copy.deepcopy(self.options.get("module"))}
        return _load_network(self.path, self.kind, self.settings, options)[0]

    # ------------------------------------------------------------------------------------------ features
    def extractor(self) -> Extractor:
        """The extractor of the training features (checked against their recorded specs on first use)."""
        if self._extractor is None:
            opts = self.options
            calibration = None
            if self.runtime == "int8":
                training = self.training()
                calibration = [Path(training["root"]) / p for p in training.get("calibration", [])]
            settings = RunConfig(data="", model=self.model.name, gray=self.gray, resize=self.resize,
                                 input_size=self.input_size, runtime=self.runtime,
                                 batch_size=opts.get("batch_size", 16), workers=opts.get("workers"),
                                 device=opts.get("device", "cpu"), cache=opts.get("cache"),
                                 progress=opts.get("progress", False))
            ext = Extractor.from_run(settings, self.model, self.outputs, calibration=calibration)
            for o, recorded in zip(self.outputs, self.specs or []):
                diff = [k for k in sorted(set(recorded) | set(ext.specs[o])) if recorded.get(k) != ext.specs[o].get(k)]
                if diff:
                    k = diff[0]
                    raise ModelFolderError(self.path / SETTINGS, f"the features of {o[0]}/{o[1]} would not be the "
                                                                 f"training ones: {k} {ext.specs[o].get(k)!r}, "
                                                                 f"recorded {recorded.get(k)!r}")
            self._extractor = ext
        return self._extractor

    def extract(self, samples: Sequence) -> ExtractedFeatures:
        """Features of ``samples`` (paths, PIL images, uint8 arrays), bad ones listed apart."""
        return self.extractor().extract(list(samples))

    def features(self, ext: ExtractedFeatures) -> np.ndarray:
        """The joined vector of each good image (the classifier's input)."""
        return join_blocks([ext.features[o] for o in self.outputs], self.l2)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """(n, classes) scores of joined features: probabilities where the classifier has them, else decision
        values."""
        if self.head is not None and self.probabilities:
            return softmax(self.head.decision_function(x))
        return self._decisions(x)

    def _features_of(self, X) -> np.ndarray:
        ext = self.extract(image_samples(X))
        if ext.bad:
            path, reason = ext.bad[0]
            raise ValueError(f"{path}: {reason}")
        return self.features(ext)

    # ------------------------------------------------------------------------------------------ scikit-learn's API
    def predict(self, X) -> np.ndarray:
        """The class name of each image."""
        return np.asarray(self.classes_, dtype=object)[self.scores(self._features_of(X)).argmax(1)]

    @property
    def predict_proba(self):
        """Class probabilities of each image (logreg, knn, a fine-tuned network); an AttributeError naming the
        classifier otherwise, so that ``hasattr(clf, "predict_proba")`` says whether there are any."""
        if not self.probabilities:
            raise AttributeError(f"{self.path}: the {self.classifier} classifier gives decision values, not "
                                 f"probabilities (logreg, knn and fine-tuned networks do); use decision_function")
        return lambda X: self.scores(self._features_of(X))

    @property
    def decision_function(self):
        """Decision values of each image (the linear classifiers, rbf-svm, a fine-tuned network's logits); an
        AttributeError for knn, which has none."""
        if self.head is None and not hasattr(self.estimator, "decision_function"):
            raise AttributeError(f"{self.path}: the {self.classifier} classifier has no decision values; use "
                                 f"predict_proba")
        return lambda X: self._decisions(self._features_of(X))

    def _decisions(self, x: np.ndarray) -> np.ndarray:
        return self.head.decision_function(x) if self.head is not None else class_scores(self.estimator, x)

def _load_network(folder: Path, kind: str, settings: dict, options: dict) -> tuple:
    if kind == FINETUNED:
        return finetuned_model(folder)
    return load_backbone(entry(settings, "backbone", folder / SETTINGS), folder, options.get("module"),
                         options.get("trust_pickle", False)), None, None


def load_classifier(path: str | Path, *, module: nn.Module | None = None, trust_pickle: bool = False,
                    cache: str | None = None, batch_size: int = 16, workers: int | None = None, device: str = "cpu",
                    progress: bool | None = False) -> SavedClassifier:
    """The model in ``path``: a folder of ``transferlab run --save`` (``model.json``) or of ``transferlab finetune``
    (``model.pth``). ``module``: a new instance of the user's module a model was trained on (its saved state dict
    is loaded into it); ``trust_pickle``: a network that is a ``torch.save(model)`` file; the rest: how features
    are extracted (``cache``: the feature cache folder)."""
    folder = Path(path)
    options = {"module": module, "trust_pickle": trust_pickle, "cache": cache, "batch_size": batch_size,
               "workers": workers, "device": device, "progress": progress}
    if not folder.is_dir():
        raise ModelFolderError(folder, "no such model folder")
    if not (folder / SETTINGS).exists() and (folder / MODEL).exists():
        model, outputs, head = finetuned_model(folder)
        return SavedClassifier(folder, FINETUNED, "fine-tuned network", list(head.classes), model, outputs, False,
                               "replicate", "crop", None, "eager", True, head=head, options=options)
    if not (folder / SETTINGS).exists():
        raise ModelFolderError(folder, f"not a model folder: no {SETTINGS} (transferlab run --save) and no {MODEL} "
                                       f"(transferlab finetune)")
    settings = read_settings(folder)
    json_path = folder / SETTINGS
    features, clf = entry(settings, "features", json_path), entry(settings, "classifier", json_path)
    classes = entry(settings, "classes", json_path, list)
    try:
        file = folder / clf["file"]
        head = linear_head(file, clf, classes) if file.suffix == ".safetensors" else None
        estimator = load_skops(file, clf) if head is None else None
        outputs = [(str(layer), str(pool)) for layer, pool in features["outputs"]]
        fields = dict(l2=bool(features["l2"]), gray=features["gray"], resize=features["resize"],
                      input_size=features.get("input_size"), runtime=features["runtime"],
                      probabilities=clf["scores"] == "probabilities")
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ModelFolderError):
            raise
        raise ModelFolderError(json_path, f"damaged: {type(e).__name__} {e}") from None
    model, _, _ = _load_network(folder, FEATURES, settings, options)
    return SavedClassifier(folder, FEATURES, clf["name"], classes, model, outputs, head=head, estimator=estimator,
                           settings=settings, specs=features.get("specs"), options=options, **fields)
