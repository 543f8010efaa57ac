"""A small, fast face-embedding network for CPUs and quick experiments (about 1.2M
parameters, 96 x 96 inputs): eight ConvBN layers, global average pooling, a linear
bottleneck with batch norm, L2 normalisation, the same head as Inception-ResNet-v1."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from fnet.core.models.inception_resnet_v1 import BN_EPS, ConvBN

WIDTHS = (32, 64, 128, 256)


class SmallFaceNet(nn.Module):
    input_size = 96
    tail = ("stage4", "bottleneck", "bottleneck_bn")  # what `--train-layers last` trains

    def __init__(self, embedding_dim: int = 128, dropout: float = 0.0):
        super().__init__()
        self.embedding_dim = embedding_dim
        cin = 3
        for index, width in enumerate(WIDTHS, 1):  # each stage halves the resolution
            setattr(self, f"stage{index}", nn.Sequential(ConvBN(cin, width, 3, 2, 1), ConvBN(width, width, 3, 1, 1)))
            cin = width
        self.dropout = nn.Dropout(dropout)
        self.bottleneck = nn.Linear(cin, embedding_dim, bias=False)
        self.bottleneck_bn = nn.BatchNorm1d(embedding_dim, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index in range(1, len(WIDTHS) + 1):
            x = getattr(self, f"stage{index}")(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return F.normalize(self.bottleneck_bn(self.bottleneck(self.dropout(x))).float(), dim=1, eps=1e-10)
