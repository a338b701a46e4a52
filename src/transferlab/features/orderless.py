"""Orderless encoders of dense convolutional descriptors (each map position a C-dim descriptor): first order
(average, signed square root), compact second order (bilinear), VLAD and Fisher vectors. Each is a scikit-learn
style estimator fitted on a sample of TRAINING descriptors only (PCA, k-means, GMM), then turns (N, C, H, W) maps
into (N, D) L2-normalised vectors.

Compact bilinear: PCA to ``dim`` first, then the exact mean outer product (upper triangle, dim·(dim+1)/2 values).
Chosen over Tensor Sketch / Random Maclaurin: it is exact and deterministic for the reduced descriptors, needs
no random projection of thousands of dimensions to approximate the kernel, and the PCA is fitted on train only.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture


def descriptors(maps: np.ndarray) -> np.ndarray:
    """(N, C, H, W) maps -> (N, H·W, C) float32 descriptors."""
    n, c = maps.shape[:2]
    return np.ascontiguousarray(maps.reshape(n, c, -1).transpose(0, 2, 1), dtype=np.float32)


def sample_descriptors(maps: np.ndarray, per_image: int, rng: np.random.Generator) -> np.ndarray:
    """``per_image`` random positions of each map: (N·per_image, C), what the encoders are fitted on."""
    d = descriptors(maps)
    take = min(per_image, d.shape[1])
    return np.concatenate([x[rng.choice(len(x), take, replace=False)] for x in d])


def l2n(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def ssqrt(x: np.ndarray) -> np.ndarray:
    """Signed square root (power normalisation): damps bursty, frequent components."""
    return np.sign(x) * np.sqrt(np.abs(x))


class _Encoder(BaseEstimator, TransformerMixin):
    """PCA of the descriptors to ``dim`` (None: none), then :meth:`encode` of (N, L, dim) descriptors."""

    dim: int | None

    def _fit_pca(self, x: np.ndarray) -> np.ndarray:
        self.pca_ = PCA(self.dim, random_state=self.seed).fit(x) if self.dim else None
        return self._project(x[None])[0]

    def _project(self, d: np.ndarray) -> np.ndarray:
        if self.pca_ is None:
            return d
        n, l, c = d.shape
        return self.pca_.transform(d.reshape(-1, c)).reshape(n, l, -1).astype(np.float32)

    def transform(self, maps: np.ndarray) -> np.ndarray:
        return self.encode(self._project(descriptors(maps))).astype(np.float32)


class MeanEncoder(_Encoder):
    """Average of the descriptors, signed square root, L2 (first order; ``sqrt=False``: plain average + L2)."""

    def __init__(self, sqrt: bool = True):
        self.sqrt = sqrt

    dim = None

    def fit(self, x=None, y=None):
        self.pca_ = None
        return self

    def encode(self, d):
        m = d.mean(1)
        return l2n(ssqrt(m) if self.sqrt else m)


class BilinearEncoder(_Encoder):
    """Second-order pooling: mean of x xᵀ over positions (PCA-reduced x), upper triangle, signed sqrt, L2."""

    def __init__(self, dim: int | None = 64, seed: int = 0):
        self.dim, self.seed = dim, seed

    def fit(self, x, y=None):
        self._fit_pca(x)
        return self

    def encode(self, d):
        g = np.einsum("nli,nlj->nij", d, d) / d.shape[1]
        iu = np.triu_indices(d.shape[2])
        return l2n(ssqrt(g[:, iu[0], iu[1]]))


class VLADEncoder(_Encoder):
    """VLAD: sums of residuals to the nearest of ``k`` k-means centres (k·dim values), intra-normalised per centre,
    signed sqrt, L2 (Arandjelović & Zisserman's variant)."""

    def __init__(self, k: int = 32, dim: int | None = 64, seed: int = 0):
        self.k, self.dim, self.seed = k, dim, seed

    def fit(self, x, y=None):
        self.kmeans_ = KMeans(self.k, n_init=1, random_state=self.seed).fit(self._fit_pca(x))
        return self

    def encode(self, d):
        n, l, c = d.shape
        centres = self.kmeans_.cluster_centers_.astype(np.float32)
        assign = self.kmeans_.predict(d.reshape(-1, c)).reshape(n, l)
        onehot = (assign[..., None] == np.arange(self.k)).astype(np.float32)  # (n, l, k)
        v = np.einsum("nlk,nlc->nkc", onehot, d) - onehot.sum(1)[..., None] * centres
        return l2n(ssqrt(l2n(v).reshape(n, -1)))


class FisherEncoder(_Encoder):
    """Fisher vector: gradients of a diagonal ``k``-component GMM's log-likelihood with respect to its means and
    variances (2·k·dim values; Perronnin et al.'s improved FV: signed sqrt, L2)."""

    def __init__(self, k: int = 16, dim: int | None = 64, seed: int = 0):
        self.k, self.dim, self.seed = k, dim, seed

    def fit(self, x, y=None):
        self.gmm_ = GaussianMixture(self.k, covariance_type="diag", reg_covar=1e-3, max_iter=100,
                                    random_state=self.seed).fit(self._fit_pca(x))
        return self

    def encode(self, d):
        n, l, c = d.shape
        g = self.gmm_
        q = g.predict_proba(d.reshape(-1, c)).reshape(n, l, self.k).astype(np.float32)  # posteriors
        sigma = np.sqrt(g.covariances_).astype(np.float32)  # (k, c)
        z = (d[:, :, None, :] - g.means_[None, None].astype(np.float32)) / sigma  # (n, l, k, c)
        w = g.weights_.astype(np.float32)[None, :, None]
        mu = np.einsum("nlk,nlkc->nkc", q, z) / (l * np.sqrt(w))
        var = np.einsum("nlk,nlkc->nkc", q, z * z - 1) / (l * np.sqrt(2 * w))
        return l2n(ssqrt(np.concatenate([mu, var], 1).reshape(n, -1)))


def make_encoder(family: str, seed: int = 0, **params) -> _Encoder:
    """An unfitted encoder by family name (sqrt-mean, bilinear, vlad, fisher) and its parameters."""
    if family == "sqrt-mean":
        return MeanEncoder(**params)
    if family == "bilinear":
        return BilinearEncoder(seed=seed, **params)
    if family == "vlad":
        return VLADEncoder(seed=seed, **params)
    if family == "fisher":
        return FisherEncoder(seed=seed, **params)
    raise ValueError(f"unknown orderless encoder {family!r}; choose sqrt-mean, bilinear, vlad or fisher")
