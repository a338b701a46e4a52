"""``transferlab report``: the HTML answers every question of the practical, with the inputs' numbers, embedded
figures, provenance, and a command for each missing part — and it renders in a real browser (headless Chromium).

The run is real (EfficientNet-Lite0 ImageNet weights on 3 images per class of 15 Scene); the study and fine-tune
records are SYNTHETIC TEST FIXTURES written below (marked ``"_fixture"``; the report flags them), never shipped.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from transferlab.report import QUESTIONS, acc_column, build_report, find_inputs, row_label
from transferlab.report_figures import classify_filters

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRANSFERLAB_SHARED") or REPO / ".." / "shared")
DATA = SHARED / "data" / "15scene"
ARTIFACTS = REPO / ".ci-artifacts"
SECTIONS = ["summary", *QUESTIONS, "runs", "further", "reference", "todo", "provenance"]
FIXTURE = "synthetic test fixture written by tests/test_report.py — not a measurement"

needs_data = pytest.mark.skipif(not (DATA / "train").is_dir(), reason=f"15 Scene not found at {DATA}")


# ------------------------------------------------------------------------------------------------ fixtures


def _fixture_png(path: Path, text: str) -> None:
    img = Image.new("RGB", (360, 160), "white")
    ImageDraw.Draw(img).text((10, 70), text, fill="black")
    img.save(path)


def _write_study(root: Path, name: str, columns: list[str], rows: list[dict], best: dict, notes: list[str],
                 figure: bool = True, **extra) -> Path:
    folder = root / f"study-{name}"
    folder.mkdir(parents=True)
    record = {"_fixture": FIXTURE, "study": name, "question": f"fixture question for {name}",
              "command": f"transferlab study {name} --data 15scene --model vgg16 --weights imagenet-conv",
              "columns": columns, "rows": rows, "best": best, "notes": notes,
              "provenance": {"model": "vgg16", "weights": "imagenet-conv", "weights_sha256": "2ecbe4ce" + "0" * 56,
                             "label": "vgg16 [imagenet-conv weights 2ecbe4ce0116, pretrained up to pool5]",
                             "protocol": "fixed", "classifier": "linear-svm", "C": 1.0, "seed": 0,
                             "dataset": {"root": "15scene", "images": 4485, "train": 1500, "test": 2985},
                             "versions": {"torch": "fixture"}, "date": "2000-01-01 00:00:00"},
              "unexpected_key": {"handled": "gracefully"}, **extra}
    if figure:
        record["figure"] = "study.png"
        _fixture_png(folder / "study.png", f"fixture figure: study {name}")
    (folder / "study.json").write_text(json.dumps(record, indent=1))
    return folder


def _write_fixtures(root: Path, classes: list[str]) -> None:
    layers = [("pool1", 64, 0.4211), ("pool2", 128, 0.5532), ("pool3", 256, 0.7013), ("pool4", 512, 0.8345),
              ("pool5", 512, 0.8123)]
    rows = [{"layer": n, "dim": d, "accuracy": a, "ms_per_image": 10.0 * (i + 1), "fit_seconds": 0.5}
            for i, (n, d, a) in enumerate(layers)]
    _write_study(root, "layers", ["layer", "dim", "accuracy", "ms_per_image", "fit_seconds"], rows, rows[3],
                 ["best single layer: pool4 (0.8345, 512 dims)"],
                 combinations=[{"layers": "pool4+pool5", "accuracy": 0.8456, "fit_seconds": 1.0}])
    gray = [{"gray": "replicate", "accuracy": 0.8123, "conv1_mean_abs": 0.9, "conv1_scale_vs_replicate": 1.0,
             "max_rel_diff_vs_replicate": 0.0},
            {"gray": "conv1-mean", "accuracy": 0.7988, "conv1_mean_abs": 0.3, "conv1_scale_vs_replicate": 0.3333,
             "max_rel_diff_vs_replicate": 0.41},
            {"gray": "conv1-sum", "accuracy": 0.8123, "conv1_mean_abs": 0.9, "conv1_scale_vs_replicate": 1.0,
             "max_rel_diff_vs_replicate": 3.1e-07}]
    _write_study(root, "gray", ["gray", "accuracy", "conv1_mean_abs", "conv1_scale_vs_replicate",
                                "max_rel_diff_vs_replicate"], gray, gray[0], ["conv1-sum reproduces replicate"])
    pre = [{"weights": "vgg16 [imagenet-conv weights 2ecbe4ce0116, pretrained up to pool5]", "pretrained": True,
            "accuracy": 0.8123},
           {"weights": "vgg16 [RANDOM WEIGHTS, not pretrained; random-init-seed-0]", "pretrained": False,
            "accuracy": 0.2345}]
    _write_study(root, "pretraining", ["weights", "pretrained", "accuracy"], pre, pre[0], ["pretrained wins"])
    c_rows = [{"C": c, "cv_accuracy_on_train": 0.7 + 0.01 * i, "test_accuracy": t, "chosen_by_cv": c == 1.0}
              for i, (c, t) in enumerate([(0.01, 0.7011), (0.1, 0.7912), (1.0, 0.8123), (10.0, 0.8201)])]
    _write_study(root, "C", ["C", "cv_accuracy_on_train", "test_accuracy", "chosen_by_cv"], c_rows, c_rows[2],
                 ["CV chose C=1.0"])
    aug = [{"augmentation": "none", "accuracy": 0.6001}, {"augmentation": "flip", "accuracy": 0.6502}]
    _write_study(root, "augmentation", ["augmentation", "accuracy"], aug, aug[1],
                 ["<script>alert('not escaped')</script> & friends"], figure=False)

    folder = root / "finetune-effnet-head"
    folder.mkdir()
    rng = np.random.default_rng(0)
    n = len(classes)
    cm = (np.eye(n, dtype=int) * 8 + rng.integers(0, 2, (n, n))).tolist()
    history = [{"epoch": e, "train_loss": round(2.5 / e, 4), "train_acc": round(0.5 + 0.08 * e, 4),
                "val_loss": round(2.7 / e + 0.1, 4), "val_acc": round(0.45 + 0.07 * e, 4), "lr": 0.001,
                "seconds": 3.0} for e in range(1, 6)]
    record = {"_fixture": FIXTURE, "status": "finished", "model": "efficientnet_lite0", "mode": "head",
              "epochs_run": 5, "epochs_planned": 5, "stopped_early": False, "best_epoch": 4, "history": history,
              "train_seconds": 15.0, "classes": classes, "images": {"train": 1350, "val": 150, "test": 2985},
              "test_accuracy": 0.8765, "test_per_class_accuracy": {c: 0.8 + 0.01 * (i % 10) for i, c in
                                                                    enumerate(classes)},
              "test_confusion_matrix": cm, "svm_accuracy": 0.8642,
              "svm": {"accuracy": 0.8642, "per_class_accuracy": {c: 0.79 for c in classes}},
              "provenance": {"model": "efficientnet_lite0", "weights": "imagenet", "weights_sha256": "5793" + "0" * 60,
                             "trained_from_layer": "fc",
                             "config": {"data": "15scene", "model": "efficientnet_lite0", "weights": "imagenet",
                                        "mode": "head", "epochs": 5, "seed": 0}}}
    (folder / "finetune.json").write_text(json.dumps(record, indent=1))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A real run: EfficientNet-Lite0 ImageNet features (avgpool) + LinearSVC on 3 images per class and split."""
    if not (DATA / "train").is_dir():
        pytest.skip(f"15 Scene not found at {DATA}")
    from transferlab.experiment import RunConfig, run_experiment, save_result

    tmp = tmp_path_factory.mktemp("run")
    result = run_experiment(RunConfig(data=str(DATA), model="efficientnet_lite0", weights="imagenet",
                                      layers=["avgpool"], limit_per_class=3, cache=str(tmp / "cache"),
                                      progress=False))
    save_result(result, tmp / "run")
    return tmp / "run"


