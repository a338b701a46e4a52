"""A missing optional package is one line that names the extra to install — in every command that needs it and in
the bench's child processes — never a traceback.

The packages are hidden, not uninstalled: in this process ``sys.modules[name] = None`` (the ``hide`` fixture), in a
child process a ``sitecustomize`` that does the same. Datasets are 2 real 15 Scene images per class and split.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from transferlab.bench.child import BenchConfig, run_child
from transferlab.cli.main import main
from transferlab.extras import MissingExtra, missing_line, require

ROOT = Path(__file__).resolve().parents[1]
ONNX = "pip install 'transferlab[onnx]'"
RAY = "pip install 'transferlab[ray]'"


@pytest.fixture(scope="module")
def tiny(shared_dir, tmp_path_factory) -> Path:
    """train/ and test/ with 2 classes × 2 real 15 Scene images."""
    scene = shared_dir / "data" / "15scene"
    if not scene.is_dir():
        pytest.skip("15 Scene not found under ../shared (TRANSFERLAB_SHARED)")
    root = tmp_path_factory.mktemp("tiny")
    for side in ("train", "test"):
        for cls in ("coast", "forest"):
            src = next(d for d in (scene / side).iterdir() if d.name.casefold() == cls)  # Coast/ in train, coast/ in test
            (root / side / cls).mkdir(parents=True)
            for f in sorted(src.iterdir())[:2]:
                (root / side / cls / f.name).write_bytes(f.read_bytes())
    return root


def _one_line(capsys, argv: list[str]) -> str:
    """``transferlab ARGV`` exits 2 with exactly one line on stderr (no traceback); that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"transferlab {argv[0]}: error: "), err
    return err


