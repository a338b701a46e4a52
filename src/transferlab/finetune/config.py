"""Fine-tuning settings: the experiment's :class:`RunConfig` (data, model, weights, split, seed, batch size,
workers, device, cache, progress) composed with what training adds, and their one flat form for records and
checkpoints."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from transferlab.config import RunConfig
from transferlab.options import FINETUNE_MODES as MODES, OPTIMIZERS

# what fine-tuning takes from the run; its other fields must keep their defaults: fine-tuning picks the layer (the
# head's) itself, and the image loop reads images the weights' own way, in fp32
RUN_FIELDS = ("data", "model", "weights", "protocol", "train_per_class", "limit_per_class", "seed", "batch_size",
              "workers", "device", "cache", "progress")
NOT_RESUMED_ON = ("out", "workers", "device", "cache", "compare_svm", "progress")


@dataclass
class FinetuneConfig:
    """One fine-tuning: ``run`` says on what (its :data:`RUN_FIELDS`), the rest how to train; ``None`` means the
    mode's default (:meth:`resolved`)."""

    run: RunConfig
    out: str
    mode: str = "head"
    epochs: int | None = None  # default: 60 for head, 10 otherwise
    optimizer: str = "adamw"
    lr: float | None = None  # head's learning rate; default AdamW 1e-3, SGD 1e-2
    backbone_lr_scale: float = 0.1  # the backbone's learning rate = lr × this
    weight_decay: float | None = None  # default AdamW 0.01, SGD 1e-4 (not on biases and norms)
    label_smoothing: float = 0.1
    patience: int | None = None  # epochs without validation improvement; default 10 for head, 3 otherwise
    val_fraction: float = 0.1
    augment: bool = True
    crop_scale: float = 0.5  # random resized crop: area fraction from crop_scale to 1
    bn: str = "frozen"  # BatchNorm statistics: frozen (ImageNet's, eval mode) or train (only in trained steps)
    init_head: str = "lp"  # image modes: start from the head trained on cached features (lp) or a random one
    compare_svm: bool = True

    def resolved(self) -> "FinetuneConfig":
        """Checked, with the mode's defaults filled in."""
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.bn not in ("frozen", "train"):
            raise ValueError(f"--bn must be frozen or train, not {self.bn!r}")
        if self.init_head not in ("lp", "random"):
            raise ValueError(f"--init-head must be lp or random, not {self.init_head!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError("--val-fraction must be between 0 and 1")
        default = RunConfig(data=self.run.data)
        for f in fields(RunConfig):
            if f.name not in RUN_FIELDS and getattr(self.run, f.name) != getattr(default, f.name):
                raise ValueError(f"fine-tuning does not take the run's {f.name}={getattr(self.run, f.name)!r}; "
                                 f"leave it at {getattr(default, f.name)!r}")
        head = self.mode == "head"
        sgd = self.optimizer == "sgd"
        return replace(
            self, epochs=self.epochs or (60 if head else 10), lr=self.lr or (1e-2 if sgd else 1e-3),
            weight_decay=self.weight_decay if self.weight_decay is not None else (1e-4 if sgd else 0.01),
            patience=self.patience or (10 if head else 3))

    @property
    def trains_probe(self) -> bool:
        """Whether a head is trained on cached features: the ``head`` mode, or the image modes' ``lp`` start."""
        return self.mode == "head" or self.init_head == "lp"

    def as_dict(self) -> dict:
        """The flat settings, as ``finetune.json``, ``model.pth`` and checkpoints record them."""
        own = asdict(self)
        del own["run"]
        return {**{k: getattr(self.run, k) for k in RUN_FIELDS}, **own}

    @classmethod
    def from_dict(cls, d: dict) -> "FinetuneConfig":
        """The config of flat settings (:meth:`as_dict`'s form; a missing run field takes RunConfig's default)."""
        own = {f.name for f in fields(cls)} - {"run"}
        unknown = [k for k in d if k not in own and k not in RUN_FIELDS]
        if unknown:
            raise ValueError(f"unknown fine-tuning setting {unknown[0]!r}")
        return cls(run=RunConfig(**{k: d[k] for k in RUN_FIELDS if k in d}), **{k: d[k] for k in own if k in d})

    def identity(self) -> dict:
        """What a checkpoint must agree on to be resumed."""
        return {k: v for k, v in self.as_dict().items() if k not in NOT_RESUMED_ON}

    def features_run(self, layer: str, pool: str, **extra) -> RunConfig:
        """The run on the head's layer: its cached features train the probe, and its SVM is the comparison."""
        return RunConfig(**{k: getattr(self.run, k) for k in RUN_FIELDS}, layers=[layer], pool=pool, **extra)
