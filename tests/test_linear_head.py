"""The fold of a fitted scaler/PCA/linear pipeline into one affine map (classify/linear.py)."""
import numpy as np
import pytest

from transferlab.classify.estimators import make_pipeline
from transferlab.classify.linear import fold_pipeline


@pytest.mark.parametrize("name", ["linear-svm", "logreg", "ridge"])
@pytest.mark.parametrize("standardize,pca", [(False, None), (True, None), (True, 10), (False, 10)])
def test_folded_pipeline_gives_the_pipelines_decision_values(name, standardize, pca):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 50)), rng.integers(0, 4, 200)
    model = make_pipeline(name, 1.0, standardize, pca).fit(x, y)
    head = fold_pipeline(model, list("abcd"))
    d = model.decision_function(x)
    # float64 throughout: measured ≤ 8e-16 relative on this data
    assert np.abs(head.decision_function(x) - d).max() <= 1e-12 * np.abs(d).max()
    assert (head.predict(x) == model.predict(x)).all()


def test_a_binary_classifier_folds_into_two_columns_whose_argmax_is_its_label():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 8))
    y = (x[:, 0] > 0).astype(int)
    model = make_pipeline("linear-svm", 1.0, True).fit(x, y)
    head = fold_pipeline(model, ["neg", "pos"])
    assert head.coef.shape == (2, 8)
    assert (head.predict(x) == model.predict(x)).all()


def test_a_classifier_without_a_linear_form_is_refused_by_name():
    x, y = np.random.default_rng(2).normal(size=(30, 4)), np.arange(30) % 3
    with pytest.raises(ValueError, match="KNeighborsClassifier has no linear form.*linear-svm, logreg, ridge"):
        fold_pipeline(make_pipeline("knn").fit(x, y), list("abc"))
