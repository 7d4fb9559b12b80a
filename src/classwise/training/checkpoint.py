"""Per-epoch checkpoints: written atomically, loaded safely, keyed by a config fingerprint.

A checkpoint holds everything the loop needs to continue as if it had never
stopped: weights, optimizer state, the epoch, the history so far, the best
weights, and every random state (python, numpy, torch CPU and CUDA, the loop's
own generators). Its file name carries a fingerprint of the training
configuration and the training data, so a changed configuration finds no
checkpoint and starts fresh (the loop logs that) instead of resuming silently.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from classwise.core.atomic import atomic_write
from classwise.core.errors import RunError

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
CHECKPOINT_KEYS = frozenset({"format", "config", "epoch", "model", "optimizer", "history", "best", "rng"})
OPTIONAL_CHECKPOINT_KEYS = frozenset({"dynamics"})  # absent from an earlier Classwise's checkpoints

# Keys that do not change what is trained: how long, where to write, how to show it.
# ``epochs`` is left out so that raising it continues a finished run.
NOT_FINGERPRINTED = frozenset({"epochs", "progress", "checkpoint_dir", "resume", "eval_batch_size"})


def fingerprint(config: dict[str, Any], *arrays: np.ndarray) -> str:
    """A short hash of the training configuration (less NOT_FINGERPRINTED) and the data arrays."""
    h = hashlib.blake2b(digest_size=8)
    kept = {k: v for k, v in sorted(config.items()) if k not in NOT_FINGERPRINTED}
    h.update(json.dumps(kept, sort_keys=True, default=str).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.reshape(-1).view(np.uint8).data if a.size else b"")
    return h.hexdigest()


def checkpoint_path(directory: str | os.PathLike, model: str, fp: str) -> Path:
    return Path(directory) / f"{model}-{fp}.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary file and an atomic rename.

    A kill at any moment leaves either the previous complete checkpoint or the new one.
    """
    with atomic_write(path, fsync=True) as f:
        torch.save(state, f)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (tensors on the CPU), or None when there is none."""
    if not path.is_file():
        return None
    fix = "delete it or set train.resume to false to train from scratch"
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunError(
            f"Cannot read the checkpoint '{path}' ({type(exc).__name__}: it is damaged or not a Classwise "
            f"checkpoint); {fix}."
        ) from exc
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT or not CHECKPOINT_KEYS <= set(blob):
        found = sorted(map(str, blob)) if isinstance(blob, dict) else [type(blob).__name__]
        raise RunError(
            f"The checkpoint '{path}' loads but is not a format-{CHECKPOINT_FORMAT} Classwise checkpoint "
            f"(it holds {', '.join(found) or 'nothing'}); {fix}."
        )
    return blob


class CheckpointLock:
    """An exclusive lock on one checkpoint, held while a training writes it.

    ``fcntl.flock`` on a sidecar ``<checkpoint>.lock`` file: the kernel drops it when
    the process ends however it ends (kill -9 included), so a stale lock never blocks
    a rerun. A second training of the same configuration on the same data is refused
    instead of writing the same file at the same time.
    """

    def __init__(self, checkpoint: Path) -> None:
        self.path = checkpoint.with_name(checkpoint.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> CheckpointLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise RunError(
                f"The checkpoint '{self.path.with_suffix('')}' is being written by another training of the "
                f"same configuration (process {holder}); wait for it to finish, or set train.checkpoint_dir "
                f"to another folder to train a separate copy."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> CheckpointLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def capture_rng_states(generator: torch.Generator, host_rng: np.random.Generator) -> dict[str, Any]:
    """Every random state a training run draws from, in weights_only-loadable types."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy_global": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]],
        "numpy_host": host_rng.bit_generator.state,
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": generator.get_state(),
    }


