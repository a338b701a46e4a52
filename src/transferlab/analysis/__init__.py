"""What the report shows that no run or study records: VGG16's architecture, ImageNet predictions, first-layer
activations and the gray-input check, each computed here as a record (no plotting, no HTML)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from transferlab.analysis.activations import ActivationsRecord, first_layer_activations
from transferlab.analysis.architecture import ArchitectureRecord, architecture
from transferlab.analysis.gray_check import GrayCheckRecord, gray_check
from transferlab.analysis.looks import LooksRecord, where_it_looks
from transferlab.analysis.pipeline import Pipeline
from transferlab.analysis.predictions import PredictionsRecord, predictions, scene_images
from transferlab.data.datasets import load_dataset
from transferlab.data.samples import sample_path
from transferlab.deploy.saved import load_classifier
from transferlab.models.builder import load_model
from transferlab.provenance import read_record

NOT_COMPUTED = "not computed (--no-compute)"


@dataclass
class Analyses:
    """The computed parts; a part that failed is None and ``errors`` says why."""

    architecture: ArchitectureRecord | None = None
    predictions: PredictionsRecord | None = None
    activations: ActivationsRecord | None = None
    gray_check: GrayCheckRecord | None = None
    looks: LooksRecord | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def why_missing(self, part: str) -> str:
        """Why ``part`` is not there: its error, else that the networks were not run."""
        return self.errors.get(part, NOT_COMPUTED)


def saved_model_looks(folder: Path) -> LooksRecord:
    """Where the model saved in ``folder`` looks on the test images of the dataset it was trained on (their
    features through the cache; maps for the worst errors of the most confused pairs and confident right ones)."""
    clf = load_classifier(folder, progress=False)
    if clf.head is None:
        raise ValueError(f"{folder}: a {clf.classifier} model has no linear form to map")
    training, record = clf.training(), Path(clf.settings.get("record") or "")
    limit = read_record(record).provenance.config.get("limit_per_class") if record.is_file() else None
    dataset = load_dataset(training["root"], limit)  # the run's own test images (a subset with --limit-per-class)
    test = [i for i, side in enumerate(dataset.split) if side == "test"]
    if not test:
        raise ValueError(f"{training['root']}: no test/ folder to look at the model's test images in")
    pipe = Pipeline(clf.load_backbone(), clf.outputs, clf.l2, clf.gray, clf.head, resize=clf.resize,
                    input_size=clf.input_size)
    return where_it_looks(pipe, [dataset.paths[i] for i in test], [dataset.classes[dataset.labels[i]] for i in test])


def analyse(data: Path | None = None, samples_dir=None, networks: bool = True, log=None,
            models: list[Path] = ()) -> Analyses:
    """VGG16's architecture (no weights needed), and with ``networks`` the parts that run a network: predictions on
    the sample photos and two images of ``data``, VGG16's conv1_1 maps and the gray check on an image of ``data``,
    and where the first saved model of ``models`` looks."""
    out = Analyses()

    def attempt(part, fn):
        t0 = time.perf_counter()
        try:
            value = fn()
        except Exception as e:  # noqa: BLE001 — every failure is shown in its section, with its reason
            value, out.errors[part] = None, f"{type(e).__name__}: {e}"
        if log and networks:
            log(f"{part}: {'failed — ' + out.errors[part] if value is None else 'done'} "
                f"({time.perf_counter() - t0:.1f} s)")
        return value

    def vgg16_conv1():
        model = load_model("vgg16", "imagenet-conv")
        return model, first_layer_activations(model, sample_path("chelsea", samples_dir))

    def gray(model):  # on a dataset image (grayscale in 15 Scene), else on the photo of the activation maps
        scenes = scene_images(data, n=1)
        return gray_check(model, scenes[0][1] if scenes else Path(out.activations.image))

    out.architecture = attempt("architecture", architecture)
    if not networks:
        return out
    out.predictions = attempt("predictions", lambda: predictions(samples_dir, data))
    vgg = attempt("activations", vgg16_conv1)
    if vgg is not None:
        model, out.activations = vgg
        out.gray_check = attempt("gray_check", lambda: gray(model))
    if models:
        out.looks = attempt("looks", lambda: saved_model_looks(Path(models[0])))
    return out
