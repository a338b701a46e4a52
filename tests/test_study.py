"""Each study on a small real subset of 15 Scene: its table, its figure, and values that make sense."""
from __future__ import annotations

import json

import pytest

from transferlab.config import RunConfig
from transferlab.studies.registry import STUDIES
from transferlab.cli.study import save_study
from transferlab.studies.runner import run_study


@pytest.fixture(scope="module")
def base(shared_dir, tmp_path_factory):
    return RunConfig(data=str(shared_dir / "data" / "15scene"), model="vgg16", weights="imagenet-conv",
                     layers=["pool4"], limit_per_class=3, cache=str(tmp_path_factory.mktemp("cache")), workers=0,
                     progress=False)


def _run(name, cfg, tmp_path):
    record = run_study(name, cfg)
    save_study(record, tmp_path / name)
    saved = json.loads((tmp_path / name / "study.json").read_text())
    assert saved["rows"] and saved["columns"] and saved["question"] == record.question
    assert (tmp_path / name / "study.png").stat().st_size > 10_000
    assert saved["provenance"]["weights_sha256"] and saved["provenance"]["dataset"]["images"] == 90
    return saved


def test_layers_study_rises_with_depth_and_finds_a_combination(base, tmp_path):
    s = _run("layers", base, tmp_path)
    rows = {r["layer"]: r for r in s["rows"]}
    assert list(rows)[:3] == ["relu1_1", "relu1_2", "pool1"] and "pool5" in rows and "fc6" not in rows
    assert rows["pool4"]["accuracy"] > rows["pool1"]["accuracy"] + 0.15  # depth helps (measured 0.69 vs 0.38)
    assert rows["pool5"]["dim"] == 512 and rows["pool1"]["dim"] == 64
    assert s["combinations"][0]["layers"].count("+") in (1, 2)


def test_pooling_study_covers_every_pooling_with_and_without_l2(base, tmp_path):
    s = _run("pooling", RunConfig(**{**base.__dict__, "layers": ["pool5"]}), tmp_path)
    assert {(r["pool"], r["l2"]) for r in s["rows"]} == {(p, l2) for p in ("avg", "max", "avgmax", "spp:1,2,4",
                                                                            "flatten") for l2 in (True, False)}
    dims = {r["pool"]: r["dim"] for r in s["rows"]}
    assert dims == {"avg": 512, "max": 512, "avgmax": 1024, "spp:1,2,4": 512 * 21, "flatten": 512 * 7 * 7}


def test_gray_study_shows_conv1_sum_equals_replicate_and_conv1_mean_shrinks_activations(base, tmp_path):
    s = _run("gray", base, tmp_path)
    rows = {r["gray"]: r for r in s["rows"]}
    assert rows["conv1-sum"]["max_rel_diff_vs_replicate"] < 1e-4
    assert rows["conv1-sum"]["accuracy"] == rows["replicate"]["accuracy"]
    # kernels averaged, not summed: weighted sums shrink 3x, the unchanged biases keep part (measured 0.76)
    assert 0.5 < rows["conv1-mean"]["conv1_scale_vs_replicate"] < 0.9
    assert rows["conv1-mean"]["max_rel_diff_vs_replicate"] > 0.05


@pytest.mark.parametrize("name", ["C", "classifiers", "pca", "protocol", "pretraining"])
def test_classifier_side_studies(name, base, tmp_path):
    cfg = base if name != "protocol" else RunConfig(**{**base.__dict__, "train_per_class": 2})
    s = _run(name, cfg, tmp_path)
    accs = [r.get("accuracy", r.get("test_accuracy")) for r in s["rows"]]
    assert all(0 <= a <= 1 for a in accs)
    if name == "C":
        assert sum(r["chosen_by_cv"] for r in s["rows"]) == 1
    if name == "classifiers":
        assert [r["classifier"] for r in s["rows"]] == ["linear-svm", "logreg", "ridge", "knn", "rbf-svm"]
    if name == "protocol":
        assert s["rows"][1]["splits"] == 10 and s["rows"][1]["accuracy_std"] > 0
    if name == "pretraining":
        pre, rnd = s["rows"]
        assert pre["pretrained"] and not rnd["pretrained"] and "RANDOM WEIGHTS" in rnd["weights"]
        assert pre["accuracy"] > rnd["accuracy"] + 0.2


def test_every_registered_study_has_a_question_a_function_and_a_report_section():
    from transferlab.report.sections.common import QUESTIONS

    for name, study in STUDIES.items():
        assert study.name == name and study.question and study.summary and "issue" not in study.question
        assert callable(study.load())
        assert study.section == "further" or study.section in QUESTIONS