def restore_rng_states(states: dict[str, Any], generator: torch.Generator, host_rng: np.random.Generator) -> None:
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, *rest = states["numpy_global"]
    np.random.set_state((name, keys.numpy(), *rest))
    host_rng.bit_generator.state = states["numpy_host"]
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    generator.set_state(states["generator"])


@dataclass
class TrainingState:
    """What a checkpoint restores besides weights, optimizer and random states."""

    history: list[dict[str, float]] = field(default_factory=list)  # one row an epoch
    best_accuracy: float = -1.0  # validation accuracy of the best epoch so far
    best_epoch: int = 0  # 1-based; 0 = none yet
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)  # its weights, on the CPU
    dynamics: torch.Tensor | None = None  # training.dynamics totals after the last epoch, on the CPU

    @property
    def epoch(self) -> int:
        return len(self.history)

    def record(self, row: dict[str, float], model: torch.nn.Module) -> None:
        """Append an epoch; keep its weights when its validation accuracy is the best so far."""
        self.history.append(row)
        # Without a validation subset (NaN accuracy) the last epoch is the one kept.
        if row["val_accuracy"] > self.best_accuracy or math.isnan(row["val_accuracy"]):
            self.best_accuracy, self.best_epoch = row["val_accuracy"], int(row["epoch"])
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def checkpoint_state(config: dict[str, Any], model, optimizer, state: TrainingState,
                     generator: torch.Generator, host_rng: np.random.Generator) -> dict[str, Any]:
    return {
        "format": 1,
        "config": config,
        "epoch": state.epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": state.history,
        "best": {"accuracy": state.best_accuracy, "epoch": state.best_epoch, "state": state.best_state},
        "rng": capture_rng_states(generator, host_rng),
        "dynamics": state.dynamics,
    }


def resume(path: Path, epochs: int, enabled: bool, model, optimizer, state: TrainingState,
           generator: torch.Generator, host_rng: np.random.Generator) -> Path:
    """Load the checkpoint for this configuration into the run; return the file to keep writing.

    A checkpoint that already holds more epochs than asked for is kept as it is, and
    training of ``epochs`` goes to a sibling file whose name carries the epoch budget
    (``<model>-<fingerprint>-<epochs>ep.pt``), so a shorter run never costs a longer one.
    """
    if not enabled:
        log.info("train.resume is false: training from scratch; the checkpoint '%s' will be overwritten.", path)
        return path
    blob = load_checkpoint(path)
    if blob is not None and blob["epoch"] > epochs:
        shorter = path.with_name(f"{path.stem}-{epochs}ep{path.suffix}")
        log.info("The checkpoint '%s' holds %d epochs, more than train.epochs = %d: it is kept, and this "
                 "training goes to '%s'.", path.name, blob["epoch"], epochs, shorter.name)
        path, blob = shorter, load_checkpoint(shorter)
    if blob is None:
        others = sorted(p.name for p in path.parent.glob("*.pt") if p != path) if path.parent.is_dir() else []
        if others:
            log.info("No checkpoint for this configuration and data in %s (only for others: %d files): "
                     "training from scratch.", path.parent, len(others))
        else:
            log.info("No checkpoint at '%s': training from scratch.", path)
        return path
    model.load_state_dict(blob["model"])
    optimizer.load_state_dict(blob["optimizer"])
    restore_rng_states(blob["rng"], generator, host_rng)
    state.history = [dict(row) for row in blob["history"]]
    state.best_accuracy = blob["best"]["accuracy"]
    state.best_epoch = blob["best"]["epoch"]
    state.best_state = blob["best"]["state"]
    state.dynamics = blob.get("dynamics")  # absent from checkpoints of an earlier Classwise
    if blob["epoch"] == epochs:
        log.info("Checkpoint '%s' is complete (%d epochs): reusing its result without training; set "
                 "train.resume to false to train again.", path.name, blob["epoch"])
    else:
        log.info("Resuming from checkpoint '%s' after epoch %d of %d.", path.name, blob["epoch"], epochs)
    return path
