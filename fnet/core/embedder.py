"""Embedder: aligned face crops -> L2-normalised embeddings, batched, on any device."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fnet.core.device import autocast, autocast_dtype, configure_cpu_threads, prefers_channels_last, resolve_device
from fnet.core.info import ModelInfo
from fnet.core.models import fuse_conv_bn
from fnet.core.models.dlib_resnet import DLIB_MEAN_RGB

Crops = np.ndarray | Sequence[np.ndarray]


def standardize(batch: torch.Tensor, normalization: str) -> torch.Tensor:
    """uint8-valued float NCHW -> the network's input scale.

    'fixed' is (x - 127.5) / 128, what the 2018 FaceNet models were trained with;
    'prewhiten' is the older per-image (x - mean) / max(std, 1/sqrt(n));
    'dlib' is dlib's input layer, (x - its mean RGB) / 256.
    """
    if normalization == "fixed":
        return (batch - 127.5) / 128.0
    if normalization == "dlib":
        return (batch - batch.new_tensor(DLIB_MEAN_RGB).view(1, 3, 1, 1)) / 256.0
    if normalization == "prewhiten":
        flat = batch.flatten(1)
        mean = flat.mean(1).view(-1, 1, 1, 1)
        std = flat.std(1, unbiased=False).clamp(min=1.0 / flat.shape[1] ** 0.5).view(-1, 1, 1, 1)
        return (batch - mean) / std
    raise ValueError(f"unknown normalization {normalization!r}")


def _as_batch(crops: Crops, size: int) -> torch.Tensor:
    """Validate crops (N x H x W x 3 uint8, or a list of H x W x 3) -> float NCHW at size x size."""
    if isinstance(crops, np.ndarray) and crops.ndim == 4:
        arrays = [crops]
    else:
        arrays = [np.asarray(c)[None] for c in crops]
    tensors = []
    for array in arrays:
        if array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(f"face crops must be H x W x 3 RGB (got shape {array.shape[1:]})")
        if array.dtype != np.uint8:
            raise ValueError(f"face crops must be uint8 RGB, got {array.dtype}")
        array = np.ascontiguousarray(array)
        if not array.flags.writeable:  # torch refuses to wrap read-only memory without a warning
            array = array.copy()
        batch = torch.from_numpy(array).permute(0, 3, 1, 2).float()
        if batch.shape[-2:] != (size, size):
            batch = F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        tensors.append(batch)
    return torch.cat(tensors) if len(tensors) > 1 else tensors[0]


def default_batch_size(device: torch.device) -> int:
    """Faces per forward pass when none is asked for: 64 on a GPU, 16 on a CPU.

    A CPU gains little from larger passes (this 2-core VM, bf16: 256 faces/s at 16 and 32,
    214-228 at 64; whole `fnet embed --align` over 1,000 LFW photos 5-6% faster at 64, over a
    mixed library the same), while their activations cost memory: `fnet embed --align` peaked
    at 0.64 / 0.67 / 0.71 GiB over 1,000 / 5,000 / 20,000 photos with 16, 0.74 / 0.84 / 0.87
    with 64 (bench/memory.py, docs/speed.md).
    """
    return 16 if device.type == "cpu" else 64


def embed_in_batches(model, crops: Crops, flip: bool, batch_size: int | None, on_batch: Callable[[int], None] | None) -> np.ndarray:
    """``model.embed_tensor`` over crops in batches of ``batch_size`` (default the model's) -> float32 (N, D)."""
    count = len(crops)
    out = np.empty((count, model.info.embedding_dim), dtype=np.float32)
    step = batch_size or model.batch_size
    for start in range(0, count, step):
        batch = _as_batch(crops[start : start + step], model.info.input_size)
        out[start : start + len(batch)] = model.embed_tensor(batch, flip).cpu().numpy()
        if on_batch:
            on_batch(len(batch))
    return out


class Embedder:
    """A face-embedding model ready for inference.

    >>> model = fnet.load_model()
    >>> emb = model.embed(crops)          # N x 160 x 160 x 3 uint8 -> N x 512 float32
    >>> d = ((emb[0] - emb[1]) ** 2).sum()  # same person when d <= model.info.threshold
    """

    def __init__(
        self,
        module: nn.Module,
        info: ModelInfo,
        device: str | torch.device = "auto",
        precision: str = "auto",
        batch_size: int | None = None,
    ):
        self.info = info
        self.module = module  # the trainable network, untouched
        self.device = resolve_device(device)
        self.dtype = autocast_dtype(self.device, precision)
        self.batch_size = default_batch_size(self.device) if batch_size is None else batch_size
        if self.device.type == "cpu":
            configure_cpu_threads()
        self._memory_format = torch.channels_last if prefers_channels_last(self.device) else torch.contiguous_format
        net = fuse_conv_bn(copy.deepcopy(module).eval())
        self._net = net.to(self.device, memory_format=self._memory_format)
        # bf16 on a CPU: weights cast once, not by autocast on every call (which cost more than a
        # face at batch 1: 39.6 faces/s against 56.9 with bf16 weights, 41.9 in fp32). On GPUs autocast.
        self._cast = self.dtype if self.dtype is not None and self.device.type == "cpu" else None
        if self._cast is not None:
            self._net = self._net.to(self._cast)

    def __repr__(self) -> str:
        precision = "fp32" if self.dtype is None else str(self.dtype).removeprefix("torch.")
        return f"Embedder({self.info.name!r}, dim={self.info.embedding_dim}, device={self.device}, {precision})"

    @torch.inference_mode()
    def embed(
        self,
        crops: Crops,
        flip: bool = False,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Aligned RGB uint8 crops -> float32 (N, D) unit-norm embeddings.

        Crops of another size than ``info.input_size`` are resized (bilinear, antialiased).
        flip: also embed the mirror image and average the two (test-time augmentation).
        on_batch: called with the number of faces after each batch (for progress bars).
        """
        return embed_in_batches(self, crops, flip, batch_size, on_batch)

    @torch.inference_mode()
    def embed_tensor(self, batch: torch.Tensor, flip: bool = False) -> torch.Tensor:
        """Float NCHW batch in 0..255 at the input size (any device) -> float32 embeddings on the device."""
        pin = self.device.type == "cuda" and batch.device.type == "cpu"
        batch = (batch.pin_memory() if pin else batch).to(self.device, non_blocking=pin)
        x = standardize(batch, self.info.normalization)
        if flip:
            x = torch.cat([x, x.flip(3)])
        x = x.contiguous(memory_format=self._memory_format)
        if self._cast is not None:
            emb = self._net(x.to(self._cast))
        else:
            with autocast(self.device, self.dtype):
                emb = self._net(x)
        emb = F.normalize(emb.float(), dim=1)  # unit length in fp32, whatever precision the network ran in
        if flip:
            emb = F.normalize(emb[: len(batch)] + emb[len(batch) :], dim=1)
        return emb
