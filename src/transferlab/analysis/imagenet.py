"""Top-K ImageNet classes of images with a model's own preprocessing, and the figure of each image beside its bars."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from transferlab.data.images import ImageError, load_image
from transferlab.models.builder import LoadedModel, imagenet_categories
from transferlab.models.registry import MODELS
from transferlab.models.sources import WeightsError


@dataclass
class Prediction:
    image: str
    crop: Image.Image  # the resized, cropped picture the network saw
    top: list[tuple[int, str, float]]  # (class index, class name, probability), best first

    def to_dict(self) -> dict:
        return {"image": self.image, "top": [{"index": i, "class": c, "probability": p} for i, c, p in self.top]}


def class_names(model: LoadedModel, n: int) -> list[str]:
    """The model's class names; ImageNet's for a 1000-way output without its own (random weights)."""
    return model.categories or (imagenet_categories() if n == 1000 else [f"class {i}" for i in range(n)])


def check_classifier(model: LoadedModel) -> None:
    """Refuse weights that stop before the last layer (its scores would be random), naming the weights that reach
    it, where they come from, and a model that predicts offline."""
    last = model.net.layer_names()[-1]
    if last in model.usable_layers():
        return
    full = [w for w in MODELS[model.name].weights if w.covers == last]
    offline = [name for name, spec in MODELS.items() for w in spec.weights
               if w.covers == spec.last_layer and w.availability() in ("cached", "installable")]
    use = (f"use --weights {full[0].tag} ({full[0].file_name}, downloaded once from "
           f"{full[0].url or full[0].requirement})" if full else f"no full weights of {model.name} are described")
    raise WeightsError(f"predict needs {model.name}'s whole ImageNet classifier (up to {last}), but its {model.tag!r} "
                       f"weights stop at {model.covers}: {use}"
                       + (f"; offline, {offline[0]} predicts" if offline else ""))


def top_k_batch(model: LoadedModel, pixels: torch.Tensor, k: int = 5) -> list[list[tuple[int, str, float]]]:
    """The ``k`` most probable classes (softmax of the last layer) of each image of a (B, 3, H, W) batch in 0..1."""
    with torch.inference_mode():
        probs = model.net(pixels).softmax(dim=1)
    p, idx = probs.topk(min(k, probs.shape[1]), dim=1)
    names = class_names(model, probs.shape[1])
    return [[(int(i), names[i], float(q)) for q, i in zip(row_p, row_i)] for row_p, row_i in zip(p, idx)]


def predict_files(model: LoadedModel, paths, k: int = 5, batch: int = 16) -> tuple[list[Prediction], list[ImageError]]:
    """Predictions for the readable images and one error per unreadable one, each in the order given.

    Refuses (``WeightsError``) weights that do not reach the last layer: its scores would be random.
    """
    check_classifier(model)
    paths, results, errors = list(paths), [], []
    for start in range(0, len(paths), batch):
        chunk = []
        for path in paths[start:start + batch]:
            try:
                chunk.append((str(path), load_image(path)))
            except ImageError as e:
                errors.append(e)
        if chunk:
            pixels = torch.stack([model.preprocess.pixels(img, 3) for _, img in chunk])
            for (path, img), top in zip(chunk, top_k_batch(model, pixels, k)):
                results.append(Prediction(path, model.preprocess.geometry(img.convert("RGB")), top))
    return results, errors