def _hiding_pythonpath(tmp_path: Path, module: str) -> str:
    """A PYTHONPATH whose ``sitecustomize`` hides ``module`` from every process started with it (and this
    checkout's sources)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(f"import sys\nsys.modules[{module!r}] = None\n")
    return os.pathsep.join(filter(None, [str(site), str(ROOT / "src"), os.environ.get("PYTHONPATH")]))


def _run(tiny, tmp_path, *extra) -> list[str]:
    return ["run", "--data", str(tiny), "--model", "alexnet", "--weights", "imagenet-conv", "--layer", "pool1",
            "--cache", str(tmp_path / "features"), "--workers", "0", "--quiet", "--out", str(tmp_path / "out"), *extra]


def test_the_line_names_the_package_and_its_extra():
    assert missing_line("onnxruntime.quantization", "runtime 'int8'") == (
        f"runtime 'int8' needs the onnxruntime package, which is not installed: {ONNX}")
    assert missing_line("skimage.data", "x") == ("x needs the scikit-image package, which is not installed: "
                                                 "pip install 'transferlab[samples]'")
    assert missing_line("timm", "timm:NAME") == "timm:NAME needs the timm package, which is not installed: pip install timm"


def test_require_names_a_missing_package_that_an_installed_one_imports(hide, tmp_path, monkeypatch):
    # as Ray Data, which imports pandas: the line names pandas and the extra that brings it
    (tmp_path / "needs_pandas.py").write_text("import pandas\n")
    (tmp_path / "broken_inside.py").write_text("import no_such_module_of_anyone\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hide("pandas")
    with pytest.raises(MissingExtra) as e:
        require("needs_pandas", "--engine ray")
    assert str(e.value) == f"--engine ray needs the pandas package, which is not installed: {RAY}"
    with pytest.raises(ModuleNotFoundError, match="no_such_module_of_anyone"):  # a broken install: not hidden
        require("broken_inside", "x")


@pytest.mark.parametrize("runtime, missing", [("int8", "onnxruntime"), ("onnx", "onnxruntime"), ("onnx", "onnx"),
                                              ("onnx", "onnxscript")])
def test_run_with_an_onnx_runtime(runtime, missing, tiny, tmp_path, capsys, hide):
    hide(missing)
    err = _one_line(capsys, _run(tiny, tmp_path, "--runtime", runtime))
    assert err.endswith(f"runtime {runtime!r} needs the {missing} package, which is not installed: {ONNX}")
    assert not (tmp_path / "out").exists()


def test_bench_with_onnx_runtimes_stops_before_any_child(tiny, capsys, hide):
    hide("onnxruntime")
    err = _one_line(capsys, ["bench", "--data", str(tiny), "--model", "alexnet", "--layer", "pool1", "--images", "2",
                             "--repeats", "1", "--runtime", "onnx", "int8"])
    assert err.endswith(f"runtime 'onnx' needs the onnxruntime package, which is not installed: {ONNX}")


def test_bench_child_reports_the_line_not_its_traceback(tiny, tmp_path):
    """A child without onnxruntime (hidden by a sitecustomize on its PYTHONPATH) ends with the one line."""
    cfg = BenchConfig(data=str(tiny), model="alexnet", layer="pool1", images=2, repeats=1, batch_size=2,
                      runtimes=["onnx"])
    spec = {"name": "extractor-onnx", "config": asdict(cfg), "paths": [], "runtime": "onnx", "numerics": "fp32",
            "runtimes": ["onnx"], "calibration": [], "work": str(tmp_path / "work"), "save": None}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", _hiding_pythonpath(tmp_path, "onnxruntime"))
        with pytest.raises(MissingExtra) as e:
            run_child(spec, tmp_path / "work")
    assert str(e.value) == ("benchmark configuration extractor-onnx: runtime 'onnx' needs the onnxruntime package, "
                            f"which is not installed: {ONNX}")


def test_samples_without_scikit_image(tmp_path, capsys, hide, fresh_cache):
    hide("skimage")  # an empty cache: the sample photos must be made from scikit-image's arrays
    err = _one_line(capsys, ["predict", "alexnet", "--weights", "imagenet-conv", "--samples"])
    assert err.endswith("the sample photo 'chelsea' needs the scikit-image package, which is not installed: "
                        "pip install 'transferlab[samples]'")
    err = _one_line(capsys, ["bench", "--model", "alexnet", "--layer", "pool1", "--images", "2", "--repeats", "1",
                             "--runtime", "eager"])
    assert "needs the scikit-image package" in err and "transferlab[samples]" in err


@pytest.mark.parametrize("missing", ["ray", "pandas", "pyarrow"])
def test_extract_on_ray(missing, tiny, tmp_path, capsys, hide):
    hide(missing)
    err = _one_line(capsys, ["extract", "--data", str(tiny), "--model", "alexnet", "--weights", "imagenet-conv",
                             "--layer", "pool1", "--engine", "ray", "--out", str(tmp_path / "store"), "--quiet"])
    what = "the Parquet feature store" if missing == "pyarrow" else "--engine ray"
    assert err.endswith(f"{what} needs the {missing} package, which is not installed: {RAY}")


def test_parquet_store_without_pyarrow(tiny, tmp_path, capsys, hide):
    hide("pyarrow")
    line = f"the Parquet feature store needs the pyarrow package, which is not installed: {RAY}"
    err = _one_line(capsys, ["extract", "--data", str(tiny), "--model", "alexnet", "--weights", "imagenet-conv",
                             "--layer", "pool1", "--out", str(tmp_path / "store"), "--quiet", "--workers", "0"])
    assert err.endswith(line)
    assert not (tmp_path / "store").exists()  # said before any extraction
    (tmp_path / "features").mkdir()
    assert _one_line(capsys, ["run", "--features", str(tmp_path / "features"), "--quiet"]).endswith(line)


def test_a_real_process_without_onnxruntime_prints_one_line(tiny, tmp_path):
    """The installed command as a user runs it: the last line on stderr, exit status 2, no traceback."""
    env = {**os.environ, "PYTHONPATH": _hiding_pythonpath(tmp_path, "onnxruntime")}
    proc = subprocess.run([sys.executable, "-m", "transferlab.cli.main", *_run(tiny, tmp_path, "--runtime", "int8")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().splitlines() == [
        f"transferlab run: error: runtime 'int8' needs the onnxruntime package, which is not installed: {ONNX}"]
