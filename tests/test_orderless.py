"""Orderless encoders on real VGG16 conv5 maps, the input-size option, and the orderless study on a small real
subset of 15 Scene (every choice made on train: scrambling the test labels moves none)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from transferlab.data.images import load_image
from transferlab.features.extractor import Extractor
from transferlab.features.orderless import (
    BilinearEncoder,
    FisherEncoder,
    MeanEncoder,
    VLADEncoder,
    sample_descriptors,
    ssqrt,
)
from transferlab.studies import orderless
from transferlab.config import RunConfig
from transferlab.cli.study import save_study
from transferlab.studies.runner import run_study


@pytest.fixture(scope="module")
def vgg(models):
    return models("vgg16", "imagenet-conv")


@pytest.fixture(scope="module")
def maps(vgg, samples):
    """relu5_3 maps (3, 512, 14, 14) of three real photos at 224."""
    x = torch.stack([vgg.preprocess.pixels(load_image(samples[n])) for n in ("chelsea", "coffee", "astronaut")])
    with torch.inference_mode():
        return vgg.net.forward_layers(x, ["relu5_3"])["relu5_3"].numpy()


def test_input_size_keys_the_cache_and_scales_the_maps(vgg, samples):
    plain = Extractor(vgg, [("pool5", "avg")], workers=0)
    big = Extractor(vgg, [("pool5", "avg")], input_size=320, workers=0)
    assert plain.keys != big.keys and (big.preprocess.resize, big.preprocess.crop) == (366, 320)
    assert Extractor(vgg, [("pool5", "avg")], input_size=224, workers=0).keys == plain.keys  # 224 is the default
    x = big.preprocess.pixels(load_image(samples["chelsea"]))[None]
    with torch.inference_mode():
        out = vgg.net.forward_layers(x, ["relu5_3", "pool5"])
    assert tuple(x.shape[2:]) == (320, 320) and tuple(out["relu5_3"].shape[2:]) == (20, 20)
    assert tuple(out["pool5"].shape[2:]) == (10, 10)


def test_bilinear_equals_the_explicit_mean_outer_product(maps):
    enc = BilinearEncoder(dim=None).fit(maps[0].reshape(512, -1).T)  # no PCA: nothing learnt
    got = enc.transform(maps[:1])
    d = maps[0].reshape(512, -1).astype(np.float64)
    g = d @ d.T / d.shape[1]
    want = ssqrt(g[np.triu_indices(512)])
    want /= np.linalg.norm(want)
    assert got.shape == (1, 512 * 513 // 2)
    assert np.abs(got[0] - want).max() < 1e-5  # float32 against float64 (measured 4e-8)


@pytest.mark.parametrize("enc, dim", [(BilinearEncoder(dim=16), 136), (VLADEncoder(k=4, dim=8), 32),
                                      (FisherEncoder(k=4, dim=8), 64), (MeanEncoder(), 512)])
def test_encoders_fit_on_descriptors_and_give_unit_vectors_of_their_size(enc, dim, maps):
    sample = sample_descriptors(maps, 100, np.random.default_rng(0))
    assert sample.shape == (300, 512)
    assert enc.fit(sample) is enc
    fitted = [k for k in vars(enc) if k.endswith("_") and not k.startswith("_")]
    assert "pca_" in fitted and (isinstance(enc, (BilinearEncoder, MeanEncoder)) or len(fitted) == 2)
    x = enc.transform(maps)
    assert x.shape == (3, dim) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert not np.allclose(x[0], x[1])


def test_orderless_study_chooses_on_train_only(shared_dir, tmp_path, monkeypatch):
    cfg = RunConfig(data=str(shared_dir / "data" / "15scene"), model="vgg16", weights="imagenet-conv",
                    limit_per_class=2, input_size=112, cache=str(tmp_path / "cache"), workers=0, progress=False)
    record = run_study("orderless", cfg)  # at 112 (7×7 relu5_3 maps): what is checked does not need 224
    save_study(record, tmp_path / "study")
    saved = json.loads((tmp_path / "study" / "study.json").read_text())
    assert (tmp_path / "study" / "study.png").stat().st_size > 10_000
    rows = {r["encoder"]: r for r in saved["rows"]}
    assert rows["bilinear dim=64"]["dim"] == 2080 and rows["vlad k=16 dim=64"]["dim"] == 16 * 64
    assert rows["fisher k=16 dim=64"]["dim"] == 2 * 16 * 64 and rows["avg pool4+relu5_1+pool5"]["dim"] == 1536
    assert sum(r["chosen_by_cv"] for r in saved["rows"]) == 1 and record.best["chosen_by_cv"]
    assert len(list((tmp_path / "cache" / "maps").glob("*/*.npy"))) == 60  # one map per image, the only copy
    # the same study with the test labels scrambled: every train-side number and the choice stay, test moves
    real = orderless.load_dataset

    monkeypatch.setattr(orderless, "load_dataset", lambda data, limit: _scramble(real(data, limit)))
    again = orderless.orderless(replace(cfg, layers=[], protocol="fixed"))
    rows2, best2 = again.rows, again.best
    assert [r["cv_accuracy_on_train"] for r in rows2] == [r["cv_accuracy_on_train"] for r in saved["rows"]]
    assert best2["features"] == saved["best"]["features"]
    assert [r["test_accuracy"] for r in rows2] != [r["test_accuracy"] for r in saved["rows"]]
    assert saved["provenance"]["numerics"] == "fp32"  # taken from the avg features' extraction, as every study
    with pytest.raises(ValueError, match="eager network; runtime 'onnx'"):
        orderless.orderless(replace(cfg, runtime="onnx"))  # maps come from hooks: refused, not ignored


def _scramble(ds):
    test = np.flatnonzero(ds.split == "test")
    labels = ds.labels.copy()
    labels[test] = np.random.default_rng(0).permutation(labels[test])
    ds.labels = labels
    return ds
