"""The optional packages and the extra that installs each: one place that turns a missing package into one line
(``pip install 'transferlab[onnx]'``) wherever it is imported."""
from __future__ import annotations

import importlib
from types import ModuleType

# top-level module -> the extra of pyproject.toml that installs it
EXTRAS = {"onnx": "onnx", "onnxruntime": "onnx", "onnxscript": "onnx", "ray": "ray", "pyarrow": "ray",
          "pandas": "ray", "skimage": "samples"}
# top-level module -> the name pip knows it by, where the two differ
DISTRIBUTIONS = {"skimage": "scikit-image"}


class MissingExtra(RuntimeError):
    """An optional package is not installed; the message names the extra that installs it."""


def missing_line(module: str, purpose: str) -> str:
    """The one line for a missing ``module``: what needs it, and the command that installs it."""
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    package = DISTRIBUTIONS.get(top, top)
    how = f"pip install 'transferlab[{extra}]'" if extra else f"pip install {package}"
    return f"{purpose} needs the {package} package, which is not installed: {how}"


def require(module: str, purpose: str) -> ModuleType:
    """``module`` imported, or :class:`MissingExtra` with :func:`missing_line` (``purpose``: what needs it).

    A missing package that ``module`` itself imports is named instead when it is one of ours too (Ray Data
    without pandas names pandas); any other import failure inside ``module`` is a broken install, not hidden."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        missing = (e.name or module).split(".")[0]
        if missing != module.split(".")[0] and missing not in EXTRAS:
            raise  # the package is there but something it imports is broken: not ours to hide
        raise MissingExtra(missing_line(missing, purpose)) from None
