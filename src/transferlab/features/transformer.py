"""The extractor as a scikit-learn transformer: image paths in, feature rows out, usable in a Pipeline."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from transferlab.classify.blocks import join_blocks
from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import Extractor
from transferlab.models.builder import default_feature_layer, load_model


class FeatureExtractor(TransformerMixin, BaseEstimator):
    """``FeatureExtractor(model="vgg16", layers=("relu5_1",), pool="avg").fit_transform(paths)`` → (N, D).

    Features come from (and go to) the feature cache; each layer is L2-normalised when ``l2``. ``layers=None``:
    the model's default feature layer (``layers_`` once fitted). An unreadable image raises (a transformer must
    return one row per input).
    """

    def __init__(self, model: str = "vgg16", weights: str = "auto", layers=None, pool: str = "avg",
                 gray: str = "replicate", l2: bool = True, runtime: str = "eager", batch_size: int = 16,
                 cache: str | None = None, progress: bool = False):
        self.model, self.weights, self.layers, self.pool, self.gray = model, weights, layers, pool, gray
        self.l2, self.runtime, self.batch_size, self.cache, self.progress = l2, runtime, batch_size, cache, progress

    def fit(self, X=None, y=None):
        model = load_model(self.model, self.weights)
        self.layers_ = list(self.layers) if self.layers else [default_feature_layer(model)[0]]
        outputs = [(layer, self.pool) for layer in self.layers_]
        self.extractor_ = Extractor(model, outputs, gray=self.gray, runtime=self.runtime, batch_size=self.batch_size,
                                    cache=FeatureCache(self.cache) if self.cache else None, progress=self.progress)
        self.outputs_ = outputs
        return self

    def transform(self, X) -> np.ndarray:
        ext = self.extractor_.extract(list(X))
        if ext.bad:
            path, reason = ext.bad[0]
            raise ValueError(f"{path}: {reason}")
        blocks = [ext.features[o] for o in self.outputs_]
        return join_blocks(blocks, self.l2)
