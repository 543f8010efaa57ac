"""Area (box-filter) downscaling with fractional pixel coverage, as TensorFlow's AREA method.

MTCNN's image pyramid is built with it; matching it keeps detections identical to the
reference. Each output pixel averages the input over [i*s, (i+1)*s) with s = in/out, partial
pixels weighted by their overlap, computed from prefix sums: O(pixels) for any scale.
Sums are float64: float32 prefix sums over thousands of pixels lose the 1e-6 precision that
keeps borderline P-Net scores where the reference has them.
"""

from __future__ import annotations

import torch


def _integral_at(values: torch.Tensor, prefix: torch.Tensor, edges: torch.Tensor, dim: int) -> torch.Tensor:
    """Integral of the piecewise-constant `values` over [0, edge) along `dim`, for each edge."""
    size = values.shape[dim]
    whole = edges.floor().long().clamp(max=size)
    frac = (edges - whole).reshape([-1 if d == dim else 1 for d in range(values.dim())])
    partial = values.index_select(dim, whole.clamp(max=size - 1)) * frac
    return prefix.index_select(dim, whole) + partial


def _area_axis(values: torch.Tensor, prefix: torch.Tensor, out_size: int, dim: int) -> torch.Tensor:
    scale = values.shape[dim] / out_size
    edges = torch.arange(out_size + 1, device=values.device, dtype=torch.float64) * scale
    integral = _integral_at(values, prefix, edges, dim)
    return integral.narrow(dim, 1, out_size).sub(integral.narrow(dim, 0, out_size)).div_(scale)


def _prefix(values: torch.Tensor, dim: int) -> torch.Tensor:
    """Exclusive prefix sums: one more entry than `values` along dim, starting at 0."""
    shape = list(values.shape)
    shape[dim] = 1
    return torch.cat([values.new_zeros(shape), values.cumsum(dim)], dim)


class AreaPyramid:
    """Many area-downscaled copies of one (N, C, H, W) batch; the row sums are computed once."""

    def __init__(self, images: torch.Tensor):
        self.dtype = images.dtype
        self.images = images.double()
        self.row_prefix = _prefix(self.images, 2)

    def resize(self, height: int, width: int) -> torch.Tensor:
        rows = _area_axis(self.images, self.row_prefix, height, 2)
        return _area_axis(rows, _prefix(rows, 3), width, 3).to(self.dtype)


def area_resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, height, width), averaging areas (for downscaling)."""
    return AreaPyramid(images).resize(height, width)
