"""Where the classifier looks (analysis/cam.py, gradcam.py, looks.py; plots/cam.py; the report section), on real
15 Scene images with VGG16's ImageNet convolutions and heads fitted on one training image per class."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from torch import nn

from transferlab.analysis.cam import exact_maps
from transferlab.analysis.gradcam import explain, gradcam_maps
from transferlab.analysis.looks import where_it_looks
from transferlab.analysis.pipeline import Pipeline
from transferlab.features.blocks import join_blocks
from transferlab.classify.estimators import make_pipeline
from transferlab.classify.linear import LinearHead, fold_pipeline
from transferlab.classify.scores import most_confused, scores
from transferlab.data.datasets import load_dataset
from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import Extractor
from transferlab.plots.cam import draw_class_maps
from transferlab.report.render import environment
from transferlab.report.sections.looks import looks

AVG3 = [("pool4", "avg"), ("relu5_1", "avg"), ("pool5", "avg")]
ALL = AVG3 + [("pool5", "max")]


@pytest.fixture(scope="module")
def scene(shared_dir, models, tmp_path_factory):
    """One image per class of each split, VGG16 (shared, gray replicate: left unchanged), a feature cache, and the
    training features of every output the tests use (one forward pass per image)."""
    ds = load_dataset(shared_dir / "data" / "15scene", limit_per_class=1)
    vgg = models("vgg16", "imagenet-conv")
    cache = FeatureCache(tmp_path_factory.mktemp("cam-features"))
    train = np.flatnonzero(ds.split == "train")
    ex = Extractor(vgg, ALL, cache=cache, workers=0, progress=False).extract([ds.paths[i] for i in train])
    return {"ds": ds, "vgg": vgg, "cache": cache, "feats": ex.features, "y": ds.labels[train][ex.ok],
            "test": np.flatnonzero(ds.split == "test")}


def pipeline(scene, outputs, l2=True) -> Pipeline:
    """A linear SVM (standardised, so the scaler is folded into the head) on ``outputs``, as a Pipeline."""
    x = join_blocks([scene["feats"][o] for o in outputs], l2)
    head = fold_pipeline(make_pipeline("linear-svm", 1.0, standardize=True).fit(x, scene["y"]), scene["ds"].classes)
    return Pipeline(scene["vgg"], outputs, l2, "replicate", head, cache=scene["cache"], workers=0)


def test_exact_class_maps_average_to_the_decision_value_minus_the_bias(scene):
    pipe = pipeline(scene, AVG3)
    paths = [scene["ds"].paths[i] for i in scene["test"][[0, 5, 10]]]
    ok, values, bad = pipe.decision_values(paths)  # the extractor's float32 features, batched, through the cache
    maps, _ = explain(pipe, paths, top=len(pipe.classes))
    assert ok == [0, 1, 2] and bad == [] and all(m.method == "cam" for m in maps)
    for m, d in zip(maps, values):
        assert m.grid == (14, 14)  # pool5's 7×7 repeated onto pool4's and relu5_1's 14×14
        target = d - m.bias
        # measured on these images: ≤ 3.5e-7 of the largest |score − bias| (float32 features, float64 maps)
        assert np.abs(m.maps.mean((1, 2)) - target[m.shown]).max() <= 1e-4 * np.abs(target).max()
        # the layers' shares add up to the map's mean (float64: measured ≤ 8.9e-16 absolute)
        assert np.allclose(sum(m.contributions.values()), m.maps.mean((1, 2)), rtol=0, atol=1e-10)
        assert m.top(1) == [int(d.argmax())]


def test_a_class_is_chosen_by_name_and_an_unknown_one_is_refused_by_name(scene):
    pipe = pipeline(scene, AVG3)
    (m,), _ = explain(pipe, [scene["ds"].paths[scene["test"][0]]], classes=["coast"])
    assert [m.classes[c] for c in m.shown] == ["Coast"]
    with pytest.raises(KeyError, match="unknown class 'beach'; classes: bedroom, Coast"):
        explain(pipe, [scene["ds"].paths[scene["test"][0]]], classes=["beach"])


def test_an_unreadable_image_is_named_and_the_others_are_still_mapped(scene, tmp_path):
    pipe = pipeline(scene, AVG3)
    missing = tmp_path / "gone.jpg"
    maps, bad = explain(pipe, [missing, scene["ds"].paths[scene["test"][0]]])
    assert len(maps) == 1 and bad == [(str(missing), "no such file")]


def test_layers_whose_grids_do_not_divide_are_refused_in_one_line(scene):
    # at a 240-pixel input pool4 is 15×15 and pool5 7×7: nearest upsampling by 15/7 cannot keep the mean
    outputs = [("pool4", "avg"), ("pool5", "avg")]
    head = LinearHead(np.zeros((15, 1024)), np.zeros(15), scene["ds"].classes)
    pipe = Pipeline(scene["vgg"], outputs, True, "replicate", head, input_size=240, workers=0)
    with pytest.raises(ValueError, match=r"^pool5's 7×7 grid does not divide the finest grid 15×15"):
        exact_maps(pipe, pipe.picture(scene["ds"].paths[scene["test"][0]]))


def test_exact_maps_refuse_max_pooling_and_name_grad_cam(scene):
    pipe = pipeline(scene, [("pool5", "max")])
    with pytest.raises(ValueError, match="pool5 is pooled 'max': use Grad-CAM"):
        explain(pipe, [scene["ds"].paths[scene["test"][0]]], method="cam")


def test_grad_cam_on_average_pooling_without_l2_is_the_exact_map_over_the_number_of_cells(scene):
    pipe = pipeline(scene, [("relu5_1", "avg")], l2=False)
    for i in scene["test"][[7]]:
        pic = pipe.picture(scene["ds"].paths[i])
        cam = exact_maps(pipe, pic, top=4)
        grad = gradcam_maps(pipe, pic, "relu5_1", classes=cam.shown, relu=False)
        cells = cam.grid[0] * cam.grid[1]
        # ∂s/∂A = w / cells for every cell: measured ≤ 2.7e-8 of the largest |map| on this image
        assert np.abs(grad.maps * cells - cam.maps).max() <= 1e-5 * np.abs(cam.maps).max()
        rectified = gradcam_maps(pipe, pic, "relu5_1", classes=cam.shown)
        assert rectified.maps.min() >= 0 and np.allclose(rectified.maps, np.maximum(grad.maps, 0))


def test_grad_cam_of_an_l2_head_sums_to_zero_before_its_relu(scene):
    # an L2-normalised score does not change when a layer's maps are scaled, so Σ A·∂s/∂A = 0: the linear
    # Grad-CAM map averages to zero, and is not the exact map (the norm's gradient enters)
    pipe = pipeline(scene, [("relu5_1", "avg")], l2=True)
    pic = pipe.picture(scene["ds"].paths[scene["test"][3]])
    cam = exact_maps(pipe, pic, top=3)
    grad = gradcam_maps(pipe, pic, "relu5_1", classes=cam.shown, relu=False)
    # measured: |mean| ≤ 1.5e-8 of the largest |value|; distance to the scaled exact map 0.68 of its largest value
    assert np.abs(grad.maps.mean((1, 2))).max() <= 1e-5 * np.abs(grad.maps).max()
    cells = cam.grid[0] * cam.grid[1]
    assert np.abs(grad.maps * cells - cam.maps).max() >= 0.2 * np.abs(cam.maps).max()


def test_grad_cam_of_max_pooled_features_is_non_negative_on_the_layers_grid(scene):
    pipe = pipeline(scene, [("pool5", "max")])
    paths = [scene["ds"].paths[i] for i in scene["test"][[2, 9]]]
    _, values, _ = pipe.decision_values(paths)
    for layer, grid in ((None, (7, 7)), ("relu5_3", (14, 14))):
        maps, _ = explain(pipe, paths, layer=layer)
        for m, d in zip(maps, values):
            assert m.method == "grad-cam" and m.layers == [layer or "pool5"] and m.grid == grid
            assert m.maps.min() >= 0 and (m.maps.reshape(len(m.shown), -1).max(1) > 0).all()
            # the differentiable scores against the extractor's: measured ≤ 4.8e-8 relative (float32 features)
            assert np.abs(m.scores - d).max() <= 1e-5 * np.abs(d).max()


def test_grad_cam_at_a_convolution_sees_through_the_in_place_relu_after_it(scene):
    pipe = pipeline(scene, [("pool5", "max")])
    pic = pipe.picture(scene["ds"].paths[scene["test"][4]])
    inplace = gradcam_maps(pipe, pic, "conv5_3", top=2)
    model = copy.deepcopy(scene["vgg"])
    for module in model.net.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    plain = Pipeline(model, pipe.outputs, True, "replicate", pipe.head, workers=0)
    reference = gradcam_maps(plain, pic, "conv5_3", classes=inplace.shown)
    # the same operations in the same order: measured identical (0.0)
    assert np.abs(inplace.maps - reference.maps).max() <= 1e-6 * np.abs(reference.maps).max()
    assert not np.allclose(inplace.maps, gradcam_maps(pipe, pic, "relu5_3", classes=inplace.shown).maps)


def test_grad_cam_of_a_networks_own_logits_gives_probabilities(models, shared_dir):
    lite = models("efficientnet_lite0", "imagenet")
    pipe = Pipeline(lite, None, workers=0)
    forest = sorted((shared_dir / "data" / "15scene" / "test" / "forest").iterdir())[0]
    (m,), _ = explain(pipe, [forest], top=2)
    assert m.method == "grad-cam" and m.layers == ["head"] and m.grid == (7, 7)
    assert m.maps.min() >= 0 and abs(m.probabilities.sum() - 1) < 1e-9
    assert m.top(2) == m.shown and len(m.classes) == 1000


def test_the_figure_names_each_class_with_its_score(scene):
    pipe = pipeline(scene, AVG3)
    maps, _ = explain(pipe, [scene["ds"].paths[i] for i in scene["test"][[0, 5]]], top=2)
    fig = draw_class_maps(maps, "title", truths=["bedroom", "Industrial"])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    for m in maps:
        for c in m.shown:
            assert any(m.classes[c] in t and f"score {m.scores[c]:.3f}" in t for t in titles)
    assert sum("✓" in t for t in titles) >= 1  # the true class is marked where it is shown


def test_where_it_looks_maps_the_worst_error_of_each_confused_pair_and_confident_right_answers(scene):
    pipe = pipeline(scene, AVG3)
    ds, test = scene["ds"], scene["test"]
    rec = where_it_looks(pipe, [ds.paths[i] for i in test], [ds.classes[ds.labels[i]] for i in test], pairs=2,
                         correct=1, top=3)
    _, values, _ = pipe.decision_values([ds.paths[i] for i in test])
    y = ds.labels[test]
    assert rec.images == 15 and rec.accuracy == pytest.approx(float((values.argmax(1) == y).mean()))
    cm = np.array(scores(y, values.argmax(1), ds.classes)["confusion_matrix"])
    assert rec.pairs == most_confused(cm, ds.classes, 2)
    confused = [x for x in rec.looked if x.kind == "confused"]
    assert [(x.true, x.predicted) for x in confused] == [(p["true"], p["predicted"]) for p in rec.pairs]
    assert all(x.true != x.predicted and x.true in [c for c, _, _ in x.top] for x in confused)
    assert [x.true == x.predicted for x in rec.looked if x.kind == "correct"] == [True]
    assert rec.method == "cam" and rec.exactness <= 1e-4  # measured 2.5e-8 on these images
    html = environment().get_template("looks.html.j2").render(d=looks(rec).data)
    assert html.count("<figure>") == len(rec.looked) and rec.pairs[0]["predicted"] in html
    assert "not measured" in environment().get_template("looks.html.j2").render(d=looks(None, "no model").data).lower()
