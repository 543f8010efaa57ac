"""`fnet evaluate`: verification accuracy on LFW's protocol, or any list of pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from fnet.cli.app import command
from fnet.cli.feedback import stage_progress
from fnet.cli.options import DetectorOption, DeviceOption, FlipOption, JsonOption, MarginOption, ModelOption, ModeOption
from fnet.cli.output import result, warn


@command
def evaluate(
    data: Annotated[Path, typer.Argument(help="The photos (e.g. lfw-deepfunneled/), or aligned crops with --aligned.")],
    pairs: Annotated[Path, typer.Option(help="LFW's pairs.txt (View 2: 10 folds of 300 + 300), or a CSV: path_a, path_b, same.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for metrics.json, roc.png, report.html and the embeddings cache.")] = Path("fnet-eval"),
    mode: ModeOption = "auto",
    margin: MarginOption = 32,
    flip: FlipOption = False,
    aligned: Annotated[bool, typer.Option("--aligned", help="DATA holds aligned crops: no detection.")] = False,
    far: Annotated[float, typer.Option(help="The false accept rate at which VAL is reported.")] = 1e-3,
    subtract_mean: Annotated[
        bool, typer.Option("--subtract-mean", help="The FaceNet reference's protocol: subtract the training folds' mean embedding first.")
    ] = False,
    detector: DetectorOption = "mtcnn",
    model: ModelOption = "facenet-casia",
    device: DeviceOption = "auto",
    json_output: JsonOption = False,
) -> None:
    """Measure verification accuracy with the LFW protocol (or any list of pairs).

    Reports the 10-fold accuracy (threshold chosen on nine folds, tested on the tenth),
    VAL at FAR=1e-3 (the paper's definitions, on squared L2 distance), ROC AUC, equal
    error rate and the best threshold; writes a ROC plot and an HTML page showing the worst
    false accepts and false rejects. Embeddings are cached in OUTPUT, so a second run with
    the same settings is instant.

    Example: fnet evaluate lfw/lfw-deepfunneled --pairs lfw/pairs.txt --subtract-mean
    """
    from fnet.pipeline import load_pipeline
    from fnet.pipeline.evaluate import evaluate_pairs

    pipeline = load_pipeline(model, detector=detector, device=device, mode=mode, margin=margin)
    with stage_progress("images", "embedding") as feedback:
        m = evaluate_pairs(pipeline, data, pairs, output, aligned, flip, far, subtract_mean, feedback.on_start, feedback.on_item)
    if m["val_note"]:
        warn(m["val_note"])
    metrics = {key: value for key, value in m.items() if key not in ("tag", "report")}
    result(metrics, Text(
        f"{m['pairs']} pairs, {m['tag']}{', mean subtracted' if subtract_mean else ''}\n"
        f"  accuracy        {m['accuracy']:.2%} +- {m['accuracy_standard_error']:.2%} (10-fold; std {m['accuracy_std']:.2%})\n"
        f"  VAL @ FAR={far:g}  {m['val']:.2%} +- {m['val_std']:.2%} (FAR {m['far']:.5f})\n"
        f"  ROC AUC         {m['auc']:.5f}   EER {m['eer']:.2%}   best threshold {m['best_threshold']:.3f}\n"
        f"  no face found   {m['images_without_detected_face']} images (embedded from a centre crop)\n"
        f"  report          {m['report']}"
    ))
