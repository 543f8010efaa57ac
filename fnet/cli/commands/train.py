"""`fnet train`: train face embeddings (triplet loss with online mining, or ArcFace), resumably."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fnet.cli.app import command
from fnet.cli.options import DeviceOption, PrecisionOption, check_folder
from fnet.cli.output import console, note, progress, warn
from fnet.training import LOSSES


@command
def train(
    data: Annotated[Path, typer.Argument(help="Aligned faces in identity folders (PERSON/FACE.png), e.g. from `fnet align`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Run folder: checkpoints, metrics.jsonl, curves.png, model.safetensors. Rerun to resume.")] = Path("fnet-train"),
    init: Annotated[str, typer.Option(help="scratch, pretrained (fine-tune --pretrained) or a checkpoint file.")] = "scratch",
    architecture: Annotated[str, typer.Option(help="From scratch: small (fast, CPU-friendly, 96 px) or inception_resnet_v1 (FaceNet's, 160 px).")] = "small",
    embedding_dim: Annotated[int, typer.Option(help="From scratch: embedding size.")] = 128,
    pretrained: Annotated[str, typer.Option(help="The named model --init pretrained starts from.")] = "facenet-casia",
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 1000,
    identities: Annotated[int, typer.Option(help="Identities per batch (P).")] = 16,
    per_identity: Annotated[int, typer.Option(help="Faces per identity (K); batch = P x K + --extra.")] = 4,
    extra: Annotated[int, typer.Option(help="Random extra faces per batch, as negatives.")] = 0,
    optimizer: Annotated[str, typer.Option(help="adagrad (the paper's), adam or sgd.")] = "adam",
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay.")] = 0.0,
    schedule: Annotated[str, typer.Option(help="Learning-rate schedule: constant, cosine or step (/10 after each third).")] = "cosine",
    warmup: Annotated[int, typer.Option(help="Linear warm-up steps.")] = 0,
    loss: Annotated[str, typer.Option(help=f"What training minimises: {LOSSES.describe()}.")] = "triplet",
    margin: Annotated[float, typer.Option(help="Triplet margin alpha (squared L2).")] = 0.2,
    scale: Annotated[float, typer.Option(help="ArcFace: the scale s of the cosine logits.")] = 30.0,
    angular_margin: Annotated[float, typer.Option(help="ArcFace: the additive angular margin m, in radians.")] = 0.5,
    mining: Annotated[str, typer.Option(help="semihard (FaceNet), hard (batch-hard), all (batch-all) or curriculum (easy to hard).")] = "semihard",
    pick: Annotated[str, typer.Option(help="semihard: random or hardest semi-hard negative.")] = "random",
    fallback: Annotated[str, typer.Option(help="semihard, for pairs without one: hardest, easiest or drop.")] = "hardest",
    clip: Annotated[float, typer.Option(help="Clip the gradient norm at this (0: off).")] = 0.0,
    train_layers: Annotated[str, typer.Option(help="all, or last: only the last block and the embedding head.")] = "all",
    freeze_bn: Annotated[bool, typer.Option("--freeze-bn", help="Keep batch norm's running statistics (small batches, fine-tuning).")] = False,
    augment: Annotated[bool, typer.Option(help="Mirror, small random crops and colour jitter.")] = True,
    held_out: Annotated[float, typer.Option(help="Share of identities held out for validation (never trained on).")] = 0.2,
    validate_every: Annotated[int, typer.Option(help="Steps between held-out validations (0: off).")] = 100,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 200,
    gather: Annotated[bool, typer.Option("--gather", help="With torchrun: mine over the whole global batch instead of per process.")] = False,
    compatible_with: Annotated[Path | None, typer.Option(help="Harmonic embeddings: keep the new model comparable with this checkpoint.")] = None,
    workers: Annotated[int, typer.Option(help="Data-loading processes.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed (batches, augmentation, mining).")] = 0,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
) -> None:
    """Train face embeddings: the triplet loss with online mining (FaceNet), or ArcFace (--loss arcface).

    Batches hold P identities x K faces; the miner picks, inside each batch, a semi-hard
    negative for every anchor-positive pair (ArcFace instead scores every face against a
    classifier of the training identities, which is dropped from the saved model). Held-out identities are scored (10-fold
    accuracy, VAL at FAR=1e-3) during training. Running the same command again resumes
    from the last checkpoint. Several GPUs or machines: torchrun --nproc-per-node N -m fnet train ...

    Examples: fnet train aligned/ -o run/ --steps 2000;  fnet train aligned/ -o tuned/ --init pretrained --train-layers last
    """
    from fnet.training.loop import TrainConfig, Trainer

    check_folder(data)
    settings = TrainConfig(
        data=str(data), output=str(output), init=init, architecture=architecture, embedding_dim=embedding_dim,
        pretrained=pretrained, identities=identities, per_identity=per_identity, extra=extra, steps=steps,
        optimizer=optimizer, lr=lr, weight_decay=weight_decay, schedule=schedule, warmup=warmup, loss=loss, margin=margin, scale=scale,
        angular_margin=angular_margin,
        mining=mining, pick=pick, fallback=fallback, clip=clip, train_layers=train_layers, freeze_bn=freeze_bn,
        augment=augment, held_out=held_out, validate_every=validate_every, checkpoint_every=checkpoint_every,
        workers=workers, device=device, precision=precision, seed=seed, gather=gather,
        compatible_with=str(compatible_with) if compatible_with else None,
    )
    with progress("steps") as bar:
        task = bar.add_task("training", total=steps)

        def on_record(record: dict) -> None:
            if record.get("kind") == "val":
                cross = f", new vs old {record['cross_accuracy']:.4f}" if "cross_accuracy" in record else ""
                console.print(
                    f"step {record['step']}: held-out accuracy {record.get('accuracy', float('nan')):.4f}, "
                    f"VAL@FAR=1e-3 {record.get('val_at_far_1e-3', float('nan')):.4f} on {record.get('pairs', 0)} pairs{cross}",
                    highlight=False,
                )
                if "threshold_kept" in record:
                    warn(record["threshold_kept"])
            else:
                shown = (f"active {record['active']:.0%} {record['triplets_per_s']:.0f} triplets/s" if "active" in record
                         else f"batch accuracy {record['batch_accuracy']:.0%}")
                bar.update(task, completed=record["step"], description=f"loss {record['loss']:.3f} {shown}")

        trainer = Trainer(settings, on_record)
        bar.update(task, completed=trainer.start, resumed=trainer.start)
        if trainer.start:
            note(f"resuming from step {trainer.start} ({output / 'checkpoints'})")
        path = trainer.run()
    if trainer.dist.main:
        console.print(f"{path}: trained {steps} steps; metrics in {output / 'metrics.jsonl'}, curves in {output / 'curves.png'}", highlight=False, markup=False)
