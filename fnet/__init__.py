"""fnet: FaceNet face recognition: align, embed, verify, search, cluster, train, evaluate.

The Python entry points (torch loads on first use, so `import fnet` stays fast):

    load_model(name_or_path=None, device="auto", precision="auto", batch_size=32) -> Embedder
    load_image(path, max_pixels=120_000_000) -> H x W x 3 uint8 RGB array (raises ImageError)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from fnet.io.images import ImageError, load_image

if TYPE_CHECKING:
    from fnet.core.embedder import Embedder

__version__ = "0.1.0"

__all__ = ["ImageError", "__version__", "load_image", "load_model"]


def load_model(
    name_or_path: str | os.PathLike | None = None, device: str = "auto", precision: str = "auto", batch_size: int = 32
) -> Embedder:
    """The default pretrained model, a named one (`fnet models`), or an fnet checkpoint file.

    device: auto (CUDA, then MPS, then CPU), cpu, cuda[:N] or mps. precision: auto (fp32 on
    CPU, bf16/fp16 autocast on GPU), fp32, fp16 or bf16. The result's `embed(crops)` turns
    N x S x S x 3 uint8 aligned crops into N x D unit-length float32 embeddings.
    """
    from fnet.loading import load_model as load

    return load(name_or_path, device=device, precision=precision, batch_size=batch_size)

