"""Training on more features than fit in memory: a linear SVM by SGD (``partial_fit``) over Parquet chunks.

The store is read chunk by chunk (``FeatureStore.iter_chunks``), so memory is bounded by ``chunk_rows`` whatever
the number of images; each epoch streams the training split once (rows shuffled within each chunk), and the
test split is streamed once at the end for the confusion matrix. Features are L2-normalised per output and
concatenated, as ``run`` does. For stores that fit in memory, ``features.store.load_features`` + ``run``'s
LinearSVC is the better classifier; this is for the case where that is not possible.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import confusion_matrix

from transferlab.features.blocks import join_blocks
from transferlab.classify.scores import scores_from_confusion
from transferlab.features.store import FeatureStore


def _x(chunk, outputs, l2: bool) -> np.ndarray:
    return join_blocks([chunk.features[o] for o in outputs], l2)


def train_sgd(store_path: str | Path, outputs: Sequence[tuple[str, str]] | None = None, *, l2: bool = True,
              epochs: int = 5, chunk_rows: int = 4096, alpha: float = 1e-4, loss: str = "hinge", seed: int = 0,
              train_split: str = "train", test_split: str = "test") -> dict:
    """Fit ``SGDClassifier(loss)`` on the ``train_split`` rows of a store with ``partial_fit``, evaluate on
    ``test_split``. Returns accuracies, the confusion matrix and the model (``model``)."""
    store = FeatureStore(store_path)
    outputs = store.outputs if outputs is None else [tuple(o) for o in outputs]
    classes = np.arange(len(store.classes))
    model = SGDClassifier(loss=loss, alpha=alpha, random_state=seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    seen = 0
    for _ in range(epochs):
        for chunk in store.iter_chunks(chunk_rows, split=train_split, outputs=outputs):
            order = rng.permutation(len(chunk))
            model.partial_fit(_x(chunk, outputs, l2)[order], chunk.labels[order], classes=classes)
            seen += len(chunk)
    if not seen:
        raise ValueError(f"{store_path}: no good rows in split {train_split!r} to train on")
    fit_seconds = time.perf_counter() - t0
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for chunk in store.iter_chunks(chunk_rows, split=test_split, outputs=outputs):
        cm += confusion_matrix(chunk.labels, model.predict(_x(chunk, outputs, l2)), labels=classes)
    return {**scores_from_confusion(cm, store.classes), "train_rows": seen // epochs, "test_rows": int(cm.sum()),
            "epochs": epochs, "chunk_rows": chunk_rows, "fit_seconds": fit_seconds, "classes": store.classes,
            "outputs": [list(o) for o in outputs], "model": model}
