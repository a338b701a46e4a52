"""`transferlab inspect`: VGG16's layers, shapes and parameter counts, and torchvision's state-dict layout."""
from __future__ import annotations

import json

import pytest
import torch

from transferlab.cli.main import main
from transferlab.analysis.summary import build_meta, summarize

# torchvision's VGG configurations (numbers: 3×3 convolutions of that width; "M": 2×2 max pooling)
TV_CFGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def torchvision_vgg_shapes(depth: int, bn: bool) -> dict[str, tuple]:
    """State-dict keys and shapes of torchvision's ``vgg{depth}[_bn]``, built as its ``make_layers`` does."""
    shapes, i, cin = {}, 0, 3
    for v in TV_CFGS[depth]:
        if v == "M":
            i += 1
            continue
        shapes[f"features.{i}.weight"], shapes[f"features.{i}.bias"] = (v, cin, 3, 3), (v,)
        if bn:
            for k in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"features.{i + 1}.{k}"] = (v,)
            shapes[f"features.{i + 1}.num_batches_tracked"] = ()
        i += 3 if bn else 2
        cin = v
    for j, (o, n) in zip((0, 3, 6), ((4096, 512 * 7 * 7), (4096, 4096), (1000, 4096))):
        shapes[f"classifier.{j}.weight"], shapes[f"classifier.{j}.bias"] = (o, n), (o,)
    return shapes


def test_vgg16_parameter_counts():
    s = summarize("vgg16")
    per_layer = {r["name"]: r["params"] for r in s["layers"]}
    assert s["total_params"] == 138_357_544
    assert (per_layer["fc6"], per_layer["fc7"], per_layer["fc8"]) == (102_764_544, 16_781_312, 4_097_000)
    assert s["fc_params"] == 123_642_856 and s["fc_layers"] == ["fc6", "fc7", "fc8"]
    assert s["conv_params"] == 14_714_688 == sum(v for k, v in per_layer.items() if k.startswith("conv"))
    assert round(s["fc_share"], 3) == 0.894
    assert sum(per_layer.values()) == s["total_params"]


def test_vgg16_layer_names_and_shapes():
    s = summarize("vgg16")
    names = [r["name"] for r in s["layers"]]
    convs = [f"conv{b}_{i}" for b, n in enumerate([2, 2, 3, 3, 3], 1) for i in range(1, n + 1)]
    assert [n for n in names if n.startswith("conv")] == convs
    pools_fcs = [f"pool{b}" for b in range(1, 6)] + ["fc6", "fc7", "fc8"]
    assert [n for n in names if n.startswith(("pool", "fc"))] == pools_fcs
    shape = {r["name"]: r["output_shape"] for r in s["layers"]}
    assert shape["conv1_1"] == [64, 224, 224] and shape["conv3_3"] == [256, 56, 56]
    assert shape["pool5"] == [512, 7, 7] and shape["flatten"] == [25088]
    assert shape["fc6"] == shape["fc7"] == [4096] and shape["fc8"] == [1000]
    assert s["output"]["size"] == 1000 and "ImageNet class" in s["output"]["meaning"]


@pytest.mark.parametrize("depth", [11, 13, 16, 19])
@pytest.mark.parametrize("bn", [False, True])
def test_torchvision_state_dict_layout(depth, bn):
    name = f"vgg{depth}{'_bn' if bn else ''}"
    net = build_meta(name)
    expected = torchvision_vgg_shapes(depth, bn)
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert ours == expected
    # a torchvision state dict loads strictly, key for key
    with torch.device("meta"):
        sd = {k: torch.empty(shape) for k, shape in expected.items()}
    assert not any(net.load_state_dict(sd, strict=True))
    # and each named layer is the torchvision module of the same rank: conv1_1 = features.0, fc8 = classifier.6
    owner = {id(m): n for n, m in net.named_modules()}
    steps = dict(net.steps())
    tv_convs = [k.removesuffix(".weight") for k, shape in expected.items() if len(shape) == 4]
    assert [owner[id(m)] for n, m in steps.items() if n.startswith("conv")] == tv_convs
    assert [owner[id(steps[n])] for n in ("fc6", "fc7", "fc8")] == ["classifier.0", "classifier.3", "classifier.6"]


def test_other_models_parameter_counts():
    assert summarize("alexnet")["total_params"] == 61_100_840
    eff = summarize("efficientnet_lite0")
    assert eff["total_params"] == 4_652_008  # 4.65 M, as published for EfficientNet-Lite0
    assert eff["fc_layers"] == ["fc"] and eff["fc_params"] == 1280 * 1000 + 1000


def test_inspect_text(capsys):
    assert main(["inspect", "vgg16"]) == 0
    out = capsys.readouterr().out
    for text in ("138,357,544", "123,642,856", "14,714,688", "89.4%", "pool5", "512×7×7", "1000 scores"):
        assert text in out


def test_inspect_json_and_figure(capsys, tmp_path):
    fig = tmp_path / "params.png"
    assert main(["inspect", "vgg16", "--json", "--figure", str(fig)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert {"model", "total_params", "conv_params", "fc_params", "fc_share", "output", "layers"} <= set(s)
    assert s["total_params"] == 138_357_544 and s["layers"][-1] == {"name": "fc8", "output_shape": [1000],
                                                                   "params": 4_097_000}
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inspect_unknown_model(capsys):
    assert main(["inspect", "vgg17"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vgg17" in err[0]
