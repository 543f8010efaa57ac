"""Area (box-filter) downscaling with fractional pixel coverage, as TensorFlow's AREA method.

MTCNN's image pyramid is built with it; matching it keeps detections identical to the
reference. Each output pixel averages the input over [i*s, (i+1)*s) with s = in/out,
partial pixels weighted by their overlap. Along one axis that is a sparse banded matrix
(each output row touches at most ceil(s) + 1 inputs), so a resize is two sparse x dense
products: float32 sums of a few terms, like TensorFlow's own, on CPU or GPU.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch


# A photo library brings a new size with nearly every photo: a large cache keeps thousands of
# small matrices alive across the heap, whose holes then fit no photo (a 5,000-photo `fnet
# align` peaked 6% higher with 512 entries than with 32). A batch's pyramid needs ~20.
@functools.lru_cache(maxsize=64)
def area_matrix(in_size: int, out_size: int, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The out_size x in_size averaging matrix, sparse (CSR) except on MPS, which lacks sparse kernels."""
    scale = in_size / out_size
    start = np.arange(out_size) * scale
    end = start + scale
    first = np.floor(start).astype(np.int64)
    span = int((np.minimum(np.ceil(end), in_size) - first).max())
    cols = first[:, None] + np.arange(span)[None, :]
    weights = np.clip(np.minimum(cols + 1, end[:, None]) - np.maximum(cols, start[:, None]), 0, None) / scale
    valid = (cols < in_size) & (weights > 0)
    pointers = np.concatenate([[0], np.cumsum(valid.sum(1))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta": the product used here is stable
        matrix = torch.sparse_csr_tensor(
            torch.from_numpy(pointers), torch.from_numpy(cols[valid]), torch.from_numpy(weights[valid]).to(dtype),
            (out_size, in_size), check_invariants=False,  # built valid above; the check costs more than the product
        )
    return matrix.to_dense().to(device) if device.type == "mps" else matrix.to(device)


def _apply(matrix: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    return torch.sparse.mm(matrix, dense) if matrix.layout == torch.sparse_csr else matrix @ dense


class AreaPyramid:
    """Many area-downscaled copies of one (N, H, W, C) batch, as for an image pyramid."""

    def __init__(self, images: torch.Tensor):
        self.n, self.height, self.width, self.c = images.shape
        self.rows = images.transpose(0, 1).reshape(self.height, -1)  # (H, N*W*C): resize rows in one product

    def resize(self, height: int, width: int) -> torch.Tensor:
        """(N, C, height, width), stored channels_last, which convolutions prefer on CPU and GPU."""
        n, c, device = self.n, self.c, self.rows.device
        rows = _apply(area_matrix(self.height, height, device, self.rows.dtype), self.rows)  # (h, N*W*C)
        by_column = rows.reshape(height, n, self.width, c).permute(2, 1, 0, 3).reshape(self.width, -1)  # (W, N*h*C)
        out = _apply(area_matrix(self.width, width, device, self.rows.dtype), by_column)  # (w, N*h*C)
        return out.reshape(width, n, height, c).permute(1, 2, 0, 3).contiguous().permute(0, 3, 1, 2)


def area_resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, height, width), averaging areas (for downscaling)."""
    return AreaPyramid(images.permute(0, 2, 3, 1)).resize(height, width)
