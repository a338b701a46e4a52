"""``transferlab report``: one self-contained HTML file that answers the practical's questions with measured numbers.

Inputs are folders written by ``transferlab run`` (``result.json``), ``transferlab study`` (``study.json``) and
``transferlab finetune`` (``finetune.json``), recognised by the file they hold. The report computes three parts
itself: VGG16's per-layer table (no weights needed), ImageNet predictions on real sample photos, and the first
layer's activation maps. Every figure is embedded as a base64 PNG; every table of numbers names its source, and the
provenance section says where each source came from and which command reproduces it. A part without its input says
which command would fill it.

The HTML is assembled with f-strings and ``html.escape`` (no template engine: the page is a flat list of sections,
and every value from an input file is escaped in one place, :func:`esc`).
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import shlex
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FILES = {"result.json": "run", "study.json": "study", "finetune.json": "finetune"}
PREFIX = {"run": "R", "study": "S", "finetune": "F"}
FULL_15SCENE = {"train": 1500, "test": 2985, "images": 4485}

# What each sample photo shows (so that a reader can judge the predictions without opening the files).
SAMPLE_CONTENT = {
    "chelsea": "a tabby cat (scikit-image 'chelsea')",
    "coffee": "a cup of coffee on a saucer (scikit-image 'coffee')",
    "astronaut": "a portrait of astronaut Eileen Collins; ImageNet-1k has no person or astronaut class "
                 "(scikit-image 'astronaut')",
    "rocket": "a rocket on its launch pad (scikit-image 'rocket')",
    "china": "a Chinese temple roof among trees (scikit-learn 'china.jpg')",
    "flower": "a flower close-up (scikit-learn 'flower.jpg')",
}

# The practical's reference figures (../shared/PRACTICAL.md and ASSETS.md), quoted, not measured here.
REFERENCE = [
    ("VGG16 relu6 + L2 + LinearSVC (best published answers to the practical)", 0.91, "≈ 0.91", "fixed 1,500 / 2,985"),
    ("VGG16 relu7 + L2 + LinearSVC", 0.90, "≈ 0.90", "fixed 1,500 / 2,985"),
    ("VGG16 fc8 + L2 + LinearSVC", 0.88, "≈ 0.88", "fixed 1,500 / 2,985"),
    ("ViT-B/16 backbone", 0.93, "≈ 0.93", "fixed 1,500 / 2,985"),
    ("Spatial pyramid matching (Lazebnik et al. 2006)", 0.814, "0.814", "random 100 per class"),
    ("ImageNet-trained CNN features (literature)", 0.85, "0.84–0.86", "random 100 per class"),
    ("Places-trained CNN features (literature)", 0.91, "0.90–0.92", "random 100 per class"),
    ("Best multi-scale or ensemble methods", 0.9575, "0.95–0.965", "random 100 per class"),
    ("VGG16 pool5 avg + LinearSVC, offline conv weights (ASSETS.md)", 0.884, "0.884",
     "train 1,500, first 995 test images"),
    ("EfficientNet-Lite0 avg-pooled + LinearSVC, offline weights (ASSETS.md)", 0.918, "0.918",
     "train 1,500, first 995 test images"),
]

QUESTIONS = {
    "q1": ("1. How many parameters does VGG16 have?",
           "How many parameters does VGG16 have, given that the fully connected layers hold most of them?"),
    "q2": ("2. The output of the last layer", "What is the output size of the last layer, and what does it mean?"),
    "q3": ("3. ImageNet predictions on photos", "Apply the network to images of your choice and comment."),
    "q4": ("4. Activation maps of the first convolution",
           "Show activation maps after the first convolution and interpret them."),
    "q5": ("5. Why not train VGG16 directly on 15 Scene?", "Why not train VGG16 directly on 15 Scene?"),
    "q6": ("6. What ImageNet pre-training brings", "How does ImageNet pre-training help?"),
    "q7": ("7. Limits of feature extraction", "What are the limits of feature extraction?"),
    "q8": ("8. Impact of the layer", "What is the impact of the layer at which features are extracted?"),
    "q9": ("9. Grayscale images into an RGB network",
           "15 Scene is grayscale but VGG16 wants RGB: how to get around it?"),
    "q10": ("10. Using the network itself instead of an SVM",
            "Instead of an independent classifier, can the network itself be used?"),
}



# ---------------------------------------------------------------------------------------------------------------
# Inputs


@dataclass
class Source:
    """One number source: an input file, or a part the report computed itself."""

    sid: str  # R1, S1, F1, C1 …
    kind: str  # run | study | finetune | computed
    title: str
    data: dict
    path: Path | None = None
    sha256: str = ""
    command: str = ""

    @property
    def folder(self) -> Path | None:
        return self.path.parent if self.path else None

    @property
    def synthetic(self) -> bool:
        return bool(self.data.get("synthetic") or self.data.get("_fixture"))


@dataclass
class Inputs:
    runs: list[Source] = field(default_factory=list)
    studies: list[Source] = field(default_factory=list)
    finetunes: list[Source] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)

    def all(self) -> list[Source]:
        return self.runs + self.studies + self.finetunes


def _check(kind: str, data) -> str | None:
    """Why ``data`` is not a usable record of ``kind`` (None if it is)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    need = {"run": ("accuracy", "runs", "classes"), "study": ("rows",), "finetune": ()}[kind]
    missing = [k for k in need if k not in data]
    if missing:
        return f"not a transferlab {kind} record: no {missing[0]!r}"
    if kind == "run" and not (isinstance(data["runs"], list) and data["runs"]):
        return "a run record without any split in 'runs'"
    if kind == "study" and not isinstance(data["rows"], list):
        return "a study record whose 'rows' is not a list"
    if kind == "finetune" and not any(k in data for k in ("history", "test_accuracy")):
        return "not a transferlab finetune record: neither 'history' nor 'test_accuracy'"
    return None


def find_inputs(paths) -> Inputs:
    """Run, study and fine-tune records in ``paths``: folders holding result.json / study.json / finetune.json,
    those files themselves, or folders of such folders (searched recursively)."""
    inputs, seen = Inputs(), set()
    for given in map(Path, paths):
        if not given.exists():
            inputs.skipped.append((str(given), "no such file or folder"))
            continue
        if given.is_file():
            files = [given] if given.name in FILES else []
            if not files:
                inputs.skipped.append((str(given), f"not one of {', '.join(FILES)}"))
        else:
            files = [given / n for n in FILES if (given / n).is_file()]
            files = files or sorted(f for n in FILES for f in given.rglob(n))
            if not files:
                inputs.skipped.append((str(given), f"holds no {', '.join(FILES)}"))
        for f in files:
            key = f.resolve()
            if key in seen:
                continue
            seen.add(key)
            kind = FILES[f.name]
            raw = f.read_bytes()
            try:
                data = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                inputs.skipped.append((str(f), f"unreadable JSON ({e})"))
                continue
            why = _check(kind, data)
            if why:
                inputs.skipped.append((str(f), why))
                continue
            group = {"run": inputs.runs, "study": inputs.studies, "finetune": inputs.finetunes}[kind]
            src = Source(f"{PREFIX[kind]}{len(group) + 1}", kind, "", data, f, hashlib.sha256(raw).hexdigest())
            src.title, src.command = _title(src), _command(src)
            group.append(src)
    return inputs


def _title(src: Source) -> str:
    d, prov = src.data, src.data.get("provenance") or {}
    if src.kind == "run":
        return (f"{prov.get('label', prov.get('model', '?'))} · {'+'.join(map(str, prov.get('layers', [])))} "
                f"{prov.get('pool', '')} · {prov.get('classifier', '')}")
    if src.kind == "study":
        return f"study {d.get('study', '?')} · {prov.get('label', prov.get('model', ''))}"
    return f"fine-tuning {d.get('model', prov.get('model', '?'))} ({d.get('mode', '?')})"


def run_command(prov: dict, out: Path | None = None) -> str:
    """The ``transferlab run`` command line of a run's recorded configuration (non-default options only)."""
    cfg = prov.get("config") or {}
    if not cfg.get("data"):
        return ""
    from .experiment import RunConfig

    default = RunConfig(data="")
    args = ["transferlab", "run", "--data", str(cfg["data"]), "--model", str(cfg.get("model", default.model)),
            "--weights", str(cfg.get("weights", default.weights)), "--layer", *map(str, cfg.get("layers", ["pool5"]))]
    flags = [("pool", "--pool"), ("gray", "--gray"), ("resize", "--resize"), ("classifier", "--classifier"),
             ("C", "--C"), ("pca", "--pca"), ("protocol", "--protocol"), ("train_per_class", "--train-per-class"),
             ("limit_per_class", "--limit-per-class"), ("seed", "--seed"), ("runtime", "--runtime"),
             ("device", "--device")]
    for key, flag in flags:
        if key in cfg and cfg[key] != getattr(default, key) and cfg[key] is not None:
            args += [flag, str(cfg[key])]
    if cfg.get("l2") is False:
        args.append("--no-l2")
    if cfg.get("standardize"):
        args.append("--standardize")
    if out is not None:
        args += ["--out", str(out)]
    return " ".join(shlex.quote(a) for a in args)


def _command(src: Source) -> str:
    d, prov = src.data, src.data.get("provenance") or {}
    if d.get("command"):
        return str(d["command"])
    if prov.get("command"):
        return str(prov["command"])
    if src.kind == "run":
        return run_command(prov, src.folder)
    cfg = prov.get("config") or {}
    if src.kind == "finetune" and cfg.get("data"):
        args = ["transferlab", "finetune", "--data", str(cfg["data"]), "--model", str(cfg.get("model", d.get("model"))),
                "--weights", str(cfg.get("weights", "auto")), "--mode", str(cfg.get("mode", d.get("mode", "head")))]
        for key, flag in (("epochs", "--epochs"), ("limit_per_class", "--limit-per-class"), ("seed", "--seed"),
                          ("protocol", "--protocol")):
            if cfg.get(key) is not None:
                args += [flag, str(cfg[key])]
        return " ".join(shlex.quote(a) for a in args) + f" --out {shlex.quote(str(src.folder))}"
    if src.kind == "study" and cfg.get("data"):
        args = ["transferlab", "study", str(d.get("study")), "--data", str(cfg["data"]), "--model",
                str(cfg.get("model")), "--weights", str(cfg.get("weights")),
                "--layer", *map(str, cfg.get("layers", []))]
        return " ".join(shlex.quote(a) for a in args) + f" --out {shlex.quote(str(src.folder))}"
    return ""


# ---------------------------------------------------------------------------------------------------------------
# Parts the report computes itself (modules imported lazily: each part fails alone, with its reason shown)


