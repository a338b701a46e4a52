"""Late fusion and augmentation studies on a small real subset of 15 Scene: no choice sees the test labels, the
out-of-fold values are out of fold, and a flip view is a mirror (cheap members: AlexNet and EfficientNet-Lite0)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from transferlab.classify.selection import oof_scores
from transferlab.data.transforms import Preprocess
from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import Extractor
from transferlab.features.views import view_preprocess
from transferlab.studies import augment, fusion
from transferlab.config import RunConfig
from transferlab.studies.members import default_backbones, load_members

CHEAP = ("alexnet", "efficientnet_lite0")


@pytest.fixture(scope="module")
def cfg(shared_dir, feature_cache):
    """The session's feature cache: the report's tests reuse these views of the first images of each class."""
    return RunConfig(data=str(shared_dir / "data" / "15scene"), model="efficientnet_lite0", layers=["avgpool"],
                     limit_per_class=4, protocol="fixed", cache=feature_cache, workers=0, progress=False)


def _scrambled(load):
    """``load_members`` with the test images' labels permuted (the train labels untouched)."""
    def wrapped(*args, **kwargs):
        ms = load(*args, **kwargs)
        ms.y = ms.y.copy()
        ms.y[ms.test] = np.random.default_rng(0).permutation(ms.y[ms.test])
        return ms
    return wrapped


def _choices(record, key):
    return [{k: v for k, v in r.items() if k != "test_accuracy"} for r in record.rows], record.best[key]


def test_fusion_choices_ignore_the_test_labels(cfg, tmp_path, monkeypatch):
    from transferlab.finetune import FinetuneConfig, finetune

    run = RunConfig(data=cfg.data, model="efficientnet_lite0", protocol="fixed", limit_per_class=4, cache=cfg.cache,
                    workers=0, progress=False)
    rec = finetune(FinetuneConfig(run=run, out=str(tmp_path / "ft"), mode="head", epochs=20, compare_svm=False))
    members = [b for b in default_backbones() if b[0] in CHEAP]
    a = fusion.fusion(cfg, members, finetuned=[tmp_path / "ft"])
    monkeypatch.setattr(fusion, "load_members", _scrambled(fusion.load_members))
    b = fusion.fusion(cfg, members, finetuned=[tmp_path / "ft"])
    kinds = [r["kind"] for r in a.rows]
    assert kinds == ["member", "member", "concatenation"] + ["late fusion"] * 3 + [
        "svm", "fine-tuned", "fine-tuned", "fine-tuned fusion", "fine-tuned fusion"]
    assert [r["C"] for r in a.rows] == [r["C"] for r in b.rows]  # every C, every CV and validation accuracy,
    assert [r.get("cv_accuracy") for r in a.rows] == [r.get("cv_accuracy") for r in b.rows]
    assert [r.get("val_accuracy") for r in a.rows] == [r.get("val_accuracy") for r in b.rows]
    assert a.best["features"] == b.best["features"] and a.tables == b.tables  # the chosen row, the fusion weights
    assert sum(r["chosen"] for r in a.rows) == 1 and a.best["kind"] in ("svm", "fine-tuned", "fine-tuned fusion")
    # the test labels were used to score: 60 test images, 15 classes, all well above chance (measured ≥ 0.6)
    assert min(r["test_accuracy"] for r in a.rows) > 0.4
    assert np.mean([r["test_accuracy"] for r in b.rows]) < np.mean([r["test_accuracy"] for r in a.rows]) - 0.2
    # the network alone scores what its own run measured on the same test images, and its weights are recorded
    assert a.rows[7]["test_accuracy"] == round(rec.test_accuracy, 4)
    (ft_run,) = a.tables["finetuned_runs"]
    assert ft_run["weights_sha256"] != ft_run["base_weights_sha256"]


def test_finetuned_runs_of_another_split_or_unfinished_are_refused_first(cfg, tmp_path):
    (tmp_path / "ft").mkdir()
    (tmp_path / "ft" / "finetune.json").write_text('{"status": "paused", "history": []}')  # as a paused run writes
    members = [b for b in default_backbones() if b[0] == "alexnet"]
    with pytest.raises(ValueError, match="ft: the fine-tuning has not finished \\(status 'paused'\\); run the same"):
        fusion.fusion(cfg, members, finetuned=[tmp_path / "ft"])
    with pytest.raises(ValueError, match="no finetune.json here"):
        fusion.fusion(cfg, members, finetuned=[tmp_path])
    classes = fusion.load_members(cfg, members).dataset.classes
    (tmp_path / "ft" / "model.pth").write_bytes(b"")  # never read: the split is checked first
    (tmp_path / "ft" / "finetune.json").write_text(json.dumps({
        "status": "finished", "history": [], "classes": classes, "images": {"train": 27, "val": 3, "test": 30},
        "provenance": {"protocol": "fixed", "config": {"protocol": "auto", "limit_per_class": 2, "seed": 0}}}))
    with pytest.raises(ValueError, match="another split of the data \\(limit_per_class, train\\+val, test differ: "
                                         "limit_per_class 2 vs 4, train\\+val 30 vs 60, test 30 vs 60\\)"):
        fusion.fusion(cfg, members, finetuned=[tmp_path / "ft"])


