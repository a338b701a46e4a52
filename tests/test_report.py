"""``transferlab report``: the HTML answers every question of the practical with the numbers of its input records,
embedded figures, provenance, and a command for each missing part — and it renders in a real browser (headless
Chromium).

The run, the layers, pre-training, test-time augmentation (tta) and training-set augmentation (augment) studies
and the fine-tuning are real: ``transferlab run``, ``study`` (at a 112 crop) and ``finetune`` (head, 2 epochs) on 3
images per class of 15 Scene with EfficientNet-Lite0, through the CLI. The gray, C and pooling studies are SYNTHETIC
TEST FIXTURES written below (marked ``"_fixture"``; the report flags them), for what the real subset cannot show
cheaply: fixed values, a study without figure, markup in a note.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from transferlab.analysis.filters import classify_filters
from transferlab.analysis.gray_check import gray_check
from transferlab.cli.main import main
from transferlab.report.build import build_report
from transferlab.provenance import FinetuneRecord, RecordError, RunRecord, StudyRecord, read_record
from transferlab.report.formatting import fmt
from transferlab.report.inputs import find_inputs
from transferlab.report.sections.common import QUESTIONS, acc_column, row_label

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRANSFERLAB_SHARED") or REPO / ".." / "shared")
DATA = SHARED / "data" / "15scene"
ARTIFACTS = REPO / ".ci-artifacts"
SECTIONS = ["summary", *QUESTIONS, "runs", "looks", "further", "reference", "todo", "provenance"]
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


def _write_fixtures(root: Path) -> None:
    """The synthetic studies: gray (fixed accuracies), C (CV choice), pooling (no figure, markup in a note)."""
    gray = [{"gray": "replicate", "accuracy": 0.8123, "conv1_mean_abs": 0.9, "conv1_scale_vs_replicate": 1.0,
             "max_rel_diff_vs_replicate": 0.0},
            {"gray": "conv1-mean", "accuracy": 0.7988, "conv1_mean_abs": 0.3, "conv1_scale_vs_replicate": 0.3333,
             "max_rel_diff_vs_replicate": 0.41},
            {"gray": "conv1-sum", "accuracy": 0.8123, "conv1_mean_abs": 0.9, "conv1_scale_vs_replicate": 1.0,
             "max_rel_diff_vs_replicate": 3.1e-07}]
    _write_study(root, "gray", ["gray", "accuracy", "conv1_mean_abs", "conv1_scale_vs_replicate",
                                "max_rel_diff_vs_replicate"], gray, gray[0], ["conv1-sum reproduces replicate"])
    c_rows = [{"C": c, "cv_accuracy_on_train": 0.7 + 0.01 * i, "test_accuracy": t, "chosen_by_cv": c == 1.0}
              for i, (c, t) in enumerate([(0.01, 0.7011), (0.1, 0.7912), (1.0, 0.8123), (10.0, 0.8201)])]
    _write_study(root, "C", ["C", "cv_accuracy_on_train", "test_accuracy", "chosen_by_cv"], c_rows, c_rows[2],
                 ["CV chose C=1.0"])
    pooling = [{"layer": "pool5", "pool": p, "l2": l2, "dim": 512, "accuracy": a}
               for p, l2, a in [("avg", True, 0.6502), ("avg", False, 0.6001), ("max", True, 0.6301),
                                ("max", False, 0.5802)]]
    _write_study(root, "pooling", ["layer", "pool", "l2", "dim", "accuracy"], pooling, pooling[0],
                 ["<script>alert('not escaped')</script> & friends"], figure=False)


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory, feature_cache) -> Path:
    """Real records written by the CLI: a run, the layers, pre-training, tta and augment studies (the plain view and
    the flip: the cheapest variant with a second view), a head fine-tuning."""
    if not (DATA / "train").is_dir():
        pytest.skip(f"15 Scene not found at {DATA}")
    root = tmp_path_factory.mktemp("real")
    common = ["--data", str(DATA), "--model", "efficientnet_lite0", "--weights", "imagenet", "--limit-per-class", "3",
              "--cache", feature_cache, "--quiet"]
    assert main(["run", *common, "--layer", "avgpool", "--workers", "0", "--out", str(root / "runs" / "effnet")]) == 0
    studies = [*common, "--input-size", "112", "--workers", "0"]  # a quarter of the arithmetic: rendering is tested
    assert main(["study", "layers", *studies, "--out", str(root / "studies" / "layers")]) == 0
    assert main(["study", "pretraining", *studies, "--layer", "avgpool",
                 "--out", str(root / "studies" / "pretraining")]) == 0
    for study in ("tta", "augment"):
        assert main(["study", study, *studies, "--layer", "avgpool", "--variants", "none", "flip",
                     "--out", str(root / "studies" / study)]) == 0
    assert main(["finetune", *common, "--mode", "head", "--epochs", "2", "--workers", "0",
                 "--out", str(root / "finetune" / "head")]) == 0
    return root


@pytest.fixture(scope="module")
def records(real_dir) -> dict:
    """The real records, read back with the project's one reader."""
    return {"run": read_record(real_dir / "runs" / "effnet" / "result.json"),
            "layers": read_record(real_dir / "studies" / "layers" / "study.json"),
            "pretraining": read_record(real_dir / "studies" / "pretraining" / "study.json"),
            "tta": read_record(real_dir / "studies" / "tta" / "study.json"),
            "augment": read_record(real_dir / "studies" / "augment" / "study.json"),
            "finetune": read_record(real_dir / "finetune" / "head" / "finetune.json")}