def _read_png(write) -> bytes:
    """Bytes of the PNG that ``write(path)`` writes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "figure.png"
        write(path)
        return path.read_bytes()


def compute_architecture(model: str = "vgg16") -> dict:
    from .summary import params_figure, summarize

    s = summarize(model)
    return {"summary": s, "png": _read_png(lambda p: params_figure(s, p)),
            "command": f"transferlab inspect {model} --figure {model}_params.png"}


def scene_images(data: Path | None, prefer=("coast", "kitchen", "highway"), n: int = 2) -> list[tuple[str, Path]]:
    """(class, path) of the first test image of ``n`` classes of a dataset folder (preferred classes first)."""
    if data is None or not Path(data).is_dir():
        return []
    from .datasets import load_dataset

    ds = load_dataset(data, limit_per_class=1)
    side = "test" if ds.has_fixed_split else ""
    first = {}
    for path, label, sp in zip(ds.paths, ds.labels, ds.split):
        if sp == side and ds.classes[label] not in first:
            first[ds.classes[label]] = path
    order = sorted(first, key=lambda c: (prefer.index(c.casefold()) if c.casefold() in prefer else len(prefer), c))
    return [(c, first[c]) for c in order[:n]]


def compute_predictions(samples_dir=None, data: Path | None = None, k: int = 5,
                        models=(("efficientnet_lite0", "imagenet"),)) -> dict:
    from .predict import predict_figure, predict_files
    from .registry import get_spec, load_model
    from .samples import sample_paths

    images = [(p.stem, Path(p), SAMPLE_CONTENT.get(p.stem, p.stem)) for p in sample_paths(samples_dir)]
    images += [(f"15 Scene · {c}", p, f"a 15 Scene test image of class {c!r} (grayscale)")
               for c, p in scene_images(data)]
    what = {str(p): (name, desc) for name, p, desc in images}
    models = list(models)
    vgg_full = get_spec("vgg16").get_weights("imagenet")
    vgg_cached = vgg_full.availability() == "cached"
    if vgg_cached and ("vgg16", "imagenet") not in models:
        models.append(("vgg16", "imagenet"))
    out = {"models": [], "vgg16_full_cached": vgg_cached, "vgg16_file": vgg_full.file_name,
           "vgg16_path": str(vgg_full.cached_path()), "images": [str(p) for _, p, _ in images]}
    for name, tag in models:
        model = load_model(name, tag)
        results, errors = predict_files(model, [p for _, p, _ in images], k)
        rows = [{"image": r.image, "name": what[r.image][0], "what": what[r.image][1],
                 "top": [{"class": c, "probability": p} for _, c, p in r.top]} for r in results]
        png = _read_png(lambda p: predict_figure(results, model.label(), p))
        out["models"].append({"label": model.label(), "provenance": model.provenance(), "rows": rows, "png": png,
                              "errors": [str(e) for e in errors],
                              "command": f"transferlab predict {name} --weights {tag} --samples --top {k} "
                                         f"--figure predictions_{name}.png"})
    return out


def _pattern_pixels(img, size: int):
    import torch

    a = np.asarray(img.convert("RGB").resize((size, size)), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def compute_activations(model_name: str = "vgg16", weights: str = "imagenet-conv", image: Path | None = None,
                        samples_dir=None, model=None) -> dict:
    from torch import nn

    from .activations import activations_figure, channel_stats, layer_maps
    from .images import load_image
    from .registry import load_model
    from .report_figures import (PATTERN_PANELS, classify_filters, filters_figure, pattern_figure,
                                 pattern_picks, pattern_responses, synthetic_pattern)
    from .samples import sample_path

    model = model or load_model(model_name, weights)
    layer = next(name for name, m in model.net.steps() if model.net.step_params(m))  # conv1_1: the first convolution
    image = Path(image) if image else sample_path("chelsea", samples_dir)
    img = load_image(image)
    maps = layer_maps(model, model.preprocess.pixels(img, 3), layer)
    stats = channel_stats(maps)
    flat = int(sum(1 for mx, mn in zip(stats["max"], maps.flatten(1).amin(1).tolist()) if mx - mn <= 1e-6))
    crop = model.preprocess.geometry(img.convert("RGB"))
    label = f"{model.label()}: {image.name}"
    out = {"label": model.label(), "provenance": model.provenance(), "image": str(image), "layer": layer,
           "shape": list(maps.shape), "flat_maps": flat,
           "strongest": [int(i) for i in np.argsort(-np.array(stats["max"]))[:8]],
           "png": _read_png(lambda p: activations_figure(crop, maps, layer, label, p)),
           "command": f"transferlab activations {model_name} {shlex.quote(str(image))} --weights {weights} "
                      f"--figure activations_{layer}.png"}
    conv = dict(model.net.steps())[layer]
    if isinstance(conv, nn.Conv2d) and conv.in_channels == 3:
        weight = conv.weight.detach().numpy()
        groups = classify_filters(weight)
        size = model.preprocess.crop
        card = synthetic_pattern(size)
        pmaps = layer_maps(model, _pattern_pixels(card, size), layer).numpy()
        responses = pattern_responses(pmaps, size)
        picks = pattern_picks(groups)
        out.update({
            "groups": groups, "group_counts": {g: sum(d["group"] == g for d in groups)
                                               for g in dict.fromkeys(d["group"] for d in groups)},
            "filters_png": filters_figure(weight, groups, f"the {len(groups)} kernels of {layer} "
                                                          f"({model.label()}), grouped by the rule stated in the text"),
            "pattern_png": pattern_figure(card, pmaps, weight, picks, f"{layer} responses to a synthetic test card "
                                                                      f"({model.label()})"),
            "panels": list(PATTERN_PANELS),
            "picks": [{"channel": ch, "label": why, "responses": [round(float(v), 4) for v in responses[ch]]}
                      for ch, why in picks],
        })
    out["model"] = model
    return out


def compute_gray_check(model, image: Path) -> dict:
    """Features of one gray image under replicate, conv1-sum and conv1-mean: the folding is exact, the mean is not."""
    import torch

    from .features.gray import apply_gray
    from .images import load_image

    img = load_image(image).convert("L")  # a colour image is compared on its luma, the same for every mode
    names = model.net.layer_names()
    layer = "pool5" if "pool5" in names else model.usable_layers()[-1]
    with torch.inference_mode():
        ref = model.net.forward_layers(model.preprocess.pixels(img, 3)[None], [layer])[layer].flatten()
    rows = [{"gray": "replicate", "channels": 3, "max_rel_diff": 0.0, "cosine": 1.0}]
    net = model.net
    saved_input, saved_conv = net.input, net.get_submodule(net.first_conv)
    try:
        for mode in ("conv1-sum", "conv1-mean"):
            channels = apply_gray(net, mode)
            with torch.inference_mode():
                out = net.forward_layers(model.preprocess.pixels(img, channels)[None], [layer])[layer].flatten()
            rel = float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
            cos = float(torch.nn.functional.cosine_similarity(out, ref, dim=0))
            rows.append({"gray": mode, "channels": channels, "max_rel_diff": rel, "cosine": cos})
            net.input = saved_input
            net.set_submodule(net.first_conv, saved_conv)
    finally:
        net.input = saved_input
        net.set_submodule(net.first_conv, saved_conv)
    return {"image": str(image), "layer": layer, "label": model.label(), "provenance": model.provenance(),
            "image_mode": img.mode, "rows": rows}


def _card_sentences(act: dict) -> str:
    """What each picked kernel responds to most and least on the test card, from the measured responses."""
    panels = act["panels"]
    out = []
    for pk in act["picks"]:
        v = np.array(pk["responses"][:5], dtype=float)  # the disk (all orientations) left out
        if v.max() <= 0:
            continue
        v = v / v.max()
        pool = [0, 1, 2] if pk["label"].startswith("edge") else [3, 4] if pk["label"] == "colour-opponent" \
            else list(range(5))
        lo = min(pool, key=lambda j: v[j])
        out.append(f"#{pk['channel']} ({esc(pk['label'])}): strongest on the {esc(panels[int(v.argmax())])}, "
                   f"{v[lo]:.2f} of that on the {esc(panels[lo])}")
    return ("; ".join(out) + ".") if out else ""


# ---------------------------------------------------------------------------------------------------------------
# HTML helpers


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def fmt(v, col: str = "") -> str:
    """A table cell: accuracies with 4 decimals, counts with thousands separators, tiny numbers in e-notation."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        c = col.lower()
        if "acc" in c or c in ("share", "cosine"):
            return f"{v:.4f}"
        if v != 0 and abs(v) < 1e-3:
            return f"{v:.2e}"
        if v.is_integer() and abs(v) >= 1:
            return f"{int(v):,}"
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, default=str)
    return str(v)


