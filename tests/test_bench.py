"""``transferlab bench`` runs end to end on a tiny real subset and reports every field (speed is not tested)."""
from __future__ import annotations

import json

import pytest

from transferlab.bench import format_report, gflop_per_image
from transferlab.cli import main
from transferlab.features.extract import FeatureNet
from transferlab.registry import load_model


def test_vgg16_conv_cost_matches_the_published_figure():
    net = FeatureNet(load_model("vgg16", "imagenet-conv").net, [("pool5", "avg")]).eval()
    # 15.47 GMAC for all of VGG16; the conv layers are 15.35 GMAC of it
    assert gflop_per_image(net, (3, 224, 224)) == pytest.approx(2 * 15.35, rel=0.01)


def test_bench_command_reports_every_field(shared_dir, tmp_path, capsys):
    data = shared_dir / "data" / "15scene"
    if not data.is_dir():
        pytest.skip("15 Scene not found under ../shared (TRANSFERLAB_SHARED)")
    rc = main(["bench", "--data", str(data), "--layer", "pool1", "--images", "4", "--repeats", "1",
               "--batch-size", "2", "--matmul-size", "128", "--accuracy-per-class", "1", "--cache", str(tmp_path),
               "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    configs = [r["config"] for r in res["rows"]]
    assert configs == ["baseline", "network", "pipeline", "extractor-eager", "extractor-onnx", "extractor-bf16"]
    for key in ("fp32", "bf16"):
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
    assert set(res["accuracy"]) == {"fp32", "bf16"}
    assert res["accuracy"]["bf16"]["numerics"] == "bf16" and res["accuracy"]["fp32"]["test_images"] == 15
    for name in ("extractor-eager", "extractor-onnx", "extractor-bf16"):
        assert 0 <= rows[name]["accuracy"] <= 1 and rows[name]["full_15scene_minutes"] > 0
    assert res["decode_headroom"] > 0

    text = format_report(res)
    for field in ("GFLOP per image", "ceiling (matmul 128²): fp32", "bf16", "img/s median [min–max]", "GFLOP/s",
                  "of ceiling", "vs baseline", "peak MB", "max rel err", "accuracy", "15 Scene min",
                  "decoding headroom", "accuracy fp32 (eager)", "accuracy bf16 (bf16)", *configs):
        assert field in text, field
