"""Defaults that work: each model's default feature layer, protocol ``auto`` on a folder of class folders, and
what ``predict`` says when the weights stop short of the classifier — on real 15 Scene images and real weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from transferlab.cli.main import main
from transferlab.data.datasets import DatasetError, load_dataset, make_splits, parse_protocol, resolve_protocol
from transferlab.features.transformer import FeatureExtractor
from transferlab.analysis.imagenet import check_classifier
from transferlab.models.builder import LoadedModel, default_feature_layer
from transferlab.models.registry import MODELS, get_spec
from transferlab.models.sources import WeightsError

CLASSES = ("Coast", "Forest", "Highway", "kitchen", "Office")
PER_CLASS = 6


@pytest.fixture(scope="module")
def class_folders(shared_dir, tmp_path_factory):
    """One folder per class (no train/ and test/), 6 real 15 Scene images each: the most common layout."""
    root = tmp_path_factory.mktemp("flat")
    for name in CLASSES:
        (root / name).mkdir()
        for f in sorted((shared_dir / "data" / "15scene" / "train" / name).iterdir())[:PER_CLASS]:
            (root / name / f.name).write_bytes(f.read_bytes())
    return root


@pytest.fixture(scope="module")
def cache(feature_cache):
    return feature_cache


def _declared(name: str, covers: str | None, tag: str = "imagenet") -> LoadedModel:
    """A model whose weights reach ``covers`` (None: random), on the meta device: coverage without any file."""
    with torch.device("meta"):
        net = get_spec(name).builder().eval()
    return LoadedModel(name, net, tag if covers else "none", "x", covers, None, None)


def test_every_model_declares_a_default_layer_that_exists():
    for name, spec in MODELS.items():
        with torch.device("meta"):
            names = spec.builder().layer_names()
        assert spec.feature_layers and all(layer in names for layer, _ in spec.feature_layers), name
        assert spec.last_layer == names[-1]


@pytest.mark.parametrize("name, covers, layer", [
    ("vgg16", "fc8", "relu7"),   # the official full file: the practical's layer
    ("vgg16", "fc7", "relu7"),   # relu7 has no parameters: reached by weights up to fc7
    ("vgg16", "fc6", "pool5"),   # fc7 missing: relu7 would be random
    ("vgg16", "pool5", "pool5"),  # imagenet-conv
    ("vgg16", None, "relu7"),    # explicitly random weights cover every layer
    ("vgg19_bn", "fc8", "relu7"),
    ("alexnet", "fc8", "relu7"),
    ("alexnet", "pool5", "pool5"),
    ("efficientnet_lite2", "fc", "avgpool"),
])
def test_default_layer_follows_what_the_weights_reach(name, covers, layer):
    chosen, why = default_feature_layer(_declared(name, covers))
    assert chosen == layer
    if layer == "relu7":
        assert why == f"{name}'s default feature layer (the practical's layer, the last hidden fully connected one)"
    elif layer == "pool5":
        assert why == (f"the last convolutional map; {name}'s default relu7 (the practical's layer, the last hidden "
                       f"fully connected one) lies past {covers}, where its 'imagenet' weights stop")


def test_default_layer_of_the_real_offline_weights(models):
    assert default_feature_layer(models("vgg16", "imagenet-conv"))[0] == "pool5"
    layer, why = default_feature_layer(models("efficientnet_lite0", "imagenet"))
    assert (layer, why) == ("avgpool", "efficientnet_lite0's default feature layer (the pooled features before the "
                                       "classifier)")


def test_feature_extractor_uses_the_default_layer(class_folders, cache):
    paths = [str(p) for p in sorted((class_folders / "Coast").iterdir())[:2]]
    fe = FeatureExtractor("efficientnet_lite0", "imagenet", cache=cache).fit()
    x = fe.transform(paths)
    assert fe.layers is None and fe.layers_ == ["avgpool"] and x.shape == (2, 1280)
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-6)


def test_holdout_sizes_per_class_and_seeding():
    labels = np.repeat(np.arange(5), [2, 3, 4, 10, 101])
    (s,) = make_splits(labels, np.full(len(labels), ""), "auto", seed=0)
    test_sizes = np.bincount(labels[s.test]).tolist()
    train_sizes = np.bincount(labels[s.train]).tolist()
    # round(0.25 n), at least one image on each side: n=2 -> 1/1, 3 -> 1, 4 -> 1, 10 -> round(2.5) = 2, 101 -> 25
    assert test_sizes == [1, 1, 1, 2, 25] and train_sizes == [1, 2, 3, 8, 76]
    assert len(np.intersect1d(s.train, s.test)) == 0 and len(s.train) + len(s.test) == len(labels)
    (again,) = make_splits(labels, np.full(len(labels), ""), "holdout:0.25", seed=0)
    (other,) = make_splits(labels, np.full(len(labels), ""), "holdout:0.25", seed=1)
    assert again.test.tolist() == s.test.tolist() and other.test.tolist() != s.test.tolist()
    (half,) = make_splits(labels, np.full(len(labels), ""), "holdout:0.5", seed=0)
    assert np.bincount(labels[half.test]).tolist() == [1, 2, 2, 5, 50]  # round(1.5) = 2, round(50.5) = 50
    with pytest.raises(DatasetError, match="class 1 has 1 image; a hold-out split needs at least 2"):
        make_splits(np.array([0, 0, 1]), np.full(3, ""), "auto")
    with pytest.raises(ValueError, match="unknown protocol 'holdout:1.5'"):
        parse_protocol("holdout:1.5")


def test_auto_protocol_is_fixed_with_train_and_test_folders(shared_dir):
    ds = load_dataset(shared_dir / "data" / "15scene", limit_per_class=2)
    assert resolve_protocol("auto", ds.has_fixed_split) == ("fixed", "auto: the dataset's own train/ and test/ folders")
    (s,) = make_splits(ds.labels, ds.split, "auto")
    assert len(s.train) == 30 and len(s.test) == 30 and set(ds.split[s.train]) == {"train"}
    assert resolve_protocol("random:3", False) == ("random:3", "as asked")


def test_run_on_class_folders_with_efficientnet_and_no_layer(class_folders, cache, tmp_path, capsys):
    """The two first commands a new user typed that once failed: no --layer with EfficientNet-Lite, a flat layout."""
    out = tmp_path / "run"
    assert main(["run", "--data", str(class_folders), "--model", "efficientnet_lite0", "--cache", cache,
                 "--workers", "0", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0] == ("layer avgpool: efficientnet_lite0's default feature layer (the pooled features before the "
                        "classifier)")
    assert lines[1].startswith("protocol holdout:0.25: auto: no train/ and test/ folders, so one split seeded by "
                               "--seed holding out 25% of each class")
    # 6 images per class: round(1.5) = 2 held out, 4 to train on
    assert "data: 5 classes, train 20, test 10, 0 bad files skipped; protocol holdout:0.25" in printed
    result = json.loads((out / "result.json").read_text())
    prov = result["provenance"]
    assert prov["layers"] == ["avgpool"] and prov["config"]["layers"] == ["avgpool"]
    assert prov["protocol"] == prov["config"]["protocol"] == "holdout:0.25"
    assert set(prov["chosen_by_default"]) == {"layers", "protocol"}
    assert result["feature_dim"] == 1280
    # measured 1.0 on these 10 held-out images with seeds 0, 1, 2 and 3 (chance 0.2)
    assert result["accuracy"] >= 0.8


def test_study_and_extract_take_the_default_layer(class_folders, cache, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    assert main(["study", "classifiers", "--data", str(class_folders), "--model", "efficientnet_lite0", "--cache",
                 cache, "--workers", "0", "--quiet", "--out", str(tmp_path / "study")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("layer avgpool: efficientnet_lite0's default feature layer")
    record = json.loads((tmp_path / "study" / "study.json").read_text())
    assert record["provenance"]["config"]["layers"] == ["avgpool"]
    assert record["provenance"]["protocol"] == "holdout:0.25"
    # VGG16 offline: the practical's relu7 is past the conv-only weights, so pool5, and the run says why
    assert main(["extract", "--data", str(class_folders), "--limit-per-class", "2", "--cache", cache, "--workers", "0",
                 "--quiet", "--out", str(tmp_path / "store")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("layer pool5: the last convolutional map; vgg16's default relu7 (the practical's layer, "
                              "the last hidden fully connected one) lies past pool5, where its 'imagenet-conv' "
                              "weights stop")
    from transferlab.features.store import FeatureStore

    assert FeatureStore(tmp_path / "store").outputs == [("pool5", "avg")]
    # a store's own layers are the default of `run --features`
    assert main(["run", "--features", str(tmp_path / "store"), "--out", str(tmp_path / "run")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"layer pool5: the layers {tmp_path / 'store'} holds with pool avg"
    assert lines[1].startswith("protocol holdout:0.25: auto: no train/ and test/ folders")
    assert "data: 5 classes, train 5, test 5, 0 bad files skipped; protocol holdout:0.25" in lines[3]
    assert main(["run", "--features", str(tmp_path / "store"), "--pool", "max"]) == 2
    assert capsys.readouterr().err == (f"transferlab run: error: {tmp_path / 'store'}: no features pooled with 'max' "
                                       f"(--pool); the store holds pool5/avg\n")


def test_predict_says_which_weights_it_needs(models):
    with pytest.raises(WeightsError) as err:
        check_classifier(models("vgg16", "imagenet-conv"))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == ("predict needs vgg16's whole ImageNet classifier (up to fc8), but its 'imagenet-conv' weights stop "
                   "at pool5: use --weights imagenet (vgg16-397923af.pth, downloaded once from "
                   "https://download.pytorch.org/models/vgg16-397923af.pth); offline, efficientnet_lite0 predicts")
