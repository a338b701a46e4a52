"""Transfer learning on small image datasets: pretrained CNN features, classical classifiers, fine-tuning, reports."""

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here
