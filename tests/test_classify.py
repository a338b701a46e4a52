"""``transferlab classify`` on real 15 Scene images: a model saved by ``run --save`` labels a folder (walked
recursively) as ``load_classifier`` does, bad files are named and left out of the CSV (fatal with ``--strict``),
and a ``finetune`` folder classifies with its own classes and its network's probabilities."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from transferlab.analysis.imagenet import predict_files
from transferlab.cli.main import main
from transferlab.deploy.saved import load_classifier
from transferlab.models.builder import load_model


@pytest.fixture(scope="module")
def data(shared_dir):
    return shared_dir / "data" / "15scene"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("features"))


@pytest.fixture(scope="module")
def images(data, tmp_path_factory):
    """A folder of 6 real test images (two in a sub-folder), a truncated JPEG and a text file."""
    folder = tmp_path_factory.mktemp("new")
    (folder / "more").mkdir()
    for i, c in enumerate(("coast", "forest", "office", "street", "kitchen", "mountain")):
        src = sorted((data / "test" / c).iterdir())[-1]  # not among the first 2 of the class (its training images)
        shutil.copy(src, folder / ("more" if i >= 4 else "") / f"{c}.jpg")
    (folder / "more" / "broken.jpg").write_bytes((folder / "coast.jpg").read_bytes()[:2000])
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def model_dir(data, cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["run", "--data", str(data), "--model", "efficientnet_lite0", "--limit-per-class", "2",
                 "--cache", cache, "--out", str(out / "run"), "--save", str(out / "model"), "--quiet",
                 "--workers", "0"]) == 0
    return out / "model"


def test_classify_writes_the_good_images_to_csv_and_names_the_bad_one(model_dir, images, cache, capsys):
    capsys.readouterr()
    out = images.parent / "preds.csv"
    assert main(["classify", str(model_dir), str(images), "--out", str(out), "--cache", cache, "--quiet",
                 "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    assert f"skipped {images / 'more' / 'broken.jpg'}: unreadable image (image file is truncated" in printed
    assert "scores: decision values of the linear-svm (not probabilities" in printed
    assert "6 images classified, 1 bad files skipped" in printed
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["path", "label", "class_1", "decision_1", "class_2", "decision_2", "class_3",
                             "decision_3"]
    good = sorted([*images.glob("*.jpg"), *(images / "more").glob("[!b]*.jpg")])
    assert [r["path"] for r in rows] == [str(p) for p in good]
    clf = load_classifier(model_dir, cache=cache, workers=0)
    assert [r["label"] for r in rows] == list(clf.predict(good))
    assert all(r["label"] == r["class_1"] and float(r["decision_1"]) >= float(r["decision_2"]) for r in rows)
    # measured after 2 training images per class: 3 of these 6 right (coast, mountain, office); the smallest margin
    # between the first two classes is 0.0098 (office), far above float rounding
    assert [r["label"] for r in rows] == ["Coast", "Mountain", "livingroom", "Mountain", "Office", "TallBuilding"]


def test_strict_makes_a_bad_file_fatal_in_one_line(model_dir, images, cache, capsys):
    assert main(["classify", str(model_dir), str(images), "--strict", "--cache", cache, "--quiet",
                 "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"transferlab classify: error: {images / 'more' / 'broken.jpg'}: unreadable image (image "
                          f"file is truncated") and err.endswith("(--strict; 1 bad files in all)") and "\n" not in err


def test_a_finetune_folder_classifies_with_its_classes_and_probabilities(data, cache, images, tmp_path, capsys):
    ft = tmp_path / "ft"
    assert main(["finetune", "--data", str(data), "--model", "alexnet", "--weights", "imagenet-conv", "--mode", "head",
                 "--epochs", "3", "--limit-per-class", "2", "--batch-size", "8", "--workers", "0", "--cache", cache,
                 "--no-compare-svm", "--out", str(ft), "--quiet"]) == 0
    card = json.loads((ft / "card.json").read_text())
    record = json.loads((ft / "finetune.json").read_text())
    assert card["evaluation"]["accuracy"] == record["test_accuracy"] and card["model"]["scores"] == "probabilities"
    assert card["training_set"]["images"] == record["images"]["train"] == 15  # 2 per class, 1 of them validation
    capsys.readouterr()
    assert main(["classify", str(ft), str(images), "--json", "--top", "2", "--cache", cache, "--quiet",
                 "--workers", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["scores"] == "probability" and result["classes"] == record["classes"]
    assert len(result["predictions"]) == 6 and result["bad_files"][0]["path"].endswith("broken.jpg")
    # the network's own forward pass (softmax of its fc layer) gives the same labels and probabilities
    paths = [p["path"] for p in result["predictions"]]
    net, errors = predict_files(load_model("alexnet", str(ft / "model.pth")), paths, k=1)
    assert not errors and [p["label"] for p in result["predictions"]] == [n.top[0][1] for n in net]
    top = np.array([p["top"][0]["score"] for p in result["predictions"]])
    # measured: max |difference| 2.8e-7 on 40 test images (the head in float64 here, float32 in the network)
    assert np.abs(top - np.array([n.top[0][2] for n in net])).max() <= 1e-6
    clf = load_classifier(ft, cache=cache, workers=0)
    assert clf.kind == "finetuned" and len(clf.training_paths()) == 15 and clf.card()["classes"] == clf.classes_
