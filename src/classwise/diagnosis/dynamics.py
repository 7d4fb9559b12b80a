"""Training dynamics as a table of suspects and a figure (the numbers come from training.dynamics).

An image is flagged when its area under the margin is below ``evaluate.aum_threshold``
(default ``AUM_THRESHOLD``, -1.5): averaged over the training, the network preferred another
class to the one the image is filed under by 1.5 logits, while being trained to choose it.
Pleiss et al. set the cut from extra "threshold" images trained under a fake class, which
costs a second training (and would spoil the model this one trains). 0, the cut that needs
nothing, flagged 36% of the images of a real folder with 8% flipped labels (precision 0.22);
-1.5 was chosen on that folder (precision 0.55, recall 0.73) and held on a second one of
other classes (0.63, 0.74): docs/results.md.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from classwise.diagnosis.issues import score_against_noise  # noqa: E402

AUM_THRESHOLD = -1.5
DYNAMICS_COLUMNS = ["rank", "id", "label", "given_class", "observations", "aum", "confidence", "variability",
                    "flagged"]


def dynamics_table(ids: list[str], labels: np.ndarray, class_names: list[str], dynamics: dict[str, np.ndarray],
                   threshold: float = AUM_THRESHOLD) -> pd.DataFrame:
    """One row a training image, lowest AUM first (never-observed images last); ``flagged`` = AUM < threshold."""
    aum = np.asarray(dynamics["aum"], dtype=np.float64)
    table = pd.DataFrame({
        "id": [str(i) for i in ids],
        "label": np.asarray(labels, dtype=np.int64),
        "given_class": np.asarray(class_names, dtype=object)[np.asarray(labels, dtype=np.int64)],
        "observations": dynamics["observations"],
        "aum": aum,
        "confidence": dynamics["confidence"],
        "variability": dynamics["variability"],
        "flagged": np.nan_to_num(aum, nan=np.inf) < threshold,
    }).sort_values("aum", kind="stable", na_position="last").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table[DYNAMICS_COLUMNS]


def dynamics_summary(table: pd.DataFrame, label_noise: pd.DataFrame | None = None) -> dict[str, float]:
    """Headline numbers; against known flips (among the training images) precision, recall and the
    precision of the lowest-AUM images as many as there are flips."""
    values: dict[str, float] = {
        "images": len(table),
        "observed": int((table["observations"] > 0).sum()),
        "flagged": int(table["flagged"].sum()),
        "flagged_share": float(table["flagged"].mean()) if len(table) else 0.0,
    }
    if label_noise is not None and len(label_noise):
        flips = set(label_noise["id"].astype(str)) & set(table["id"])
        score = score_against_noise(table.loc[table["flagged"], "id"], sorted(flips))
        values.update({f"noise_{k}": v for k, v in score.items()})
        top = table.head(len(flips))["id"]
        values["noise_top_n_precision"] = len(set(top) & flips) / len(flips) if flips else 0.0
    return values


def dynamics_figure(table: pd.DataFrame, threshold: float = AUM_THRESHOLD,
                    flipped_ids: set[str] | None = None) -> plt.Figure:
    """Dataset cartography: confidence against variability, one dot a training image, AUM-flagged in red
    (known flips circled, when the data has them)."""
    fig, (map_ax, aum_ax) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained", width_ratios=[1.3, 1])
    seen = table[table["observations"] > 0]
    flagged = seen["flagged"].to_numpy()
    map_ax.scatter(seen.loc[~flagged, "variability"], seen.loc[~flagged, "confidence"], s=4, alpha=0.35,
                   color="tab:blue", linewidths=0, label=f"AUM >= {threshold:g} ({int((~flagged).sum())})")
    map_ax.scatter(seen.loc[flagged, "variability"], seen.loc[flagged, "confidence"], s=6, alpha=0.6,
                   color="tab:red", linewidths=0, label=f"flagged: AUM < {threshold:g} ({int(flagged.sum())})")
    if flipped_ids:
        known = seen[seen["id"].isin(flipped_ids)]
        map_ax.scatter(known["variability"], known["confidence"], s=16, facecolors="none", edgecolors="black",
                       linewidths=0.6, label=f"known flipped labels ({len(known)})")
    map_ax.set_xlabel("variability (std over the epochs of the given class's probability)")
    map_ax.set_ylabel("confidence (mean probability of the given class)")
    map_ax.set_ylim(0, 1)
    map_ax.set_xlim(0, max(0.05, float(seen["variability"].max()) * 1.05) if len(seen) else 0.5)
    map_ax.legend(fontsize=8, loc="upper right")
    map_ax.set_title("Data map: easy top left, hard to learn bottom left, ambiguous right", fontsize=10)
    aum = seen["aum"].to_numpy()
    bins = np.linspace(np.nanmin(aum), np.nanmax(aum), 60) if len(aum) and np.nanmin(aum) < np.nanmax(aum) else 20
    aum_ax.hist(aum, bins=bins, color="tab:gray")
    if flipped_ids:
        aum_ax.hist(seen.loc[seen["id"].isin(flipped_ids), "aum"], bins=bins, color="black", alpha=0.6,
                    label="known flipped labels")
        aum_ax.legend(fontsize=8)
    aum_ax.axvline(threshold, color="tab:red", linestyle=":", linewidth=1)
    aum_ax.set_xlabel("area under the margin (given logit - largest other, mean over training)")
    aum_ax.set_ylabel("training images")
    fig.suptitle(f"Training dynamics of {len(table)} training images: {int(table['flagged'].sum())} flagged "
                 f"(AUM < {threshold:g}), lowest AUM first in training_dynamics.parquet")
    return fig
