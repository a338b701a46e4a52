"""Transfer learning on small image datasets: pretrained CNN features, classical classifiers, fine-tuning, reports."""


def __getattr__(name: str):
    """``__version__``, read from the installed package's metadata on first use (importlib.metadata is slow to
    import, and ``transferlab --help`` should not pay for it)."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("transferlab")
    except PackageNotFoundError:  # a source tree that was never installed (PYTHONPATH=src)
        found = "0+unknown"
    globals()["__version__"] = found
    return found
