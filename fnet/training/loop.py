"""The training loop: identity-balanced batches -> embeddings -> online mining -> triplet
loss -> optimizer step; held-out validation with the evaluate stage's metrics, metrics to
JSONL, checkpoints in the fnet format, resume, and DDP under torchrun.

Run folder: config.json, metrics.jsonl (a line per step, and per validation with
"kind": "val"), checkpoints/step-NNNNNNN.safetensors (+ .optim.safetensors to resume),
model.safetensors (the final model, for every other fnet command), curves.png.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch.nn import functional as F

from fnet.core.checkpoint import save_checkpoint, save_weights
from fnet.core.device import autocast, autocast_dtype, prefers_channels_last, resolve_device
from fnet.core.embedder import Embedder, standardize
from fnet.core.info import ModelInfo
from fnet.core.models import create_model
from fnet.errors import SettingsError
from fnet.evaluation.metrics import best_threshold, kfold_accuracy, val_at_far
from fnet.io.atomic import atomic_path, remove_leftovers
from fnet.io.images import ImageError
from fnet.io.lock import exclusive
from fnet.io.tree import tree_items
from fnet.training import LOSSES
from fnet.training.curves import metric_records
from fnet.training.data import Augment, FaceFolder, split_identities
from fnet.training.losses import LossBatch
from fnet.training.miners import FALLBACKS, STRATEGIES
from fnet.training.sampler import IdentityBalancedSampler
from fnet.training.state import load_optimizer, save_optimizer, write_json

OPTIMIZERS = ("adagrad", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "step")


@dataclasses.dataclass
class TrainConfig:
    data: str
    output: str
    init: str = "scratch"  # scratch, pretrained (a named model: see `pretrained`) or a checkpoint file
    architecture: str = "small"
    embedding_dim: int = 128
    pretrained: str = "facenet-casia"
    identities: int = 16  # P per batch
    per_identity: int = 4  # K per identity
    extra: int = 0  # random extra faces per batch (negatives)
    steps: int = 1000
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup: int = 0
    loss: str = "triplet"  # a name in fnet.training.losses.LOSSES
    margin: float = 0.2  # triplet: alpha, in squared L2
    scale: float = 30.0  # arcface: s, the logits' scale
    angular_margin: float = 0.5  # arcface: m, in radians
    mining: str = "semihard"
    pick: str = "random"  # semihard: random or hardest semi-hard negative
    fallback: str = "hardest"
    clip: float = 0.0  # max gradient norm; 0 = off
    train_layers: str = "all"  # or "last": only the network's last block and head
    freeze_bn: bool = False  # batch norm keeps its running statistics (small batches, fine-tuning)
    augment: bool = True
    held_out: float = 0.2  # share of identities kept out of training for validation
    validate_every: int = 100
    checkpoint_every: int = 200
    val_pairs: int = 3000
    workers: int = 2
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    gather: bool = False  # DDP: mine over the whole global batch (all_gather) instead of per replica
    compatible_with: str | None = None  # harmonic embeddings: stay comparable with this checkpoint's

    def check(self) -> None:
        for name, value, allowed in (
            ("optimizer", self.optimizer, OPTIMIZERS), ("schedule", self.schedule, SCHEDULES),
            ("mining", self.mining, STRATEGIES), ("fallback", self.fallback, FALLBACKS),
            ("train_layers", self.train_layers, ("all", "last")), ("pick", self.pick, ("random", "hardest")),
            ("loss", self.loss, LOSSES.names()),
        ):
            if value not in allowed:
                raise SettingsError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, not {value!r}")
        if self.gather and self.compatible_with:
            raise SettingsError("--gather and --compatible-with cannot be combined")
        if self.loss != "triplet" and (self.gather or self.compatible_with):
            raise SettingsError(f"--gather and --compatible-with mine triplets: they need --loss triplet, not {self.loss}")
        if self.identities < 2 or self.per_identity < 2:
            raise SettingsError("batches need at least 2 identities with at least 2 faces each")


@dataclasses.dataclass
class Distributed:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _distributed(device_spec: str) -> tuple[Distributed, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed(), resolve_device(device_spec)
    import torch.distributed as dist

    cuda = torch.cuda.is_available() and device_spec != "cpu"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    return Distributed(dist.get_rank(), world), device


def _initial_model(c: TrainConfig) -> tuple[torch.nn.Module, ModelInfo]:
    from fnet.core.checkpoint import load_checkpoint
    from fnet.core.pretrained import is_pretrained_name, pretrained_checkpoint

    if c.init == "scratch":
        module = create_model(c.architecture, embedding_dim=c.embedding_dim)
        info = ModelInfo(name=Path(c.output).name, architecture=c.architecture, embedding_dim=c.embedding_dim,
                         input_size=module.input_size, normalization="fixed", threshold=1.0)
        return module, info
    path = pretrained_checkpoint(c.pretrained) if c.init == "pretrained" else Path(c.init)
    if c.init == "pretrained" and not is_pretrained_name(c.pretrained):
        raise SettingsError(f"unknown pretrained model {c.pretrained!r} (see `fnet models`)")
    state, info = load_checkpoint(path)
    module = create_model(info.architecture, embedding_dim=info.embedding_dim)
    module.load_state_dict(state)
    return module, info.replace(name=Path(c.output).name, source=str(path))


def _set_trainable(module: torch.nn.Module, c: TrainConfig) -> list[torch.nn.Module]:
    """Freeze all but the tail when asked; returns the modules to keep in eval mode."""
    frozen = []
    if c.train_layers == "last":
        tail = set(getattr(module, "tail", ()))
        for name, child in module.named_children():
            if name not in tail:
                child.requires_grad_(False)
                frozen.append(child)
    if c.freeze_bn:
        frozen += [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    return frozen


def _optimizer(c: TrainConfig, params) -> torch.optim.Optimizer:
    if c.optimizer == "adagrad":  # the paper's choice
        return torch.optim.Adagrad(params, lr=c.lr, weight_decay=c.weight_decay)
    if c.optimizer == "sgd":
        return torch.optim.SGD(params, lr=c.lr, momentum=0.9, weight_decay=c.weight_decay)
    return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)


def _lr_factor(c: TrainConfig, step: int) -> float:
    if c.warmup and step < c.warmup:
        return (step + 1) / c.warmup
    progress = step / max(1, c.steps)
    if c.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if c.schedule == "step":
        return 0.1 ** int(progress * 3)  # /10 after each third
    return 1.0


def validation_pairs(labels: list[str], count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows a, rows b, same) of held-out faces: as many same-person as different pairs, at most `count` each.

    Balanced, so that accuracy is not won by answering "different" to everything.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    same_a, same_b = np.nonzero((labels[:, None] == labels[None, :]) & np.triu(np.ones((len(labels),) * 2, bool), 1))
    a = rng.integers(0, len(labels), 4 * count)
    b = rng.integers(0, len(labels), 4 * count)
    differ = np.flatnonzero(labels[a] != labels[b])
    n = min(count, len(same_a), len(differ))
    pick, differ = rng.permutation(len(same_a))[:n], differ[:n]
    rows_a = np.concatenate([same_a[pick], a[differ]])
    rows_b = np.concatenate([same_b[pick], b[differ]])
    return rows_a, rows_b, np.r_[np.ones(n, bool), np.zeros(n, bool)]


MIN_CALIBRATION_PAIRS = 50  # same-person held-out pairs needed before a threshold is taken from them
RESUMABLE_CHANGES = ("steps", "validate_every", "checkpoint_every", "workers", "device", "precision", "data")


def _scores(distances: np.ndarray, same: np.ndarray) -> dict:
    folds = np.arange(len(same)) % 10
    val, _ = val_at_far(distances, same, 1e-3)
    return {"accuracy": kfold_accuracy(distances, same, folds).mean, "val_at_far_1e-3": val,
            "threshold": best_threshold(distances, same), "pairs": len(same)}


def calibrated_threshold(distances: np.ndarray, same: np.ndarray, threshold: float) -> str | None:
    """Why `threshold` must not become the model's (too few pairs, or it accepts no held-out pair), or None."""
    if not 0 < threshold < 4:
        return f"{threshold:.3f} is not a usable threshold (it must lie between 0 and 4)"
    if same.sum() < MIN_CALIBRATION_PAIRS:
        return f"only {int(same.sum())} same-person held-out pairs (need {MIN_CALIBRATION_PAIRS}): hold out more people (--held-out)"
    if not (distances[same] <= threshold).any():
        return f"{threshold:.3f} accepts no held-out pair of the same person"
    return None


