"""Networks transferlab did not define: a user's module, a TorchScript file, a pickle (only when trusted), a state
dict; layers by dotted name in execution order, early stop, in-place safety, honest cache keys and labels."""
from __future__ import annotations

import copy
import dataclasses
import json
import re
import sys

import numpy as np
import pytest
import torch
from torch import nn

from transferlab.analysis.imagenet import predict_files
from transferlab.cli.main import main
from transferlab.data.datasets import load_dataset
from transferlab.features.cache import FeatureCache
from transferlab.features.extractor import Extractor
from transferlab.features.runtimes import deviation
from transferlab.features.transformer import FeatureExtractor
from transferlab.models.gray import apply_gray
from transferlab.models.builder import load_model
from transferlab.config import RunConfig
from transferlab.experiment import run_experiment

VGG_POOL5 = "0.30"  # pool5 of nn.Sequential(vgg16.features, …): the module's own dotted name


class TinyNet(nn.Module):
    """Attributes declared in the reverse of their use, a reused in-place ReLU, and a head that counts its calls."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(8, 3)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head_calls = 0

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.pool(self.relu(self.conv2(x))).flatten(1)
        self.head_calls += 1
        return self.head(x)


def tiny(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet().eval()


@pytest.fixture(scope="module")
def scene(shared_dir, feature_cache, models):
    """15 Scene, 2 images per class and split at a 112-pixel crop (a quarter of 224's multiply-adds: equality of
    features does not need 224); our vgg16 (imagenet-conv) and its pool5 features as reference."""
    cfg = RunConfig(data=str(shared_dir / "data" / "15scene"), model="vgg16", weights="imagenet-conv",
                    layers=["pool5"], limit_per_class=2, input_size=112, cache=feature_cache, workers=0)
    ours = models("vgg16", "imagenet-conv")
    paths = load_dataset(cfg.data, cfg.limit_per_class).paths
    return cfg, ours, paths, features_of(ours, cfg, paths, "pool5")


def vgg_module(ours) -> nn.Module:
    """The user's own VGG16 convolutions (copied: the shared model stays untouched), without our input step."""
    return nn.Sequential(copy.deepcopy(ours.net.features), copy.deepcopy(ours.net.avgpool)).eval()


def features_of(model, cfg, paths, layer):
    ex = Extractor(model, [(layer, "avg")], input_size=cfg.input_size, workers=0, progress=False,
                   cache=FeatureCache(cfg.cache))
    return ex.extract(paths).features[(layer, "avg")]


