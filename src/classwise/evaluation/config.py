"""The evaluate block of the parameters: what to predict, report and draw."""

from __future__ import annotations

from dataclasses import dataclass, field

from classwise.core.errors import ConfigError
from classwise.core.device import Switch
from classwise.data.split import SUBSETS


@dataclass
class EvaluateConfig:
    subsets: list[str] = field(default_factory=lambda: ["train", "val", "test"])  # subsets to predict
    f1_threshold: float = 0.5  # classes under this F1 are named (the seed: 0.5)
    correlation_subset: str = "val"  # subset whose per-class F1 is set against class size
    bootstrap_resamples: int = 2000  # class resamples for the interval of Pearson r (0: no interval)
    bootstrap_seed: int = 0  # seeds the resampling, so a rerun gives the same interval
    confusion_subset: str = "test"  # subset of the confusion matrix, top confusions, misclassified grid
    top_confusions: int = 20  # rows of top_confusions.csv
    misclassified_images: int = 24  # images in the misclassified grid
    batch_size: int = 1024  # images per forward pass
    device: str = "auto"  # auto, cpu, cuda, ...
    amp: Switch = "auto"  # bf16 autocast; auto: on CUDA and on CPUs with native bf16 (core.device.speed_path)
    channels_last: Switch = "auto"  # NHWC memory layout; auto: as amp
    group_thresholds: list[int] | None = None  # [a, b]: tail under a train images, head over b; None = terciles
    aum_threshold: float = -1.5  # training images with an area under the margin under this are flagged
    logit_adjust_tau: float = 0.0  # post-hoc logit adjustment (0 = off); when on, adjusted_* metrics too

    def __post_init__(self) -> None:
        if self.group_thresholds is not None and (
            len(self.group_thresholds) != 2 or self.group_thresholds[0] > self.group_thresholds[1]
        ):
            raise ConfigError(
                f"Parameter 'evaluate.group_thresholds' is {self.group_thresholds}; give two train counts "
                f"[a, b] with a <= b (tail under a, head over b), or null for terciles."
            )
        if self.logit_adjust_tau < 0:
            raise ConfigError(f"Parameter 'evaluate.logit_adjust_tau' is {self.logit_adjust_tau}; set it 0 or more.")
        for s in [*self.subsets, self.correlation_subset, self.confusion_subset]:
            if s not in SUBSETS:
                raise ConfigError(f"Parameter 'evaluate' names subset '{s}'; use one of {', '.join(SUBSETS)}.")
        for key in ("correlation_subset", "confusion_subset"):
            if getattr(self, key) not in self.subsets:
                raise ConfigError(
                    f"Parameter 'evaluate.{key}' is '{getattr(self, key)}', which is not "
                    f"in 'evaluate.subsets' {self.subsets}; add it there."
                )
        for key in ("bootstrap_resamples", "top_confusions", "misclassified_images"):
            if getattr(self, key) < 0:
                raise ConfigError(f"Parameter 'evaluate.{key}' is {getattr(self, key)}; it must be 0 or more.")
