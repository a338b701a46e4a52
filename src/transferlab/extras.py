"""The optional packages and the extra that installs each: one place that turns a missing package into one line
(``pip install 'transferlab[onnx]'``) wherever it is imported."""
from __future__ import annotations

import importlib
from types import ModuleType

# top-level module -> the extra of pyproject.toml that installs it
EXTRAS = {"onnx": "onnx", "onnxruntime": "onnx", "onnxscript": "onnx", "ray": "ray", "pyarrow": "ray",
          "pandas": "ray", "skimage": "samples"}


class MissingExtra(RuntimeError):
    """An optional package is not installed; the message names the extra that installs it."""


def missing_line(module: str, purpose: str) -> str:
    """The one line for a missing ``module``: what needs it, and the command that installs it."""
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    how = f"pip install 'transferlab[{extra}]'" if extra else f"pip install {top}"
    return f"{purpose} needs the {top} package, which is not installed: {how}"


def require(module: str, purpose: str) -> ModuleType:
    """``module`` imported, or :class:`MissingExtra` with :func:`missing_line` (``purpose``: what needs it)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if e.name and e.name.split(".")[0] != module.split(".")[0]:
            raise  # the package is there but something it imports is broken: not ours to hide
        raise MissingExtra(missing_line(module, purpose)) from None