@pytest.fixture(scope="module")
def fixtures_dir(run_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fixtures")
    _write_fixtures(root, json.loads((run_dir / "result.json").read_text())["classes"])
    return root


@pytest.fixture(scope="module")
def report(run_dir, fixtures_dir, tmp_path_factory):
    """The full report: the real run, the fixture studies and fine-tuning (a folder of folders), computed parts."""
    tmp = tmp_path_factory.mktemp("report")
    info = build_report([run_dir, fixtures_dir], tmp / "report.html", data=DATA, samples_dir=tmp / "samples")
    return info, info["path"].read_text(encoding="utf-8")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.imgs, self.links, self.scripts, self.external = [], [], [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.imgs.append(a)
        if tag == "a" and a.get("href", "").startswith("#"):
            self.links.append(a["href"][1:])
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http:", "https:", "//", "file:")):
                self.external.append(a[key])


def _page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


# ------------------------------------------------------------------------------------------------ tests


@needs_data
def test_every_question_has_its_section(report):
    info, text = report
    page = _page(text)
    for sid in SECTIONS:
        assert sid in page.ids, f"section {sid} missing"
    for short, question in QUESTIONS.values():
        assert html_text(short) in text and html_text(question) in text
    assert not set(page.links) - set(page.ids), "table of contents / source links point nowhere"
    for sid in ["runs", *QUESTIONS]:  # each answer says how to reproduce it, or which command would fill it
        body = text.split(f'<section id="{sid}">', 1)[1].split("</section>", 1)[0]
        assert 'class="cmd"' in body or 'class="missing"' in body, sid
    assert info["computed_errors"] == {}, info["computed_errors"]


def html_text(s: str) -> str:
    import html

    return html.escape(s, quote=True)


@needs_data
def test_numbers_of_the_inputs_are_quoted(report, run_dir):
    _, text = report
    result = json.loads((run_dir / "result.json").read_text())
    assert f"{result['accuracy']:.4f}" in text
    run0 = result["runs"][0]
    worst = min(run0["per_class_accuracy"].items(), key=lambda kv: kv[1])
    assert f"{worst[0]} {worst[1]:.4f}" in text
    if run0["misclassified"]:
        m = run0["misclassified"][0]
        assert f"{m['true']} predicted as {m['predicted']}" in text  # an example image of a confused pair
    # VGG16 architecture, computed by the report
    for n in ("138,357,544", "123,642,856", "14,714,688", "102,764,544", "(25,088 + 1) × 4,096", "89.4%"):
        assert n in text
    # studies (fixtures): best layer, gray equality, pretrained vs random, C chosen by CV
    assert "<b>pool4</b> with accuracy <b>0.8345</b>" in text
    assert "pool4+pool5 at 0.8456" in text
    assert "replicate <b>0.8123</b>, conv1-sum <b>0.8123</b>" in text and "give the same accuracy" in text
    assert "<b>0.8123</b> versus random weights" in text and "<b>0.2345</b>" in text
    assert "C = 1</b>" in text
    # fine-tuning (fixture) against the SVM on the same split
    assert "<b>0.8765</b>" in text and "<b>0.8642</b>" in text and "(+0.0123)" in text
    # the report's own gray check: folding is exact up to float rounding
    m = re.search(r"conv1-sum differs from replicate by at most <b>([0-9.e+-]+)</b>", text)
    assert m and float(m.group(1)) < 1e-4
    # every synthetic input is flagged as such
    assert text.count("SYNTHETIC") >= 6


@needs_data
def test_figures_are_embedded_and_decode(report):
    _, text = report
    page = _page(text)
    assert page.scripts == 0 and page.external == [], "the report must be self-contained"
    alts = [a.get("alt", "") for a in page.imgs]
    for expected in ("parameters per layer", "ImageNet predictions", "activation maps", "first-layer kernels",
                     "test card responses", "confusion matrix", "per-class accuracy", "training curves",
                     "reference comparison", "layers study", "augmentation study"):
        assert expected in alts, f"no figure {expected!r}"
    for a in page.imgs:
        m = re.match(r"data:(image/(png|jpeg));base64,(.+)$", a["src"], re.S)
        assert m, a["src"][:60]
        with Image.open(io.BytesIO(base64.b64decode(m.group(3)))) as im:
            assert im.size[0] > 20 and im.size[1] > 20


@needs_data
def test_provenance_and_commands(report, run_dir):
    _, text = report
    result = json.loads((run_dir / "result.json").read_text())
    import hashlib

    assert hashlib.sha256((run_dir / "result.json").read_bytes()).hexdigest() in text
    assert result["provenance"]["weights_sha256"] in text
    assert "transferlab run --data" in text and "--limit-per-class 3" in text
    assert "transferlab study layers --data 15scene" in text  # the study's own recorded command
    assert "transferlab inspect vgg16" in text and "transferlab predict efficientnet_lite0" in text
    assert "transferlab activations vgg16" in text
    assert 'id="prov-R1"' in text and 'id="prov-S1"' in text and 'id="prov-F1"' in text and 'id="prov-C1"' in text
    assert "&lt;script&gt;alert" in text and "<script>alert" not in text  # input text is escaped
    assert "vgg16-397923af.pth" in text  # why VGG16's own fc8 predictions are (or are not) shown


def test_missing_inputs_say_which_command_fills_them(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "result.json").write_text("{not json")
    info = build_report([empty, bad, tmp_path / "nope"], tmp_path / "r.html", compute=False)
    text = info["path"].read_text()
    page = _page(text)
    for sid in SECTIONS:
        assert sid in page.ids
    assert "Not measured in this report" in text
    for command in ("transferlab study layers", "transferlab study gray", "transferlab study pretraining",
                    "transferlab finetune --data", "transferlab run --data", "transferlab activations vgg16",
                    "transferlab predict efficientnet_lite0"):
        assert command in text, command
    reasons = dict(info["skipped"])
    assert "no such file or folder" in reasons[str(tmp_path / "nope")]
    assert "unreadable JSON" in reasons[str(bad / "result.json")]
    assert "holds no" in reasons[str(empty)]
    assert {sid for sid, _, _ in info["missing"]} >= {"q3", "q4", "q5", "q8", "q9", "q10"}


@needs_data
def test_cli(run_dir, tmp_path, capsys):
    from transferlab.cli import main

    out = tmp_path / "cli.html"
    assert main(["report", str(run_dir), "--out", str(out), "--no-compute", "--quiet"]) == 0
    assert out.is_file() and 'id="q7"' in out.read_text()
    assert "report:" in capsys.readouterr().out


def test_find_inputs_and_study_helpers(tmp_path):
    _write_fixtures(tmp_path, [f"c{i}" for i in range(3)])
    inputs = find_inputs([tmp_path, tmp_path / "study-gray"])  # a folder of folders, and one inside it again
    assert len(inputs.studies) == 5 and len(inputs.finetunes) == 1 and not inputs.skipped
    assert [s.sid for s in inputs.studies] == ["S1", "S2", "S3", "S4", "S5"]
    layers = next(s for s in inputs.studies if s.data["study"] == "layers").data
    assert acc_column(layers["columns"]) == "accuracy"
    assert acc_column(["C", "cv_accuracy_on_train", "test_accuracy"]) == "test_accuracy"
    assert row_label(layers, layers["rows"][0]) == "pool1"
    assert row_label({"study": "pooling", "rows": []}, {"layer": "pool5", "pool": "avg", "l2": False}) == \
        "pool5 avg no L2"


def test_filter_groups_follow_the_stated_rule():
    edge = np.zeros((3, 3, 3))
    edge[:, :, 0], edge[:, :, 2] = -1.0, 1.0  # dark left, light right: a vertical edge, gradient along x (0°)
    colour = np.zeros((3, 3, 3))
    colour[0], colour[1] = 1.0, -1.0  # red minus green
    flat = np.ones((3, 3, 3))
    centre = -np.ones((3, 3, 3))
    centre[:, 1, 1] = 8.0  # centre-surround, zero mean
    groups = classify_filters(np.stack([edge, colour, flat, centre]))
    assert [g["group"] for g in groups] == ["oriented edge", "colour-opponent", "brightness (low-pass)",
                                             "texture / centre-surround"]
    assert groups[0]["gradient_angle"] in (0.0, 180.0)


@needs_data
def test_renders_in_headless_chromium(report):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))  # tests/browser.py, whatever pytest's import mode
    import browser

    browser.require_chromium()  # skips without Chromium, fails under CI
    info, _ = report
    png = browser.screenshot(info["path"], ARTIFACTS / "report.png", 1280, 4000)
    print(f"\nscreenshot of the rendered report: {png}")
    with Image.open(png) as shot:
        assert shot.size == (1280, 4000)
        pixels = np.asarray(shot.convert("L"), dtype=np.float32)
    assert pixels.std() > 20, "the screenshot is blank"
    assert (pixels[:120] < 80).mean() > 0.5, "the dark page header is not at the top of the screenshot"
    dom = browser.rendered_dom(info["path"])
    assert 'data-probe="done"' in dom, "the page did not finish loading"
    for sid in SECTIONS:
        m = re.search(rf'<section id="{sid}" data-height="(\d+)"', dom)
        assert m and int(m.group(1)) > 50, f"section {sid} not rendered"
    probes = re.findall(r'<img [^>]*data-probe="([^"]+)"', dom)
    assert len(probes) == len(_page(info["path"].read_text()).imgs) >= 10
    for probe in probes:
        state, nat_w, nat_h, w, h = probe.split()
        assert state == "ok" and int(nat_w) > 0 and int(w) > 0 and int(h) > 0, probe


