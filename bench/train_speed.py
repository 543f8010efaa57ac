"""Training-step speed and the share of the step spent mining (goal: mining < 5%).

Per network: images/s of a full training step (forward, semi-hard mining, triplet loss,
backward, Adam step) on random images, and the mining share of the step. Then mining alone
at the paper's batch size (1,800 faces: 45 identities x 40), fnet's vectorised miner against
pytorch-metric-learning's TripletMarginMiner (semihard, squared L2) on the same embeddings.

    python bench/train_speed.py [--device auto] [--steps 5]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn import functional as F

from fnet.core.device import resolve_device
from fnet.core.models import create_model
from fnet.training.losses import triplet_loss
from fnet.training.miners import mine


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_speed(architecture: str, batch: int, device: torch.device, steps: int, dtype) -> tuple[float, float]:
    """(images/s, mining share of the step)."""
    torch.manual_seed(0)
    model = create_model(architecture, embedding_dim=128).to(device).train()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    size = model.input_size
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.arange(batch // 4, device=device).repeat_interleave(4)
    total = mining = 0.0
    for index in range(steps + 2):  # two warm-up steps
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            emb = model(images).float()
        sync(device)
        mined = time.perf_counter()
        triplets, _ = mine(emb, labels, "semihard", 0.2)
        sync(device)
        mine_s = time.perf_counter() - mined
        loss = triplet_loss(emb, triplets, 0.2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync(device)
        if index >= 2:
            total += time.perf_counter() - start
            mining += mine_s
    return batch * steps / total, mining / total


def mining_speed(device: torch.device, identities: int = 45, per_identity: int = 40, repeats: int = 5) -> tuple[float, float]:
    """(fnet ms, pytorch-metric-learning ms) to mine one batch of identities x per_identity faces."""
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.miners import TripletMarginMiner

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(identities).repeat_interleave(per_identity)
    emb = F.normalize(torch.randn(identities, 128, generator=g)[labels] + 0.8 * torch.randn(len(labels), 128, generator=g), dim=1)
    emb, labels = emb.to(device), labels.to(device)
    peer = TripletMarginMiner(margin=0.2, type_of_triplets="semihard", distance=LpDistance(power=2))
    times = {}
    for name, run in (("fnet", lambda: mine(emb, labels, "semihard", 0.2)), ("pml", lambda: peer(emb, labels))):
        run()
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            run()
        sync(device)
        times[name] = (time.perf_counter() - start) / repeats * 1000
    return times["fnet"], times["pml"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    device = resolve_device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"Device: {name}; precision {'bf16 autocast' if dtype else 'fp32'}\n")
    print("| network | input | batch | images/s per step | mining share of the step |")
    print("| --- | --- | --- | --- | --- |")
    settings = [("small", 64), ("inception_resnet_v1", 32)] if device.type == "cpu" else [("small", 512), ("inception_resnet_v1", 256)]
    for architecture, batch in settings:
        rate, share = step_speed(architecture, batch, device, args.steps, dtype)
        size = create_model(architecture).input_size
        print(f"| {architecture} | {size} px | {batch} | {rate:.1f} | {share:.2%} |", flush=True)
    ours, peer = mining_speed(device)
    print("\nMining one batch of 1,800 faces (45 identities x 40, the paper's batch), semi-hard:\n")
    print("| miner | ms per batch | x fnet |")
    print("| --- | --- | --- |")
    print(f"| fnet (one distance matrix, sorted negatives, binary search) | {ours:.1f} | 1.0 |")
    print(f"| pytorch-metric-learning TripletMarginMiner | {peer:.1f} | {peer / ours:.1f} |")


if __name__ == "__main__":
    main()
