"""``transferlab activations MODEL IMAGE``: all channel maps of one layer (default: the first convolution)."""
from __future__ import annotations

import json
import sys

import numpy as np
from tabulate import tabulate

from transferlab.analysis.layer_maps import channel_stats, default_layer, layer_maps
from transferlab.data.images import load_image
from transferlab.data.samples import resolve
from transferlab.models.builder import load_model
from transferlab.plots.activations import activations_figure


def run(args) -> int:
    path = resolve(args.image)
    img = load_image(path)
    model = load_model(args.model, args.weights, trust_pickle=args.trust_pickle)
    layer = args.layer or default_layer(model.net)
    maps = layer_maps(model, model.preprocess.pixels(img, 3), layer)
    stats = channel_stats(maps)
    if args.json:
        print(json.dumps({"model": model.label(), "provenance": model.provenance(), "image": str(path),
                          "layer": layer, "shape": list(maps.shape), "channels": stats}, indent=1))
    else:
        mean, peak = np.array(stats["mean"]), np.array(stats["max"])
        print(model.label())
        print(f"{path}: {layer} gives {maps.shape[0]} maps of {maps.shape[1]}×{maps.shape[2]}")
        print(tabulate([("mean", *np.percentile(mean, [0, 50, 100])), ("max", *np.percentile(peak, [0, 50, 100]))],
                       headers=["per channel", "lowest", "median", "highest"], floatfmt=".3f"))
        print(f"strongest channels (by max): {', '.join(f'{i} ({peak[i]:.2f})' for i in np.argsort(-peak)[:8])}")
        print(f"flat channels (max = mean, nothing to see): {int((peak - mean <= 1e-6).sum())}")
    if args.figure:
        crop = model.preprocess.geometry(img.convert("RGB"))
        out = activations_figure(crop, maps, layer, f"{model.label()}: {path.name}", args.figure)
        print(f"figure: {out}", file=sys.stderr if args.json else sys.stdout)
    return 0
