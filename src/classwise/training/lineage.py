"""Model lineage: what a saved model was trained on, and the check before it is used.

The train node stores fingerprints of the dataset and the split, and the class
names, in the model's config; evaluate (and every other consumer of a saved
model) calls ``check_lineage`` or ``check_class_names`` first, so that a model is
never measured on images it trained on, nor asked about classes it never knew.
Plain Python over numpy and pandas; no Kedro imports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from classwise.core.errors import ModelError
from classwise.data.sources.base import LabelledImages
from classwise.training.checkpoint import fingerprint

log = logging.getLogger(__name__)

RETRAIN = "rerun training (kedro run --pipelines=train)"
RESPLIT = "or rerun the data pipeline with the parameters the model was trained with"


def dataset_fingerprint(data: LabelledImages) -> str:
    """A short hash of every pixel, label, class name and id."""
    return fingerprint({}, data.images, np.asarray(data.labels, dtype=np.int64),
                       np.asarray(data.class_names, dtype=str), np.asarray(data.ids, dtype=str))


def model_fingerprint(model: Mapping[str, Any]) -> str:
    """A short hash of a saved model's weights and config (not when it was trained): equal for a rerun that
    trained the same weights, so an unchanged model is not registered again."""
    config = {k: v for k, v in model["config"].items() if k != "trained_at"}
    state = model["state_dict"]
    # As bytes, so any dtype (bf16 included) hashes the same way.
    return fingerprint(config, *(state[k].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
                                 for k in sorted(state)))


def describe_model(model: Mapping[str, Any], where: str, registered: str | None = None,
                   fingerprint_: str | None = None) -> str:
    """One line naming a model: where it came from, its network, when it was trained, its fingerprint
    (``fingerprint_`` when the caller has it already)."""
    config = model["config"]
    trained = config.get("trained_at", "at an unrecorded time")
    parts = [f"{where}", f"{config.get('name', '?')} best epoch {config.get('best_epoch', '?')}",
             f"trained {trained}", f"fingerprint {fingerprint_ or model_fingerprint(model)}"]
    if registered:
        parts.append(f"registered as {registered}")
    return ", ".join(parts)


def split_fingerprint(split: pd.DataFrame) -> str:
    """A short hash of which image is in which subset (row order does not matter)."""
    rows = split.sort_values("id", kind="stable")
    return fingerprint({}, rows["id"].to_numpy(dtype=str), rows["subset"].astype(str).to_numpy(dtype=str),
                       rows["label"].to_numpy(dtype=np.int64))


def lineage(data: LabelledImages, split: pd.DataFrame) -> dict[str, Any]:
    """What to store in a model's config so that its users can check it."""
    return {
        "dataset_fingerprint": dataset_fingerprint(data),
        "split_fingerprint": split_fingerprint(split),
        "class_names": list(data.class_names),
    }


def _differences(known: Sequence[str], given: Sequence[str]) -> str:
    missing = [c for c in known if c not in given]
    extra = [c for c in given if c not in known]
    parts = []
    if extra:
        parts.append(f"new classes {', '.join(map(repr, extra[:5]))}{' ...' if len(extra) > 5 else ''}")
    if missing:
        parts.append(f"missing classes {', '.join(map(repr, missing[:5]))}{' ...' if len(missing) > 5 else ''}")
    return "; ".join(parts) or "the same classes in another order"


def check_class_names(config: Mapping[str, Any], class_names: Sequence[str], model: str = "The model") -> None:
    """Refuse when the model's classes are not exactly ``class_names``, in order."""
    known = config.get("class_names")
    if known is None:
        if config.get("num_classes") not in (None, len(class_names)):
            raise ModelError(
                f"{model} predicts {config['num_classes']} classes but the data has {len(class_names)}; "
                f"{RETRAIN} {RESPLIT}."
            )
        return
    if list(known) != list(class_names):
        raise ModelError(
            f"{model} was trained on {len(known)} classes but the data has {len(class_names)} "
            f"({_differences(list(known), list(class_names))}); {RETRAIN} {RESPLIT}."
        )


def check_lineage(config: Mapping[str, Any], data: LabelledImages, split: pd.DataFrame,
                  model: str = "The model") -> None:
    """Refuse a dataset or split other than the ones the model was trained on, with one sentence.

    A model saved before fingerprints were stored is used with a warning.
    """
    check_class_names(config, data.class_names, model)
    if "dataset_fingerprint" not in config or "split_fingerprint" not in config:
        log.warning("%s carries no dataset or split fingerprint (saved by an older version), so it cannot be "
                    "checked against the data; %s to add them.", model, RETRAIN)
        return
    now = dataset_fingerprint(data)
    if config["dataset_fingerprint"] != now:
        raise ModelError(
            f"{model} was trained on another dataset (fingerprint {config['dataset_fingerprint']}, the "
            f"dataset now is {now}): its images or labels changed since training; {RETRAIN} {RESPLIT}."
        )
    now = split_fingerprint(split)
    if config["split_fingerprint"] != now:
        raise ModelError(
            f"{model} was trained on another split (fingerprint {config['split_fingerprint']}, the split now "
            f"is {now}), so some val or test images may have been training images; {RETRAIN} {RESPLIT}."
        )
