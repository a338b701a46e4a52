"""``transferlab bench`` runs end to end on tiny real inputs, reports every field, and never puts a row above its
ceiling (speed itself is not tested)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transferlab.cli.main import build_parser, main
from transferlab.features.extractor import FeatureNet, file_hash
from transferlab.models.builder import default_feature_layer, load_model
from transferlab.bench.runner import _sample_photos, format_report
from transferlab.machine import ISA_FLAGS, onednn_bf16
from transferlab.bench.ceiling import gflop_per_image


def test_vgg16_conv_cost_matches_the_published_figure():
    net = FeatureNet(load_model("vgg16", "imagenet-conv").net, [("pool5", "avg")]).eval()
    # 15.47 GMAC for all of VGG16; the conv layers are 15.35 GMAC of it
    assert gflop_per_image(net, (3, 224, 224)) == pytest.approx(2 * 15.35, rel=0.01)


@pytest.mark.parametrize("name, weights, layer, dim", [("vgg16", "imagenet-conv", "pool5", 512),
                                                        ("efficientnet_lite0", "imagenet", "avgpool", 1280)])
def test_default_layer_is_the_pooled_features_before_the_classifier(models, name, weights, layer, dim):
    model = models(name, weights)  # bench's default layer is the registry's (offline weights: pool5 for VGG16)
    assert default_feature_layer(model)[0] == layer
    with torch.inference_mode():
        (out,) = FeatureNet(model.net, [(layer, "avg")])(torch.zeros(1, 3, 224, 224))
    assert out.shape == (1, dim)


def test_sample_photos_are_distinct_real_crops(tmp_path):
    paths = _sample_photos(14, tmp_path)  # 6 photos: the 7th and 13th files are other crops of the first
    assert [p.name for p in paths[:2]] == ["sample-00000.jpg", "sample-00001.jpg"] and len(paths) == 14
    assert len({file_hash(p) for p in paths}) == 14
    first, again = (np.asarray(Image.open(p)) for p in (paths[0], paths[6]))
    assert first.shape == again.shape == (240, 360, 3)  # 80% of chelsea's 300×451
    assert np.abs(first.astype(int) - again).mean() > 5  # another part of the photo, not a re-encoding


def test_every_bench_option_shows_its_default():
    (sub,) = [a for a in build_parser()._actions if a.choices and "bench" in a.choices]
    p = sub.choices["bench"]
    assert p.description and "\n" not in p.description
    for action in p._actions:
        if action.dest != "help":
            assert action.help and "default" in action.help, action.dest


def test_no_row_exceeds_its_ceiling_and_no_data_means_sample_photos(capsys):
    # AlexNet up to pool2: two convolutions, cheap; 32² matmuls, so that the ceiling is a layer's and the
    # rows are held to the rule that a network is no faster than its fastest layer
    # batch 3: not the batch of 2 that ONNX exports are traced with
    rc = main(["bench", "--model", "alexnet", "--layer", "pool2", "--images", "3", "--repeats", "1",
               "--batch-size", "3", "--matmul-size", "32", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["data"].startswith("sample photos") and res["images"] == 3 and "accuracy" not in res
    bf16 = onednn_bf16()
    assert [r["config"] for r in res["rows"]] == ["baseline", "network", "pipeline", "extractor-eager",
                                                   "extractor-onnx"] + ["extractor-bf16"] * bf16 + ["extractor-int8"]
    assert ("bf16" in res["runtimes_skipped"]) is not bf16
    cpu = res["cpu"]
    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    assert cpu["isa"] == [f for f in ISA_FLAGS if f in flags] and cpu["model"]
    assert cpu["torch_capability"] == torch.backends.cpu.get_cpu_capability() and cpu["onednn_bf16"] is bf16

    kernels = res["ceiling_gflops"]["fp32"]["kernels"]
    assert set(kernels) == {"torch.mm: matmul 32²", "oneDNN: matmul 32²"} | {
        f"{way}: {layer}" for way in ("nchw", "eager", "onnx") for layer in ("conv1 3×224×224", "conv2 64×27×27")}
    # int8: ORT's u8×s8 kernels of the same layers (QLinearConv) and an integer matmul
    assert set(res["ceiling_gflops"]["int8"]["kernels"]) == {"ort-int8: MatMulInteger 32²"} | {
        f"ort-int8: {layer}" for layer in ("conv1 3×224×224", "conv2 64×27×27")}
    for numerics, c in res["ceiling_gflops"].items():
        assert c["best"] == max(k["max"] for k in c["kernels"].values()) == c["kernels"][c["kernel"]]["max"] > 0
    for r in res["rows"]:
        if r["config"] != "pipeline":
            assert 0 < r["gflops"] <= res["ceiling_gflops"][r["numerics"]]["best"], r["config"]
            assert 0 < r["share_of_ceiling"] <= 1, r["config"]
    assert res["over_ceiling"] == []
    int8 = next(r for r in res["rows"] if r["config"] == "extractor-int8")
    assert int8["numerics"] == "int8" and 0 < int8["max_rel_error"] <= int8["tolerance"]
    text = format_report(res)
    assert "ceiling fp32:" in text and "ceiling int8:" in text and "accuracy: not measured" in text
    assert cpu["torch_capability"] in text


def test_bench_command_reports_every_field(shared_dir, tmp_path, capsys):
    data = shared_dir / "data" / "15scene"
    if not data.is_dir():
        pytest.skip("15 Scene not found under ../shared (TRANSFERLAB_SHARED)")
    # relu1_1 (one convolution) keeps bf16 quick on CPUs whose PyTorch has no fast bf16 kernels
    rc = main(["bench", "--data", str(data), "--layer", "relu1_1", "--images", "4", "--repeats", "1",
               "--batch-size", "2", "--matmul-size", "128", "--accuracy-per-class", "1", "--cache", str(tmp_path),
               "--runtime", "eager", "onnx", "bf16", "int8", "--calibration-images", "4", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    configs = [r["config"] for r in res["rows"]]
    assert configs == ["baseline", "network", "pipeline", "extractor-eager", "extractor-onnx", "extractor-bf16",
                       "extractor-int8"]
    for key in ("fp32", "bf16", "int8"):
        assert res["ceiling_gflops"][key]["median"] > 0
    for r in res["rows"]:
        ips = r["images_per_s"]
        assert 0 < ips["min"] <= ips["median"] <= ips["max"]
        assert r["peak_mb"] > 50 and r["speedup"] > 0
        if r["config"] != "pipeline":
            assert r["gflops"] > 0 and r["share_of_ceiling"] > 0 and r["max_rel_error"] is not None
    rows = {r["config"]: r for r in res["rows"]}
    assert rows["extractor-eager"]["max_rel_error"] == 0.0
    assert rows["extractor-onnx"]["max_rel_error"] <= rows["extractor-onnx"]["tolerance"]
    assert 0 < rows["extractor-bf16"]["max_rel_error"] <= rows["extractor-bf16"]["tolerance"]
    assert rows["baseline"]["max_rel_error"] < 1e-4  # the notebook's code computes the same features
    assert 0 < rows["extractor-int8"]["max_rel_error"] <= rows["extractor-int8"]["tolerance"]
    assert set(res["accuracy"]) == {"fp32", "bf16", "int8"}
    assert res["accuracy"]["bf16"]["numerics"] == "bf16" and res["accuracy"]["fp32"]["test_images"] == 15
    assert res["accuracy"]["int8"]["numerics"] == "int8"
    # the timed int8 row calibrates on training images only
    assert res["int8_calibration"]["images"] == 4 and res["int8_calibration"]["from"].startswith("training images")
    for name in ("extractor-eager", "extractor-onnx", "extractor-bf16", "extractor-int8"):
        assert 0 <= rows[name]["accuracy"] <= 1 and rows[name]["full_15scene_minutes"] > 0
    assert res["decode_headroom"] > 0

    text = format_report(res)
    for field in ("GFLOP per image", "ceiling fp32:", "ceiling bf16:", "torch.mm: matmul 128²", "CPU:",
                  "img/s median [min–max]", "GFLOP/s",
                  "of ceiling", "vs baseline", "peak MB", "max rel err", "accuracy", "15 Scene min",
                  "decoding headroom", "accuracy fp32 (eager)", "accuracy bf16 (bf16)", "accuracy int8 (int8)",
                  "ceiling int8:", "int8: ort-qdq", *configs):
        assert field in text, field
