"""Ensembles: several embedding models on one face, their unit embeddings weighted and concatenated.

An ensemble's face crop is a wide frame (``fnet.crops`` mode ``wide``: dlib's chip with twice
its padding), cut once per face. Each member takes its own view of it: a fixed similarity
transform onto the member's own template at its own size (for a ``chip`` member, the centre
of the frame, pixel for pixel; for a ``crop`` member, the landmark template of fnet's crops).
The member embeddings, each unit length and multiplied by its weight, are concatenated and
made unit length again, so the squared distance between two faces is the members' squared
distances averaged with the squared weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from fnet.core.embedder import Crops, Embedder, embed_in_batches
from fnet.core.info import ModelInfo
from fnet.crops import TEMPLATES, similarity_transform

# the template of a member's own alignment ("crop" crops hold the landmarks where "similarity" puts them)
MEMBER_TEMPLATES = {"crop": "similarity", "similarity": "similarity", "chip": "chip"}


def view_theta(frame_size: int, member_alignment: str, member_size: int) -> torch.Tensor:
    """The 2 x 3 ``affine_grid`` matrix taking a member's view out of the ensemble's wide frame.

    Both sides in the normalised coordinates of ``align_corners=False`` (-1 and 1 are the
    outer edges of the border pixels).
    """
    member = TEMPLATES[MEMBER_TEMPLATES[member_alignment]] * member_size
    frame = TEMPLATES["wide"] * frame_size
    to_frame = similarity_transform(member, frame)  # member pixel -> frame pixel
    # normalised member coordinates -> member pixels -> frame pixels -> normalised frame coordinates
    from_unit = np.array([[member_size / 2, 0, member_size / 2], [0, member_size / 2, member_size / 2], [0, 0, 1]])
    to_unit = np.array([[2 / frame_size, 0, -1], [0, 2 / frame_size, -1], [0, 0, 1]])
    theta = to_unit @ np.vstack([to_frame, [0, 0, 1]]) @ from_unit
    return torch.tensor(theta[:2], dtype=torch.float32)


class EnsembleEmbedder:
    """Members' embeddings of the same faces, weighted, concatenated and unit-normalised.

    Used like an ``Embedder``: ``embed(crops)`` takes the ensemble's wide crops (``info.input_size``).
    """

    def __init__(self, members: Sequence[Embedder], weights: Sequence[float], info: ModelInfo):
        if len(members) != len(weights) or not members:
            raise ValueError("an ensemble needs one weight per member")
        self.info = info
        self.members = list(members)
        self.weights = [float(w) for w in weights]
        self.device = self.members[0].device
        self.batch_size = self.members[0].batch_size
        size = info.input_size
        self._thetas = [view_theta(size, m.info.alignment, m.info.input_size) for m in self.members]

    def __repr__(self) -> str:
        parts = ", ".join(f"{m.info.name} x{w:g}" for m, w in zip(self.members, self.weights))
        return f"EnsembleEmbedder({self.info.name!r}, dim={self.info.embedding_dim}, {parts}, device={self.device})"

    def view(self, batch: torch.Tensor, index: int) -> torch.Tensor:
        """Member `index`'s crops (float NCHW, 0..255) cut out of the ensemble's wide crops."""
        size = self.members[index].info.input_size
        theta = self._thetas[index].to(batch.device).expand(len(batch), 2, 3)
        grid = F.affine_grid(theta, [len(batch), 3, size, size], align_corners=False)
        return F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @torch.inference_mode()
    def embed_tensor(self, batch: torch.Tensor, flip: bool = False) -> torch.Tensor:
        batch = batch.to(self.device)
        parts = [m.embed_tensor(self.view(batch, i), flip) * w for i, (m, w) in enumerate(zip(self.members, self.weights))]
        return F.normalize(torch.cat(parts, dim=1), dim=1)

    @torch.inference_mode()
    def embed(
        self, crops: Crops, flip: bool = False, batch_size: int | None = None, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Wide RGB uint8 crops -> float32 (N, D) unit-norm embeddings, D the sum of the members'."""
        return embed_in_batches(self, crops, flip, batch_size, on_batch)
