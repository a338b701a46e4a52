"""Transfer learning on small image datasets: pretrained CNN features, classical classifiers, fine-tuning, reports."""
import importlib

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here

# the public API: name -> module, imported on first use so that `import transferlab` (and the CLI's --help) stay light
_API = {"list_models": "transferlab.models.registry", "load_model": "transferlab.models.builder",
        "Extractor": "transferlab.features.extractor", "FeatureExtractor": "transferlab.features.transformer",
        "RunConfig": "transferlab.config", "run_experiment": "transferlab.experiment",
        "finetune": "transferlab.finetune", "FinetuneConfig": "transferlab.finetune.config",
        "Preprocess": "transferlab.data.transforms", "load_classifier": "transferlab.deploy.saved"}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'transferlab' has no attribute {name!r}")
    module = importlib.import_module(_API[name])
    value = module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)  # finetune: a callable package
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
