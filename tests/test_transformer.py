"""The extractor inside a scikit-learn Pipeline, on real 15 Scene images."""
from __future__ import annotations

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from transferlab.data.datasets import load_dataset
from transferlab.features.transformer import FeatureExtractor


def test_pipeline_of_extractor_and_svm_classifies_real_scenes(shared_dir, tmp_path):
    ds = load_dataset(shared_dir / "data" / "15scene", limit_per_class=3)
    train, test = ds.split == "train", ds.split == "test"
    paths = np.array([str(p) for p in ds.paths])
    pipe = make_pipeline(FeatureExtractor("efficientnet_lite0", "imagenet", layers=("avgpool",), cache=str(tmp_path)),
                         LinearSVC())
    pipe.fit(paths[train], ds.labels[train])
    # measured 0.911 on these 45 test images (chance 0.067)
    assert pipe.score(paths[test], ds.labels[test]) > 0.75
    x = pipe[0].transform(paths[test][:2])
    assert x.shape == (2, 1280) and np.allclose(np.linalg.norm(x, axis=1), 1)
    assert pipe[0].get_params()["layers"] == ("avgpool",)