def check_run(record, n_images: int, model_name: str):
    run = record.runs[0]
    assert (run.train_images, run.test_images) == (n_images // 2, n_images // 2)
    assert record.feature_dim == 512 and record.provenance.model == model_name
    # measured 0.6667 (20 of these 30 test images at 112; chance 0.067), the same as our vgg16's pool5 on them
    assert record.accuracy >= 0.55


def test_own_module_gives_our_vgg16_features_through_run_experiment(scene):
    cfg, ours, paths, ref = scene
    model = load_model(vgg_module(ours))
    assert model.label().startswith("Sequential [module weights") and "pretrained: unknown" in model.label()
    assert model.provenance()["pretrained"] is None and model.provenance()["origin"] == "module"
    record = run_experiment(dataclasses.replace(cfg, layers=[VGG_POOL5]), model=model)
    check_run(record, len(paths), "Sequential")
    got = features_of(model, cfg, paths, VGG_POOL5)
    assert got.shape == ref.shape == (len(paths), 512)
    # measured 0.0 on Zen 3 (the same kernels on the same batches); another CPU may pick other kernels for the
    # module's layers than for ours: float32 rounding, far below 1e-6
    assert deviation(ref, got) <= 1e-6


def test_torchscript_file_gives_our_vgg16_features_through_run_cli(scene, tmp_path, capsys):
    cfg, ours, paths, ref = scene
    file = tmp_path / "myvgg.pt"
    torch.jit.script(vgg_module(ours)).save(str(file))
    args = ["run", "--data", cfg.data, "--model", str(file), "--layer", VGG_POOL5, "--limit-per-class", "2",
            "--input-size", "112", "--cache", cfg.cache, "--out", str(tmp_path / "run"), "--quiet", "--workers", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "myvgg [torchscript file weights" in out and "features: 512 dims" in out
    assert float(re.search(r"accuracy (\S+)", out).group(1)) >= 0.55  # measured 0.6667, as our vgg16's pool5
    model = load_model(str(file))
    assert model.net.layer_names()[-3:] == ["0", "1", "output"]  # Sequential children, run one by one
    got = features_of(model, cfg, paths, VGG_POOL5)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())  # measured max |diff| 0.0


def test_state_dict_file_gives_our_vgg16_features_through_run_cli(scene, tmp_path, capsys):
    cfg, ours, paths, ref = scene
    file = tmp_path / "vgg16_sd.pth"
    torch.save(ours.net.state_dict(), file)
    for layer in ("pool5", "features.30"):  # our stable name and the module's dotted one: one cache entry
        args = ["run", "--data", cfg.data, "--weights", str(file), "--layer", layer, "--limit-per-class", "2",
                "--input-size", "112", "--cache", cfg.cache, "--out", str(tmp_path / layer), "--quiet", "--workers",
                "0", "--json"]
        assert main(args) == 0
        record = json.loads(capsys.readouterr().out)
        assert record["feature_dim"] == 512 and record["accuracy"] >= 0.55  # measured 0.6667
    assert record["extraction"]["computed_images"] == 0  # features.30 came from pool5's cache entries
    got = features_of(load_model("vgg16", str(file)), cfg, paths, "pool5")
    assert deviation(ref, got) <= 1e-6  # measured 0.0 on Zen 3, as above


def test_pickled_model_is_refused_in_one_line_unless_trusted(tmp_path, capsys):
    file = tmp_path / "tiny.pt"
    torch.save(tiny(), file)
    assert main(["inspect", str(file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tiny.pt" in err[0] and "--trust-pickle" in err[0] and "running code" in err[0]
    assert main(["inspect", str(file), "--trust-pickle"]) == 0
    out = capsys.readouterr().out
    assert "tiny [pickle file weights" in out and "conv1" in out and "head" in out
    sd = tmp_path / "sd.pt"
    torch.save(tiny().state_dict(), sd)
    assert main(["inspect", str(sd)]) == 2
    assert "a state dict, not a whole network" in capsys.readouterr().err


def test_exported_program_keeps_every_layer_and_the_numbers(tmp_path):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                           nn.Linear(32, 5)).eval()
    file = tmp_path / "net.pt2"
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(module, (torch.rand(2, 3, 224, 224),), dynamic_shapes=({0: batch},)), file)
    eager, exported = load_model(module), load_model(str(file))
    assert exported.net.layer_names() == eager.net.layer_names() == ["input", "0", "1", "2", "3", "4", "output"]
    assert exported.origin == "export" and "net [export file weights" in exported.label()
    x = torch.rand(3, 3, 224, 224)
    with torch.no_grad():
        a, b = eager.net.forward_layers(x, ["0", "3"]), exported.net.forward_layers(x, ["0", "3"])
    assert (a["0"] < 0).any()  # conv output before the in-place ReLU
    for layer in ("0", "3"):  # measured max |diff| 0.0
        torch.testing.assert_close(b[layer], a[layer], rtol=0, atol=1e-6)


def test_layers_follow_execution_order_and_the_forward_stops_after_the_deepest():
    model = load_model(tiny())
    assert model.net.layer_names() == ["input", "conv1", "relu", "conv2", "pool", "head", "output"]
    net = model.net.module
    calls = net.head_calls
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        out = model.net.forward_layers(x, ["pool", "conv1"])
    assert net.head_calls == calls  # nothing after pool ran
    assert out["pool"].shape == (2, 8, 1, 1) and out["conv1"].shape == (2, 8, 16, 16)
    with torch.no_grad():
        conv1 = net.conv1(model.net.input(x))
    # the in-place ReLU after conv1 would have overwritten it: the output was cloned
    assert (out["conv1"] < 0).any() and torch.equal(out["conv1"], conv1)
    assert model.net.forward_layers(x, ["output"])["output"].shape == (2, 3) and net.head_calls == calls + 1


def test_module_in_the_scikit_learn_transformer(shared_dir, tmp_path):
    paths = sorted((shared_dir / "data" / "15scene" / "train" / "Forest").iterdir())[:3]
    fx = FeatureExtractor(tiny(), layers=("conv2", "pool"), l2=False, cache=str(tmp_path))
    x = fx.fit_transform(paths)
    assert x.shape == (3, 16) and fx.layers_ == ["conv2", "pool"]
    assert FeatureExtractor(tiny(), cache=str(tmp_path)).fit(paths).layers_ == ["pool"]  # the head's input


def test_gray_conv1_sum_folds_into_the_first_conv_the_module_runs():
    rgb, gray = load_model(tiny()), load_model(tiny())
    assert gray.net.first_conv == "module.conv1"  # conv2 is declared first, conv1 runs first
    apply_gray(gray.net, "conv1-sum")
    g = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        a = rgb.net.forward_layers(g.expand(-1, 3, -1, -1), ["conv2", "pool"])
        b = gray.net.forward_layers(g, ["conv2", "pool"])
    for layer in a:  # measured max |diff| 3.6e-7 (float32 summation order)
        torch.testing.assert_close(b[layer], a[layer], rtol=0, atol=1e-5)


def test_cache_key_changes_with_one_parameter_or_buffer():
    def key(module):
        return Extractor(load_model(module), [("pool", "avg")], cache=None).keys[("pool", "avg")]

    a, b = tiny(), tiny()
    assert key(a) == key(b)  # the same numbers: the same entries
    with torch.no_grad():
        b.conv2.bias[0] += 1e-6
    assert key(a) != key(b)
    c = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    d = copy.deepcopy(c)
    d[1].running_mean[0] = 0.5
    assert load_model(c).weights_id != load_model(d).weights_id
    assert load_model(tiny(1)).weights_id != load_model(tiny(0)).weights_id


def test_module_ending_in_imagenet_logits_predicts_like_the_registry(models, samples, tmp_path, capsys):
    ours = models("efficientnet_lite0")
    # our backbone as the user's module: it normalises by itself, so the preprocessing declares no normalisation
    pre = dataclasses.replace(ours.preprocess, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    mine = load_model(copy.deepcopy(ours.net), preprocess=pre, pretrained=True)
    assert mine.categories == ours.categories and "; pretrained]" in mine.label()
    got, _ = predict_files(mine, [samples["chelsea"], samples["coffee"]], k=3)
    want, _ = predict_files(ours, [samples["chelsea"], samples["coffee"]], k=3)
    for g, w in zip(got, want):
        assert [c for _, c, _ in g.top] == [c for _, c, _ in w.top]
        assert np.allclose([p for *_, p in g.top], [p for *_, p in w.top], atol=1e-5)
    file = tmp_path / "lite0_traced.pt"
    traced = torch.jit.trace(mine.net.module, torch.rand(1, 3, 224, 224))
    traced.save(str(file))
    assert load_model(str(file)).net.layer_names() == ["input", "output"]  # a compiled graph: no inner layers
    # a TorchScript file normalising by itself: the preprocessing is given in Python, the file predicts too
    scripted = load_model(str(file), preprocess=pre)
    g2, _ = predict_files(scripted, [samples["coffee"]], k=1)
    assert g2[0].top[0][1] == "espresso"


def test_library_that_does_not_import_says_why_in_one_line(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    assert main(["inspect", "torchvision:vgg16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not import here (operator torchvision::nms does not exist)" in err[0]
    assert "pip install torchvision" in err[0]
