"""`transferlab predict`: real ImageNet predictions of EfficientNet-Lite0, refusals, bad inputs and image modes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transferlab.cli.main import main
from transferlab.data.images import load_image
from transferlab.analysis.imagenet import predict_files

CATS = {"tabby", "tiger cat", "Egyptian cat"}


def test_efficientnet_lite0_real_predictions(models, samples):
    model = models("efficientnet_lite0")
    assert model.pretrained and model.categories is not None
    results, errors = predict_files(model, samples.values(), k=5)
    assert not errors
    top = {Path(r.image).stem: r.top for r in results}
    names = {stem: [c for _, c, _ in t] for stem, t in top.items()}
    assert names["chelsea"][0] in CATS and sum(p for _, c, p in top["chelsea"] if c in CATS) > 0.8
    assert names["coffee"][0] == "espresso" and top["coffee"][0][2] > 0.5
    assert {"cup", "coffee mug"} & set(names["coffee"])
    assert {"missile", "projectile", "space shuttle"} <= set(names["rocket"])
    assert names["flower"][0] == "daisy"
    assert {"palace", "monastery", "bell cote"} & set(names["china"][:3])


def test_predict_cli_text_json_figure(capsys, samples, tmp_path):
    fig = tmp_path / "predict.png"
    assert main(["predict", "efficientnet_lite0", str(samples["chelsea"]), str(samples["coffee"]),
                 "--top", "3", "--json", "--figure", str(fig)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["provenance"]["pretrained"] and "imagenet" in out["model"] and not out["errors"]
    assert [len(p["top"]) for p in out["predictions"]] == [3, 3]
    assert out["predictions"][1]["top"][0]["class"] == "espresso"
    assert fig.read_bytes()[:4] == b"\x89PNG"
    assert main(["predict", "efficientnet_lite0", str(samples["chelsea"])]) == 0
    text = capsys.readouterr().out
    assert text.startswith("efficientnet_lite0 [imagenet weights") and "chelsea.png" in text and "%" in text


def test_random_weights_say_so(capsys, samples):
    assert main(["predict", "efficientnet_lite0", str(samples["chelsea"]), "--weights", "none", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "RANDOM WEIGHTS" in out["model"] and out["provenance"]["pretrained"] is False
    assert main(["predict", "efficientnet_lite0", str(samples["chelsea"]), "--weights", "none"]) == 0
    assert "RANDOM WEIGHTS" in capsys.readouterr().out.splitlines()[0]


def test_vgg16_conv_only_weights_refused(capsys, samples):
    assert main(["predict", "vgg16", str(samples["chelsea"]), "--weights", "imagenet-conv"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pool5" in err[0] and "--weights imagenet" in err[0]


def test_bad_images_reported_good_ones_answered(capsys, samples, tmp_path):
    missing = tmp_path / "missing.jpg"
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    truncated = tmp_path / "truncated.jpg"
    Image.open(samples["chelsea"]).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    paths = [samples["chelsea"], missing, text, truncated, samples["coffee"]]
    assert main(["predict", "efficientnet_lite0", *map(str, paths), "--json"]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 3
    for line, bad, reason in zip(err, (missing, text, truncated), ("no such file", "not an image", "truncated")):
        assert str(bad) in line and reason in line
    out = json.loads(captured.out)
    assert [p["image"] for p in out["predictions"]] == [str(samples["chelsea"]), str(samples["coffee"])]
    assert [e["image"] for e in out["errors"]] == [str(missing), str(text), str(truncated)]


def test_unknown_model_one_line(capsys, samples):
    assert main(["predict", "resnet50", str(samples["chelsea"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resnet50" in err[0]


@pytest.fixture(scope="module")
def mode_files(samples, tmp_path_factory) -> dict[str, object]:
    """Chelsea saved in every awkward mode: gray, alpha, palette, CMYK JPEG, 16-bit, EXIF-rotated JPEG."""
    d = tmp_path_factory.mktemp("modes")
    rgb = Image.open(samples["chelsea"]).convert("RGB")
    rgb.convert("L").save(d / "gray_L.png")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(200)
    rgba.save(d / "alpha_RGBA.png")
    rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(d / "palette_P.png")
    rgb.convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257).save(d / "sixteen_I16.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the file stores the picture turned the other way
    rgb.transpose(Image.Transpose.ROTATE_90).save(d / "exif6.jpg", exif=exif, quality=95)
    return {p.stem: p for p in sorted(d.iterdir())}


def test_every_image_mode_predicted(capsys, mode_files):
    assert Image.open(mode_files["sixteen_I16"]).mode == "I;16" and Image.open(mode_files["cmyk"]).mode == "CMYK"
    assert Image.open(mode_files["palette_P"]).mode == "P"
    assert main(["predict", "efficientnet_lite0", *map(str, mode_files.values()), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["predictions"]) == len(mode_files) == 6
    for p in out["predictions"]:  # the conversions keep the picture: still a cat, whatever the mode
        assert p["top"][0]["class"] in CATS, p


def test_exif_rotation_applied(samples, mode_files):
    upright = np.asarray(Image.open(samples["chelsea"]).convert("RGB"), dtype=np.float32)
    img = load_image(mode_files["exif6"])
    assert img.size == (451, 300) == Image.open(samples["chelsea"]).size  # stored 300×451
    assert Image.open(mode_files["exif6"]).size == (300, 451)
    assert np.abs(np.asarray(img, dtype=np.float32) - upright).mean() < 5  # JPEG noise only


def test_images_may_come_after_options(capsys, samples):
    assert main(["predict", "efficientnet_lite0", "--top", "2", "--json", str(samples["coffee"])]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["predictions"][0]["top"]) == 2 and out["predictions"][0]["top"][0]["class"] == "espresso"