def test_literature_protocol_scores_the_svm_on_every_split(cfg):
    lit = replace(cfg, protocol="random:3", train_per_class=5)
    ms = load_members(lit, [b for b in default_backbones() if b[0] == "efficientnet_lite0"], time_forward=False)
    got = fusion.over_splits(lit, ms, "lite0", ms.members["efficientnet_lite0:avgpool"].x[""])
    assert got["splits"] == 3 and got["test_images"] == [45, 45, 45]  # 8 images per class pooled, 5 train
    assert len(set(got["per_split"])) > 1 and 0.7 < got["mean_accuracy"] < 1  # three draws (measured 0.896)
    assert got["std_accuracy"] == round(float(np.std(got["per_split"], ddof=1)), 4)


def test_tta_variant_choice_ignores_the_test_labels(cfg, monkeypatch):
    a = augment.tta(cfg, ("none", "flip"))
    monkeypatch.setattr(augment, "load_members", _scrambled(augment.load_members))
    b = augment.tta(cfg, ("none", "flip"))
    assert [r["variant"] for r in a.rows] == ["none", "flip"] and [r["passes"] for r in a.rows] == [1, 2]
    assert _choices(a, "variant")[1] == _choices(b, "variant")[1]
    assert [(r["C"], r["cv_accuracy"]) for r in a.rows] == [(r["C"], r["cv_accuracy"]) for r in b.rows]
    assert a.rows[0]["test_accuracy"] != b.rows[0]["test_accuracy"]


def test_out_of_fold_values_never_see_their_own_image(cfg):
    ms = load_members(cfg, [b for b in default_backbones() if b[0] == "efficientnet_lite0"], ("", "hflip"),
                      time_forward=False)
    m = ms.members["efficientnet_lite0:avgpool"]
    x, xf, y = m.x[""][ms.train], m.x["hflip"][ms.train], ms.y[ms.train]
    before = oof_scores(x, y, 1.0, [xf], x_eval=x)
    # image 0's training copy and its flip (extra sample) replaced by another image's: only the models of the
    # other folds learn from them, so image 0's own out-of-fold values stay, and the others' move
    x2, xf2 = x.copy(), xf.copy()
    x2[0], xf2[0] = x[-1], xf[-1]
    after = oof_scores(x2, y, 1.0, [xf2], x_eval=x)
    assert np.array_equal(before[0], after[0])
    assert np.abs(before[1:] - after[1:]).max() > 1e-3


def _extract(model, path, view, cache):
    model.preprocess = view_preprocess(model.preprocess, view)
    ext = Extractor(model, [("avgpool", "avg")], cache=cache, workers=0, progress=False).extract([path])
    return ext.features[("avgpool", "avg")][0]


def test_flip_view_of_a_mirror_symmetric_image_gives_the_plain_features(shared_dir, models, tmp_path):
    from transferlab.models.builder import load_model

    src = sorted((shared_dir / "data" / "15scene" / "train").glob("*/*.jpg"))[0]
    img = Image.open(src).convert("L").resize((256, 256))
    left = img.crop((0, 0, 128, 256))
    sym = Image.new("L", (256, 256))
    sym.paste(left, (0, 0))
    sym.paste(left.transpose(Image.FLIP_LEFT_RIGHT), (128, 0))
    sym.save(tmp_path / "sym.png")
    img.save(tmp_path / "asym.png")
    cache = FeatureCache(tmp_path / "cache")
    feats = {(name, view): _extract(load_model("efficientnet_lite0"), tmp_path / name, view, cache)
             for name in ("sym.png", "asym.png") for view in ("", "hflip")}
    rel = {n: np.abs(feats[(n, "")] - feats[(n, "hflip")]).max() / np.abs(feats[(n, "")]).max()
           for n in ("sym.png", "asym.png")}
    assert rel["sym.png"] < 1e-5  # the same pixels reach the network (measured: 0.0)
    assert rel["asym.png"] > 0.05  # a real image's mirror is another input


def test_views_are_distinct_cache_keys_and_crop_where_they_say():
    pre = Preprocess()
    assert pre.key() == "crop:256/224:mean=0.485,0.456,0.406:std=0.229,0.224,0.225:bilinear-aa"  # unchanged
    keys = {view_preprocess(pre, v).key() for v in ("", "hflip", "long-start", "long-end", "scale:1.25")}
    assert len(keys) == 5 and view_preprocess(pre, "scale:1.25").crop == 280
    ramp = Image.fromarray(np.tile((np.arange(320) % 256).astype(np.uint8)[None], (256, 1)))  # 320×256, landscape
    starts = {v: np.asarray(view_preprocess(pre, v).geometry(ramp))[0, 0] for v in ("long-start", "", "long-end")}
    assert starts == {"long-start": 0, "": 48, "long-end": 96}  # 320 wide, crop 224: offsets 0, 48, 96
    with pytest.raises(ValueError, match="unknown view"):
        view_preprocess(pre, "diagonal")
    with pytest.raises(ValueError, match="needs resize mode 'crop'"):
        replace(pre, mode="resize", view="long-end")


def test_variants_option_is_refused_by_studies_without_variants(shared_dir, capsys):
    from transferlab.cli.main import main

    code = main(["study", "fusion", "--data", str(shared_dir / "data" / "15scene"), "--variants", "flip"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "transferlab study: error: --variants applies to the tta and augment studies, not fusion"
    code = main(["study", "tta", "--data", str(shared_dir / "data" / "15scene"), "--finetuned", "runs/ft"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "transferlab study: error: --finetuned applies to the fusion study, not tta"
