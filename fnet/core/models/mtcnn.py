"""MTCNN's three networks (Zhang et al. 2016): P-Net proposes, R-Net refines, O-Net outputs landmarks.

Weights come from the PyPI package ``mtcnn`` (Keras layout); ``load_keras_weights`` maps
them. Keras' 'same' max pooling pads only after the data when needed, which is what
``ceil_mode=True`` does; its Permute((2, 1, 3)) before the dense layers flattens in
(W, H, C) order, reproduced by ``_flatten_whc``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _flatten_whc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 2, 1).flatten(1)


def _conv_prelu(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel), nn.PReLU(cout)]


class PNet(nn.Module):
    """Fully convolutional 12 x 12 face / not-face classifier with box regression."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_prelu(3, 10, 3),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            *_conv_prelu(10, 16, 3),
            *_conv_prelu(16, 32, 3),
        )
        self.box = nn.Conv2d(32, 4, 1)
        self.score = nn.Conv2d(32, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) -> box offsets (N, 4, h, w), face probability (N, h, w)."""
        x = self.body(x)
        return self.box(x), torch.softmax(self.score(x), 1)[:, 1]


class RNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_prelu(3, 28, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv_prelu(28, 48, 3),
            nn.MaxPool2d(3, 2),
            *_conv_prelu(48, 64, 2),
        )
        self.fc = nn.Sequential(nn.Linear(576, 128), nn.PReLU(128))
        self.box = nn.Linear(128, 4)
        self.score = nn.Linear(128, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 24, 24) -> box offsets (N, 4), face probability (N,)."""
        x = self.fc(_flatten_whc(self.body(x)))
        return self.box(x), torch.softmax(self.score(x), 1)[:, 1]


class ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_prelu(3, 32, 3),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            *_conv_prelu(32, 64, 3),
            nn.MaxPool2d(3, 2),
            *_conv_prelu(64, 64, 3),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            *_conv_prelu(64, 128, 2),
        )
        self.fc = nn.Sequential(nn.Linear(1152, 256), nn.PReLU(256))
        self.box = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)
        self.score = nn.Linear(256, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, 48, 48) -> box offsets (N, 4), landmarks (N, 10: five x then five y), face probability (N,)."""
        x = self.fc(_flatten_whc(self.body(x)))
        return self.box(x), self.landmarks(x), torch.softmax(self.score(x), 1)[:, 1]


def load_keras_weights(net: nn.Module, arrays: list[np.ndarray]) -> nn.Module:
    """Fill ``net`` from the Keras weight list, in layer order (conv: kernel, bias; PReLU: alpha; dense: kernel, bias).

    Keras lists weights in layer construction order, which is the torch parameter order
    here (heads included: box, [landmarks,] score).
    """
    params = [p for p in net.parameters()]
    if len(params) != len(arrays):
        raise ValueError(f"{type(net).__name__}: {len(arrays)} weight arrays for {len(params)} parameters")
    with torch.no_grad():
        for param, array in zip(params, arrays):
            array = np.asarray(array, dtype=np.float32)
            if array.ndim == 4:  # conv kernel HWIO -> OIHW
                array = array.transpose(3, 2, 0, 1)
            elif array.ndim == 2:  # dense kernel (in, out) -> (out, in)
                array = array.T
            elif array.ndim == 3:  # PReLU alpha (1, 1, C)
                array = array.reshape(-1)
            if tuple(array.shape) != tuple(param.shape):
                raise ValueError(f"{type(net).__name__}: weight of shape {array.shape} for parameter {tuple(param.shape)}")
            param.copy_(torch.from_numpy(array))
    return net.eval()
