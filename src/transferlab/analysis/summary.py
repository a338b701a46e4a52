"""Per-layer summary of an architecture: output shapes, parameters, and the share of the fully connected part."""
from __future__ import annotations

import torch
from tabulate import tabulate

from transferlab.models.base import Backbone
from transferlab.models.builder import load_model
from transferlab.models.foreign import LIBRARIES
from transferlab.models.loaded import LoadedModel
from transferlab.models.registry import MODELS, get_spec


def build_meta(name: str) -> Backbone:
    """The architecture of ``name`` on the meta device: shapes and parameter counts, no memory, no weights."""
    with torch.device("meta"):
        return get_spec(name).builder().eval()


def input_size(name: str) -> int:
    """The square input side the model's weights expect (224 for VGG and AlexNet)."""
    spec = get_spec(name)
    return spec.weights[0].preprocess.crop if spec.weights else 224


def summarize(name, trust_pickle: bool = False) -> dict:
    """Layer table and totals of ``name`` for a 1×3×S×S input, S its native size. ``name``: a registry name, or
    anything else ``load_model`` takes (a module, a model file, ``timm:``/``torchvision:`` names, built without
    their pretrained weights), or a LoadedModel."""
    if isinstance(name, LoadedModel) or name not in MODELS:
        model = name if isinstance(name, LoadedModel) else load_model(
            name, "none" if str(name).partition(":")[0] in LIBRARIES else "auto", trust_pickle=trust_pickle)
        return summarize_module(model)
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


def summarize_module(model: LoadedModel) -> dict:
    """:func:`summarize` of a foreign network: its layers in execution order with their own parameters (a
    container's are its children's, listed with them); the fully connected part is its Linear layers."""
    net = model.net
    layers = [{"name": n, "output_shape": list(net.shapes[n]), "params": net.step_params(m)} for n, m in net.steps()]
    total = sum(p.numel() for p in net.parameters())
    fc_names = [r["name"] for r in layers if net.kinds[r["name"]] == "Linear"]
    fc = sum(r["params"] for r in layers if r["name"] in fc_names)
    size = model.preprocess.crop
    out = layers[-1]["output_shape"]
    meaning = (f"output gives {out[0]} scores" + (", one per ImageNet class" if model.categories else "")
               if len(out) == 1 else f"output is a {'×'.join(map(str, out))} map")
    return {"model": model.name, "description": model.label(), "input_shape": [1, 3, size, size],
            "total_params": total, "conv_params": total - fc, "fc_params": fc, "fc_layers": fc_names,
            "fc_share": fc / total if total else 0.0, "output": {"layer": "output", "size": out[0], "meaning": meaning},
            "layers": layers}


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
