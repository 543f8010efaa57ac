"""The losses of the seam in fnet.training.LOSSES: what the training loop minimises (a loss may own parameters).

Every entry is an ``nn.Module`` built from the run's settings, the number of training
identities and the embedding size; ``forward(batch)`` takes a ``LossBatch`` and returns a
``LossResult`` (the loss, and the figures the step records). The loop puts the loss's own
parameters (a classifier's weights) in the optimiser and in the checkpoints.

- triplet (FaceNet, eq. 2): triplets mined inside the batch (fnet.training.miners), hinge
  max(0, ||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + alpha) on unit embeddings.
- arcface (Deng et al. 2019): a cosine classifier over the training identities with an
  additive angular margin m on the true class, scaled by s; the classifier is thrown away
  after training and the embeddings are compared as FaceNet's.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn
from torch.nn import functional as F

from fnet.errors import SettingsError
from fnet.training.miners import mine


@dataclasses.dataclass
class LossBatch:
    embeddings: torch.Tensor  # (N, D) unit rows; with a harmonic run, old-model rows follow the new ones
    labels: torch.Tensor  # (N,) identity numbers, 0 .. identities - 1
    new_rows: int  # rows made by the model being trained (the rest come from the old model)
    progress: float  # share of training done, 0..1 (curriculum mining)
    generator: torch.Generator  # seeded per step: a resumed run draws what an uninterrupted one would


@dataclasses.dataclass
class LossResult:
    loss: torch.Tensor
    stats: dict  # recorded in metrics.jsonl with the step


def triplet_loss(embeddings: torch.Tensor, triplets: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """Mean hinge loss of the (T, 3) anchor / positive / negative row indices; 0 when there are none."""
    if len(triplets) == 0:
        return embeddings.sum() * 0.0  # keeps the graph (and DDP's gradient hooks) connected
    a, p, n = (embeddings[triplets[:, i]] for i in range(3))
    return ((a - p).pow(2).sum(1) - (a - n).pow(2).sum(1) + margin).clamp_min(0.0).mean()


class TripletLoss(nn.Module):
    def __init__(self, margin: float = 0.2, mining: str = "semihard", pick: str = "random", fallback: str = "hardest"):
        super().__init__()
        self.margin, self.mining, self.pick, self.fallback = margin, mining, pick, fallback

    def forward(self, batch: LossBatch) -> LossResult:
        triplets, stats = mine(batch.embeddings, batch.labels, self.mining, self.margin, self.pick, self.fallback, batch.progress, batch.generator)
        triplets = triplets[triplets[:, 0] < batch.new_rows]  # anchors are new faces; old rows serve as positives / negatives
        return LossResult(triplet_loss(batch.embeddings, triplets, self.margin), {
            "triplets": stats.triplets, "active": stats.active_share, "semihard": stats.semihard_share,
            "d_ap": stats.mean_ap, "d_an": stats.mean_an,
        })


class ArcFaceLoss(nn.Module):
    def __init__(self, identities: int, embedding_dim: int, scale: float = 30.0, margin: float = 0.5):
        super().__init__()
        if not 0 < margin < math.pi / 2 or scale <= 0:
            raise SettingsError(f"ArcFace needs a margin between 0 and pi/2 radians and a positive scale, not {margin}, {scale}")
        self.scale, self.margin = scale, margin
        self.weight = nn.Parameter(torch.empty(identities, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, batch: LossBatch) -> LossResult:
        emb, labels = batch.embeddings[: batch.new_rows], batch.labels[: batch.new_rows]
        cosine = F.linear(F.normalize(emb), F.normalize(self.weight.float())).clamp(-1 + 1e-7, 1 - 1e-7)
        true = cosine.gather(1, labels[:, None])
        theta = true.acos()
        # cos(theta + m) while theta + m stays below pi; beyond, a linear penalty keeps the logit decreasing
        with_margin = torch.where(theta + self.margin < math.pi, (theta + self.margin).cos(), true - self.margin * math.sin(self.margin))
        logits = self.scale * cosine.scatter(1, labels[:, None], with_margin)
        with torch.no_grad():
            accuracy = float((cosine.argmax(1) == labels).float().mean())
            angle = float(theta.mean() * 180 / math.pi)
        return LossResult(F.cross_entropy(logits, labels), {"batch_accuracy": accuracy, "true_angle": angle})


def build_triplet(settings, identities: int, embedding_dim: int) -> nn.Module:
    return TripletLoss(settings.margin, settings.mining, settings.pick, settings.fallback)


def build_arcface(settings, identities: int, embedding_dim: int) -> nn.Module:
    return ArcFaceLoss(identities, embedding_dim, settings.scale, settings.angular_margin)
