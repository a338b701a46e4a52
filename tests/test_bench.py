"""``transferlab bench`` runs end to end on tiny real inputs, reports every field, and puts no row above its
ceiling beyond what the load of a shared machine explains (speed itself is not tested).

One bench run serves the module: AlexNet up to pool2 (two convolutions, cheap) on 4 real 15 Scene images in every
runtime, with the accuracy comparison on 1 image per class and split."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transferlab.cli.main import build_parser, main
from transferlab.features.extractor import FeatureNet, file_hash
from transferlab.models.builder import default_feature_layer
from transferlab.bench.runner import (BenchConfig, _sample_photos, calibration_paths, default_runtimes, format_report,
                                      skipped_runtimes)
from transferlab.features.runtimes import TOLERANCE
from transferlab.machine import ISA_FLAGS, onednn_bf16
from transferlab.bench.ceiling import gflop_per_image


def test_vgg16_conv_cost_matches_the_published_figure(models):
    net = FeatureNet(models("vgg16", "imagenet-conv").net, [("pool5", "avg")]).eval()
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


# python benchmarks/bench_share_spread.py on this 2-core Zen 3 under load average 11.6-12.2: the rows reached at most
# 0.48 of their ceiling (extractor-bf16), and one kernel's GFLOP/s varied up to 2.4× between runs (ort-int8 conv1;
# fp32 conv2 1.8×). A row can land above its ceiling only when the ceiling was timed that much slower than the row:
# 0.48 × 2.4 = 1.16 at worst; the bound leaves a third more
SHARE_BOUND = 1.5
RUNTIMES = ["eager", "onnx", "bf16", "int8"]
CONFIGS = ["baseline", "network", "pipeline", "extractor-eager", "extractor-onnx", "extractor-bf16", "extractor-int8"]


@pytest.fixture(scope="module")
def bench(shared_dir, tmp_path_factory) -> dict:
    """The JSON result of one ``transferlab bench --data 15scene`` run. 32² matmuls, so that the ceiling is a
    layer's and the rows are held to the rule that a network is no faster than its fastest layer; batch 3: not the
    batch of 2 that ONNX exports are traced with."""
    data = shared_dir / "data" / "15scene"
    if not data.is_dir():
        pytest.skip("15 Scene not found under ../shared (TRANSFERLAB_SHARED)")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["bench", "--data", str(data), "--model", "alexnet", "--layer", "pool2", "--images", "4",
                   "--repeats", "1", "--batch-size", "3", "--matmul-size", "32", "--accuracy-per-class", "1",
                   "--cache", str(tmp_path_factory.mktemp("bench-cache")), "--runtime", *RUNTIMES,
                   "--calibration-images", "4", "--json"])
    assert rc == 0
    return json.loads(out.getvalue())


def test_every_runtime_has_its_row_and_the_machine_is_described(bench):
    res = bench
    assert [r["config"] for r in res["rows"]] == CONFIGS and res["images"] == 4
    assert res["runtimes_skipped"] == {}  # every runtime was asked for
    cpu = res["cpu"]
    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    assert cpu["isa"] == [f for f in ISA_FLAGS if f in flags] and cpu["model"]
    assert cpu["torch_capability"] == torch.backends.cpu.get_cpu_capability() and cpu["onednn_bf16"] is onednn_bf16()
    for r in res["rows"]:
        ips = r["images_per_s"]
        assert 0 < ips["min"] <= ips["median"] <= ips["max"]
        assert r["peak_mb"] > 50 and r["speedup"] > 0
        if r["config"] != "pipeline":
            assert r["gflops"] > 0 and r["share_of_ceiling"] > 0 and r["max_rel_error"] is not None
    for name in CONFIGS[3:]:
        assert next(r for r in res["rows"] if r["config"] == name)["full_15scene_minutes"] > 0
    assert res["decode_headroom"] > 0


def test_default_runtimes_leave_out_only_what_is_slow_here():
    bf16 = onednn_bf16()
    assert default_runtimes("cpu") == ["eager", "onnx"] + ["bf16"] * bf16 + ["int8"]
    assert ("bf16" in skipped_runtimes("cpu")) is not bf16
    assert skipped_runtimes("cuda") == {"int8": "ONNX Runtime's int8 kernels run on the CPU"}


def test_without_data_the_images_and_the_calibration_set_are_distinct_sample_photos(tmp_path):
    cfg = BenchConfig(images=3, calibration_images=2)
    timed = {file_hash(p) for p in _sample_photos(3, tmp_path / "timed")}
    calibration = calibration_paths(cfg, tmp_path / "calibration")
    assert len(calibration) == 2 and timed.isdisjoint(file_hash(p) for p in calibration)  # crops after the timed


def test_ceilings_are_the_best_kernel_of_each_numerics(bench):
    res = bench
    kernels = res["ceiling_gflops"]["fp32"]["kernels"]
    assert set(kernels) == {"torch.mm: matmul 32²", "oneDNN: matmul 32²"} | {
        f"{way}: {layer}" for way in ("nchw", "eager", "onnx") for layer in ("conv1 3×224×224", "conv2 64×27×27")}
    # int8: ORT's u8×s8 kernels of the same layers (QLinearConv) and an integer matmul
    assert set(res["ceiling_gflops"]["int8"]["kernels"]) == {"ort-int8: MatMulInteger 32²"} | {
        f"ort-int8: {layer}" for layer in ("conv1 3×224×224", "conv2 64×27×27")}
    assert set(res["ceiling_gflops"]) == {"fp32", "bf16", "int8"}
    for numerics, c in res["ceiling_gflops"].items():
        assert c["best"] == max(k["max"] for k in c["kernels"].values()) == c["kernels"][c["kernel"]]["max"] > 0
        assert c["median"] > 0


def test_no_row_is_above_its_ceiling_beyond_the_load_spread(bench):
    # A row's GFLOP/s cannot beat its fastest layer's; on a loaded machine a ceiling kernel timed in a busy moment
    # and a row timed in a quiet one can still swap, by up to the measured spread (SHARE_BOUND)
    res = bench
    for r in res["rows"]:
        if r["config"] != "pipeline":
            assert 0 < r["gflops"] <= SHARE_BOUND * res["ceiling_gflops"][r["numerics"]]["best"], r["config"]
    # the report flags exactly the rows above 1
    assert res["over_ceiling"] == [r["config"] for r in res["rows"] if r.get("share_of_ceiling", 0) > 1]


def test_every_runtime_gives_the_reference_features_within_its_measured_bound(bench):
    rows = {r["config"]: r for r in bench["rows"]}
    # extractor-eager's features are the reference the others are measured against (its own error is 0 by
    # definition, so it is not a check). Measured on Zen 3 (AlexNet pool2, 4 images), in two runs alike: the
    # notebook's code 3.5e-07, network (the same runner on decoded images) 0.0, onnx 2.8e-07, bf16 0.0171, int8
    # 0.0760; on Zen 4 (AVX-512 VNNI: int8's 8-bit recipe) 2.9e-07, 0.0, 2.8e-07, 0.0171 and 0.0888. Bounds: the
    # fp32 ones float32 rounding, bf16 2× and int8 1.5× the Zen 3 measurement (as in test_runtime.py)
    assert rows["baseline"]["max_rel_error"] < 1e-5  # the notebook's code computes the same features
    assert rows["network"]["max_rel_error"] <= 1e-6
    assert rows["extractor-onnx"]["max_rel_error"] <= 1e-5
    assert 0 < rows["extractor-bf16"]["max_rel_error"] <= 0.035
    assert 0 < rows["extractor-int8"]["max_rel_error"] <= 0.12
    # the stated bounds are the runtimes' own
    assert [rows[f"extractor-{r}"]["tolerance"] for r in RUNTIMES] == [TOLERANCE[r] for r in RUNTIMES]


def test_accuracy_per_numerics_on_a_real_subset(bench):
    res = bench
    acc = res["accuracy"]
    assert set(acc) == {"fp32", "bf16", "int8"}
    assert acc["fp32"]["test_images"] == acc["fp32"]["train_images"] == 15
    assert [acc[n]["numerics"] for n in ("fp32", "bf16", "int8")] == ["fp32", "bf16", "int8"]
    rows = {r["config"]: r for r in res["rows"]}
    for name in CONFIGS[3:]:
        assert rows[name]["accuracy"] == acc[rows[name]["numerics"]]["accuracy"]
    # measured 0.4667 (7 of 15) in fp32, bf16 and int8 alike, in two runs (Zen 3) and on Zen 4; chance 0.067. Two
    # images of margin, and the inexact numerics within two images of fp32
    assert acc["fp32"]["accuracy"] >= 5 / 15 - 1e-9
    for numerics in ("bf16", "int8"):
        assert abs(acc[numerics]["accuracy"] - acc["fp32"]["accuracy"]) <= 2 / 15 + 1e-9, numerics
    # the timed int8 row calibrates on training images only
    assert res["int8_calibration"]["images"] == 4 and res["int8_calibration"]["from"].startswith("training images")


def test_report_shows_every_field(bench):
    res = bench
    text = format_report(res)
    for field in ("GFLOP per image", "ceiling fp32:", "ceiling bf16:", "ceiling int8:", "torch.mm: matmul 32²", "CPU:",
                  "img/s median [min–max]", "GFLOP/s", "of ceiling", "vs baseline", "peak MB", "max rel err",
                  "accuracy", "15 Scene min", "decoding headroom", "accuracy fp32 (eager)", "accuracy bf16 (bf16)",
                  "accuracy int8 (int8)", "int8: ort-qdq", res["cpu"]["torch_capability"], *CONFIGS):
        assert field in text, field
    assert "accuracy: not measured" not in text
    without = {k: v for k, v in res.items() if k != "accuracy"}  # as without a labelled dataset
    assert "accuracy: not measured (it needs a labelled dataset" in format_report(without)
