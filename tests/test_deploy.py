"""A trained pipeline as one ONNX graph: the torch module computes what the extractor's features through the
fitted head give, the exported graph run by plain onnxruntime (the docs' script, in a process without
transferlab) gives the same labels, and its int8 quantization agrees; on real 15 Scene images."""
from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from transferlab.classify.estimators import make_pipeline
from transferlab.classify.linear import fold_pipeline
from transferlab.data.datasets import load_dataset
from transferlab.data.images import load_image
from transferlab.deploy import onnx as deploy_onnx
from transferlab.deploy.onnx import export_pipeline, read_metadata, run_pipeline
from transferlab.data.transforms import Preprocess
from transferlab.deploy.pipeline import LUMA, PipelineNet, prepare, preprocess_steps
from transferlab.features import quantize
from transferlab.features.quantize import pick_calibration, recipe_for
from transferlab.features.runtimes import onnx_key
from transferlab.features.transformer import FeatureExtractor
from transferlab.models.builder import load_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "docs", "examples", "onnx_classify.py")
OUT = [("avgpool", "avg")]
PER_CLASS = 5  # training images per class the head is fitted on
EVAL = 60  # test images spread over the test split


@pytest.fixture(scope="module")
def scene(shared_dir):
    root = shared_dir / "data" / "15scene"
    if not (root / "train").is_dir():
        pytest.skip("15 Scene not found under ../shared (TRANSFERLAB_SHARED)")
    ds = load_dataset(str(root))
    train = [(p, y) for p, y, s in zip(ds.paths, ds.labels, ds.split) if s == "train"]
    test = [p for p, s in zip(ds.paths, ds.split) if s == "test"]
    fit = [(p, y) for c in range(len(ds.classes)) for p, y in [t for t in train if t[1] == c][:PER_CLASS]]
    return {"classes": ds.classes, "fit": fit, "train": [p for p, _ in train],
            "eval": [test[i * len(test) // EVAL] for i in range(EVAL)]}


@pytest.fixture(scope="module")
def fitted(scene, tmp_path_factory):
    """Lite0 avgpool features (FeatureExtractor, L2) of a few training images per class, a linear SVM on them,
    folded into one affine head; the pipeline module; its torch scores and labels on the evaluation images."""
    cache = tmp_path_factory.mktemp("features")
    fx = FeatureExtractor("efficientnet_lite0", "imagenet", layers="avgpool", workers=0, cache=str(cache)).fit()
    paths, y = zip(*scene["fit"])
    head = fold_pipeline(make_pipeline("linear-svm").fit(fx.transform(list(paths)), np.array(y)), scene["classes"])
    net = PipelineNet(load_model("efficientnet_lite0", "imagenet"), OUT, True, "replicate", head)
    images = np.stack([prepare(load_image(p), net.preprocess) for p in scene["eval"]])
    with torch.inference_mode():
        scores, labels = (t.numpy() for t in net(torch.from_numpy(images)))
    return {"fx": fx, "head": head, "net": net, "images": images, "scores": scores, "labels": labels,
            "onnx": tmp_path_factory.mktemp("onnx")}


@pytest.fixture(scope="module")
def exported(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "lite0.onnx"
    return export_pipeline(fitted["net"], path, classifier="linear-svm C=1", provenance={"run": "test"},
                           cache=fitted["onnx"])


@pytest.fixture(scope="module")
def exported_int8(fitted, scene, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "lite0-int8.onnx"
    # 16 training images, never the evaluation (test) ones
    return export_pipeline(fitted["net"], path, calibration_paths=pick_calibration(scene["train"], 16),
                           cache=fitted["onnx"])


def test_pipeline_module_scores_are_extractor_features_through_the_head(fitted, scene):
    # the first 15 evaluation images through FeatureExtractor (+ L2) and the float64 head, against the module's
    # float32 graph; measured: largest score difference 2.5e-7 (scores within -1.4..0.7), 15 of 15 labels equal
    feats = fitted["fx"].transform(scene["eval"][:15])
    ref = fitted["head"].decision_function(feats)
    assert np.abs(fitted["scores"][:15] - ref).max() < 1e-5
    assert (fitted["labels"][:15] == ref.argmax(1)).all()


def test_prepare_gives_the_extractors_pixels(fitted, scene):
    # uint8 geometry then /255 is Preprocess.pixels exactly: the graph starts from the extractor's own pixels
    pre = fitted["net"].preprocess
    for p in scene["eval"][:3]:
        img = load_image(p)
        np.testing.assert_array_equal(torch.from_numpy(prepare(img, pre)).permute(2, 0, 1).float() * (1.0 / 255.0),
                                      pre.pixels(img, 3))


@pytest.mark.parametrize("pre", [Preprocess(), Preprocess(mode="resize"),
                                 Preprocess(resize=292, crop=260, interpolation="bicubic")], ids=Preprocess.key)
def test_docs_script_prepares_the_pixels_of_prepare(pre, scene, samples):
    # the script's own prepare() (Pillow alone, from the preprocess metadata) against transferlab's, on 15 Scene
    # (gray, loaded as L) and the colour sample photos; measured: identical on 299 15 Scene images (every 15th)
    # and the 6 sample photos in all three settings; here 15 + 6
    tree = ast.parse(open(SCRIPT).read())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "prepare")
    scope = {"np": np, "Image": Image, "ImageOps": ImageOps, "pre": preprocess_steps(pre), "crop": pre.crop,
             "side": pre.resize, "resample": getattr(Image.Resampling, pre.interpolation.upper())}
    exec(compile(ast.Module([fn], []), SCRIPT, "exec"), scope)
    for p in scene["eval"][::4] + list(samples.values()):
        np.testing.assert_array_equal(scope["prepare"](p), prepare(load_image(p), pre), err_msg=str(p))


def test_docs_show_the_tested_script():
    # docs/export.md prints the script this module runs, verbatim
    script = open(SCRIPT).read().rstrip("\n")
    assert f"```python\n{script}\n```" in open(os.path.join(REPO, "docs", "export.md")).read()
    assert len(script.splitlines()) <= 20


def test_luma_in_the_graph_is_pillows(fitted):
    # the one-channel gray modes take Pillow's fixed-point luma; every colour of a random image, bit for bit
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    w = torch.tensor(LUMA).view(1, 3, 1, 1)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    ours = torch.floor(((x * w).sum(1) + 32768.0) * (1.0 / 65536.0))[0].numpy()
    np.testing.assert_array_equal(ours, np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32))


def test_exported_graph_run_by_the_docs_script_without_transferlab_gives_the_same_labels(fitted, scene, exported):
    # the docs' script in a fresh interpreter that cannot import transferlab (-I: no user site, no PYTHONPATH;
    # the working directory is the tmp folder): Pillow preprocessing from the metadata, onnxruntime, numpy
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    guard = ("import sys, runpy; sys.modules['transferlab'] = None; sys.argv = sys.argv[1:]; "
             "runpy.run_path(sys.argv[0], run_name='__main__')")
    out = subprocess.run([sys.executable, "-I", "-c", guard, SCRIPT, str(exported), *map(str, scene["eval"])],
                         capture_output=True, text=True, env=env, cwd=exported.parent, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert [r[0] for r in rows] == [str(p) for p in scene["eval"]]
    labels = np.array([scene["classes"].index(r[1]) for r in rows])
    agree = (labels == fitted["labels"]).mean()
    # measured: 60 of 60 labels equal; the script's pixels equal prepare()'s (test_docs_script_prepares...), so
    # only ORT's float32 summation order differs (1.2e-6 in-process) and the script prints scores to 4 decimals:
    # largest difference of the printed winning score 5.0e-5
    assert agree >= 0.99, agree
    best = np.array([float(r[2]) for r in rows])
    assert np.abs(best - fitted["scores"][np.arange(EVAL), labels]).max() < 5e-5 + 1e-5  # rounding + ORT


def test_exported_graph_scores_and_metadata(fitted, exported):
    scores, labels = run_pipeline(exported, fitted["images"])
    assert scores.dtype == np.float32 and labels.dtype == np.int64 and scores.shape == (EVAL, 15)
    # measured: largest difference from the torch module 1.2e-6 (scores within -1.4..0.7); labels all equal
    assert np.abs(scores - fitted["scores"]).max() < 1e-5
    assert (labels == fitted["labels"]).all()
    meta = read_metadata(exported)
    assert meta["classes"] == fitted["head"].classes
    assert meta["preprocess"] == {"mode": "crop", "resize": 256, "crop": 224, "interpolation": "bilinear"}
    prov = meta["provenance"]
    assert prov["model"] == "efficientnet_lite0" and prov["weights_sha256"] == fitted["net"].model.weights_id
    assert (prov["layers"], prov["pool"], prov["l2"], prov["gray"]) == (["avgpool"], ["avg"], True, "replicate")
    assert prov["classifier"] == "linear-svm C=1" and prov["numerics"] == "fp32" and prov["run"] == "test"
    one = run_pipeline(exported, fitted["images"][:1])  # the batch dimension is dynamic
    assert one[0].shape == (1, 15)


def test_int8_graph_agrees_with_fp32_labels(fitted, exported_int8):
    scores, labels = run_pipeline(exported_int8, fitted["images"])
    agree = (labels == fitted["labels"]).mean()
    # measured (16 calibration images): 58 of 60 labels equal, largest score difference 0.23 (scores within
    # -1.4..0.7), the scores' deviation on calibration images 0.030 (Zen 3, the recipe without VNNI); 59 of 60, 0.234
    # and 0.0353 (Zen 4, AVX-512 VNNI: 8-bit weights). Two more labels may flip; the deviation within 1.7× the larger
    assert agree >= 56 / 60, agree
    assert np.abs(scores - fitted["scores"]).max() < 0.35
    prov = read_metadata(exported_int8)["provenance"]
    assert prov["numerics"] == "int8" and prov["calibration"]["images"] == 16
    assert prov["calibration"]["recipe"] == recipe_for(fitted["net"].model.net).tag
    assert 0 < prov["int8_deviation"]["value"] <= 0.06


def test_int8_recipe_depends_on_the_isa_and_the_family(monkeypatch, models):
    vgg, lite = models("vgg16", "imagenet-conv").net, models("efficientnet_lite0", "imagenet").net
    monkeypatch.setattr(quantize, "has_vnni", lambda: False)
    assert recipe_for(vgg).tag == "ort-qdq-u8s8-perchannel-minmax-rr"  # 7-bit weights: no u8×s8 saturation
    without_vnni = ("ort-qdq-u8s8-perchannel-minmax-rr-efficientnetlite-fp32:_conv_stem+_blocks.0+_blocks.1+"
                    "_blocks.2-u8:_expand_conv+_project_conv+_conv_head")
    assert recipe_for(lite).tag == without_vnni
    monkeypatch.setattr(quantize, "has_vnni", lambda: True)
    assert recipe_for(vgg).tag == "ort-qdq-u8s8-perchannel-minmax"  # full 8-bit weights, no "rr"
    assert recipe_for(lite).tag == ("ort-qdq-u8s8-perchannel-minmax-efficientnetlite-fp32:"
                                    "_conv_stem+_blocks.0+_blocks.1+_blocks.2")  # no uint8 weights either
    assert recipe_for(lite, vnni=False).tag == without_vnni  # the other CPU's recipe, asked for on this one
    hashes, batches = ["a", "b"], lambda: iter(())
    # the recipe keys the calibration identity, so graphs and features of two recipes never mix
    assert quantize.Calibration.of(hashes, batches, recipe_for(vgg)).hash != quantize.Calibration.of(
        hashes, batches, quantize.Recipe(reduce_range=True)).hash


def test_recipe_leaves_the_familys_convolutions_in_float_and_gives_uint8_weights_where_it_says():
    import onnx
    from onnx import helper

    nodes = [helper.make_node("Conv", ["x", f"net.{w}.weight"], [f"y{i}"], name=f"conv{i}")
             for i, w in enumerate(["_conv_stem", "_blocks.1._expand_conv", "_blocks.10._expand_conv"])]
    graph = helper.make_graph(nodes, "g", [], [], [onnx.numpy_helper.from_array(
        np.zeros(1, np.float32), f"net.{w}.weight") for w in ["_conv_stem", "_blocks.1._expand_conv",
                                                              "_blocks.10._expand_conv"]])
    recipe = quantize.Recipe(reduce_range=False, fp32=("_conv_stem", "_blocks.1"), u8=("_expand_conv",))
    assert recipe.excluded(graph) == ["conv0", "conv1"]  # _blocks.10 is not under _blocks.1
    # uint8 weights for the quantized convolutions under a u8 path only, per channel (axis 0)
    assert recipe.overrides(graph, "u8") == {"net._blocks.10._expand_conv.weight": [
        {"quant_type": "u8", "reduce_range": False, "axis": 0}]}


def test_export_cache_key_holds_every_choice_of_the_pipeline(fitted):
    head = fitted["head"]
    other = dataclasses.replace(head, intercept=head.intercept + 1.0)
    keys = {onnx_key(PipelineNet(load_model("efficientnet_lite0", "imagenet"), OUT, l2, gray, h), (224, 224, 3))
            for l2, gray, h in [(True, "replicate", head), (False, "replicate", head), (True, "conv1-sum", head),
                                (True, "replicate", other)]}
    assert len(keys) == 4


def test_missing_onnx_package_names_the_extra(fitted, tmp_path, monkeypatch):
    for name in ("onnxscript", "onnxruntime", "onnx"):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, name, None)  # as if not installed
            with pytest.raises(RuntimeError, match=rf"^an ONNX export or runtime needs the {name} package, which is not "
                                                  rf"installed: pip install 'transferlab\[onnx\]'$"):
                export_pipeline(fitted["net"], tmp_path / "x.onnx", cache=tmp_path)
    assert not (tmp_path / "x.onnx").exists()


def test_unexportable_preprocessing_and_bad_files_are_one_line(fitted, tmp_path):
    net = PipelineNet(load_model("efficientnet_lite0", "imagenet"), OUT, True, "replicate", fitted["head"])
    net.model.preprocess = net.model.preprocess.with_mode("native")
    with pytest.raises(ValueError, match="resize mode 'native' cannot be exported"):
        export_pipeline(net, tmp_path / "x.onnx", cache=tmp_path)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ValueError, match=f"{bad}: not an ONNX model"):
        read_metadata(bad)
    with pytest.raises(ValueError, match="calibrates on training images"):
        deploy_onnx.calibration(fitted["net"], [])