@needs_data
def test_odd_and_partial_inputs_do_not_break_the_report(run_dir, tmp_path):
    """Records with missing or unexpected parts render what they have; a random-weight copy of the real run
    (a SYNTHETIC fixture) is paired with it as the pre-training evidence."""
    result = json.loads((run_dir / "result.json").read_text())
    rnd = json.loads(json.dumps(result))
    rnd["_fixture"] = FIXTURE
    rnd["accuracy"] = 0.1234
    rnd["provenance"].update(weights="none", pretrained=False, pretrained_up_to=None,
                             label="efficientnet_lite0 [RANDOM WEIGHTS, not pretrained; random-init-seed-0]")
    rnd["provenance"]["config"]["weights"] = "none"
    rnd["runs"][0]["confusion_matrix"] = []
    rnd["runs"][0]["misclassified"] = [{"path": "/nonexistent/x.jpg", "true": "a", "predicted": "b"}]
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "result.json").write_text(json.dumps(rnd))
    odd = {"_fixture": FIXTURE, "study": "layers", "rows": [{"layer": "pool5"}, "not a row"], "best": "?",
           "figure": "../../outside.png"}
    (tmp_path / "odd-study").mkdir()
    (tmp_path / "odd-study" / "study.json").write_text(json.dumps(odd))
    (tmp_path / "empty-study").mkdir()
    (tmp_path / "empty-study" / "study.json").write_text(json.dumps({"study": "mystery", "rows": []}))
    (tmp_path / "ft").mkdir()
    (tmp_path / "ft" / "finetune.json").write_text(json.dumps({"_fixture": FIXTURE, "test_accuracy": 0.5,
                                                               "status": "interrupted"}))
    info = build_report([run_dir, tmp_path], tmp_path / "odd.html", compute=False)
    text = info["path"].read_text()
    assert info["runs"] == 2 and info["studies"] == 2 and info["finetunes"] == 1
    assert f"<b>{result['accuracy']:.4f}</b> [R1]" in re.sub(r"<a class=\"src\"[^>]*>(\[R\d\])</a>", r"\1", text)
    assert "<b>0.1234</b>" in text and "otherwise identical runs" in text  # pretrained vs random, from the runs
    assert "did not finish" in text
    assert "outside.png" not in " ".join(a.get("src", "")[:40] for a in _page(text).imgs)