@pytest.fixture(scope="module")
def fixtures_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fixtures")
    _write_fixtures(root)
    return root


@pytest.fixture(scope="module")
def report(real_dir, fixtures_dir, tmp_path_factory):
    """The full report: the real records and the fixture studies (folders of folders), computed parts."""
    tmp = tmp_path_factory.mktemp("report")
    info = build_report([real_dir, fixtures_dir], tmp / "report.html", data=DATA, samples_dir=tmp / "samples")
    return info, info.path.read_text(encoding="utf-8")


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


def _section(text: str, sid: str) -> str:
    return text.split(f'<section id="{sid}">', 1)[1].split("</section>", 1)[0]


def _plain(text: str) -> str:
    """The page with source links reduced to their label ([R1]) and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r'<a class="src"[^>]*>(\[[A-Z]\d+\])</a>', r"\1", text))


# ------------------------------------------------------------------------------------------------ tests


@needs_data
def test_every_question_has_its_section(report):
    info, text = report
    page = _page(text)
    for sid in SECTIONS:
        assert sid in page.ids, f"section {sid} missing"
    for short, question in QUESTIONS.values():
        assert html.escape(short) in text and html.escape(question) in text
    assert not set(page.links) - set(page.ids), "table of contents / source links point nowhere"
    for sid in ["runs", *QUESTIONS]:  # each answer says how to reproduce it, or which command would fill it
        body = _section(text, sid)
        assert 'class="cmd"' in body or 'class="missing"' in body, sid
    assert info.computed_errors == {}, info.computed_errors


@needs_data
def test_numbers_of_the_run_are_those_of_its_record(report, records):
    _, text = report
    plain = _plain(text)
    run: RunRecord = records["run"]
    run0 = run.runs[0]
    assert f"{run.accuracy:.4f}" in text
    worst = min(run0.per_class_accuracy.items(), key=lambda kv: kv[1])
    assert f"{worst[0]} {worst[1]:.4f}" in text
    if run0.misclassified:
        m = run0.misclassified[0]
        assert f"{m.true} predicted as {m.predicted}" in text  # an example image of a confused pair
    # the runs table: accuracy, mean per-class accuracy, dimension, split sizes
    runs = _plain(_section(text, "runs"))
    assert (f"<td><b>{run.accuracy:.4f}</b></td><td>{run.mean_class_accuracy:.4f}</td>"
            f"<td>{fmt(run.feature_dim)}</td><td>{fmt(run.extraction.images_per_s)}</td>") in runs
    assert f"<td>{run0.train_images} / {run0.test_images}</td>" in runs
    assert (f"Discussed run: [R1] {run.provenance.label} · avgpool avg · linear-svm — accuracy "
            f"<b>{run.accuracy:.4f}</b>, {run0.test_images} test images.") in plain
    assert run.provenance.weights_sha256 in text


@needs_data
def test_numbers_of_the_studies_are_those_of_their_records(report, records):
    _, text = report
    layers: StudyRecord = records["layers"]
    best = max(layers.rows, key=lambda r: r["accuracy"])
    assert f"<b>{best['layer']}</b> with accuracy <b>{best['accuracy']:.4f}</b>" in text
    top = max(layers.tables["combinations"], key=lambda c: c["accuracy"])
    assert f"{top['layers']} at {top['accuracy']:.4f}" in text
    table = _section(text, "q8")
    for row in layers.rows:  # every row of the study's table, cell by cell
        assert "".join(f"<td>{html.escape(fmt(row[c], c))}</td>" for c in layers.columns) in table
    pre, rnd = records["pretraining"].rows
    assert pre["pretrained"] and not rnd["pretrained"]
    assert f"<b>{pre['accuracy']:.4f}</b> versus random weights" in text and f"<b>{rnd['accuracy']:.4f}</b>" in text
    # the real augmentation studies: every row of their tables, cell by cell, and the variant CV chose
    further = _section(text, "further")
    for name, variants in (("tta", ["none", "flip"]), ("augment", ["none", "flip", "flip"])):
        study: StudyRecord = records[name]
        assert [r["variant"] for r in study.rows] == variants and sum(r["chosen"] for r in study.rows) == 1
        for row in study.rows:
            assert "".join(f"<td>{html.escape(fmt(row[c], c))}</td>" for c in study.columns) in further, (name, row)
        assert html.escape(study.notes[0]) in further
    # the fixture studies: gray equality, C chosen by CV
    assert "replicate <b>0.8123</b>, conv1-sum <b>0.8123</b>" in text and "give the same accuracy" in text
    assert "C = 1</b>" in text
    # the summary's table quotes each study's best row
    summary = _plain(_section(text, "summary"))
    assert f"<td>{best['layer']}</td><td>{best['accuracy']:.4f}</td>" in summary


@needs_data
def test_numbers_of_the_finetuning_are_those_of_its_record(report, records):
    _, text = report
    ft: FinetuneRecord = records["finetune"]
    assert ft.status == "finished" and len(ft.history) == 2 and ft.svm is not None
    assert f"<b>{ft.test_accuracy:.4f}</b>" in text and f"<b>{ft.svm_accuracy:.4f}</b>" in text
    assert f"({ft.test_accuracy - ft.svm_accuracy:+.4f})" in text
    assert f"best epoch {ft.best_epoch} of {len(ft.history)} (chosen on validation accuracy)" in text
    q10 = _section(text, "q10")
    for h in ft.history:  # the per-epoch table
        assert f"<td>{h.epoch}</td><td>{fmt(h.train_loss, 'train_loss')}</td>" in q10
        assert f"<td>{fmt(h.val_acc, 'val_acc')}</td>" in q10
    assert f"<dt>images train / val / test</dt><dd>{ft.images.train} / {ft.images.val} / {ft.images.test}</dd>" in q10


@needs_data
def test_computed_parts_and_synthetic_flags(report):
    _, text = report
    # VGG16 architecture, computed by the report
    for n in ("138,357,544", "123,642,856", "14,714,688", "102,764,544", "(25,088 + 1) × 4,096", "89.4%"):
        assert n in text
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
                     "reference comparison", "layers study", "tta study", "augment study", "pooling study"):
        assert expected in alts, f"no figure {expected!r}"
    for a in page.imgs:
        m = re.match(r"data:(image/(png|jpeg));base64,(.+)$", a["src"], re.S)
        assert m, a["src"][:60]
        with Image.open(io.BytesIO(base64.b64decode(m.group(3)))) as im:
            assert im.size[0] > 20 and im.size[1] > 20


@needs_data
def test_provenance_and_commands(report, real_dir, records):
    _, text = report
    assert hashlib.sha256((real_dir / "runs" / "effnet" / "result.json").read_bytes()).hexdigest() in text
    assert records["run"].provenance.weights_sha256 in text
    assert "transferlab run --data" in text and "--limit-per-class 3" in text
    assert f"transferlab study layers --data {DATA}" in text  # rebuilt from the study's recorded configuration
    assert "transferlab study gray --data 15scene" in text  # the fixture study's own recorded command
    assert f"transferlab finetune --data {DATA}" in text
    assert "transferlab inspect vgg16" in text and "transferlab predict efficientnet_lite0" in text
    assert "transferlab activations vgg16" in text
    for sid in ("R1", "S1", "F1", "C1"):
        assert f'id="prov-{sid}"' in text
    assert "&lt;script&gt;alert" in text and "<script>alert" not in text  # input text is escaped
    assert "vgg16-397923af.pth" in text  # why VGG16's own fc8 predictions are (or are not) shown


def test_missing_inputs_say_which_command_fills_them(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "result.json").write_text("{not json")
    info = build_report([empty, bad, tmp_path / "nope"], tmp_path / "r.html", compute=False)
    text = info.path.read_text()
    page = _page(text)
    for sid in SECTIONS:
        assert sid in page.ids
    assert "Not measured in this report" in text
    for command in ("transferlab study layers", "transferlab study gray", "transferlab study pretraining",
                    "transferlab finetune --data", "transferlab run --data", "transferlab activations vgg16",
                    "transferlab predict efficientnet_lite0"):
        assert command in text, command
    reasons = dict(info.skipped)
    assert "no such file or folder" in reasons[str(tmp_path / "nope")]
    assert "unreadable JSON" in reasons[str(bad / "result.json")]
    assert "holds no" in reasons[str(empty)]
    assert {sid for sid, _, _ in info.missing} >= {"q3", "q4", "q5", "q8", "q9", "q10"}


@needs_data
def test_cli(real_dir, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["report", str(real_dir / "runs"), "--out", str(out), "--no-compute", "--quiet"]) == 0
    assert out.is_file() and 'id="q7"' in out.read_text()
    assert "report:" in capsys.readouterr().out


def test_find_inputs_and_study_helpers(tmp_path):
    _write_fixtures(tmp_path)
    inputs = find_inputs([tmp_path, tmp_path / "study-gray"])  # a folder of folders, and one inside it again
    assert len(inputs.studies) == 3 and not inputs.finetunes and not inputs.skipped
    assert [s.sid for s in inputs.studies] == ["S1", "S2", "S3"]
    gray = next(s for s in inputs.studies if s.record.study == "gray").record
    assert acc_column(gray.columns) == "accuracy"
    assert acc_column(["C", "cv_accuracy_on_train", "test_accuracy"]) == "test_accuracy"
    assert row_label(gray, gray.rows[0]) == "replicate"
    assert row_label(StudyRecord(study="pooling", rows=[]), {"layer": "pool5", "pool": "avg", "l2": False}) == \
        "pool5 avg no L2"


def test_records_round_trip_and_old_files_load(tmp_path):
    """A record written and read back is the same; the fields older writers wrote as null, or did not write yet,
    read as empty; a file that is not a record fails with one line naming it."""
    old_run = {"accuracy": 0.5, "accuracy_std": 0.0, "mean_class_accuracy": 0.5, "feature_dim": 4,
               "classes": ["a", "b"],
               "runs": [{"seed": None, "train_images": 2, "test_images": 2, "C": 1.0, "cv": None, "fit_seconds": 0.1,
                         "accuracy": 0.5, "mean_class_accuracy": 0.5, "per_class_accuracy": {"a": 1.0, "b": 0.0},
                         "confusion_matrix": [[1, 0], [1, 0]], "predict_seconds": 0.01}],  # before 'misclassified'
               "extraction": {"seconds": 1.0, "computed_images": 4, "cached_images": 0, "images_per_s": 4.0,
                              "bad_files": [{"path": "x.jpg", "reason": "not an image"}]},
               "provenance": {"model": "vgg16", "weights": "none", "pretrained": False, "pretrained_up_to": None,
                              "preprocess": {"crop": 224}, "layers": ["pool5"], "config": {"data": "d"}}}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "result.json").write_text(json.dumps(old_run))
    run = read_record(tmp_path / "old" / "result.json")
    assert isinstance(run, RunRecord) and run.runs[0].misclassified == [] and run.runs[0].cv is None
    assert run.extraction.bad_files[0].reason == "not an image" and not run.provenance.is_pretrained
    assert run.provenance.extra == {"preprocess": {"crop": 224}}  # unknown provenance keys are kept
    run.write(tmp_path / "new" / "result.json")
    assert read_record(tmp_path / "new" / "result.json") == run
    # the first fine-tuning records named the test scores without 'test_'
    old_ft = {"history": [{"train_loss": 1.0}], "per_class_accuracy": {"a": 0.5}, "confusion_matrix": [[1]]}
    (tmp_path / "finetune.json").write_text(json.dumps(old_ft))
    ft = read_record(tmp_path / "finetune.json")
    assert ft.test_per_class_accuracy == {"a": 0.5} and ft.test_confusion_matrix == [[1]]
    assert ft.history[0].epoch == 1 and ft.history[0].train_loss == 1.0
    (tmp_path / "study.json").write_text(json.dumps({"study": "x"}))
    with pytest.raises(RecordError, match=r"study\.json: not a transferlab study record: no 'rows'$"):
        read_record(tmp_path / "study.json")
    (tmp_path / "result.json").write_text("[1, 2]")
    with pytest.raises(RecordError, match=r"result\.json: not a JSON object$"):
        read_record(tmp_path / "result.json")


def test_gray_check_leaves_the_shared_network_unchanged(models, samples):
    model = models("vgg16", "imagenet-conv")
    first, norm = model.net.get_submodule(model.net.first_conv), model.net.input
    weight = first.weight.detach().clone()
    check = gray_check(model, samples["chelsea"])
    rows = {r.gray: r for r in check.rows}
    # measured 3.6e-07 (conv1-sum) and 0.32 (conv1-mean) relative to the largest pool5 value, on chelsea
    assert rows["conv1-sum"].max_rel_diff < 1e-4 and rows["conv1-sum"].channels == 1
    assert rows["conv1-mean"].max_rel_diff > 0.05
    assert model.net.get_submodule(model.net.first_conv) is first and model.net.input is norm
    assert torch.equal(first.weight.detach(), weight)


def test_filter_groups_follow_the_stated_rule():
    edge = np.zeros((3, 3, 3))
    edge[:, :, 0], edge[:, :, 2] = -1.0, 1.0  # dark left, light right: a vertical edge, gradient along x (0°)
    colour = np.zeros((3, 3, 3))
    colour[0], colour[1] = 1.0, -1.0  # red minus green
    flat = np.ones((3, 3, 3))
    centre = -np.ones((3, 3, 3))
    centre[:, 1, 1] = 8.0  # centre-surround, zero mean
    groups = classify_filters(np.stack([edge, colour, flat, centre]))
    assert [g.group for g in groups] == ["oriented edge", "colour-opponent", "brightness (low-pass)",
                                         "texture / centre-surround"]
    assert groups[0].gradient_angle in (0.0, 180.0)


@needs_data
def test_renders_in_headless_chromium(report):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))  # tests/browser.py, whatever pytest's import mode
    import browser

    browser.require_chromium()  # skips without Chromium, fails under CI
    info, _ = report
    png = browser.screenshot(info.path, ARTIFACTS / "report.png", 1280, 4000)
    print(f"\nscreenshot of the rendered report: {png}")
    with Image.open(png) as shot:
        assert shot.size == (1280, 4000)
        pixels = np.asarray(shot.convert("L"), dtype=np.float32)
    assert pixels.std() > 20, "the screenshot is blank"
    assert (pixels[:120] < 80).mean() > 0.5, "the dark page header is not at the top of the screenshot"
    dom = browser.rendered_dom(info.path)
    assert 'data-probe="done"' in dom, "the page did not finish loading"
    for sid in SECTIONS:
        m = re.search(rf'<section id="{sid}" data-height="(\d+)"', dom)
        assert m and int(m.group(1)) > 50, f"section {sid} not rendered"
    probes = re.findall(r'<img [^>]*data-probe="([^"]+)"', dom)
    assert len(probes) == len(_page(info.path.read_text()).imgs) >= 10
    for probe in probes:
        state, nat_w, nat_h, w, h = probe.split()
        assert state == "ok" and int(nat_w) > 0 and int(w) > 0 and int(h) > 0, probe


@needs_data
def test_odd_and_partial_inputs_do_not_break_the_report(real_dir, records, tmp_path):
    """Records with missing or unexpected parts render what they have; a random-weight copy of the real run
    (a SYNTHETIC fixture) is paired with it as the pre-training evidence."""
    result = json.loads((real_dir / "runs" / "effnet" / "result.json").read_text())
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
    info = build_report([real_dir / "runs", tmp_path], tmp_path / "odd.html", compute=False)
    text = info.path.read_text()
    assert info.runs == 2 and info.studies == 2 and info.finetunes == 1
    assert f"<b>{records['run'].accuracy:.4f}</b> [R1]" in _plain(text)
    assert "<b>0.1234</b>" in text and "otherwise identical runs" in text  # pretrained vs random, from the runs
    assert "did not finish" in text
    assert "outside.png" not in " ".join(a.get("src", "")[:40] for a in _page(text).imgs)