def acc(v) -> str:
    return "n/a" if v is None else f"{float(v):.4f}"


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def img(data: bytes, alt: str, mime: str = "image/png", cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<img src="{data_uri(data, mime)}" alt="{esc(alt)}"{c}>'


def compact_png(data: bytes, limit: int = 400_000) -> bytes:
    """A PNG over ``limit`` bytes re-encoded with an adaptive 256-colour palette (photo mosaics shrink 2–4×)."""
    if len(data) <= limit or not data.startswith(b"\x89PNG"):
        return data
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        q = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    buf = io.BytesIO()
    q.save(buf, format="PNG", optimize=True)
    return buf.getvalue() if buf.tell() < len(data) else data


def figure(data: bytes, caption: str, alt: str | None = None, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f'<figure{c}>{img(compact_png(data), alt or caption)}<figcaption>{caption}</figcaption></figure>'


def table(headers: list[str], rows: list[list], cls: str = "", highlight: set[int] | None = None,
          raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw``; rows whose index is in ``highlight`` are marked."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(f"<td>{c if raw else esc(c)}</td>" for c in row)
        body.append(f'<tr{" class=best" if highlight and i in highlight else ""}>{cells}</tr>')
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def facts(pairs) -> str:
    """Key/value facts as a compact definition list (values escaped and formatted)."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(fmt(v))}</dd>" for k, v in pairs if v not in (None, "", {}, []))
    return f'<dl class="facts">{items}</dl>'


def ref(sid: str) -> str:
    return f'<a class="src" href="#prov-{esc(sid)}">[{esc(sid)}]</a>'


def code(command: str) -> str:
    return f"<code>{esc(command)}</code>"


def repro(command: str, what: str = "Reproduce") -> str:
    return f'<p class="cmd"><span>{esc(what)}:</span> {code(command)}</p>' if command else ""


def p(text: str) -> str:
    return f"<p>{text}</p>"


# ---------------------------------------------------------------------------------------------------------------
# Study helpers: read any study generically, with preferred columns per known study


LABEL_COLUMNS = {"layers": ["layer", "layers"], "pooling": ["layer", "pool", "l2"], "gray": ["gray", "mode"],
                 "C": ["C", "c"], "classifiers": ["classifier"], "pca": ["pca_dims", "pca", "dims"],
                 "backbones": ["features", "backbone", "model"], "protocol": ["protocol"],
                 "pretraining": ["pretrained"], "random-vs-pretrained": ["pretrained"]}


def _columns(study: dict) -> list[str]:
    cols = study.get("columns")
    if isinstance(cols, list) and cols:
        return [str(c) for c in cols]
    seen: dict[str, None] = {}
    for r in study.get("rows", []):
        if isinstance(r, dict):
            seen.update(dict.fromkeys(map(str, r)))
    return list(seen)


def acc_column(columns: list[str]) -> str | None:
    """The accuracy column: 'accuracy', else 'test_accuracy', else the first with 'acc' in its name (not std/cv)."""
    for c in ("accuracy", "test_accuracy"):
        if c in columns:
            return c
    return next((c for c in columns if "acc" in c.lower() and "std" not in c.lower() and "cv" not in c.lower()
                 and "train" not in c.lower()), None)


def row_label(study: dict, row: dict) -> str:
    cols = [c for c in LABEL_COLUMNS.get(str(study.get("study")), []) if c in row]
    if not cols:
        cols = [next((c for c in _columns(study) if isinstance(row.get(c), str)), _columns(study)[0])]
    parts = []
    for c in cols:
        v = row.get(c)
        if c == "l2":
            parts.append("+ L2" if v else "no L2")
        elif c == "pretrained":
            parts.append("pretrained" if v else "random")
        else:
            parts.append(fmt(v, c))
    return " ".join(parts)


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _rows(study: dict) -> list[dict]:
    return [r for r in study.get("rows", []) if isinstance(r, dict)]


def _scored(study: dict) -> tuple[str | None, list[tuple[dict, float]]]:
    col = acc_column(_columns(study))
    return col, [(r, _num(r.get(col))) for r in _rows(study) if col and _num(r.get(col)) is not None]


def _best(study: dict) -> tuple[dict, float] | None:
    col, scored = _scored(study)
    best = study.get("best")
    if isinstance(best, dict) and _num(best.get(col)) is not None:
        return best, _num(best[col])
    return max(scored, key=lambda t: t[1]) if scored else None


def _find(study: dict, **match) -> dict | None:
    for r in _rows(study):
        if all(str(r.get(k)).casefold() == str(v).casefold() for k, v in match.items()):
            return r
    return None


def _pretrain_pair(study: dict) -> tuple[dict, dict] | None:
    """(pretrained row, random row) of a pre-training study."""
    pre = rnd = None
    for r in _rows(study):
        flag = r.get("pretrained")
        text = f"{r.get('weights', '')} {r.get('init', '')}".casefold()
        is_random = (flag is False) or ("random" in text) or ("none" in text.split())
        if is_random and rnd is None:
            rnd = r
        elif not is_random and pre is None:
            pre = r
    return (pre, rnd) if pre and rnd else None


# ---------------------------------------------------------------------------------------------------------------
# The report


CSS = """
:root { --ink:#1d232b; --muted:#5b6570; --line:#d8dde3; --accent:#1f5fa8; --soft:#f3f6f9; --warn:#8a4b00; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; color:var(--ink);
       background:#fff; }
header { background:#15324f; color:#fff; padding:28px 40px 22px; }
header h1 { margin:0 0 6px; font-size:26px; }
header p { margin:2px 0; color:#cfdbe8; font-size:13px; }
header code { background:rgba(255,255,255,.12); color:#fff; }
.layout { display:flex; gap:28px; max-width:1320px; margin:0 auto; padding:0 24px; }
nav#toc { flex:0 0 250px; position:sticky; top:0; align-self:flex-start; max-height:100vh; overflow:auto;
          padding:18px 0; font-size:13.5px; }
nav#toc h2 { font-size:14px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); margin:0 0 6px; }
nav#toc ol { list-style:none; padding:0; margin:0; }
nav#toc li { margin:3px 0; }
nav#toc a { color:var(--ink); text-decoration:none; }
nav#toc a:hover { color:var(--accent); text-decoration:underline; }
nav#toc .part { margin-top:10px; font-weight:600; color:var(--muted); }
main { flex:1; min-width:0; padding-bottom:80px; }
section { border-bottom:1px solid var(--line); padding:8px 0 22px; }
h2 { font-size:21px; margin:24px 0 8px; color:#15324f; }
h3 { font-size:16.5px; margin:20px 0 6px; }
.question { background:var(--soft); border-left:4px solid var(--accent); padding:8px 14px; margin:8px 0 12px; }
.answer { border-left:4px solid #2e8540; padding:4px 14px; margin:10px 0; }
.missing { background:#fff6e5; border-left:4px solid #e0a000; padding:8px 14px; margin:10px 0; color:var(--warn); }
.warning { background:#fdecea; border-left:4px solid #c62828; padding:8px 14px; margin:10px 0; color:#8e1c1c; }
.cmd { font-size:13px; color:var(--muted); margin:6px 0; }
.cmd span { font-weight:600; }
code { font:12.5px/1.4 ui-monospace,"DejaVu Sans Mono",monospace; background:#eef1f4; padding:1px 5px;
       border-radius:3px; word-break:break-word; }
pre { background:#f6f8fa; border:1px solid var(--line); padding:10px; overflow:auto; font-size:12px; max-height:420px; }
table { border-collapse:collapse; margin:10px 0; font-size:13px; }
th, td { border:1px solid var(--line); padding:4px 8px; text-align:left; vertical-align:top; }
th { background:#e9eef3; }
tbody tr:nth-child(even) { background:#fafbfc; }
tr.best td { background:#e3f4e6; font-weight:600; }
td.num, th.num { text-align:right; }
figure { margin:14px 0; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); }
figcaption { font-size:13px; color:var(--muted); margin-top:4px; }
img.thumb { width:110px; height:110px; object-fit:cover; border:1px solid var(--line); margin:2px; }
a.src { font-size:12px; color:var(--accent); text-decoration:none; white-space:nowrap; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:2px 14px; font-size:13px; margin:8px 0;
           background:#fafbfc; border:1px solid var(--line); padding:8px 12px; }
dl.facts dt { color:var(--muted); font-weight:600; }
dl.facts dd { margin:0; word-break:break-word; }
figure.narrow img { max-width:760px; }
.kpi { display:flex; flex-wrap:wrap; gap:12px; margin:12px 0; }
.kpi div { background:var(--soft); border:1px solid var(--line); border-radius:6px; padding:10px 14px;
           min-width:190px; }
.kpi b { display:block; font-size:22px; color:#15324f; }
.kpi span { font-size:12.5px; color:var(--muted); }
details { margin:8px 0; }
summary { cursor:pointer; color:var(--accent); }
.badge { display:inline-block; background:#c62828; color:#fff; font-size:11px; padding:1px 6px; border-radius:3px; }
@media print { nav#toc { display:none; } .layout { display:block; } header { background:#fff; color:#000; }
               header p { color:#333; } section { break-inside:avoid-page; } }
"""


class Report:
    """Collects the sections of the page; ``todo`` lists what is missing and the command that would fill it."""

    def __init__(self, inputs: Inputs, computed: dict, meta: dict):
        self.inputs, self.computed, self.meta = inputs, computed, meta
        self.sections: list[tuple[str, str, str, str]] = []  # (part, id, title, html)
        self.todo: list[tuple[str, str, str]] = []  # (section id, what is missing, command)
        self.sources: list[Source] = inputs.all()
        self.computed_sources: dict[str, Source] = {}
        self.data_hint = meta.get("data_hint") or "15scene"

    # -- helpers ---------------------------------------------------------------------------------------------
    def missing(self, sid: str, what: str, command: str) -> str:
        self.todo.append((sid, what, command))
        return (f'<div class="missing"><b>Not measured in this report:</b> {esc(what)}. '
                f"Run {code(command)} and give its output folder to <code>transferlab report</code>.</div>")

    def computed_source(self, key: str, title: str, data: dict, command: str) -> str:
        if key not in self.computed_sources:
            sid = f"C{len(self.computed_sources) + 1}"
            self.computed_sources[key] = Source(sid, "computed", title, data, command=command)
        elif data:
            src = self.computed_sources[key]
            src.title, src.command = title, command
            src.data.update(data)
        return self.computed_sources[key].sid

    def studies(self, *names: str) -> list[Source]:
        return [s for s in self.inputs.studies if s.data.get("study") in names]

    def study_cmd(self, name: str, model: str = "vgg16", weights: str = "imagenet-conv", extra: str = "") -> str:
        return (f"transferlab study {name} --data {self.data_hint} --model {model} --weights {weights}"
                f"{extra} --out studies/{name}")

    def add(self, part: str, sid: str, title: str, body: str) -> None:
        self.sections.append((part, sid, title, body))

    def question(self, qid: str) -> str:
        return f'<div class="question"><b>Question.</b> {esc(QUESTIONS[qid][1])}</div>'

    def synthetic_badge(self, src: Source) -> str:
        return ('<div class="warning"><span class="badge">SYNTHETIC</span> This input is marked as a synthetic test '
                f'fixture ({esc(src.path)}), not a measurement.</div>' if src.synthetic else "")

    def main_run(self) -> Source | None:
        """The run whose confusion matrix and errors are discussed: the most accurate pretrained run."""
        runs = [r for r in self.inputs.runs if (r.data.get("provenance") or {}).get("pretrained", True)]
        runs = runs or self.inputs.runs
        return max(runs, key=lambda r: _num(r.data.get("accuracy")) or 0) if runs else None

    def arch(self) -> dict | None:
        a = self.computed.get("architecture")
        return a if a and "summary" in a else None

    # -- sections --------------------------------------------------------------------------------------------
    def build(self) -> str:
        self.sec_summary()
        self.sec_q1()
        self.sec_q2()
        self.sec_q3()
        self.sec_q4()
        self.sec_runs()
        self.sec_q5()
        self.sec_q6()
        self.sec_q7()
        self.sec_q8()
        self.sec_q9()
        self.sec_q10()
        self.sec_further()
        self.sec_reference()
        self.sec_todo()
        self.sec_provenance()
        return self.page()

    def sec_summary(self) -> None:
        kpis, rows = [], []
        a = self.arch()
        if a:
            s = a["summary"]
            sid = self.computed_source("architecture", f"{s['model']} architecture", {}, a["command"])
            kpis.append((f"{s['total_params']:,}",
                         f"{s['model']} parameters, {s['fc_share']:.1%} in fc layers {ref(sid)}"))
        best = self.main_run()
        if best:
            d = best.data
            kpis.append((acc(d["accuracy"]), f"best run accuracy: {esc(best.title)} {ref(best.sid)}"))
        for st in self.inputs.studies:
            b = _best(st.data)
            if b:
                rows.append([f"study {esc(st.data.get('study'))} {ref(st.sid)}", esc(st.data.get("question", "")),
                             esc(row_label(st.data, b[0])), acc(b[1])])
        for ft in self.inputs.finetunes:
            ta = _num(ft.data.get("test_accuracy"))
            if ta is not None:
                kpis.append((acc(ta), f"{esc(ft.title)} test accuracy {ref(ft.sid)}"))
        for r in self.inputs.runs:
            prov = r.data.get("provenance") or {}
            rows.append([f"run {ref(r.sid)}", esc(r.title), esc(f"{prov.get('protocol', '?')} protocol"),
                         acc(r.data["accuracy"])])
        body = ['<p>Measured answers to the practical <i>Transfer learning through feature extraction from a CNN</i> '
                '(VGG16 pretrained on ImageNet, reused on 15 Scene). Every number links to its source in the '
                '<a href="#provenance">provenance</a> section; every section gives the command that reproduces it.</p>']
        if kpis:
            body.append('<div class="kpi">' + "".join(f"<div><b>{v}</b><span>{t}</span></div>" for v, t in kpis)
                        + "</div>")
        if rows:
            body.append(table(["source", "what", "setting / best", "accuracy"], rows, raw=True))
        n = len(self.inputs.runs), len(self.inputs.studies), len(self.inputs.finetunes)
        body.append(p(f"Inputs: {n[0]} run(s), {n[1]} study(ies), {n[2]} fine-tuning record(s)."))
        if self.inputs.skipped:
            body.append('<div class="missing"><b>Inputs not used:</b><ul>' + "".join(
                f"<li>{code(path)}: {esc(why)}</li>" for path, why in self.inputs.skipped) + "</ul></div>")
        if any(s.synthetic for s in self.sources):
            body.append('<div class="warning"><span class="badge">SYNTHETIC</span> Some inputs are marked as '
                        "synthetic test fixtures: their numbers are not measurements.</div>")
        body.append('<p id="todo-callout" class="cmd">Parts without their input say so where they would appear; '
                    'the list of commands that complete this report is in <a href="#todo">To complete this '
                    "report</a>.</p>")
        self.add("", "summary", "Key results", "".join(body))

    def sec_q1(self) -> None:
        body = [self.question("q1")]
        a = self.arch()
        if not a:
            err = (self.computed.get("architecture") or {}).get("error", "not computed (--no-compute)")
            body.append(self.missing("q1", f"the VGG16 architecture table ({err})", "transferlab inspect vgg16"))
            self.add("Part 1 — VGG16 itself", "q1", QUESTIONS["q1"][0], "".join(body))
            return
        s = a["summary"]
        sid = self.computed_source("architecture", f"{s['model']} architecture (no weights: PyTorch meta device)",
                                   {"model": s["model"], "description": s["description"],
                                    "input_shape": s["input_shape"], "method": "transferlab.summary.summarize: the "
                                    "architecture built on PyTorch's meta device; shapes and counts, no weights"},
                                   a["command"])
        layers = s["layers"]
        fc_rows = []
        for i, row in enumerate(layers):
            if row["name"] in s["fc_layers"] and row["params"] and i > 0:
                fan_in = int(np.prod(layers[i - 1]["output_shape"]))
                out = row["output_shape"][0]
                formula = f"({fan_in:,} + 1) × {out:,}" if (fan_in + 1) * out == row["params"] else "—"
                fc_rows.append([row["name"], formula, f"{row['params']:,}", f"{row['params'] / s['total_params']:.1%}"])
        body.append(
            f'<div class="answer"><p><b>{s["model"]} has {s["total_params"]:,} parameters</b> {ref(sid)}: '
            f"{s['conv_params']:,} in the convolutional part ({1 - s['fc_share']:.1%}) and "
            f"<b>{s['fc_params']:,} in the fully connected layers {', '.join(s['fc_layers'])} "
            f"({s['fc_share']:.1%})</b>. fc6 alone connects the 512×7×7 = 25,088 values of pool5 to 4,096 units, "
            "so most of the network's memory is in a layer that only sees a fixed 7×7 grid; the 13 convolutions, "
            "which do the visual work, hold a small share. Each fully connected layer has (inputs + 1 bias) × "
            "outputs weights:</p>"
            + table(["layer", "(inputs + 1) × outputs", "parameters", "share of all"], fc_rows)
            + "</div>")
        body.append(figure(a["png"], f"Parameters per layer of {esc(s['model'])} (millions); red: fully connected "
                                     f"layers. {ref(sid)}", "parameters per layer"))
        def row(r):
            return [r["name"], "×".join(map(str, r["output_shape"])), f"{r['params']:,}",
                    f"{r['params'] / s['total_params']:.2%}" if r["params"] else ""]

        main = [r for r in layers if r["params"] or r["name"].startswith(("pool", "input"))]
        body.append(f"<h3>Layers with parameters, and the pooling steps {ref(sid)}</h3>"
                    + table(["layer", "output shape (C×H×W)", "parameters", "share of all"],
                            [row(r) for r in main] + [["total", "", f"{s['total_params']:,}", "100%"]], cls="layers")
                    + p(f"Input {'×'.join(map(str, s['input_shape']))}. Omitted: the ReLU, dropout and flatten steps "
                        "(no parameters; the ReLU and dropout keep the shape). Each 3×3 convolution has "
                        "(3·3·C<sub>in</sub> + 1)·C<sub>out</sub> parameters; each max-pooling halves the height "
                        "and width."))
        body.append(f"<details><summary>Every step ({len(layers)} rows) {ref(sid)}</summary>"
                    + table(["layer", "output shape", "parameters", "share"], [row(r) for r in layers], cls="layers")
                    + "</details>")
        body.append(repro(a["command"]))
        self.add("Part 1 — VGG16 itself", "q1", QUESTIONS["q1"][0], "".join(body))

    def sec_q2(self) -> None:
        body = [self.question("q2")]
        a = self.arch()
        preds = self.computed.get("predictions") or {}
        if a:
            s, sid = a["summary"], self.computed_sources["architecture"].sid
            o = s["output"]
            body.append(f'<div class="answer"><p>The last layer, <b>{esc(o["layer"])}</b>, outputs '
                        f"<b>{o['size']:,} values</b> {ref(sid)}: {esc(o['meaning'])}. They are unnormalised scores "
                        "(logits); the softmax exp(z<sub>i</sub>) / Σ<sub>j</sub> exp(z<sub>j</sub>) turns them "
                        "into a "
                        "probability distribution over the ImageNet-1k classes, and the predicted class is the "
                        "largest.</p></div>")
        else:
            body.append(self.missing("q2", "the output layer of VGG16", "transferlab inspect vgg16"))
        if preds.get("models"):
            m = preds["models"][0]
            sid = self.computed_source("predictions", "ImageNet predictions", {}, m["command"])
            mass = [(r["name"], sum(t["probability"] for t in r["top"])) for r in m["rows"]]
            body.append(p("How much of the distribution the top-5 classes hold, measured with "
                          f"{esc(m['label'])} {ref(sid)}: " + "; ".join(
                              f"{esc(n)} {v:.1%}" for n, v in mass) + ". A confident prediction concentrates the "
                          "mass on one class; a photo outside ImageNet's classes spreads it."))
            body.append(repro(m["command"], "Reproduce the probabilities"))
        if a:
            body.append(repro(a["command"], "Reproduce the output size"))
        self.add("Part 1 — VGG16 itself", "q2", QUESTIONS["q2"][0], "".join(body))

    def sec_q3(self) -> None:
        body = [self.question("q3")]
        preds = self.computed.get("predictions") or {}
        if not preds.get("models"):
            err = preds.get("error", "not computed (--no-compute)")
            body.append(self.missing("q3", f"ImageNet predictions ({err})",
                                     "transferlab predict efficientnet_lite0 --samples --figure predictions.png"))
            self.add("Part 1 — VGG16 itself", "q3", QUESTIONS["q3"][0], "".join(body))
            return
        if not preds.get("vgg16_full_cached"):
            body.append('<div class="missing"><b>VGG16\'s own predictions are not shown.</b> They need its fc6–fc8 '
                        f"layers, which are only in the full torchvision file {code(preds.get('vgg16_file', ''))} "
                        "(528 MB, not reachable offline here; the offline VGG16 weights stop at pool5). The "
                        "predictions below use EfficientNet-Lite0, whose offline weights include its ImageNet "
                        f"classifier. To add VGG16, put the file at {code(preds.get('vgg16_path', ''))} and rerun "
                        "this report.</div>")
            self.todo.append(("q3", "VGG16's own ImageNet predictions (full weights file)",
                              "transferlab predict vgg16 --weights imagenet --samples  (needs "
                              f"{preds.get('vgg16_file', 'vgg16-397923af.pth')} in {preds.get('vgg16_path', '')})"))
        sid = self.computed_source("predictions", "ImageNet predictions on sample photos",
                                   {"images": preds.get("images", []),
                                    "models": [m["provenance"] for m in preds["models"]]},
                                   "; ".join(m["command"] for m in preds["models"]))
        for m in preds["models"]:
            rows = []
            for r in m["rows"]:
                t = r["top"]
                rows.append([esc(r["name"]), esc(r["what"]), f"<b>{esc(t[0]['class'])}</b> {t[0]['probability']:.1%}",
                             "<br>".join(f"{esc(x['class'])} {x['probability']:.1%}" for x in t[1:])])
            body.append(f"<h3>{esc(m['label'])}</h3>")
            body.append(figure(m["png"], f"Top-{len(m['rows'][0]['top']) if m['rows'] else 5} ImageNet classes of "
                                         f"each photo (softmax of the last layer), {esc(m['label'])}. {ref(sid)}",
                               "ImageNet predictions", cls="narrow"))
            body.append(table(["image", "what it shows", "top-1", "top-2 … top-5"], rows, raw=True))
            body.append(repro(m["command"]))
            for e in m["errors"]:
                body.append(f'<div class="missing">{esc(e)}</div>')
            photos = [r for r in m["rows"] if not r["name"].startswith("15 Scene")]
            scenes = [r for r in m["rows"] if r["name"].startswith("15 Scene")]
            sure = [r for r in photos if r["top"][0]["probability"] >= 0.5]
            unsure = [r for r in photos if r["top"][0]["probability"] < 0.5]
            text = [f"{len(sure)} of {len(photos)} sample photos get a top-1 class with at least 50% probability"
                    + (": " + ", ".join(f"{esc(r['name'])} → {esc(r['top'][0]['class'])} "
                                        f"({r['top'][0]['probability']:.1%})" for r in sure) if sure else "") + "."]
            if unsure:
                text.append("The others spread their probability over related classes — "
                            + ", ".join(f"{esc(r['name'])} → {esc(r['top'][0]['class'])} "
                                        f"({r['top'][0]['probability']:.1%}), then "
                                        f"{esc(r['top'][1]['class']) if len(r['top']) > 1 else '—'}"
                                        for r in unsure)
                            + ": when the subject has no ImageNet class (a person, a whole building) or several "
                              "objects compete, the network still has to answer with one of its 1,000 classes, and "
                              "its top-5 lists look-alike objects.")
            if scenes:
                text.append("<b>On 15 Scene images the answers are objects, not scenes</b> — "
                            + ", ".join(f"{esc(r['what'].split('class ')[-1].strip('() grayscale'))} → "
                                        f"{esc(r['top'][0]['class'])} ({r['top'][0]['probability']:.1%})"
                                        for r in scenes)
                            + ": ImageNet labels objects, so the classifier can only name what object the scene "
                              "resembles. This is why the 15-way classifier is trained on intermediate features "
                              "rather than on these 1,000 scores.")
            body.append('<div class="answer">' + "".join(p(t) for t in text) + "</div>")
        self.add("Part 1 — VGG16 itself", "q3", QUESTIONS["q3"][0], "".join(body))

    def sec_q4(self) -> None:
        body = [self.question("q4")]
        act = self.computed.get("activations") or {}
        if "png" not in act:
            err = act.get("error", "not computed (--no-compute)")
            body.append(self.missing("q4", f"the first-layer activation maps ({err})",
                                     "transferlab activations vgg16 IMAGE --weights imagenet-conv --figure act.png"))
            self.add("Part 1 — VGG16 itself", "q4", QUESTIONS["q4"][0], "".join(body))
            return
        sid = self.computed_source("activations", f"{act['layer']} activation maps",
                                   {"image": act["image"], "layer": act["layer"], "model": act["provenance"],
                                    "test_card": "transferlab.report_figures.synthetic_pattern"}, act["command"])
        c, h, w = act["shape"]
        body.append(figure(act["png"], f"All {c} activation maps of {esc(act['layer'])} ({h}×{w} each) for "
                                       f"{esc(Path(act['image']).name)}, {esc(act['label'])}; each map is scaled to "
                                       f"its own range, bright = strong response. {ref(sid)}", "activation maps"))
        body.append(repro(act["command"]))
        if "groups" in act:
            counts = act["group_counts"]
            body.append(figure(act["filters_png"], f"The {c} kernels of {esc(act['layer'])} as RGB patches (grey = 0, "
                                                   "each kernel scaled by its largest weight), grouped by the rule "
                                                   f"below; edge kernels sorted by gradient direction. {ref(sid)}",
                               "first-layer kernels"))
            body.append(figure(act["pattern_png"], "Responses (after ReLU) of one kernel per group to a synthetic test "
                                                   "card: vertical, horizontal and diagonal dark/light edges (top), "
                                                   "red|green and blue/yellow colour edges and a dark disk (bottom). "
                                                   f"{ref(sid)}", "test card responses"))
            rows = [[f"#{pk['channel']}", pk["label"], *[f"{v / (max(pk['responses']) or 1):.2f}"
                                                          for v in pk["responses"]]] for pk in act["picks"]]
            body.append(table(["kernel", "group"] + act["panels"], rows))
            body.append(p("Response of each kernel to each panel's own feature (peak of the ReLU'd map inside the "
                          "panel, away from its borders, minus its median there), relative to the kernel's strongest "
                          f"panel (1.00) {ref(sid)}."))
            groups = ", ".join(f"{n} {esc(g)}" for g, n in counts.items())
            body.append(
                '<div class="answer">'
                + p(f"The {c} maps of {esc(act['layer'])} are the image filtered by {c} 3×3 RGB kernels (plus ReLU "
                    "in the next step): each map is bright where the image locally resembles its kernel. They are "
                    f"still images of the scene — the cat's outline, fur and eyes are recognisable — because a "
                    f"3×3 kernel only sees local contrast. {act['flat_maps']} of {c} maps are flat on this image.")
                + p(f"Grouping the kernels by a simple rule gives {groups}. Rule: the colour share of a kernel is the "
                    "energy of its deviation from the per-pixel channel mean; above 0.5 it is colour-opponent. "
                    "Otherwise, on the luminance kernel, above 0.6 of the energy in the mean makes it a brightness "
                    "(low-pass) filter, and above 0.5 of the remaining energy explained by a linear ramp makes it an "
                    "oriented edge detector; the rest are texture / centre-surround filters.")
                + p("The test card measures what the groups mean (table above: the peak response to each panel's "
                    "own feature, above the response to its flat parts). " + _card_sentences(act)
                    + " Edge kernels are selective for orientation and polarity and silent on uniform regions; the "
                    "disk, whose outline has every orientation, excites them all. The first layer is thus a bank of "
                    "oriented-edge, colour-opponent and texture detectors — like the Gabor-like receptive fields of "
                    "the early visual cortex — generic enough to be reused for any image, which is what transfer "
                    "learning relies on.")
                + "</div>")
        self.add("Part 1 — VGG16 itself", "q4", QUESTIONS["q4"][0], "".join(body))

    def sec_runs(self) -> None:
        from .report_figures import bar_figure

        body = []
        if not self.inputs.runs:
            body.append(self.missing("runs", "a run of pretrained features + linear SVM on 15 Scene",
                                     f"transferlab run --data {self.data_hint} --model vgg16 --weights imagenet-conv "
                                     "--layer pool5 --out runs/vgg16-pool5"))
            self.add("Part 2 — transfer to 15 Scene", "runs", "Measured runs (features + classifier)", "".join(body))
            return
        rows = []
        for r in self.inputs.runs:
            d, prov = r.data, r.data.get("provenance") or {}
            r0, ext = d["runs"][0], d.get("extraction") or {}
            std = f" ± {d['accuracy_std']:.4f}" if len(d["runs"]) > 1 else ""
            rows.append([ref(r.sid), esc(prov.get("label", prov.get("model", "?"))),
                         esc("+".join(map(str, prov.get("layers", [])))), esc(prov.get("pool", "")),
                         "yes" if prov.get("l2", True) else "no", esc(prov.get("gray", "")),
                         esc(f"{prov.get('classifier', '')} C={r0.get('C', prov.get('C'))}"),
                         esc(f"{prov.get('protocol', '')} ({len(d['runs'])} split{'s' if len(d['runs']) > 1 else ''})"),
                         f"{r0.get('train_images', '?')} / {r0.get('test_images', '?')}",
                         f"<b>{acc(d['accuracy'])}</b>{std}", acc(d.get("mean_class_accuracy")),
                         fmt(d.get("feature_dim")), fmt(ext.get("images_per_s"))])
        body.append(p("Each run extracts features of one pretrained network at the given layer(s), pools them to a "
                      "vector, L2-normalises them, and trains the classifier on the training split only; accuracy is "
                      "measured on the test split."))
        body.append(table(["src", "network and weights", "layer", "pool", "L2", "gray", "classifier", "protocol",
                           "train / test", "accuracy", "mean class acc.", "dim", "img/s"], rows, raw=True))
        for r in self.inputs.runs:
            body.append(self.synthetic_badge(r))
        if len(self.inputs.runs) > 1:
            runs = self.inputs.runs
            colors = ["tab:blue" if (r.data.get("provenance") or {}).get("pretrained", True) else "tab:red"
                      for r in runs]
            png = bar_figure([f"{r.sid} {r.title}"[:70] for r in runs], [float(r.data["accuracy"]) for r in runs],
                             "test accuracy of each run", errors=[float(r.data.get("accuracy_std") or 0) for r in runs],
                             colors=colors, legend=[("tab:blue", "pretrained"), ("tab:red", "random weights")])
            body.append(figure(png, "Test accuracy per run (error bars: std over random splits when there are "
                                    "several). " + " ".join(ref(r.sid) for r in runs), "accuracy per run"))
        body.append("".join(repro(r.command, f"Reproduce {r.sid}") for r in self.inputs.runs))
        self.add("Part 2 — transfer to 15 Scene", "runs", "Measured runs (features + classifier)", "".join(body))

    def _pretraining_evidence(self) -> list[str]:
        """Pretrained vs random accuracy: from pre-training studies, else from runs that differ only by weights."""
        out = []
        for st in self.studies("pretraining", "random-vs-pretrained"):
            pair = _pretrain_pair(st.data)
            col = acc_column(_columns(st.data))
            if pair and col:
                pre, rnd = pair
                out.append(f"ImageNet-pretrained {esc(pre.get('weights', 'weights'))}: <b>{acc(pre[col])}</b> versus "
                           f"random weights {esc(rnd.get('weights', ''))}: <b>{acc(rnd[col])}</b>, same layer and "
                           f"classifier {ref(st.sid)}")
        skip = {"weights", "cache", "workers", "progress", "batch_size", "runtime", "device", "strict"}
        for a in self.inputs.runs:
            pa = a.data.get("provenance") or {}
            if not pa.get("pretrained", True):
                continue
            for b in self.inputs.runs:
                pb = b.data.get("provenance") or {}
                ca, cb = pa.get("config") or {}, pb.get("config") or {}
                if pb.get("pretrained", True) or not ca or not cb:
                    continue
                if all(ca.get(k) == cb.get(k) for k in set(ca) | set(cb) if k not in skip):
                    out.append(f"{esc(pa.get('label'))}: <b>{acc(a.data['accuracy'])}</b> {ref(a.sid)} versus "
                               f"{esc(pb.get('label'))}: <b>{acc(b.data['accuracy'])}</b> {ref(b.sid)}, otherwise "
                               "identical runs")
        return out

    def _chance(self) -> float | None:
        for r in self.inputs.runs:
            return 1.0 / len(r.data["classes"])
        for st in self.inputs.studies:
            classes = ((st.data.get("provenance") or {}).get("dataset") or {}).get("classes")
            if classes:
                return 1.0 / len(classes)
        return None

    def sec_q5(self) -> None:
        body = [self.question("q5")]
        a = self.arch()
        n_train = max((r.data["runs"][0].get("train_images", 0) for r in self.inputs.runs), default=0)
        text = []
        if a:
            s, sid = a["summary"], self.computed_sources["architecture"].sid
            n = FULL_15SCENE["train"]
            text.append(f"VGG16 has <b>{s['total_params']:,} parameters</b> {ref(sid)}; 15 Scene's fixed split has "
                        f"<b>{n:,} training images</b> (100 per class), i.e. {s['total_params'] / n:,.0f} parameters "
                        "per training image" + (f" (the runs of this report used {n_train:,} training images)"
                                                if n_train and n_train != n else "") + ". Trained from scratch, a "
                        "network of this size fits — memorises — the 1,500 images long before it learns filters "
                        "that generalise, and VGG16 itself needed ImageNet's 1.28 M labelled images and 2–3 weeks "
                        "on 4 GPUs (Simonyan & Zisserman 2014).")
        evidence = self._pretraining_evidence()
        chance = self._chance()
        if evidence:
            text.append("Measured: the same architecture without pre-training, i.e. what training would start from, "
                        "gives " + "; ".join(evidence) + (f". Chance level is {chance:.4f}." if chance else "."))
        for ft in self.inputs.finetunes:
            if "scratch" in str(ft.data.get("mode", "")).casefold():
                text.append(f"Training the network from scratch on 15 Scene reached a test accuracy of "
                            f"<b>{acc(ft.data.get('test_accuracy'))}</b> {ref(ft.sid)}.")
        if text:
            body.append('<div class="answer">' + "".join(p(t) for t in text) + "</div>")
        if not evidence:
            body.append(self.missing("q5", "random-weight features versus pretrained ones (the pre-training study)",
                                     self.study_cmd("pretraining")))
        if a:
            body.append(repro(a["command"], "Reproduce the parameter count"))
        for st in self.studies("pretraining", "random-vs-pretrained"):
            body.append(repro(st.command, f"Reproduce {st.sid}"))
        self.add("Part 2 — transfer to 15 Scene", "q5", QUESTIONS["q5"][0], "".join(body))

    def sec_q6(self) -> None:
        body = [self.question("q6")]
        evidence = self._pretraining_evidence()
        chance = self._chance()
        if evidence:
            body.append('<div class="answer">' + p(
                "Pre-training gives the network filters learned from 1.28 M labelled ImageNet images: edges and "
                "colours in the first layers (see question 4), textures and object parts deeper. Those features "
                "already separate scenes linearly. Measured: " + "; ".join(evidence)
                + (f". Chance level ({int(round(1 / chance))} classes) is {chance:.4f}: random convolutions still "
                   "carry some information (local statistics of the image), but far less." if chance else ".")
                + " Random weights are labelled RANDOM everywhere in this report and never called pretrained.")
                + "</div>")
        else:
            body.append(self.missing("q6", "pretrained versus random-weight accuracy at the same layer",
                                     self.study_cmd("pretraining")))
        for st in self.studies("pretraining", "random-vs-pretrained"):
            body.append(self.render_study(st))
        self.add("Part 2 — transfer to 15 Scene", "q6", QUESTIONS["q6"][0], "".join(body))

    def _example_thumbs(self, run: Source, true: str, pred: str, n: int = 4) -> str:
        from .report_figures import thumbnail_jpeg

        data_root = self.meta.get("data")
        recorded_root = str(((run.data.get("provenance") or {}).get("dataset") or {}).get("root", ""))
        out = []
        for m in run.data["runs"][0].get("misclassified", []):
            if m.get("true") != true or m.get("predicted") != pred:
                continue
            path = Path(m["path"])
            candidates = [path]
            if data_root and recorded_root and str(path).startswith(recorded_root):
                candidates.append(Path(data_root) / str(path)[len(recorded_root):].lstrip("/"))
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                out.append(f'<span class="cmd">{esc(path.name)} (file not found)</span>')
            else:
                try:
                    out.append(img(thumbnail_jpeg(found), f"{true} predicted as {pred}: {path.name}", "image/jpeg",
                                   "thumb"))
                except OSError:
                    out.append(f'<span class="cmd">{esc(path.name)} (unreadable)</span>')
            if len(out) >= n:
                break
        return "".join(out) or '<span class="cmd">no example recorded</span>'

    def sec_q7(self) -> None:
        from .confusion import confusion_figure, most_confused
        from .report_figures import per_class_figure

        body = [self.question("q7")]
        run = self.main_run()
        if run is None:
            body.append(self.missing("q7", "per-class accuracy, confusion matrix and cost of a run",
                                     f"transferlab run --data {self.data_hint} --model vgg16 --weights imagenet-conv "
                                     "--layer pool5 --out runs/vgg16-pool5"))
            self.add("Part 2 — transfer to 15 Scene", "q7", QUESTIONS["q7"][0], "".join(body))
            return
        d, prov = run.data, run.data.get("provenance") or {}
        r0, classes = d["runs"][0], d["classes"]
        cm = np.array(r0.get("confusion_matrix") or [], dtype=int)
        per_class = r0.get("per_class_accuracy") or {}
        split_note = f" (split 1 of {len(d['runs'])})" if len(d["runs"]) > 1 else ""
        body.append(p(f"Discussed run: {ref(run.sid)} {esc(run.title)} — accuracy <b>{acc(d['accuracy'])}</b>, "
                      f"{r0.get('test_images', '?')} test images{split_note}."))
        body.append(self.synthetic_badge(run))
        answer = []
        if per_class:
            items = sorted(per_class.items(), key=lambda kv: kv[1])
            worst = ", ".join(f"{esc(k)} {v:.4f}" for k, v in items[:3])
            best = ", ".join(f"{esc(k)} {v:.4f}" for k, v in items[::-1][:3])
            answer.append(f"<b>Fixed features, uneven classes.</b> The features were learned for ImageNet's objects "
                          f"and are not adapted to scenes; the linear classifier can only re-weight them. Per-class "
                          f"accuracy ranges from {worst} (worst) to {best} (best) {ref(run.sid)}.")
            body.append(figure(per_class_figure(per_class, f"per-class accuracy · {run.title}"[:110],
                                                _num(d.get("mean_class_accuracy"))),
                               f"Per-class test accuracy{split_note}, worst first; red: below the mean. {ref(run.sid)}",
                               "per-class accuracy"))
        pairs = most_confused(cm, classes, 6) if cm.size else []
        if cm.size:
            conf_png = run.folder / "confusion.png" if run.folder else None
            if conf_png and conf_png.is_file():
                data = conf_png.read_bytes()
            else:
                data = _read_png(lambda path: confusion_figure(cm, classes, run.title, path))
            body.append(figure(data, f"Confusion matrix{split_note} with class names: rows are true classes "
                                     "(per-class accuracy in brackets), columns predictions, colour the share of the "
                                     f"true class. {ref(run.sid)}", "confusion matrix"))
        if pairs:
            top = pairs[0]
            answer.append(f"<b>Confusions between similar scenes.</b> The most confused pair is {esc(top['true'])} → "
                          f"{esc(top['predicted'])}: {top['count']} of the {esc(top['true'])} test images "
                          f"({top['share']:.1%}) {ref(run.sid)}. The confused pairs below share their objects and "
                          "layout (indoor rooms, open landscapes, urban views); ImageNet features describe objects and "
                          "textures, not the spatial layout that separates such scenes.")
            rows = [[esc(q["true"]), esc(q["predicted"]), str(q["count"]), f"{q['share']:.1%}",
                     self._example_thumbs(run, q["true"], q["predicted"])] for q in pairs]
            body.append(f"<h3>Most confused class pairs {ref(run.sid)}</h3>")
            body.append(table(["true class", "predicted as", "images", "share of the true class",
                               "examples (true class images that were misclassified)"], rows, raw=True))
        ext = d.get("extraction") or {}
        ips = _num(ext.get("images_per_s"))
        if ips:
            full = FULL_15SCENE["images"] / ips
            answer.append(f"<b>Cost.</b> Every image, at training and at test time, goes through the network: "
                          f"{ips:.2f} images/s for {esc(prov.get('model', '?'))} up to "
                          f"{esc('+'.join(prov.get('layers', [])))} "
                          f"on this machine ({ext.get('computed_images', '?')} images computed in "
                          f"{ext.get('seconds', '?')} s, {ext.get('cached_images', 0)} read from the feature cache) "
                          f"{ref(run.sid)} — about {full / 60:.1f} min for the 4,485 images of 15 Scene, against "
                          f"{fmt(r0.get('fit_seconds'))} s to fit the classifier.")
        for st in self.studies("layers"):
            rows_ms = [(r.get("layer"), _num(r.get("ms_per_image"))) for r in _rows(st.data)]
            rows_ms = [(layer, v) for layer, v in rows_ms if v is not None]
            if rows_ms:
                answer.append("Forward cost grows with depth: " + ", ".join(
                    f"{esc(layer)} {v:.1f} ms" for layer, v in rows_ms[:: max(1, len(rows_ms) // 6)])
                    + f" per image {ref(st.sid)}.")
        answer.append("<b>Domain gap.</b> ImageNet photos are object-centred colour images; 15 Scene images are "
                      "grayscale scenes. Question 3 shows the network naming objects when shown a scene, and "
                      "question 9 how gray images are fed to an RGB network.")
        if self.inputs.finetunes:
            answer.append("Fine-tuning (question 10) lifts the 'fixed features' limit by adapting the network "
                          "itself.")
        body.insert(2, '<div class="answer">' + "".join(p(t) for t in answer) + "</div>")
        body.append(repro(run.command))
        self.add("Part 2 — transfer to 15 Scene", "q7", QUESTIONS["q7"][0], "".join(body))

    def _layer_runs(self) -> list[Source]:
        """Runs that differ only by their layers (the same model, weights, pooling, classifier …)."""
        keys = ("model", "weights", "pool", "l2", "gray", "classifier", "C", "protocol", "limit_per_class", "data")
        groups: dict[tuple, list[Source]] = {}
        for r in self.inputs.runs:
            cfg = (r.data.get("provenance") or {}).get("config") or {}
            groups.setdefault(tuple(str(cfg.get(k)) for k in keys), []).append(r)
        best = max(groups.values(), key=len, default=[])
        return best if len({"+".join((r.data.get("provenance") or {}).get("layers", [])) for r in best}) > 1 else []

    def sec_q8(self) -> None:
        body = [self.question("q8")]
        studies = self.studies("layers")
        answer = []
        for st in studies:
            b = _best(st.data)
            col, scored = _scored(st.data)
            if not b or not scored:
                continue
            first, last = scored[0], scored[-1]
            dim = b[0].get("dim")
            answer.append(
                f"With {esc((st.data.get('provenance') or {}).get('label', ''))}, the best single layer is "
                f"<b>{esc(b[0].get('layer', row_label(st.data, b[0])))}</b> with accuracy <b>{acc(b[1])}</b>"
                + (f" ({fmt(dim)} dimensions)" if dim is not None else "")
                + f" {ref(st.sid)}; the shallowest layer measured, {esc(first[0].get('layer'))}, gives "
                  f"{acc(first[1])} and the deepest, {esc(last[0].get('layer'))}, {acc(last[1])}.")
            combos = st.data.get("combinations")
            if isinstance(combos, list) and combos and isinstance(combos[0], dict):
                c0 = max(combos, key=lambda c: _num(c.get("accuracy")) or 0)
                gain = (_num(c0.get("accuracy")) or 0) - b[1]
                answer.append(f"Concatenating layers: best {esc(c0.get('layers'))} at {acc(c0.get('accuracy'))} "
                              f"({gain:+.4f} over the best single layer) {ref(st.sid)}.")
        runs = self._layer_runs()
        if runs:
            answer.append("Runs that differ only by the layer: " + "; ".join(
                f"{esc('+'.join((r.data.get('provenance') or {}).get('layers', [])))} {acc(r.data['accuracy'])} "
                f"({fmt(r.data.get('feature_dim'))} dims) {ref(r.sid)}" for r in runs) + ".")
        if answer:
            answer.append("Early layers (pool1, pool2) describe edges and small textures: generic, but too local to "
                          "tell a kitchen from a bedroom. Deeper layers combine them into object parts and whole "
                          "objects, more invariant to position, which describe a scene's content; the layers closest "
                          "to the output (fc8) become specialised to ImageNet's 1,000 classes, which is why accuracy "
                          "can drop again after a peak. Deeper also costs more computation per image, while the "
                          "dimension after average pooling is the number of channels.")
            body.append('<div class="answer">' + "".join(p(t) for t in answer) + "</div>")
        else:
            body.append(self.missing("q8", "accuracy, dimension and cost for each layer (the layer study)",
                                     self.study_cmd("layers")))
        for st in studies:
            body.append(self.render_study(st))
        self.add("Part 2 — transfer to 15 Scene", "q8", QUESTIONS["q8"][0], "".join(body))

    def sec_q9(self) -> None:
        body = [self.question("q9")]
        answer = [
            "Three ways, all available as <code>--gray</code>: <b>replicate</b> copies the gray channel into R, G "
            "and B, then applies ImageNet's per-channel normalisation — the network sees exactly what it was "
            "trained on for a colourless photo. <b>conv1-sum</b> gives the first convolution one input channel: "
            "since the three input channels are equal, conv(norm(x, x, x)) = conv<sub>Σ<sub>c</sub> "
            "W<sub>c</sub>/s<sub>c</sub></sub>(x) − conv<sub>Σ<sub>c</sub> W<sub>c</sub> m<sub>c</sub>/s<sub>c</sub>"
            "</sub>(1) + b, so summing the kernels (each divided by its channel's std) and folding the means into the "
            "bias term is <i>exactly</i> the same network, three times cheaper in its first layer. <b>conv1-mean</b> "
            "averages the kernels with one scalar normalisation — the naive answer: it divides the first layer's "
            "response by about 3 and mixes up the per-channel normalisation, so the features change."]
        gc = self.computed.get("gray_check") or {}
        if "rows" in gc:
            sid = self.computed_source("gray_check", "replicate vs conv1-sum vs conv1-mean on one gray image",
                                       {"image": gc["image"], "layer": gc["layer"], "model": gc["provenance"]},
                                       "transferlab report (transferlab.report.compute_gray_check)")
            rows = [[r["gray"], str(r["channels"]), fmt(r["max_rel_diff"], "diff"), f"{r['cosine']:.6f}"]
                    for r in gc["rows"]]
            s = {r["gray"]: r for r in gc["rows"]}
            answer.append(f"Checked by this report on {esc(Path(gc['image']).name)} "
                          f"(as a gray image, mode {esc(gc['image_mode'])}) "
                          f"with {esc(gc['label'])} at {esc(gc['layer'])}: conv1-sum differs from replicate by at most "
                          f"<b>{s['conv1-sum']['max_rel_diff']:.2e}</b> of the largest feature (floating-point "
                          f"rounding), conv1-mean by {s['conv1-mean']['max_rel_diff']:.2e} (cosine similarity "
                          f"{s['conv1-mean']['cosine']:.4f}) {ref(sid)}.")
            table_html = (table(["gray mode", "input channels", f"max |Δ {gc['layer']}| / max |{gc['layer']}|",
                                 "cosine with replicate"], rows)
                          + repro(f"transferlab report --data {self.data_hint} --out report.html  (this check is "
                                  "computed by the report: transferlab.report.compute_gray_check)",
                                  "Reproduce the check"))
        else:
            table_html = ""
        studies = self.studies("gray")
        for st in studies:
            col = acc_column(_columns(st.data))
            rep, fold, mean = (_find(st.data, gray=m) for m in ("replicate", "conv1-sum", "conv1-mean"))
            if col and rep and fold:
                same = abs((_num(rep.get(col)) or 0) - (_num(fold.get(col)) or 0)) < 1e-9
                diff = _num(fold.get("max_rel_diff_vs_replicate"))
                answer.append(
                    f"The gray study {ref(st.sid)}: replicate <b>{acc(rep.get(col))}</b>, conv1-sum "
                    f"<b>{acc(fold.get(col))}</b>" + (f", conv1-mean <b>{acc(mean.get(col))}</b>" if mean else "")
                    + (" — replicate and conv1-sum give the same accuracy" if same else
                       " — replicate and conv1-sum differ, which the folding should not do: check the weights")
                    + (f", their features differ by at most {diff:.2e} relative" if diff is not None else "") + "."
                    + (f" conv1-mean changes the first layer's activation scale by a factor "
                       f"{fmt(mean.get('conv1_scale_vs_replicate'))}." if mean and
                       mean.get("conv1_scale_vs_replicate") is not None else ""))
        for r in self.inputs.runs:
            prov = r.data.get("provenance") or {}
            if prov.get("gray"):
                answer.append(f"Run {ref(r.sid)} used <code>--gray {esc(prov['gray'])}</code>. 15 Scene stores its "
                              "gray images as RGB files with three equal channels; transferlab detects them (equal "
                              "channels or mode L) and treats them as gray.")
                break
        body.append('<div class="answer">' + "".join(p(t) for t in answer) + "</div>" + table_html)
        if not studies:
            body.append(self.missing("q9", "accuracy with each gray mode (the gray study)", self.study_cmd("gray")))
        for st in studies:
            body.append(self.render_study(st))
        self.add("Part 2 — transfer to 15 Scene", "q9", QUESTIONS["q9"][0], "".join(body))

    def sec_q10(self) -> None:
        from .confusion import confusion_figure
        from .report_figures import bar_figure, paired_bars_figure, per_class_figure, training_curves_figure

        body = [self.question("q10")]
        answer = ["Yes: replace the last layer (fc8, 1,000 ImageNet classes) by a new 15-way layer and train it with "
                  "a cross-entropy loss — either the new head alone on frozen features (close to the SVM, but "
                  "trained end-to-end with softmax), or also the deeper blocks (fine-tuning), with a small learning "
                  "rate so that the pretrained weights move little. Fine-tuning adapts the features to scenes, but "
                  "with 1,500 images it must be regularised (few epochs, validation split for early stopping, data "
                  "augmentation) and it costs a forward and backward pass per image and epoch."]
        if not self.inputs.finetunes:
            body.append('<div class="answer">' + p(answer[0]) + "</div>")
            body.append(self.missing("q10", "fine-tuning versus the SVM on the same split",
                                     f"transferlab finetune --data {self.data_hint} --model efficientnet_lite0 "
                                     "--out finetune/effnet"))
            self.add("Part 2 — transfer to 15 Scene", "q10", QUESTIONS["q10"][0], "".join(body))
            return
        parts = []
        for ft in self.inputs.finetunes:
            d = ft.data
            hist = [h for h in d.get("history", []) if isinstance(h, dict)]
            ta, sa = _num(d.get("test_accuracy")), _num(d.get("svm_accuracy"))
            line = f"{esc(ft.title)}: test accuracy <b>{acc(ta)}</b>"
            if sa is not None:
                line += (f" versus <b>{acc(sa)}</b> for the linear SVM on the same features and split "
                         f"({(ta or 0) - sa:+.4f})")
            if d.get("best_epoch") is not None:
                line += f", best epoch {esc(d['best_epoch'])} of {len(hist)} (chosen on validation accuracy)"
            answer.append(line + f" {ref(ft.sid)}.")
            block = [f"<h3>{esc(ft.title)} {ref(ft.sid)}</h3>", self.synthetic_badge(ft)]
            if d.get("status") not in (None, "finished"):
                block.append(f'<div class="warning">Status {esc(d.get("status"))}: this fine-tuning did not finish; '
                             "its numbers are provisional.</div>")
            imgs = d.get("images") if isinstance(d.get("images"), dict) else {}
            info = [("mode", d.get("mode")),
                    ("trained from layer", (d.get("provenance") or {}).get("trained_from_layer")),
                     ("images train / val / test", " / ".join(str(imgs.get(k, "?")) for k in ("train", "val", "test"))
                      if imgs else None),
                     ("epochs run (planned)", f"{d.get('epochs_run', len(hist))} ({d.get('epochs_planned', '?')})"),
                     ("best epoch (validation)", d.get("best_epoch")), ("training seconds", d.get("train_seconds")),
                     ("test accuracy", acc(ta) if ta is not None else None),
                     ("linear SVM, same split", acc(sa) if sa is not None else None)]
            block.append(facts(info))
            if hist:
                block.append(figure(training_curves_figure(hist, _num(d.get("best_epoch")) and int(d["best_epoch"]),
                                                           ft.title),
                                    f"Training curves: loss and accuracy per epoch on the training and validation "
                                    f"images. {ref(ft.sid)}", "training curves"))
                cols = [c for c in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")
                        if any(c in h for h in hist)]
                block.append(f"<details><summary>Per-epoch table ({len(hist)} epochs)</summary>"
                             + table(cols, [[fmt(h.get(c), c) for c in cols] for h in hist]) + "</details>")
            bars = [(f"fine-tuned ({d.get('mode', '?')})", ta, "tab:green")] if ta is not None else []
            if sa is not None:
                bars.append(("linear SVM on the network's features (same split)", sa, "tab:blue"))
            else:
                for r in self.inputs.runs:
                    if (r.data.get("provenance") or {}).get("model") == d.get("model"):
                        bars.append((f"SVM run {r.sid} (its own split)", float(r.data["accuracy"]), "tab:gray"))
            if len(bars) > 1:
                block.append(figure(bar_figure([b[0] for b in bars], [b[1] for b in bars],
                                               f"fine-tuning vs SVM · {d.get('model', '')}",
                                               colors=[b[2] for b in bars]),
                                    f"Test accuracy: fine-tuning versus an SVM on fixed features. {ref(ft.sid)}",
                                    "fine-tune versus SVM"))
            pc = d.get("per_class_accuracy") or d.get("test_per_class_accuracy")
            svm_pc = (d.get("svm") or {}).get("per_class_accuracy") if isinstance(d.get("svm"), dict) else None
            if isinstance(pc, dict) and pc and isinstance(svm_pc, dict) and set(svm_pc) == set(pc):
                block.append(figure(paired_bars_figure(list(pc), [pc[c] for c in pc], [svm_pc[c] for c in pc],
                                                       ("fine-tuned", "linear SVM"),
                                                       f"per-class test accuracy · {ft.title}"),
                                    f"Per-class test accuracy: fine-tuning versus the SVM on the same split. "
                                    f"{ref(ft.sid)}", "per-class accuracy, fine-tune versus SVM"))
            elif isinstance(pc, dict) and pc:
                block.append(figure(per_class_figure(pc, f"per-class accuracy · {ft.title}",
                                                     _num(d.get("mean_class_accuracy")
                                                          or d.get("test_mean_class_accuracy"))),
                                    f"Per-class test accuracy after fine-tuning. {ref(ft.sid)}", "per-class accuracy"))
            cm = d.get("confusion_matrix") or d.get("test_confusion_matrix")
            classes = d.get("classes") or (list(pc) if isinstance(pc, dict) else None)
            conf_png = ft.folder / "confusion.png" if ft.folder else None
            if cm and classes and len(cm) == len(classes):
                data = conf_png.read_bytes() if conf_png and conf_png.is_file() else _read_png(
                    lambda path: confusion_figure(np.array(cm), classes, ft.title, path))
                block.append(figure(data, f"Confusion matrix after fine-tuning. {ref(ft.sid)}", "fine-tune confusion"))
            block.append(repro(ft.command))
            parts.append("".join(block))
        body.append('<div class="answer">' + "".join(p(t) for t in answer) + "</div>")
        body.extend(parts)
        self.add("Part 2 — transfer to 15 Scene", "q10", QUESTIONS["q10"][0], "".join(body))

    # -- studies -------------------------------------------------------------------------------------------------
    def study_answer(self, st: Source) -> str:
        d, name = st.data, st.data.get("study")
        col, scored = _scored(d)
        b = _best(d)
        if not scored or not b:
            return ""
        r = ref(st.sid)
        if name == "pooling":
            gains = []
            for row in _rows(d):
                if row.get("l2") is True:
                    other = next((o for o in _rows(d) if o.get("l2") is False and o.get("pool") == row.get("pool")
                                  and o.get("layer") == row.get("layer")), None)
                    if other and _num(other.get(col)) is not None:
                        gains.append(_num(row[col]) - _num(other[col]))
            text = f"Best: <b>{esc(row_label(d, b[0]))}</b> at <b>{acc(b[1])}</b> {r}."
            if gains:
                text += (f" L2 normalisation changes accuracy by {np.mean(gains):+.4f} on average over "
                         f"{len(gains)} poolings (from {min(gains):+.4f} to {max(gains):+.4f}): "
                         + ("it helps, because a linear SVM with a fixed C behaves the same for every image only if "
                            "feature vectors have comparable norms." if np.mean(gains) > 0 else
                            "here it does not help on average."))
            return text
        if name == "C":
            chosen = next((row for row in _rows(d) if row.get("chosen_by_cv")), None)
            oracle = max(scored, key=lambda t: t[1])
            if chosen:
                return (f"Cross-validation on the training images chose <b>C = {fmt(chosen.get('C'))}</b>, test "
                        f"accuracy <b>{acc(chosen.get(col))}</b> {r}; the best C in hindsight on the test set, "
                        f"{fmt(oracle[0].get('C'))} ({acc(oracle[1])}), may not be used to choose C — that would "
                        "report an optimistic, tuned-on-test number.")
            return f"Best C: {fmt(b[0].get('C'))} at {acc(b[1])} {r}."
        if name == "pca":
            full = next((row for row in _rows(d) if row.get("pca") is False), None)
            text = f"Best: <b>{esc(row_label(d, b[0]))}</b> dimensions at <b>{acc(b[1])}</b> {r}"
            if full:
                text += f"; without PCA ({fmt(full.get('pca_dims'))} dimensions): {acc(full.get(col))}"
            return text + "."
        if name == "protocol":
            fixed = next((row for row in _rows(d) if str(row.get("protocol")) == "fixed"), None)
            rnd = next((row for row in _rows(d) if str(row.get("protocol")).startswith("random")), None)
            if fixed and rnd:
                return (f"Fixed split: <b>{acc(fixed.get(col))}</b>; random 100-per-class splits "
                        f"({fmt(rnd.get('splits'))} splits): <b>{acc(rnd.get(col))} ± "
                        f"{fmt(rnd.get('accuracy_std'), 'acc')}</b> {r}. Only numbers on the same protocol can be "
                        "compared with the literature.")
        if name in ("pretraining", "random-vs-pretrained"):
            pair = _pretrain_pair(d)
            if pair:
                return (f"Pretrained <b>{acc(pair[0].get(col))}</b> versus random weights "
                        f"<b>{acc(pair[1].get(col))}</b> {r}.")
        if name == "gray":
            return ""  # answered in question 9
        worst = min(scored, key=lambda t: t[1])
        return (f"Best: <b>{esc(row_label(d, b[0]))}</b> with {esc(col)} <b>{acc(b[1])}</b>; lowest: "
                f"{esc(row_label(d, worst[0]))} ({acc(worst[1])}) {r}.")

    def render_study(self, st: Source) -> str:
        from .report_figures import study_fallback_figure

        d = st.data
        cols = _columns(d)
        rows = _rows(d)
        best = d.get("best") if isinstance(d.get("best"), dict) else None
        hl = {i for i, r in enumerate(rows) if best and all(r.get(k) == v for k, v in best.items() if k in cols)}
        out = [f'<h3 id="study-{esc(st.sid)}">Study <i>{esc(d.get("study", "?"))}</i> {ref(st.sid)}</h3>',
               self.synthetic_badge(st)]
        if d.get("question"):
            out.append(p(f"<i>{esc(d['question'])}</i>"))
        ans = self.study_answer(st)
        if ans:
            out.append('<div class="answer">' + p(ans) + "</div>")
        out.append(table(cols, [[fmt(r.get(c), c) for c in cols] for r in rows], highlight=hl))
        extra_tables = [(k, v) for k, v in d.items() if k not in ("rows", "best", "provenance", "columns", "notes")
                        and isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
        for key, values in extra_tables:
            ecols = list(dict.fromkeys(k for x in values for k in x))
            out.append(f"<details><summary>{esc(key)} ({len(values)} rows)</summary>"
                       + table(ecols, [[fmt(x.get(c), c) for c in ecols] for x in values]) + "</details>")
        fig_name = d.get("figure")
        fig_path = (st.folder / str(fig_name)) if fig_name and st.folder else None
        if fig_path and fig_path.is_file() and fig_path.resolve().parent == st.folder.resolve():
            out.append(figure(fig_path.read_bytes(), f"{esc(d.get('study', ''))} study figure. {ref(st.sid)}",
                              f"{d.get('study', '')} study"))
        else:
            col, scored = _scored(d)
            if scored:
                png = study_fallback_figure([row_label(d, r) for r, _ in scored], [v for _, v in scored],
                                            f"study {d.get('study', '')}: {col}", col)
                out.append(figure(png, f"{esc(col)} per setting (drawn by the report: the study folder has no "
                                       f"figure). {ref(st.sid)}", f"{d.get('study', '')} study"))
        notes = [n for n in d.get("notes", []) if isinstance(n, str)]
        if notes:
            out.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
        out.append(repro(st.command))
        return "".join(out)

    def sec_further(self) -> None:
        body = [p("The course hand-out's Part 3: a linear SVM (scikit-learn <code>LinearSVC</code>, C = 1 to start) on "
                  "L2-normalised features; C tuned on the training set only (cross-validation), never on the test "
                  "set; then other layers, pooling, classifiers, PCA, networks and protocols.")]
        shown = {"layers", "gray", "pretraining", "random-vs-pretrained"}
        others = [st for st in self.inputs.studies if st.data.get("study") not in shown]
        for st in others:
            body.append(self.render_study(st))
        present = {st.data.get("study") for st in self.inputs.studies}
        absent = [(name, what) for name, what in (
            ("pooling", "pooling and L2 normalisation"), ("C", "C chosen by cross-validation on the training set"),
            ("classifiers", "other classifiers on the same features"), ("pca", "PCA before the SVM"),
            ("backbones", "other pretrained networks and their combination"),
            ("protocol", "the fixed split versus 10 random 100-per-class splits")) if name not in present]
        if absent:
            for name, what in absent:
                self.todo.append(("further", f"{what} (study {name})", self.study_cmd(name)))
            body.append('<div class="missing"><b>Not measured in this report:</b><ul>' + "".join(
                f"<li>{esc(what)}: {code(self.study_cmd(name))}</li>" for name, what in absent)
                + "</ul>Give each output folder to <code>transferlab report</code>.</div>")
        self.add("Part 3 — going further", "further", "SVM, C, pooling, classifiers, PCA, networks, protocol",
                 "".join(body))

    def sec_reference(self) -> None:
        from .report_figures import bar_figure

        ours = []
        for r in self.inputs.runs:
            d, r0 = r.data, r.data["runs"][0]
            prov = r.data.get("provenance") or {}
            full = (prov.get("protocol") == "fixed" and r0.get("test_images") == FULL_15SCENE["test"]
                    and r0.get("train_images") == FULL_15SCENE["train"])
            layers = "+".join(map(str, prov.get("layers", [])))
            short = f"{r.sid} {prov.get('model', '?')} {layers} {prov.get('pool', '')}"
            ours.append((short, float(d["accuracy"]), f"{prov.get('protocol')} "
                         f"{r0.get('train_images')} / {r0.get('test_images')}", full, r.sid))
        for st in self.inputs.studies:
            b = _best(st.data)
            if b:
                prov = st.data.get("provenance") or {}
                ds = prov.get("dataset") or {}
                full = prov.get("protocol") == "fixed" and ds.get("test") == FULL_15SCENE["test"]
                ours.append((f"{st.sid} study {st.data.get('study')}: {row_label(st.data, b[0])}"[:60], b[1],
                             f"{prov.get('protocol', '?')} {ds.get('train', '?')} / {ds.get('test', '?')}", full,
                             st.sid))
        rows = [[esc(name), esc(shown), esc(proto), "PRACTICAL.md / ASSETS.md (quoted)"]
                for name, _, shown, proto in REFERENCE]
        rows += [[esc(name), f"<b>{v:.4f}</b>", esc(proto),
                  ref(sid) + ("" if full else " <i>subset or other protocol: not directly comparable</i>")]
                 for name, v, proto, full, sid in ours]
        body = [p("Reference figures quoted from the practical (not measured here), then this report's measurements. "
                  "Only numbers on the same protocol and the same test images compare directly."),
                table(["method", "accuracy", "protocol (train / test)", "source"], rows, raw=True)]
        labels = [n for n, *_ in REFERENCE] + [o[0][:70] for o in ours]
        values = [v for _, v, *_ in REFERENCE] + [o[1] for o in ours]
        colors = ["tab:gray"] * len(REFERENCE) + ["tab:blue"] * len(ours)
        body.append(figure(bar_figure(labels, values, "15 Scene accuracy: reference figures and this report",
                                      colors=colors, legend=[("tab:gray", "reference (quoted)"),
                                                             ("tab:blue", "measured here")]),
                           "Reference figures (grey, quoted; ranges shown by their midpoint) and this report's "
                           "measurements (blue).", "reference comparison"))
        self.add("Reference", "reference", "Comparison with reference figures", "".join(body))

    def sec_todo(self) -> None:
        if not self.todo:
            body = p("Nothing is missing: every question is answered with measured inputs.")
        else:
            seen, items = set(), []
            for sid, what, command in self.todo:
                if (what, command) in seen:
                    continue
                seen.add((what, command))
                items.append(f'<li><a href="#{esc(sid)}">{esc(sid)}</a> — {esc(what)}: {code(command)}</li>')
            body = (p("Run these commands, then give every output folder to <code>transferlab report DIR… --out "
                      "report.html</code> (folders of folders are searched):") + "<ul>" + "".join(items) + "</ul>")
        self.add("Reference", "todo", "To complete this report", body)

    def sec_provenance(self) -> None:
        body = [p(f"Report generated {esc(self.meta['date'])} by {code(self.meta['command'])} with transferlab "
                  f"{esc(self.meta['version'])}; library versions: {esc(fmt(self.meta.get('versions', {})))}.")]
        for src in self.sources:
            d, prov = src.data, src.data.get("provenance") or {}
            ds = prov.get("dataset") or {}
            pairs = [("file", str(src.path)), ("sha256 of the file", src.sha256),
                     ("command", src.command or "not recorded"),
                     ("model", prov.get("label") or prov.get("model") or d.get("model")),
                     ("weights", prov.get("weights")), ("weights sha256", prov.get("weights_sha256")),
                     ("pretrained", prov.get("pretrained")), ("pretrained up to", prov.get("pretrained_up_to")),
                     ("dataset", f"{ds.get('root', '?')}: {ds.get('images', '?')} images, "
                                 f"train {ds.get('train', '?')}, "
                                 f"test {ds.get('test', '?')}" if ds else None),
                     ("protocol", prov.get("protocol")), ("classifier", prov.get("classifier")),
                     ("C", prov.get("C")), ("seed", prov.get("seed")), ("date", prov.get("date")),
                     ("versions", prov.get("versions"))]
            if src.kind == "run":
                ext = d.get("extraction") or {}
                bad = ext.get("bad_files") or []
                pairs.append(("bad files skipped", f"{len(bad)}" + (": " + ", ".join(b.get("path", "") for b in bad[:5])
                                                                     if bad else "")))
                matched = ds.get("matched_folders")
                if matched:
                    pairs.append(("class folders matched ignoring case",
                                  "; ".join(f"{k}: {'/'.join(v)}" for k, v in matched.items())))
            kind = "run · " if src.kind == "run" else ""
            body.append(f'<h3 id="prov-{esc(src.sid)}">[{esc(src.sid)}] {esc(kind)}{esc(src.title)}</h3>'
                        + self.synthetic_badge(src) + facts(pairs)
                        + "<details><summary>full provenance record</summary><pre>"
                        + esc(json.dumps(prov, indent=1, default=str)) + "</pre></details>")
        for src in self.computed_sources.values():
            pairs = [("computed by", "this report (transferlab report), at generation time"),
                     ("command", src.command), ("date", self.meta["date"]), ("versions", self.meta.get("versions"))]
            body.append(f'<h3 id="prov-{esc(src.sid)}">[{esc(src.sid)}] computed · {esc(src.title)}</h3>'
                        + facts(pairs)
                        + "<details><summary>inputs and weights</summary><pre>"
                        + esc(json.dumps(src.data, indent=1, default=str)) + "</pre></details>")
        if self.inputs.skipped:
            body.append("<h3>Inputs not used</h3><ul>" + "".join(
                f"<li>{code(path)}: {esc(why)}</li>" for path, why in self.inputs.skipped) + "</ul>")
        self.add("Reference", "provenance", "Provenance of every number", "".join(body))

    def page(self) -> str:
        toc, sections, part = [], [], None
        for prt, sid, title, body in self.sections:
            if prt and prt != part:
                toc.append(f'<li class="part">{esc(prt)}</li>')
                sections.append(f'<h2 class="part-title">{esc(prt)}</h2>')
                part = prt
            toc.append(f'<li><a href="#{esc(sid)}">{esc(title)}</a></li>')
            sections.append(f'<section id="{esc(sid)}"><h2>{esc(title)}</h2>{body}</section>')
        title = self.meta.get("title") or "Transfer learning on 15 Scene — report"
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<meta name="generator" content="transferlab {esc(self.meta["version"])}">'
                f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
                f"<header><h1>{esc(title)}</h1><p>Generated {esc(self.meta['date'])} by "
                f"{code(self.meta['command'])}</p><p>transferlab {esc(self.meta['version'])} · "
                f"{len(self.inputs.runs)} run(s), {len(self.inputs.studies)} study(ies), "
                f"{len(self.inputs.finetunes)} fine-tuning record(s)</p></header>"
                f'<div class="layout"><nav id="toc"><h2>Contents</h2><ol>{"".join(toc)}</ol></nav>'
                f'<main>{"".join(sections)}</main></div></body></html>\n')


def compute_parts(data: Path | None = None, samples_dir=None, predict: bool = True, activations: bool = True,
                  architecture: bool = True, log=None) -> dict:
    """The parts the report computes itself; a part that fails carries ``{"error": reason}`` instead."""
    out: dict = {}

    def attempt(key, fn):
        t0 = time.perf_counter()
        try:
            out[key] = fn()
        except Exception as e:  # noqa: BLE001 — every failure is shown in its section, with its reason
            out[key] = {"error": f"{type(e).__name__}: {e}"}
        if log:
            log(f"{key}: {'failed — ' + out[key]['error'] if 'error' in out[key] else 'done'} "
                f"({time.perf_counter() - t0:.1f} s)")

    if architecture:
        attempt("architecture", compute_architecture)
    if predict:
        attempt("predictions", lambda: compute_predictions(samples_dir, data))
    if activations:
        attempt("activations", lambda: compute_activations(samples_dir=samples_dir))
        model = (out.get("activations") or {}).pop("model", None)
        if model is not None:
            gray_images = [pth for _, pth in scene_images(data, n=1)]
            attempt("gray_check", lambda: compute_gray_check(model, gray_images[0] if gray_images else Path(
                (out["activations"])["image"])))
    return out


def _data_root(inputs: Inputs, data) -> Path | None:
    """The dataset folder for scene images and example thumbnails: ``data``, else the one a run recorded."""
    if data:
        return Path(data) if Path(data).is_dir() else None
    for src in inputs.all():
        prov = src.data.get("provenance") or {}
        root = (prov.get("dataset") or {}).get("root")
        if root and Path(root).is_dir():
            return Path(root)
    return None


def build_report(paths, out: str | Path, data: str | Path | None = None, compute: bool = True,
                 samples_dir=None, command: str | None = None, title: str | None = None, log=None) -> dict:
    """Write the HTML report of the run/study/fine-tune folders in ``paths`` to ``out``; returns a summary
    (path, inputs, sections, missing parts)."""
    try:
        from importlib.metadata import version as _dist_version

        version = _dist_version("transferlab")
    except Exception:  # noqa: BLE001 — not installed as a distribution
        version = "unknown"
    inputs = find_inputs(paths)
    root = _data_root(inputs, data)
    computed = compute_parts(root, samples_dir, predict=compute, activations=compute, architecture=True, log=log) \
        if compute else {"architecture": _safe(compute_architecture)}
    try:
        from .experiment import library_versions

        versions = library_versions()
    except Exception:  # noqa: BLE001
        versions = {}
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "version": version, "versions": versions, "title": title,
            "command": command or "transferlab report " + " ".join(shlex.quote(str(x)) for x in paths),
            "data": str(root) if root else None, "data_hint": _data_hint(inputs, data)}
    report = Report(inputs, computed, meta)
    text = report.build()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return {"path": out, "runs": len(inputs.runs), "studies": len(inputs.studies),
            "finetunes": len(inputs.finetunes), "skipped": inputs.skipped,
            "sections": [sid for _, sid, _, _ in report.sections], "missing": report.todo,
            "computed_errors": {k: v["error"] for k, v in computed.items() if isinstance(v, dict) and "error" in v},
            "bytes": out.stat().st_size}


def _data_hint(inputs: Inputs, data) -> str:
    """The --data value for suggested commands: what the runs used, else ``data``, else the dataset's name."""
    for src in inputs.all():
        cfg = (src.data.get("provenance") or {}).get("config") or {}
        if cfg.get("data"):
            return str(cfg["data"])
    return str(data) if data else "15scene"


def _safe(fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
