"""Inception-ResNet-v1 (Szegedy et al. 2016) as used by FaceNet (Sandberg's 2018 models).

Layer names follow TF-slim's scopes in lower case (``conv2d_1a``, ``repeat_1.3.branch1``),
so a converted checkpoint maps one-to-one onto the original graph. Batch norm stays a real
``nn.BatchNorm2d`` after every convolution, so the model can be fine-tuned; call
:func:`fuse_conv_bn` for fast inference.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 1e-3  # TF-slim's batch-norm epsilon in the FaceNet training code


class ConvBN(nn.Module):
    """Convolution without bias, batch norm, optional ReLU: TF-slim's ``conv2d`` + ``batch_norm``."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding=0, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x, inplace=True) if self.relu else x


def _same(kernel) -> tuple[int, int]:
    """TF 'SAME' padding for stride 1 and odd kernels: symmetric, half the kernel."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    return kh // 2, kw // 2


def _conv(cin: int, cout: int, kernel, stride: int = 1, same: bool = True) -> ConvBN:
    return ConvBN(cin, cout, kernel, stride, _same(kernel) if same else 0)


class Residual(nn.Module):
    """x + scale * up(concat(branches(x))), then ReLU (TF-slim's block35/17/8)."""

    def __init__(self, channels: int, branches: list[nn.Module], width: int, scale: float, relu: bool = True):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.up = nn.Conv2d(width, channels, 1, bias=True)
        self.scale = scale
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([branch(x) for branch in self.branches], 1)
        x = x + self.scale * self.up(mixed)
        return F.relu(x, inplace=True) if self.relu else x


def block35(scale: float = 0.17) -> Residual:
    return Residual(
        256,
        [
            _conv(256, 32, 1),
            nn.Sequential(_conv(256, 32, 1), _conv(32, 32, 3)),
            nn.Sequential(_conv(256, 32, 1), _conv(32, 32, 3), _conv(32, 32, 3)),
        ],
        96,
        scale,
    )


def block17(scale: float = 0.10) -> Residual:
    return Residual(
        896,
        [_conv(896, 128, 1), nn.Sequential(_conv(896, 128, 1), _conv(128, 128, (1, 7)), _conv(128, 128, (7, 1)))],
        256,
        scale,
    )


def block8(scale: float = 0.20, relu: bool = True) -> Residual:
    return Residual(
        1792,
        [_conv(1792, 192, 1), nn.Sequential(_conv(1792, 192, 1), _conv(192, 192, (1, 3)), _conv(192, 192, (3, 1)))],
        384,
        scale,
        relu,
    )


class Concat(nn.Module):
    """Parallel branches joined on the channel axis (the Mixed_6a / Mixed_7a reductions)."""

    def __init__(self, *branches: nn.Module):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], 1)


def mixed_6a() -> Concat:
    return Concat(
        _conv(256, 384, 3, 2, same=False),
        nn.Sequential(_conv(256, 192, 1), _conv(192, 192, 3), _conv(192, 256, 3, 2, same=False)),
        nn.MaxPool2d(3, 2),
    )


def mixed_7a() -> Concat:
    return Concat(
        nn.Sequential(_conv(896, 256, 1), _conv(256, 384, 3, 2, same=False)),
        nn.Sequential(_conv(896, 256, 1), _conv(256, 256, 3, 2, same=False)),
        nn.Sequential(_conv(896, 256, 1), _conv(256, 256, 3), _conv(256, 256, 3, 2, same=False)),
        nn.MaxPool2d(3, 2),
    )


class InceptionResnetV1(nn.Module):
    """Face image (N, 3, H, W), standardised, -> L2-normalised embedding (N, embedding_dim).

    160 x 160 inputs reproduce the pretrained model; any size >= 75 px works.
    """

    input_size = 160
    tail = ("repeat_2", "block8", "bottleneck", "bottleneck_bn")  # what `--train-layers last` trains

    def __init__(self, embedding_dim: int = 512, dropout: float = 0.0):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.stem = nn.Sequential(
            _conv(3, 32, 3, 2, same=False),  # conv2d_1a
            _conv(32, 32, 3, same=False),  # conv2d_2a
            _conv(32, 64, 3),  # conv2d_2b
            nn.MaxPool2d(3, 2),  # maxpool_3a
            _conv(64, 80, 1, same=False),  # conv2d_3b
            _conv(80, 192, 3, same=False),  # conv2d_4a
            _conv(192, 256, 3, 2, same=False),  # conv2d_4b
        )
        self.repeat = nn.Sequential(*[block35() for _ in range(5)])
        self.mixed_6a = mixed_6a()
        self.repeat_1 = nn.Sequential(*[block17() for _ in range(10)])
        self.mixed_7a = mixed_7a()
        self.repeat_2 = nn.Sequential(*[block8() for _ in range(5)])
        self.block8 = block8(scale=1.0, relu=False)
        self.dropout = nn.Dropout(dropout)
        self.bottleneck = nn.Linear(1792, embedding_dim, bias=False)
        self.bottleneck_bn = nn.BatchNorm1d(embedding_dim, eps=BN_EPS, affine=True)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1792-D pooled features before the bottleneck."""
        x = self.stem(x)
        x = self.repeat(x)
        x = self.mixed_6a(x)
        x = self.repeat_1(x)
        x = self.mixed_7a(x)
        x = self.repeat_2(x)
        x = self.block8(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bottleneck_bn(self.bottleneck(self.dropout(self.features(x))))
        # Same clamp as the TF graph (rsqrt(max(sum x^2, 1e-10))): no NaN for a zero vector.
        return x * torch.rsqrt(torch.clamp(x.float().pow(2).sum(1, keepdim=True), min=1e-10)).to(x.dtype)


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every eval-mode ConvBN's batch norm into its convolution, in place.

    Saves one memory pass per layer at inference; the result must not be trained.
    """
    for module in model.modules():
        if isinstance(module, ConvBN) and isinstance(module.bn, nn.BatchNorm2d):
            conv, bn = module.conv, module.bn
            with torch.no_grad():  # the convolution itself takes the batch norm: no new module to initialise
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
                conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale)
            module.bn = nn.Identity()
    return model
