"""Every study, declared once: its name, the practical's question it answers, the function that runs it, whether
it picks its own layers, and where the report shows it. Light (no torch): the command line lists the studies from
here for ``--help``; the function is imported only when the study runs."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Study:
    """One study of the practical."""

    name: str
    question: str  # the practical's question, as the record and the report word it
    function: str  # ``module:function`` under ``transferlab.studies``
    summary: str  # its line in the report's list of further studies
    own_layers: bool = False  # it chooses its layers itself (the run's default layer does not apply)
    section: str = "further"  # the report section that shows it: a question of the practical (q5…q9) or "further"

    def load(self) -> Callable:
        """The function that runs the study: ``function(cfg, **options) -> StudyRecord``."""
        module, _, name = self.function.partition(":")
        return getattr(importlib.import_module(f"transferlab.studies.{module}"), name)


STUDIES = {s.name: s for s in (
    Study("layers", "What is the impact of the layer at which features are extracted?", "practical:layers",
          "accuracy, dimension and cost of every layer", own_layers=True, section="q8"),
    Study("pooling", "How should a convolutional map become a vector, and is L2 normalisation useful? (Part 3)",
          "practical:pooling", "pooling and L2 normalisation"),
    Study("gray", "15 Scene is grayscale but VGG16 wants RGB: how to get around it?", "practical:gray",
          "grayscale input to an RGB network", section="q9"),
    Study("C", "How to choose the SVM's C — on the training set only? (Part 3)", "practical:c_study",
          "C chosen by cross-validation on the training set"),
    Study("classifiers", "Which classifier on top of the features? (Part 3)", "practical:classifiers",
          "other classifiers on the same features"),
    Study("pca", "Does dimensionality reduction (PCA) before the SVM help? (Part 3)", "practical:pca",
          "PCA before the SVM"),
    Study("backbones", "Other pretrained networks, and their combination? (Part 3)", "practical:backbones",
          "other pretrained networks and their combination", own_layers=True),
    Study("protocol", "Fixed split versus the literature's random 100-per-class protocol", "practical:protocol",
          "the fixed split versus 10 random 100-per-class splits"),
    Study("pretraining", "Why not train VGG16 directly, and what does ImageNet pre-training bring? (Q5, Q6)",
          "practical:pretraining", "pretrained versus random weights", section="q5"),
    Study("fusion", "Late fusion: do several networks' SVM decision values, weighted by cross-validation on train, "
                    "beat concatenating their features?", "fusion:fusion",
          "late fusion of several networks' SVMs, weights by cross-validation on train", own_layers=True),
    Study("tta", "Test-time augmentation: do features averaged over flipped, shifted and rescaled views help the "
                 "SVM?", "augment:tta", "test-time augmentation of the SVM's features"),
    Study("augment", "Training-set augmentation: do the features of flipped, shifted and rescaled training images "
                     "help as extra samples?", "augment:augment", "training-set augmentation for the SVM"),
    Study("orderless", "Orderless pooling of conv5 maps (bilinear, VLAD, Fisher vectors) and larger input sizes: do "
                       "they beat average pooling?", "orderless:orderless", "orderless pooling and input sizes",
          own_layers=True),
)}
