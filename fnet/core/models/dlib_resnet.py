"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) as a torch module.

A ResNet-29 on 150 x 150 chips: a 7 x 7 stem, 14 residual blocks of two 3 x 3 convolutions
at 32, 64, 128 and 256 channels, global average pooling, a 128-D linear layer without bias.
dlib's affine layers (its batch norm at inference) are folded into the convolutions when the
weights are converted. Two dlib behaviours are reproduced exactly: its strided convolutions
and pools have no padding, and a residual sum of tensors of different shapes (the shortcut of
a downsampling block has fewer channels, and sometimes one more row and column) pads the
smaller one with zeros at the end, as dlib's ``add_prev`` does.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# (channels, blocks, whether the first block halves the resolution), input side first
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
# dlib's input layer subtracts these per channel (RGB) and divides by 256 (normalization "dlib")
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)


def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b over the larger of their channel, row and column counts; what is missing counts as zero."""
    if a.shape == b.shape:
        return a + b
    shape = [max(x, y) for x, y in zip(a.shape, b.shape)]

    def grown(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, shape[3] - t.shape[3], 0, shape[2] - t.shape[2], 0, shape[1] - t.shape[1]))

    return grown(a) + grown(b)


class ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, down: bool):
        super().__init__()
        stride = 2 if down else 1
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 0 if down else 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.AvgPool2d(2, 2) if down else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(add_zero_padded(y, self.shortcut(x)))


class DlibResNet(nn.Module):
    input_size = 150

    def __init__(self, embedding_dim: int = 128):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.stem = nn.Conv2d(3, 32, 7, 2, 0)
        blocks, cin = [], 32
        for channels, count, down in STAGES:
            for index in range(count):
                blocks.append(ResidualBlock(cin, channels, down and index == 0))
                cin = channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, embedding_dim, bias=False)

    def descriptor(self, x: torch.Tensor) -> torch.Tensor:
        """dlib's face descriptor (not unit length) of standardised chips."""
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean((2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.descriptor(x).float(), dim=1, eps=1e-10)