class _GatherWithGradient(torch.autograd.Function):
    """Every process's embeddings, concatenated in rank order; the backward pass sends each
    process the summed gradient of its own rows (every process computes the same loss, and
    DDP then averages: together, the gradient of one process on the whole batch)."""

    @staticmethod
    def forward(ctx, local: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, local.contiguous())
        ctx.rank, ctx.rows = dist.get_rank(), len(local)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


class Trainer:
    def __init__(self, c: TrainConfig, on_record: Callable[[dict], None] | None = None):
        c.check()
        self.c, self.on_record = c, on_record
        self.dist, self.device = _distributed(c.device)
        self.out = Path(c.output)
        torch.manual_seed(c.seed)
        module, self.info = _initial_model(c)
        self.info = self.info.replace(training={k: v for k, v in dataclasses.asdict(c).items() if k not in ("output",)})
        self.frozen = _set_trainable(module, c)
        self.channels_last = prefers_channels_last(self.device)
        self.module = module.to(self.device, memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
        self.model = self.module
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(self.module, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.dtype = autocast_dtype(self.device, c.precision, cpu_bf16=False)  # training on a CPU stays fp32 unless asked
        self.scaler = torch.amp.GradScaler(enabled=self.dtype == torch.float16)
        self.old = None
        if c.compatible_with:
            from fnet.core.loading import load_model

            self.old = load_model(c.compatible_with, device=self.device)
            if self.old.info.embedding_dim != self.info.embedding_dim:
                raise SettingsError(f"{c.compatible_with}: {self.old.info.embedding_dim}-D embeddings; the new model makes {self.info.embedding_dim}-D")
        items = [item for item in tree_items(Path(c.data)) if item.label]
        if not items:
            raise SettingsError(f"{c.data}: no faces in identity folders (expected {c.data}/PERSON/FACE.png from `fnet align`)")
        train_items, held_items = split_identities(items, c.held_out, c.seed)
        self.train_set = FaceFolder(train_items, self.info.input_size, Augment() if c.augment else None)
        self.held_set = FaceFolder(held_items, self.info.input_size)
        identities = len(set(self.train_set.labels))
        self.loss = LOSSES.build(c.loss, c, identities, self.info.embedding_dim).to(self.device)
        self.criterion = self.loss  # what the step calls; with several processes, parameters are kept in sync
        if self.dist.world > 1 and list(self.loss.parameters()):
            from torch.nn.parallel import DistributedDataParallel

            self.criterion = DistributedDataParallel(self.loss, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        trainable = [p for p in self.module.parameters() if p.requires_grad] + list(self.loss.parameters())
        self.optimizer = _optimizer(c, trainable)
        self.start = self._resume()

    # --- persistence ---------------------------------------------------------------------
    def _checkpoints(self) -> list[Path]:
        return sorted((self.out / "checkpoints").glob("step-*[0-9].safetensors"))

    def _resume(self) -> int:
        """Continue from the newest checkpoint in the run folder, if any."""
        if self.dist.main:
            remove_leftovers(self.out / "checkpoints")  # a checkpoint half-written when the run was killed
        found = [p for p in self._checkpoints() if p.with_suffix(".optim.safetensors").is_file()]
        if not found:
            return 0
        from fnet.core.checkpoint import load_checkpoint

        state, info = load_checkpoint(found[-1])
        before, now = info.training, dataclasses.asdict(self.c)
        changed = [k for k in now if k not in RESUMABLE_CHANGES and k in before and before[k] != now[k]]
        if changed:
            raise SettingsError(
                f"{self.out} holds a run with other settings ("
                + ", ".join(f"--{k.replace('_', '-')} {before[k]} there, {now[k]} now" for k in changed)
                + "): pass the same settings to resume it, or another --output for a new run"
            )
        self.module.load_state_dict(state)
        if list(self.loss.parameters()):
            self.loss.load_state_dict(load_file(str(found[-1].with_suffix(".loss.safetensors"))))
        step = load_optimizer(found[-1].with_suffix(".optim.safetensors"), self.optimizer)
        metrics = self.out / "metrics.jsonl"
        if self.dist.main and metrics.is_file():  # drop lines of steps after the checkpoint, and a torn last line
            keep = [record for record in metric_records(metrics) if record.get("step", 0) <= step]
            with atomic_path(metrics) as tmp:
                tmp.write_text("".join(json.dumps(record) + "\n" for record in keep))
        return step

    def save(self, step: int, final: bool = False) -> Path:
        info = self.info.replace(training={**self.info.training, "step": step})
        path = self.out / ("model.safetensors" if final else f"checkpoints/step-{step:07d}.safetensors")
        save_checkpoint(path, self.module.state_dict(), info)
        if not final:
            if list(self.loss.parameters()):  # a classifier's weights: needed to resume, not to embed
                save_weights(path.with_suffix(".loss.safetensors"), self.loss.state_dict(), {"loss": self.c.loss, "step": step})
            save_optimizer(path.with_suffix(".optim.safetensors"), self.optimizer, step)
        return path

    def record(self, data: dict) -> None:
        if self.dist.main:
            with open(self.out / "metrics.jsonl", "a") as handle:
                handle.write(json.dumps(data) + "\n")
        if self.on_record:
            self.on_record(data)

    # --- one step ----------------------------------------------------------------------------
    def _embed(self, batch: torch.Tensor) -> torch.Tensor:
        x = standardize(batch.to(self.device, non_blocking=True), self.info.normalization)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.dtype):
            return self.model(x).float()

    def _gather(self, emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch.distributed as dist

        everyone = [torch.empty_like(labels) for _ in range(self.dist.world)]
        dist.all_gather(everyone, labels)
        return _GatherWithGradient.apply(emb), torch.cat(everyone)

    def step(self, step: int, batch: torch.Tensor, labels: torch.Tensor) -> dict:
        c = self.c
        started = time.perf_counter()
        self.model.train()
        for module in self.frozen:
            module.eval()
        labels = labels.to(self.device)
        emb = self._embed(batch)
        if c.gather and self.dist.world > 1:
            emb, labels = self._gather(emb, labels)
        new_rows = len(emb)
        if self.old is not None:  # harmonic: triplets mix new anchors with old-model faces
            old_input = batch if self.old.info.input_size == self.info.input_size else F.interpolate(
                batch, size=(self.old.info.input_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
            emb = torch.cat([emb, self.old.embed_tensor(old_input).clone()])
            labels = torch.cat([labels, labels])
        self._sync()
        mined = time.perf_counter()
        generator = torch.Generator(device=self.device).manual_seed(c.seed * 1_000_003 + step)
        out = self.criterion(LossBatch(emb, labels, new_rows, step / max(1, c.steps), generator))
        self._sync()
        mining_s = time.perf_counter() - mined
        loss = out.loss
        for group in self.optimizer.param_groups:
            group["lr"] = c.lr * _lr_factor(c, step)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if c.clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_([*self.module.parameters(), *self.loss.parameters()], c.clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self._sync()
        seconds = time.perf_counter() - started
        with torch.no_grad():
            spread = float((emb[:new_rows] - emb[:new_rows].mean(0)).pow(2).sum(1).mean())
        record = {"step": step + 1, "loss": float(loss.detach()), **out.stats, "spread": spread,
                  "lr": self.optimizer.param_groups[0]["lr"], "images_per_s": len(batch) * self.dist.world / seconds,
                  "mining_share": mining_s / seconds}  # mining_share: the loss's own share of the step (mining, classifier)
        if "triplets" in out.stats:
            record["triplets_per_s"] = out.stats["triplets"] / seconds
        return record

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # --- validation ----------------------------------------------------------------------------
    def validate(self, step: int) -> dict:
        """Held-out identities: 10-fold accuracy and VAL at FAR=1e-3 (and across models when harmonic)."""
        if len(self.held_set) < 2:
            return {}
        crops, labels = [], []
        for row in range(len(self.held_set)):
            try:
                crops.append(self.held_set.load(row).permute(1, 2, 0).numpy().astype(np.uint8))
                labels.append(self.held_set.labels[row])
            except ImageError:
                continue  # named once by the training data's warning; validation just leaves it out
        embedder = Embedder(self.module, self.info, device=self.device)
        emb = embedder.embed(crops)
        a, b, same = validation_pairs(labels, self.c.val_pairs, self.c.seed)
        distances = ((emb[a] - emb[b]) ** 2).sum(1)
        result = {"step": step, "kind": "val", **_scores(distances, same)}
        problem = calibrated_threshold(distances, same, result["threshold"])
        if problem is None:
            self.info = self.info.replace(threshold=result["threshold"])  # the saved model's verification threshold
        else:
            result["threshold_kept"] = f"threshold {self.info.threshold:.3f} kept: {problem}"
        if self.old is not None:
            old = self.old.embed(crops)
            cross = _scores(((emb[a] - old[b]) ** 2).sum(1), same)
            result.update({f"cross_{k}": v for k, v in cross.items() if k != "threshold"})
        return result

    # --- the run ---------------------------------------------------------------------------------
    def batches(self):
        sampler = IdentityBalancedSampler(self.train_set.labels, self.c.identities, self.c.per_identity, self.c.extra,
                                          self.c.seed, self.start, self.dist.rank, self.dist.world)
        keyed = ([(row, hash((self.c.seed, number, position)) & 0x7FFFFFFF) for position, row in enumerate(rows)]
                 for number, rows in enumerate(sampler, self.start))
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=keyed, num_workers=self.c.workers, pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if self.c.workers else None, persistent_workers=False,
        )
        return iter(loader)

    def run(self) -> Path:
        """Train to the configured step count; the main process holds the run folder's write lock meanwhile."""
        if not self.dist.main:
            return self._run()
        with exclusive(self.out, folder=True):
            return self._run()

    def _run(self) -> Path:
        c = self.c
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(self.out / "config.json", dataclasses.asdict(c))
            if self.start == 0 and c.validate_every:
                self.record(self.validate(0))
        batches = self.batches()
        for step in range(self.start, c.steps):
            batch, labels = next(batches)
            self.record(self.step(step, batch, labels))
            done = step + 1
            if self.dist.main and c.checkpoint_every and done % c.checkpoint_every == 0 and done < c.steps:
                self.save(done)
            if self.dist.main and c.validate_every and (done % c.validate_every == 0 or done == c.steps):
                self.record(self.validate(done))
        if self.dist.main:
            self.save(c.steps)  # resumable at the end too
            self.save(c.steps, final=True)
            from fnet.training.curves import plot_curves

            plot_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        if self.dist.world > 1:
            # every rank returns once the model exists; a rank that left early could also tear
            # down its gloo pairs while the main one still writes (seen as SIGABRT in CI)
            import torch.distributed as dist

            dist.barrier()
        return self.out / "model.safetensors"
