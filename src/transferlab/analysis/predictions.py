"""ImageNet predictions of real sample photos and of a few dataset images, as a record."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transferlab.analysis.imagenet import Prediction, predict_files
from transferlab.data.datasets import load_dataset
from transferlab.data.samples import sample_paths
from transferlab.models.builder import load_model

# What each sample photo shows (so that a reader can judge the predictions without opening the files).
from transferlab.models.registry import get_spec
SAMPLE_CONTENT = {
    "chelsea": "a tabby cat (scikit-image 'chelsea')",
    "coffee": "a cup of coffee on a saucer (scikit-image 'coffee')",
    "astronaut": "a portrait of astronaut Eileen Collins; ImageNet-1k has no person or astronaut class "
                 "(scikit-image 'astronaut')",
    "rocket": "a rocket on its launch pad (scikit-image 'rocket')",
    "china": "a Chinese temple roof among trees (scikit-learn 'china.jpg')",
    "flower": "a flower close-up (scikit-learn 'flower.jpg')",
}


@dataclass
class TopClass:
    name: str
    probability: float


@dataclass
class PredictionRow:
    """One image: its short name, what it shows, and its top classes, best first."""

    image: str
    name: str
    what: str
    top: list[TopClass]
    scene_class: str | None = None  # the class of a dataset image; None for a sample photo


@dataclass
class ModelPredictions:
    """One model's predictions; ``results`` keeps the crops the network saw, for the figure."""

    label: str
    provenance: dict
    rows: list[PredictionRow]
    errors: list[str]
    command: str
    results: list[Prediction]


@dataclass
class PredictionsRecord:
    models: list[ModelPredictions]
    vgg16_full_cached: bool  # VGG16's own classifier needs the full torchvision file
    vgg16_file: str
    vgg16_path: str
    images: list[str]


def scene_images(data: Path | None, prefer=("coast", "kitchen", "highway"), n: int = 2) -> list[tuple[str, Path]]:
    """(class, path) of the first test image of ``n`` classes of a dataset folder (preferred classes first)."""
    if data is None or not Path(data).is_dir():
        return []
    ds = load_dataset(data, limit_per_class=1)
    side = "test" if ds.has_fixed_split else ""
    first = {}
    for path, label, sp in zip(ds.paths, ds.labels, ds.split):
        if sp == side and ds.classes[label] not in first:
            first[ds.classes[label]] = path
    order = sorted(first, key=lambda c: (prefer.index(c.casefold()) if c.casefold() in prefer else len(prefer), c))
    return [(c, first[c]) for c in order[:n]]


def predictions(samples_dir=None, data: Path | None = None, k: int = 5,
                models=(("efficientnet_lite0", "imagenet"),)) -> PredictionsRecord:
    """Top-``k`` ImageNet classes of the sample photos and of two test images of ``data``, for each model (VGG16's
    own classifier too when its full weights file is cached)."""
    images = [(p.stem, Path(p), SAMPLE_CONTENT.get(p.stem, p.stem), None) for p in sample_paths(samples_dir)]
    images += [(f"15 Scene · {c}", p, f"a 15 Scene test image of class {c!r} (grayscale)", c)
               for c, p in scene_images(data)]
    what = {str(p): (name, desc, c) for name, p, desc, c in images}
    models = list(models)
    vgg_full = get_spec("vgg16").get_weights("imagenet")
    vgg_cached = vgg_full.availability() == "cached"
    if vgg_cached and ("vgg16", "imagenet") not in models:
        models.append(("vgg16", "imagenet"))
    out = PredictionsRecord([], vgg_cached, vgg_full.file_name, str(vgg_full.cached_path()),
                            [str(p) for _, p, _, _ in images])
    for name, tag in models:
        model = load_model(name, tag)
        results, errors = predict_files(model, [p for _, p, _, _ in images], k)
        rows = []
        for r in results:
            name_, desc, cls = what[r.image]
            rows.append(PredictionRow(r.image, name_, desc, [TopClass(c, p) for _, c, p in r.top], cls))
        out.models.append(ModelPredictions(
            model.label(), model.provenance(), rows, [str(e) for e in errors],
            f"transferlab predict {name} --weights {tag} --samples --top {k} --figure predictions_{name}.png",
            results))
    return out
