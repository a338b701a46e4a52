"""The extractor as a scikit-learn transformer: images in, feature rows out, usable in a Pipeline and picklable."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from transferlab.features.blocks import join_blocks
from transferlab.features.extractor import Extractor
from transferlab.config import RunConfig
from transferlab.models.builder import default_feature_layer, load_run_model

ACCEPTS = "file paths, PIL images or uint8 arrays (H, W) / (H, W, 3)"


def refuse_sparse(X) -> None:
    import scipy.sparse

    if scipy.sparse.issparse(X):
        raise TypeError(f"FeatureExtractor: sparse input is not supported: X holds images ({ACCEPTS})")


def image_samples(X) -> list:
    """``X`` as a list of images: a sequence of paths/PIL images/uint8 arrays, one column of them (a DataFrame
    column or an (n, 1) array, as ``ColumnTransformer`` passes), or a uint8 stack (n, H, W) / (n, H, W, 3).

    A numeric feature matrix (n_samples, n_features) is refused: its rows are not images, and guessing a shape
    for them would give features of nothing silently."""
    if X is None:
        raise ValueError(f"FeatureExtractor needs images: {ACCEPTS}")
    refuse_sparse(X)
    if isinstance(X, (str, os.PathLike, Image.Image)):
        raise ValueError(f"FeatureExtractor: X is one image ({X!r:.80}); pass a list of images")
    if hasattr(X, "to_numpy"):  # pandas Series or DataFrame
        X = X.to_numpy()
    if not isinstance(X, np.ndarray):
        return list(X)
    if X.dtype.kind in "OUS":
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(f"FeatureExtractor: X of shape {X.shape} is not one column of images ({ACCEPTS})")
        return list(X)
    if X.dtype == np.uint8 and X.ndim in (3, 4):
        return list(X)
    raise ValueError(f"FeatureExtractor: X is a {X.ndim}-D {X.dtype} array of shape {X.shape}, not images: give "
                     f"{ACCEPTS}, or a uint8 stack (n, H, W) / (n, H, W, 3)")


class FeatureExtractor(TransformerMixin, BaseEstimator):
    """``FeatureExtractor(model="vgg16", layers=("relu5_1",), pool="avg").fit_transform(images)`` → (N, D) float32.

    Images are file paths, PIL images or uint8 arrays, preprocessed alike (in-memory ones are cached by a hash of
    their pixels). ``fit`` loads the pretrained network and learns nothing from ``X``. Features come from (and go
    to) the feature cache; each layer is L2-normalised when ``l2``. ``layers=None``: the model's default feature
    layer (``layers_`` once fitted). An unusable image raises (a transformer returns one row per input).
    """

    def __init__(self, model: str = "vgg16", weights: str = "auto", layers=None, pool: str = "avg",
                 gray: str = "replicate", l2: bool = True, runtime: str = "eager", batch_size: int = 16,
                 workers: int | None = None, cache: str | None = None, progress: bool = False):
        self.model, self.weights, self.layers, self.pool, self.gray = model, weights, layers, pool, gray
        self.l2, self.runtime, self.batch_size, self.workers = l2, runtime, batch_size, workers
        self.cache, self.progress = cache, progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # file paths, as CountVectorizer declares its documents
        tags.input_tags.two_d_array = True  # one column of images (ColumnTransformer's selection)
        tags.input_tags.three_d_array = True  # a uint8 stack of gray images (n, H, W)
        tags.no_validation = True  # X is images, checked as images, not by check_array: no n_features_in_
        tags.transformer_tags.preserves_dtype = []  # float32 features whatever the input
        return tags

    def fit(self, X=None, y=None):
        """Load the network; returns self. Nothing is learnt from ``X`` (the network is pretrained): its images are
        checked when transformed, only a sparse matrix is refused here."""
        refuse_sparse(X)
        settings = RunConfig(data="", model=self.model, weights=self.weights, gray=self.gray, runtime=self.runtime,
                             batch_size=self.batch_size, workers=self.workers, cache=self.cache,
                             progress=self.progress)
        model = load_run_model(settings)
        layers = [self.layers] if isinstance(self.layers, str) else self.layers
        self.layers_ = list(layers) if layers else [default_feature_layer(model)[0]]
        self.outputs_ = [(layer, self.pool) for layer in self.layers_]
        self.extractor_ = Extractor.from_run(settings, model, self.outputs_)
        dims = self.extractor_.output_dims()
        self.feature_dims_ = [dims[o] for o in self.outputs_]
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self)
        samples = image_samples(X)
        if not samples:
            return np.empty((0, sum(self.feature_dims_)), dtype=np.float32)
        ext = self.extractor_.extract(samples)
        if ext.bad:
            path, reason = ext.bad[0]
            raise ValueError(f"{path}: {reason}")
        return join_blocks([ext.features[o] for o in self.outputs_], self.l2)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``layer:pool:index`` for each output column."""
        check_is_fitted(self)
        return np.asarray([f"{layer}:{pool}:{i}" for (layer, pool), dim in zip(self.outputs_, self.feature_dims_)
                           for i in range(dim)], dtype=object)
