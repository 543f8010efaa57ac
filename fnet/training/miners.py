"""Online triplet mining inside a batch, vectorised on the batch's device: one pairwise
distance matrix, masks and per-anchor sorting, no Python loop over triplets.

- semihard (FaceNet): every anchor-positive pair, with a negative farther than the positive
  but inside the margin, d(a,p) < d(a,n) < d(a,p) + alpha; picked at random or the hardest
  of them. A pair without one falls back to the hardest negative farther than its
  positive (`fallback="hardest"`), the easiest negative (`"easiest"`), or is dropped.
- hard (batch-hard, Hermans et al. 2017): per anchor, its farthest positive and nearest negative.
- all (batch-all): every valid triplet that still violates the margin.
- curriculum: semihard with random negatives, then the hardest semihard ones, then batch-hard,
  as training progresses.
"""

from __future__ import annotations

import dataclasses

import torch

from fnet.errors import SettingsError

STRATEGIES = ("semihard", "hard", "all", "curriculum")
FALLBACKS = ("hardest", "easiest", "drop")


@dataclasses.dataclass(frozen=True)
class MiningStats:
    triplets: int
    pairs: int  # anchor-positive pairs in the batch
    semihard_share: float  # of those pairs, the share with a semi-hard negative
    active_share: float  # of the triplets, the share with a positive loss
    mean_ap: float
    mean_an: float


def pairwise_squared_distances(embeddings: torch.Tensor, others: torch.Tensor | None = None) -> torch.Tensor:
    """(N, M) squared L2 distances, by one matrix product (clamped at 0 against rounding)."""
    others = embeddings if others is None else others
    squared = (embeddings * embeddings).sum(1, keepdim=True) + (others * others).sum(1) - 2.0 * embeddings @ others.T
    return squared.clamp_min(0.0)


def _pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def semihard_triplets(
    distances: torch.Tensor, labels: torch.Tensor, margin: float, pick: str = "random", fallback: str = "hardest",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """((T, 3) triplets, per-pair bool: had a semi-hard negative).

    Each anchor's negatives are sorted by distance once; a pair's semi-hard negatives are
    then one contiguous run of that order, found by binary search: O(N^2 log N) time and
    O(N^2) memory for the batch, instead of an (anchor-positive pairs x N) mask.
    """
    positive, negative = _pair_masks(labels)
    ranked, order = torch.where(negative, distances, float("inf")).sort(1)
    count = negative.sum(1)
    first_beyond = torch.searchsorted(ranked, distances.contiguous(), right=True)  # first d(a,n) > d(a,p)
    first_outside = torch.searchsorted(ranked, (distances + margin).contiguous())  # first d(a,n) >= d(a,p) + margin
    anchor, pos = positive.nonzero(as_tuple=True)
    lo, hi, n = first_beyond[anchor, pos], first_outside[anchor, pos], count[anchor]
    found = hi > lo
    if pick == "random":
        u = torch.rand(len(lo), device=distances.device, generator=generator)
        slot = lo + (u * (hi - lo)).long().clamp_max((hi - lo - 1).clamp_min(0))
    else:  # the hardest semi-hard negative: the nearest beyond the positive
        slot = lo
    keep = found
    if fallback == "hardest":  # nearest negative beyond the positive; if none, the nearest of all
        slot = torch.where(found, slot, torch.where(lo < n, lo, torch.zeros_like(lo)))
        keep = n > 0
    elif fallback == "easiest":
        slot = torch.where(found, slot, (n - 1).clamp_min(0))
        keep = n > 0
    chosen = order[anchor, slot.clamp_max(len(labels) - 1)]
    return torch.stack([anchor, pos, chosen], 1)[keep], found


def hard_triplets(distances: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    positive, negative = _pair_masks(labels)
    usable = positive.any(1) & negative.any(1)
    hardest_p = torch.where(positive, distances, -float("inf")).argmax(1)
    hardest_n = torch.where(negative, distances, float("inf")).argmin(1)
    anchor = torch.arange(len(labels), device=labels.device)
    return torch.stack([anchor, hardest_p, hardest_n], 1)[usable]


def all_triplets(distances: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Every (a, p, n) with d(a,p) - d(a,n) + margin > 0 (N^3 memory: for batches up to a few hundred)."""
    positive, negative = _pair_masks(labels)
    valid = positive[:, :, None] & negative[:, None, :]
    violating = distances[:, :, None] - distances[:, None, :] + margin > 0
    return (valid & violating).nonzero()


def curriculum_phase(progress: float) -> tuple[str, str]:
    """(strategy, pick) for a point in training, progress in [0, 1]."""
    if progress < 1 / 3:
        return "semihard", "random"
    if progress < 2 / 3:
        return "semihard", "hardest"
    return "hard", ""


def mine(
    embeddings: torch.Tensor, labels: torch.Tensor, strategy: str = "semihard", margin: float = 0.2,
    pick: str = "random", fallback: str = "hardest", progress: float = 0.0, generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, MiningStats]:
    """(T, 3) row indices of anchor, positive, negative, and what the batch looked like."""
    with torch.no_grad():
        distances = pairwise_squared_distances(embeddings.detach().float())
        if strategy == "curriculum":
            strategy, pick = curriculum_phase(progress)
        found = None
        if strategy == "semihard":
            triplets, found = semihard_triplets(distances, labels, margin, pick, fallback, generator)
        elif strategy == "hard":
            triplets = hard_triplets(distances, labels)
        elif strategy == "all":
            triplets = all_triplets(distances, labels, margin)
        else:
            raise SettingsError(f"unknown mining strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
        positive, _ = _pair_masks(labels)
        pairs = int(positive.sum())
        d_ap = distances[triplets[:, 0], triplets[:, 1]]
        d_an = distances[triplets[:, 0], triplets[:, 2]]
        stats = MiningStats(
            triplets=len(triplets), pairs=pairs,
            semihard_share=float(found.float().mean()) if found is not None and len(found) else float("nan"),
            active_share=float((d_ap - d_an + margin > 0).float().mean()) if len(triplets) else 0.0,
            mean_ap=float(d_ap.mean()) if len(triplets) else float("nan"),
            mean_an=float(d_an.mean()) if len(triplets) else float("nan"),
        )
    return triplets, stats
