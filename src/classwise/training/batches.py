"""The batch source: device-resident uint8 images -> augmented batches, one epoch at a time.

Each epoch draws an index order on the device (a shuffle, or class-balanced draws with
replacement), and each batch is gathered, augmented and CutMixed there, so no image
crosses to the host. CutMix's scalars come from a host numpy Generator: no device sync.

``prefetched`` overlaps that preparation with the training step: batch k+1 is prepared on a
background thread while step k computes (torch ops release the GIL). The thread draws the
same random numbers in the same order as the plain loop, so a seed gives the same weights.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

import numpy as np
import torch

from classwise.training.augment import augment_batch
from classwise.training.cutmix import cutmix
from classwise.training.sampling import epoch_indices

T = TypeVar("T")
_DONE = object()


class DeviceBatches:
    def __init__(
        self,
        images: torch.Tensor,  # uint8 (N, 3, H, W) on the training device
        labels: torch.Tensor,  # int64 (N,) on the same device
        num_classes: int,
        batch_size: int,
        augment: str,  # a name from training.augment.AUGMENTATIONS
        oversample: bool,  # class-balanced draws (WeightedRandomSampler semantics) instead of a shuffle
        cutmix_p: float,  # probability a batch gets CutMix; 0 = off
        cutmix_alpha: float,  # box area ratio ~ Beta(alpha, alpha)
        generator: torch.Generator,  # on the device: order, augmentation, CutMix partners
        host_rng: np.random.Generator,  # CutMix's per-batch scalars
        shard: tuple[int, int] = (0, 1),  # (rank, world) of a data-parallel training: keep this slice of each batch
    ) -> None:
        self.images, self.labels, self.num_classes, self.batch_size = images, labels, num_classes, batch_size
        self.augment, self.oversample = augment, oversample
        self.cutmix_p, self.cutmix_alpha = cutmix_p, cutmix_alpha
        self.generator, self.host_rng = generator, host_rng
        self.rank, self.world = shard

    def __len__(self) -> int:
        """Steps an epoch (a last batch of under 2 images a replica is dropped: BatchNorm cannot train on it)."""
        full, rest = divmod(len(self.labels), self.batch_size)
        return full + (rest // self.world >= 2)

    def order(self) -> torch.Tensor:
        """The image indices of one epoch."""
        return epoch_indices(self.labels, self.num_classes, self.oversample, self.generator)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(augmented uint8 images, targets (labels, or soft targets under CutMix), labels, rows) at ``idx``.

        ``rows`` are the dataset rows of the images when each is one image (the training
        dynamics record them), None when CutMix mixed the batch.

        A data-parallel replica augments the whole global batch, drawing exactly what one
        process would, and keeps its equal slice: the replicas' random states never diverge,
        so rank 0's checkpoint holds them all, at the cost of augmenting ``world`` times the
        images (batched uint8 work, small beside the network's forward and backward).
        """
        xb = augment_batch(self.images[idx], self.augment, self.generator)
        yb = self.labels[idx]
        target, rows = yb, idx
        if self.cutmix_p > 0:
            plain = xb
            xb, target = cutmix(xb, yb, self.num_classes, self.cutmix_p, self.cutmix_alpha, self.host_rng,
                                self.generator)
            rows = idx if xb is plain else None
        if self.world > 1:
            per = len(idx) // self.world
            keep = slice(self.rank * per, (self.rank + 1) * per)
            xb, target, yb = xb[keep], target[keep], yb[keep]
            rows = None if rows is None else rows[keep]
        return xb, target, yb, rows

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        order = self.order()
        for step in range(len(self)):
            yield self.batch(order[step * self.batch_size : (step + 1) * self.batch_size])


def prefetched(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield ``items`` in order, producing up to ``depth`` of them ahead on a background thread.

    The producer is the only user of the batch source's random generators while the epoch runs,
    and it finishes the epoch before this returns, so the generators end where the plain loop
    leaves them (a checkpoint after the epoch saves the same state). An error in the producer is
    raised here; leaving the loop early (an error in the step, Ctrl-C) stops the producer.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        """Put ``item`` in the queue unless the consumer has left; True when it was put."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the consumer, raised in the training thread
            offer(exc)

    worker = threading.Thread(target=produce, name="classwise-batches", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
