"""to_tensor for the float32 H x W x C arrays facenet-pytorch passes (no rescaling, as torchvision does for floats)."""

import torch


def to_tensor(picture):
    return torch.from_numpy(picture.transpose((2, 0, 1))).contiguous()
