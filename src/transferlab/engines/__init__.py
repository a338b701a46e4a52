"""Extraction engines: ``local`` (the cached ``features.extract.Extractor`` in this process) and ``ray``
(the same preprocessing and model code inside Ray Data actors, on one machine or a cluster).

Both write the same Parquet feature store (``features.store``). Ray is an optional extra
(``pip install 'transferlab[ray]'``); ``engines.ray_engine`` imports it only when called.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from transferlab.features.extractor import Extractor
from transferlab.models.builder import load_model


def build_extractor(model: str, weights: str, outputs: Sequence[tuple[str, str]], *, gray: str = "replicate",
                    resize: str = "crop", runtime: str = "eager", batch_size: int = 16, device: str = "cpu",
                    seed: int = 0, trust_pickle: bool = False):
    """The LoadedModel and the Extractor (gray mode applied, FeatureNet built) that define the numbers."""
    loaded = load_model(model, weights, seed=seed, trust_pickle=trust_pickle)
    ex = Extractor(loaded, [tuple(o) for o in outputs], gray=gray, resize=resize, runtime=runtime,
                   batch_size=batch_size, workers=0, device=device, cache=None, progress=False)  # never extracts: no cache opened
    return loaded, ex


def output_dims(ex: Extractor) -> dict[tuple[str, str], int]:
    """Feature length of each output (one forward pass of a blank image of the crop size)."""
    if ex.preprocess.mode == "native" and any(pool == "flatten" for _, pool in ex.outputs):
        raise ValueError("--pool flatten with --resize native gives a different length per image; the feature "
                         "store needs one length per column (use crop/resize, or a fixed-size pooling)")
    crop = ex.preprocess.crop
    outs = ex.runner()(torch.zeros(1, ex.channels, crop, crop))
    return {o: int(a.shape[1]) for o, a in zip(ex.outputs, outs)}
