"""The training-curve picture: loss and active triplets, embedding spread, held-out scores."""

from __future__ import annotations

import json
from pathlib import Path


def metric_records(path: Path) -> list[dict]:
    """The records of a metrics.jsonl, without a torn last line (a full disk or a kill mid-write)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # half a line: the record it began is lost, the run is not
    return records


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """(per-step records, validation records) of a run's metrics.jsonl."""
    steps, vals = [], []
    for record in metric_records(path):
        (vals if record.get("kind") == "val" else steps).append(record)
    return steps, vals


def plot_curves(metrics: Path, output: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps, vals = read_metrics(metrics)
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6), dpi=110)
    x = [r["step"] for r in steps]
    triplet = bool(steps) and "active" in steps[0]  # else a classification loss (arcface)
    axes[0].plot(x, [r["loss"] for r in steps], lw=0.8, label="triplet loss" if triplet else "loss")
    share, share_label = ("active", "active triplets (share)") if triplet else ("batch_accuracy", "training-batch accuracy")
    axes[0].plot(x, [r.get(share, float("nan")) for r in steps], lw=0.8, label=share_label)
    axes[0].set_xlabel("step")
    axes[0].legend(fontsize=8)
    if triplet:
        axes[1].plot(x, [r["d_ap"] for r in steps], lw=0.8, label="mean d(a,p)")
        axes[1].plot(x, [r["d_an"] for r in steps], lw=0.8, label="mean d(a,n)")
    axes[1].plot(x, [r["spread"] for r in steps], lw=0.8, label="embedding spread (0 = collapse)")
    axes[1].set_xlabel("step")
    axes[1].legend(fontsize=8)
    if vals:
        vx = [r["step"] for r in vals]
        axes[2].plot(vx, [r["accuracy"] for r in vals], marker="o", label="held-out accuracy")
        axes[2].plot(vx, [r["val_at_far_1e-3"] for r in vals], marker="o", label="held-out VAL @ FAR=1e-3")
        if "cross_accuracy" in vals[0]:
            axes[2].plot(vx, [r["cross_accuracy"] for r in vals], marker="s", label="new vs old model accuracy")
        axes[2].set_xlabel("step")
        axes[2].legend(fontsize=8)
    for axis in axes:
        axis.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(output)
    plt.close(figure)
    return output
