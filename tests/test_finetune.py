"""Fine-tuning on a tiny real subset of 15 Scene (2 images per class and split): the training loss goes down,
resuming from a checkpoint (between epochs, or mid-epoch as after Ctrl-C) gives bit-identical weights, and the
saved model loads through ``load_model`` and predicts the 15 classes."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from transferlab.backbones.heads import PooledHeadNet
from transferlab.finetune import CHECKPOINT, MODEL, RECORD, EpochLoop, FinetuneConfig, finetune, make_trainer
from transferlab.registry import load_model

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRANSFERLAB_SHARED", ROOT / ".." / "shared"))
DATA = SHARED / "data" / "15scene"

pytestmark = pytest.mark.skipif(not (DATA / "train").is_dir(), reason="15 Scene not found under ../shared/data")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("features"))


def tiny(out, cache, **kw) -> FinetuneConfig:
    base = dict(data=str(DATA), out=str(out), model="efficientnet_lite0", weights="imagenet", mode="last-block",
                epochs=2, limit_per_class=2, batch_size=8, workers=1, cache=cache, compare_svm=False,
                progress=False)
    return FinetuneConfig.from_dict({**base, **kw})


def train_loss(ft: EpochLoop) -> float:
    """Cross-entropy of the training images in evaluation mode (no augmentation, no dropout)."""
    _, _, loss = ft.predict(ft.data.train_idx)
    return loss


def test_one_short_epoch_of_full_finetuning_lowers_the_training_loss(tmp_path, cache):
    ft = make_trainer(tiny(tmp_path, cache, mode="full", epochs=1, init_head="random", lr=3e-3, batch_size=4))
    assert len(ft.data.train_idx) == 15 and len(ft.data.val_idx) == 15 and len(ft.data.test_idx) == 30
    before = train_loss(ft)
    rec = ft.run()
    after = train_loss(ft)  # the best (only) epoch's weights, reloaded from model.pth by finish()
    assert rec["status"] == "finished" and rec["epochs_run"] == 1
    assert before > 2.0  # a random 15-way head: about ln 15 = 2.7
    assert after < before - 0.1, (before, after)
    hist = rec["history"][0]
    assert np.isfinite(hist["train_loss"]) and 0 <= hist["val_acc"] <= 1
    assert set(rec["provenance"]["augmentation"]) == {"random_resized_crop", "horizontal_flip"}


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, cache):
    straight = finetune(tiny(tmp_path / "straight", cache))
    assert straight["status"] == "finished" and straight["epochs_run"] == 2

    out = tmp_path / "resumed"

    def ctrl_c(ft, epoch, step):  # what the SIGINT handler does: finish the step, checkpoint, stop
        if (epoch, step) == (0, 1):
            ft.stop_requested = True

    first = finetune(tiny(out, cache), on_step=ctrl_c)
    assert first["status"] == "interrupted" and first["epochs_run"] == 0
    ck = torch.load(out / CHECKPOINT, weights_only=True)
    assert (ck["epoch"], ck["step"]) == (0, 1)
    second = finetune(tiny(out, cache), stop_after=1)  # the rest of epoch 1, then pause
    assert second["status"] == "paused" and second["epochs_run"] == 1
    third = finetune(tiny(out, cache))
    assert third["status"] == "finished" and third["epochs_run"] == 2

    a = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=True)
    b = torch.load(out / CHECKPOINT, weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    assert a["net"].keys() == b["net"].keys()
    for k in a["net"]:
        assert torch.equal(a["net"][k], b["net"][k]), k
    for ra, rb in zip(straight["history"], third["history"]):
        assert {k: v for k, v in ra.items() if k != "seconds"} == {k: v for k, v in rb.items() if k != "seconds"}
    assert straight["test_accuracy"] == third["test_accuracy"]

    with pytest.raises(ValueError, match="other settings"):
        make_trainer(tiny(out, cache, lr=0.5)).run()

    # the saved model: a 15-way EfficientNet-Lite0 that load_model, predict and run accept
    model = load_model("efficientnet_lite0", str(out / MODEL))
    assert model.categories == third["classes"] and len(model.categories) == 15
    assert model.meta["mode"] == "last-block" and model.meta["training"]["test_accuracy"] == third["test_accuracy"]
    from transferlab.predict import predict_files

    img = sorted((DATA / "test").iterdir())[0]
    preds, errors = predict_files(model, sorted(img.iterdir())[:1], k=3)
    assert not errors and preds[0].top[0][1] in model.categories
    record = json.loads((out / RECORD).read_text())
    assert record["best_epoch"] in (1, 2) and len(record["test_confusion_matrix"]) == 15


def test_head_only_on_a_conv_only_backbone_saves_a_loadable_pooled_head(tmp_path, cache):
    rec = finetune(tiny(tmp_path, cache, model="alexnet", weights="imagenet-conv", mode="head", epochs=30,
                        compare_svm=True))
    hist = rec["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.3
    assert rec["provenance"]["head"] == {"kind": "pooled", "layer": "pool5", "pool": "avg", "in_features": 256}
    assert 0 <= rec["svm_accuracy"] <= 1 and rec["svm"]["layer"] == "pool5"

    model = load_model("alexnet", str(tmp_path / MODEL))
    assert isinstance(model.net, PooledHeadNet) and model.covers == "fc"
    assert model.net.layer_names()[-3:] == ["pool5", "gap", "fc"]
    assert not any(k.startswith("base.classifier") and "weight" in k for k in model.net.state_dict())
    # the network's own forward pass reproduces the test accuracy measured on cached features
    ft = make_trainer(tiny(tmp_path / "eval", cache, model="alexnet", weights="imagenet-conv", mode="full",
                           init_head="random"))
    ft.net.load_state_dict(model.net.state_dict())
    y, pred, _ = ft.predict(ft.data.test_idx)
    assert np.mean(y == pred) == pytest.approx(rec["test_accuracy"], abs=1 / 30 + 1e-9)
    # `run` on the fine-tuned network's layers
    from transferlab.experiment import RunConfig, run_experiment

    res = run_experiment(RunConfig(data=str(DATA), model="alexnet", weights=str(tmp_path / MODEL), layers=["gap"],
                                   limit_per_class=2, cache=cache, progress=False))
    assert res["feature_dim"] == 256 and 0 <= res["accuracy"] <= 1
