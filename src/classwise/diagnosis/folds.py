"""Out-of-fold class probabilities: K models, each trained on K-1 folds, each predicting the fold it never saw."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold
from torch import nn
from tqdm.auto import tqdm

from classwise.core.errors import ConfigError
from classwise.models import build_model
from classwise.training import TrainConfig, fit, predict_proba

log = logging.getLogger(__name__)


def _bar(folds: range, progress: bool):
    return tqdm(folds, desc="folds", mininterval=1.0) if progress else folds


MIN_FOLDS = 2  # DiagnoseConfig refuses fewer, so advice never goes below it


def check_fold_sizes(labels: np.ndarray, class_names: list[str], folds: int) -> None:
    """Refuse a class with fewer images than folds: some fold would hold none of it.

    The fix offered is one the parameter check accepts: fewer folds only while every class
    still has ``MIN_FOLDS`` images, else more images or one class fewer.
    """
    counts = np.bincount(labels, minlength=len(class_names))
    small = [(class_names[c], int(n)) for c, n in enumerate(counts) if n < folds]
    if not small:
        return
    listed = "; ".join(f"'{name}' has {n}" for name, n in small)
    fewest = min(n for _, n in small)
    images = "image" if small[-1][1] == 1 else "images"
    the_class, it, each = ("the class", "it", "") if len(small) == 1 else ("these classes", "them", " each")
    if fewest >= MIN_FOLDS:
        fix = f"lower diagnose.folds to at most {fewest} or add images to {the_class}"
    else:
        fix = (f"add images to {the_class} (at least {folds}{each}) or remove {it} from the data, since "
               f"diagnose.folds cannot be lower than {MIN_FOLDS}")
    raise ConfigError(f"Class {listed} {images}, fewer than diagnose.folds={folds}; {fix}.")


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each image: every class spread evenly over the folds, seeded."""
    fold_of = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        fold_of[held_out] = k
    return fold_of


@dataclasses.dataclass
class OutOfFold:
    probabilities: np.ndarray  # (N, classes) float32, row i from the model that did not train on image i
    fold: np.ndarray  # (N,) fold of each image
    history: list[dict[str, float]]  # one row a fold and epoch: fold, epoch, losses, accuracies, ...
    # (N, K x width) float32: every image through every fold model's penultimate layer, each model's part
    # L2-normalised and the whole divided by sqrt(K), so a cosine distance is the mean of the K models' ones.
    embeddings: np.ndarray | None = None
    # (N,) the area under the margin (training.dynamics) while the K-1 fold models that trained on an image
    # did so, over all their observations of it; NaN for an image no plain batch held
    aum: np.ndarray | None = None


def penultimate_and_probabilities(network: nn.Module, images: np.ndarray, mean: Sequence[float],
                                  std: Sequence[float], device: str, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(features into the final linear layer ``fc``, softmax probabilities) of every image, in one pass."""
    head = getattr(network, "fc", None)
    if not isinstance(head, nn.Linear):
        raise ConfigError(f"The network {type(network).__name__} has no final linear layer named 'fc', so its "
                          f"embeddings cannot be read for the data audit; use a network of "
                          f"classwise.models.available_models().")
    captured: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda module, args, out: captured.append(args[0].detach().float().cpu()))
    try:
        probabilities = predict_proba(network, images, mean, std, device=device, batch_size=batch_size)
    finally:
        handle.remove()
    features = torch.cat(captured).numpy() if captured else np.zeros((0, head.in_features), np.float32)
    return features, probabilities


def out_of_fold_probabilities(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    mean: Sequence[float],
    std: Sequence[float],
    recipe: TrainConfig,
    folds: int,
    seed: int,
    batch_size: int = 1024,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> OutOfFold:
    """Train one model a fold with the project's training core and predict the held-out fold.

    The held-out fold is passed to ``fit`` as its validation set only so that each epoch
    reports held-out accuracy; the probabilities come from the weights after the last
    epoch, not the best-by-validation ones, because choosing an epoch on the held-out
    fold would let its labels leak into its own predictions. With ``recipe.checkpoint_dir``
    set every fold is checkpointed and resumes like training (the checkpoint is named by
    the fold's data, so folds never share one).
    """
    check_fold_sizes(labels, class_names, folds)
    num_classes = len(class_names)
    fold_of = stratified_folds(labels, folds, seed)
    probabilities = np.zeros((len(labels), num_classes), dtype=np.float32)
    history: list[dict[str, float]] = []
    parts: list[np.ndarray] = []
    margin_sum, observations = np.zeros(len(labels)), np.zeros(len(labels))
    for k in _bar(range(folds), recipe.progress):
        held_out = np.flatnonzero(fold_of == k)
        trained_on = np.flatnonzero(fold_of != k)
        log.info("Fold %d/%d: training on %d images, predicting %d.", k + 1, folds, len(trained_on), len(held_out))
        result = fit(
            images[trained_on], labels[trained_on], images[held_out], labels[held_out],
            num_classes=num_classes, mean=mean, std=std, cfg=recipe,
            on_epoch_end=None if on_epoch_end is None else (lambda row, k=k: on_epoch_end(k, row)),
        )
        history.extend({"fold": k, **row} for row in result.history)
        seen = result.dynamics["observations"]
        observations[trained_on] += seen
        margin_sum[trained_on] += np.where(seen > 0, np.nan_to_num(result.dynamics["aum"]) * seen, 0.0)
        network = build_model(recipe.model, num_classes, **recipe.model_options)
        network.load_state_dict(result.last_state)
        features, every = penultimate_and_probabilities(network, images, mean, std, recipe.device, batch_size)
        probabilities[held_out] = every[held_out]
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        parts.append(features / np.maximum(norms, 1e-12) / np.sqrt(folds))
        accuracy = float((probabilities[held_out].argmax(1) == labels[held_out]).mean())
        log.info("Fold %d/%d: held-out accuracy %.4f.", k + 1, folds, accuracy)
    return OutOfFold(probabilities=probabilities, fold=fold_of, history=history,
                     embeddings=np.concatenate(parts, axis=1).astype(np.float32),
                     aum=np.where(observations > 0, margin_sum / np.maximum(observations, 1), np.nan))
