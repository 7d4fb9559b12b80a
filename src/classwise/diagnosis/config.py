"""The diagnose block: folds, the training recipe of each fold, and the thresholds of the evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from classwise.core.errors import ConfigError
from classwise.training import TrainConfig

# cleanlab.filter.find_label_issues's filter_by options for single-label data.
FilterBy = Literal[
    "prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
    "low_normalized_margin", "low_self_confidence",
]


def default_fold_recipe() -> TrainConfig:
    """The fold models' CPU recipe of conf/base: a width-8 ResNet-18, 6 epochs, float32 where bf16 is emulated."""
    return TrainConfig(model_options={"width": 8}, epochs=6, milestones=[4])


@dataclass
class DiagnoseConfig:
    folds: int = 4  # K of the stratified K-fold; every image is predicted by the model that did not see it
    seed: int = 0  # seeds the fold assignment
    recipe: TrainConfig = field(default_factory=default_fold_recipe)  # how each fold model is trained
    filter_by: FilterBy = "prune_by_noise_rate"  # cleanlab's rule for which images are label issues
    cleanlab_jobs: int | None = 1  # cleanlab worker processes; None = one a CPU core
    issues_in_figure: int = 24  # suspects drawn in label_issues.png, most suspect first
    f1_threshold: float = 0.5  # a class under this F1 is weak (the seed: 0.5)
    few_images_quantile: float = 0.1  # a class in this lowest share of train counts has "few images"
    confusion_rate: float = 0.15  # a partner taking this share of a class's images is named as a look-alike
    mislabel_share: float = 0.1  # this share of a class's images flagged is named as suspected mislabels
    classes_in_figure: int = 20  # weakest classes drawn in class_diagnosis.png
    bootstrap_resamples: int = 2000  # class resamples for the 95% interval of Pearson r (0: no interval)
    bootstrap_seed: int = 0  # seeds the resampling
    batch_size: int = 1024  # images per forward pass when predicting a held-out fold
    # The reliability gate (diagnosis.evidence.fold_reliability): mislabel verdicts are held back when the fold
    # models' out-of-fold top-1 is under min_oof_accuracy, or under this share of the trained model's val top-1.
    min_oof_accuracy: float = 0.5
    min_share_of_trained: float = 0.75

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ConfigError(
                f"Parameter 'diagnose.folds' is {self.folds}; out-of-fold prediction needs at least 2 folds, "
                f"so set it to 2 or more (4 is the default)."
            )
        for key in ("f1_threshold", "few_images_quantile", "confusion_rate", "mislabel_share", "min_oof_accuracy",
                    "min_share_of_trained"):
            value = getattr(self, key)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"Parameter 'diagnose.{key}' is {value}; set it between 0 and 1.")
        for key in ("issues_in_figure", "classes_in_figure", "bootstrap_resamples"):
            if getattr(self, key) < 0:
                raise ConfigError(f"Parameter 'diagnose.{key}' is {getattr(self, key)}; set it to 0 or more.")
        if self.batch_size < 1:
            raise ConfigError(f"Parameter 'diagnose.batch_size' is {self.batch_size}; set it to 1 or more.")
        if self.cleanlab_jobs is not None and self.cleanlab_jobs < 1:
            raise ConfigError(
                f"Parameter 'diagnose.cleanlab_jobs' is {self.cleanlab_jobs}; set it to 1 or more, or null."
            )
