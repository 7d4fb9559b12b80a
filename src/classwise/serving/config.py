"""Parameters of the predict pipeline and of the MLflow Model logged after training."""

from __future__ import annotations

from dataclasses import dataclass

from classwise.core.errors import ConfigError


@dataclass
class PredictConfig:
    input: str | None = None  # an image file or a folder of images (nested folders allowed)
    top_k: int = 5  # classes listed per image, most probable first
    model_uri: str | None = None  # e.g. models:/classwise/3; None = data/06_models/model.pt
    registered_model_name: str | None = "classwise"  # registry name after training; None = log, do not register
    log_model: bool = True  # log an MLflow Model at the end of every training run
    batch_size: int = 256  # images per forward pass
    device: str = "auto"  # auto (CUDA when present, else CPU), cpu, cuda, ...
    workers: int | None = None  # decoding processes; None = one a CPU core
    contact_sheet_images: int = 48  # images on the contact sheet, in file order
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        for key in ("top_k", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"Parameter 'predict.{key}' is {getattr(self, key)}; set it to 1 or more.")
        if self.contact_sheet_images < 0:
            raise ConfigError(
                f"Parameter 'predict.contact_sheet_images' is {self.contact_sheet_images}; set it to 0 or more."
            )
        if self.workers is not None and self.workers < 1:
            raise ConfigError(
                f"Parameter 'predict.workers' is {self.workers}; set it to 1 or more, or null for one a core."
            )
        if self.model_uri is not None and not self.model_uri.strip():
            raise ConfigError("Parameter 'predict.model_uri' is empty; set e.g. models:/classwise/3, or null.")
