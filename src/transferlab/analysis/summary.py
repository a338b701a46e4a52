"""Per-layer summary of an architecture: output shapes, parameters, and the share of the fully connected part."""
from __future__ import annotations

import torch
from tabulate import tabulate

from transferlab.models.base import Backbone
from transferlab.models.registry import get_spec


def build_meta(name: str) -> Backbone:
    """The architecture of ``name`` on the meta device: shapes and parameter counts, no memory, no weights."""
    with torch.device("meta"):
        return get_spec(name).builder().eval()


def input_size(name: str) -> int:
    """The square input side the model's weights expect (224 for VGG and AlexNet)."""
    spec = get_spec(name)
    return spec.weights[0].preprocess.crop if spec.weights else 224


def summarize(name: str) -> dict:
    """Layer table and totals of ``name`` for a 1×3×S×S input, S its native size."""
    net, size = build_meta(name), input_size(name)
    x = torch.zeros(1, 3, size, size, device="meta")
    layers = []
    for layer, module in net.steps():
        x = module(x)
        layers.append({"name": layer, "output_shape": list(x.shape[1:]), "params": net.step_params(module)})
    total = sum(p.numel() for p in net.parameters())
    fc = sum(row["params"] for row in layers if row["name"] in net.fc_layers)
    fc_names = [row["name"] for row in layers if row["name"] in net.fc_layers and row["params"]]
    last = layers[-1]
    output = {"layer": last["name"], "size": last["output_shape"][0],
              "meaning": f"{last['name']} gives {last['output_shape'][0]} scores, one per ImageNet class; "
                         "softmax turns them into class probabilities that sum to 1"}
    return {"model": name, "description": get_spec(name).description, "input_shape": [1, 3, size, size],
            "total_params": total, "conv_params": total - fc, "fc_params": fc, "fc_layers": fc_names,
            "fc_share": fc / total, "output": output, "layers": layers}


def format_summary(s: dict) -> str:
    """The text report of :func:`summarize`."""
    rows = [(r["name"], "×".join(map(str, r["output_shape"])), r["params"]) for r in s["layers"]]
    totals = [("total parameters", s["total_params"], ""),
              ("convolutional part", s["conv_params"], f"{1 - s['fc_share']:.1%}"),
              (f"fully connected ({', '.join(s['fc_layers'])})", s["fc_params"], f"{s['fc_share']:.1%}")]
    return "\n".join([
        f"{s['model']}: {s['description']}; output shape per layer for a {'×'.join(map(str, s['input_shape']))} input",
        tabulate(rows, headers=["layer", "output shape", "params"], colalign=("left", "right", "right"), intfmt=","),
        "",
        tabulate(totals, tablefmt="plain", colalign=("left", "right", "right"), intfmt=","),
        f"output: {s['output']['meaning']}.",
    ])
