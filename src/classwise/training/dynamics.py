"""Training dynamics: what the network thought of each training image while it trained on it.

Two per-image signals of mislabelled images, read off the training step's own logits (no
extra forward pass) and accumulated on the device:

- **AUM**, the area under the margin (Pleiss et al., 2020): the mean over the epochs of the
  given class's logit minus the largest other logit. A mislabelled image keeps a negative
  margin for long, because the images of its true class pull the other way; a hard but
  correct image climbs above zero as the network learns it.
- **Confidence and variability** (dataset cartography, Swayamdipta et al., 2020): the mean and
  the standard deviation over the epochs of the softmax probability of the given class.
  Hard-to-learn images (low confidence, low variability) hold most of the mislabels;
  ambiguous ones vary.

Batches that CutMix mixed are not recorded: their logits speak for two images. Every image
of a plain batch is; with oversampling an image can be seen several times an epoch, or not at
all. The sums live on the device and are read once an epoch (into the checkpoint, so a resumed
run continues them exactly); a data-parallel training adds every replica's share each epoch.
"""

from __future__ import annotations

import numpy as np
import torch

# Rows of the on-device sums: observations, margin, given-class probability, its square.
_COUNT, _MARGIN, _PROB, _PROB_SQ = range(4)
COLUMNS = ["observations", "aum", "confidence", "variability"]


class TrainingDynamics:
    def __init__(self, n_images: int, device: torch.device) -> None:
        # float64: the variability is sqrt(E[p^2] - E[p]^2), which float32 sums cancel to noise of ~1e-5
        self.totals = torch.zeros((4, n_images), dtype=torch.float64, device=device)
        self.epoch_sums = torch.zeros((4, n_images), dtype=torch.float64, device=device)

    @torch.no_grad()
    def record(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> None:
        """Add one batch: ``logits`` of the images at dataset rows ``index``, filed under ``labels``."""
        z = logits.detach().double()
        given = z.gather(1, labels[:, None]).squeeze(1)
        other = z.scatter(1, labels[:, None], float("-inf")).amax(1)
        prob = torch.softmax(z, 1).gather(1, labels[:, None]).squeeze(1)
        rows = torch.stack([torch.ones_like(prob), given - other, prob, prob * prob])
        self.epoch_sums.index_add_(1, index, rows)

    def end_epoch(self, all_reduce=None) -> None:
        """Fold the epoch's sums into the totals; ``all_reduce`` sums them over the replicas first."""
        if all_reduce is not None:
            all_reduce(self.epoch_sums)
        self.totals += self.epoch_sums
        self.epoch_sums.zero_()

    def state(self) -> torch.Tensor:
        """The totals on the CPU, for a checkpoint."""
        return self.totals.detach().to("cpu", copy=True)

    def load(self, totals: torch.Tensor) -> None:
        self.totals.copy_(totals.to(self.totals.device, torch.float64))

    def table(self) -> dict[str, np.ndarray]:
        """Per image: observations, AUM, confidence, variability (NaN where an image was never observed)."""
        t = self.totals.cpu().numpy()
        count = t[_COUNT]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_prob = t[_PROB] / count
            variance = np.maximum(t[_PROB_SQ] / count - mean_prob**2, 0.0)
            return {
                "observations": count.astype(np.int64),
                "aum": t[_MARGIN] / count,
                "confidence": mean_prob,
                "variability": np.sqrt(variance),
            }
