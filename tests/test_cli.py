"""The command line itself: a parser built without heavy imports, --version, and help for every command and option."""
from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import transferlab
from transferlab.cli.main import HelpFormatter, build_parser, main
from transferlab.cli.parsers import PARSERS

SRC = str(Path(transferlab.__file__).resolve().parents[1])
HEAVY = ("torch", "sklearn", "matplotlib", "scipy", "pandas", "pyarrow", "ray")


def _modules_after(argv: list[str]) -> list:
    """Exit status of ``transferlab ARGV`` in a fresh interpreter, and the heavy packages it imported."""
    code = ("import json, sys\nfrom transferlab.cli.main import main\n"
            f"try:\n    rc = main({argv!r})\nexcept SystemExit as e:\n    rc = e.code\n"
            f"print(json.dumps([rc, sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    rc, heavy = json.loads(out.strip().splitlines()[-1])
    return [rc, heavy]


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["study", "--help"], ["--version"]])
def test_help_and_version_import_no_torch_sklearn_or_matplotlib(argv):
    # measured with `time` and `python -X importtime -m transferlab.cli.main --help`: 0.08-0.12 s of CPU (0.19-0.39 s wall
    # on the loaded 2-core machine) against 6-7 s of CPU before; a timing would be flaky, the imported modules are not
    assert _modules_after(argv) == [0, []]


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"transferlab {transferlab.__version__}\n"
    assert transferlab.__version__ == importlib.metadata.version("transferlab")


def _subparsers():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.choices and set(a.choices) == set(PARSERS)]
    return sub.choices


def test_every_command_has_a_one_line_description_and_every_option_help_with_its_default():
    commands = _subparsers()
    assert list(commands) == list(PARSERS)
    for name, p in commands.items():
        assert p.description and "\n" not in p.description and p.description.endswith("."), name
        assert not p.description.startswith("``"), name
        for action in p._actions:
            if action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}: no help"
            shown = HelpFormatter(name)._get_help_string(action)
            unset = action.default in (None, [], ()) or action.default is False
            assert unset or "default" in shown, f"{name} {action.option_strings}: default not shown"
        assert p.formatter_class is HelpFormatter
    # the description that used to stop mid-sentence at the docstring's first line break
    assert commands["finetune"].description == (
        "A new N-way head on a pretrained backbone, trained alone (on cached features), with the last block, or "
        "with the whole network; compared with the linear SVM on the same split.")


def test_help_shows_defaults_and_the_new_default_layer_and_protocol(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--batch-size BATCH_SIZE images per forward pass (default: 16)" in out
    assert "relu7 for VGG and AlexNet when the weights reach it, else pool5; avgpool for EfficientNet-Lite" in out
    assert "else holdout:0.25" in out and "(default: auto)" in out
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    assert "(default: avg)" in " ".join(capsys.readouterr().out.split())  # a list default, shown as its items


def test_public_api_loads_on_first_use_and_import_stays_light():
    code = ("import json, sys\nimport transferlab\nlight = 'torch' not in sys.modules\n"
            "names = sorted(n for n in transferlab.__all__ if n != '__version__')\n"
            "objs = [getattr(transferlab, n) for n in names]\n"
            "assert callable(transferlab.finetune) and transferlab.finetune.FinetuneConfig is transferlab.FinetuneConfig\n"
            "print(json.dumps([light, names, [getattr(o, '__module__', o.__name__) for o in objs], 'vgg16' in transferlab.list_models()]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    light, names, modules, has_vgg16 = json.loads(out.strip().splitlines()[-1])
    assert light and has_vgg16
    assert names == ["Extractor", "FeatureExtractor", "FinetuneConfig", "Preprocess", "RunConfig", "finetune",
                     "list_models", "load_classifier", "load_model", "run_experiment"]
    assert all(m.startswith("transferlab.") for m in modules)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        transferlab.nope
