"""``transferlab export`` and ``transferlab explain`` on a model saved by ``run --save`` from real 15 Scene images:
the exported ONNX graph labels the test images as ``load_classifier`` does, the int8 graph's measured agreement
with fp32 goes into the model's card, and the class maps the command reports average to the scores."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from transferlab.cli.main import main
from transferlab.data.images import load_image
from transferlab.deploy.onnx import read_metadata, run_pipeline
from transferlab.deploy.pipeline import prepare
from transferlab.deploy.saved import load_classifier

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def saved(shared_dir, tmp_path_factory):
    """EfficientNet-Lite0 avgpool + linear SVM on 2 training images per class, saved; its 30 test images."""
    root = tmp_path_factory.mktemp("saved")
    data = shared_dir / "data" / "15scene"
    assert main(["run", "--data", str(data), "--model", "efficientnet_lite0", "--weights", "imagenet",
                 "--layer", "avgpool", "--limit-per-class", "2", "--workers", "0", "--cache", str(root / "cache"),
                 "--quiet", "--out", str(root / "run"), "--save", str(root / "model")]) == 0
    test = sorted(p for d in sorted((data / "test").iterdir()) for p in sorted(d.iterdir())[:2])
    return root, test


def test_the_exported_graph_labels_test_images_as_the_saved_model(saved, capsys):
    root, test = saved
    assert main(["export", str(root / "model"), "--out", str(root / "m.onnx"), "--cache", str(root / "cache")]) == 0
    clf = load_classifier(root / "model", cache=str(root / "cache"), workers=0)
    meta = read_metadata(root / "m.onnx")
    assert meta["classes"] == clf.classes_ and meta["provenance"]["model_folder"] == str(root / "model")
    x = np.stack([prepare(load_image(p), clf.model.preprocess) for p in test])
    scores, labels = run_pipeline(root / "m.onnx", x)
    want = clf.decision_function(test)
    assert [clf.classes_[i] for i in labels] == list(clf.predict(test))  # 30 of 30 measured
    # float32 graph against the float64 head on cached features: measured 7.4e-7 on these 30 images (AMD Zen 3)
    assert np.abs(scores - want).max() < 1e-4


def test_an_int8_export_states_its_agreement_with_fp32_in_the_card(saved):
    root, _ = saved
    assert main(["export", str(root / "model"), "--int8", "--calibration-images", "15", "--out",
                 str(root / "m8.onnx"), "--cache", str(root / "cache"), "--json"]) == 0
    card = json.loads((root / "model" / "card.json").read_text())
    (exp,) = [e for e in card["exports"] if e["numerics"] == "int8"]
    # 15 calibration images, the other 15 training images compared: measured 15/15 labels, largest score
    # difference 0.060 (AMD Zen 3, the AVX2 recipe)
    assert exp["calibration_images"] == 15 and exp["agreement_with_fp32"]["images"] == 15
    assert exp["agreement_with_fp32"]["label_agreement"] >= 0.9
    assert "labels agree with the fp32 graph" in (root / "model" / "card.md").read_text()
    assert read_metadata(root / "m8.onnx")["provenance"]["calibration"]["images"] == 15


def test_explain_reports_exact_maps_that_average_to_the_scores(saved, capsys):
    root, test = saved
    capsys.readouterr()
    assert main(["explain", str(root / "model"), str(test[0]), str(test[5]), "--json", "--top", "2",
                 "--figure", str(root / "looks.png"), "--cache", str(root / "cache")]) == 0
    out = json.loads(capsys.readouterr().out)
    clf = load_classifier(root / "model", cache=str(root / "cache"), workers=0)
    want = clf.decision_function([test[0], test[5]])
    for item, row in zip(out, want):
        assert item["method"] == "cam" and len(item["classes"]) == 2
        for c in item["classes"]:
            k = clf.classes_.index(c["class"])
            assert c["score"] == pytest.approx(row[k], abs=1e-4)
            # a map averages to its score minus the bias: measured ≤ 3.3e-7 of the largest |score - bias|
            assert c["map_mean"] == pytest.approx(row[k] - clf.head.intercept[k], abs=1e-4)
    with Image.open(root / "looks.png") as im:
        assert im.size[0] > 600


def test_a_model_without_a_linear_form_is_refused_by_export_and_explain_in_one_line(saved, shared_dir, tmp_path,
                                                                                      capsys):
    root, test = saved
    pytest.importorskip("skops")
    assert main(["run", "--data", str(shared_dir / "data" / "15scene"), "--model", "efficientnet_lite0",
                 "--weights", "imagenet", "--layer", "avgpool", "--limit-per-class", "2", "--workers", "0",
                 "--classifier", "knn", "--cache", str(root / "cache"), "--quiet", "--out", str(tmp_path / "run"),
                 "--save", str(tmp_path / "knn")]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "knn"), "--out", str(tmp_path / "k.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "a knn model has no linear form to export" in err
    assert main(["explain", str(tmp_path / "knn"), str(test[0]), "--cache", str(root / "cache")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "a knn model has no linear form to map" in err
