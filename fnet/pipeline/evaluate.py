"""The evaluate stage: a verification protocol (LFW pairs.txt or a CSV of pairs) -> the paper's metrics.

Images are aligned and embedded once through the embed stage into an HDF5 cache named by
the settings, so evaluating again with other metrics or thresholds costs nothing, and an
interrupted run resumes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fnet.crops import centre_crop
from fnet.evaluation.report import html_report, roc_png
from fnet.evaluation.verification import Evaluation
from fnet.io.images import load_image
from fnet.io.pairs import Pair, PairsError, read_csv_pairs, read_lfw_pairs
from fnet.io.stores import open_store, store_path
from fnet.io.tree import NO_BOX, Item
from fnet.pipeline.aligner import Aligner
from fnet.pipeline.embed import FALLBACK_CROP, embed_tree

if TYPE_CHECKING:
    from fnet.core.embedder import Embedder
    from fnet.pipeline.build import Pipeline


def read_pairs(pairs_file: Path, data_dir: Path) -> list[Pair]:
    """LFW's pairs.txt when its first line is '<folds> <n>', else a CSV of pairs."""
    try:
        first = Path(pairs_file).read_text().split("\n", 1)[0].split()
    except (OSError, UnicodeDecodeError) as err:
        raise PairsError(f"{pairs_file}: {getattr(err, 'strerror', None) or err}") from None
    if len(first) == 2 and all(v.isdigit() for v in first):
        return read_lfw_pairs(pairs_file, data_dir)
    return read_csv_pairs(pairs_file, data_dir)


def evaluate(
    data_dir: Path,
    pairs: list[Pair],
    model: Embedder,
    aligner: Aligner | None,
    cache: Path,
    flip: bool = False,
    far_target: float = 1e-3,
    subtract_mean: bool = False,
    on_start=None,
    on_item=None,
) -> Evaluation:
    """Embed every image of the pairs (cached in `cache`) and pair them up.

    subtract_mean: the FaceNet reference's protocol: subtract the training folds' mean
    embedding before comparing (it removes a dataset-wide offset; threshold-free metrics
    use the mean of all pairs).
    """
    data_dir = Path(data_dir)
    if not pairs:
        raise PairsError("no pairs to evaluate")
    images = sorted({p.a for p in pairs} | {p.b for p in pairs})
    missing = [p for p in images if not p.is_file()]
    if missing:
        raise PairsError(f"{len(missing)} paired images not found, e.g. {missing[0]}")
    items = [Item(p, p.relative_to(data_dir).as_posix() if p.is_relative_to(data_dir) else str(p), "", NO_BOX) for p in images]
    report = embed_tree(
        data_dir, cache, model, aligner, flip=flip, items=items, fallback_crop=FALLBACK_CROP if aligner else None,
        on_start=on_start, on_item=on_item,
    )
    if report.errors:
        raise PairsError(f"{report.errors} paired images could not be read (see the messages above)")
    with open_store(cache) as store:
        rows = dict(zip(store.paths(), store.embeddings()))
        fallbacks = int(np.isnan(store.boxes()[:, 0]).sum()) if aligner else 0
    key = {p: i.rel for p, i in zip(images, items)}
    a = np.stack([rows[key[p.a]] for p in pairs])
    b = np.stack([rows[key[p.b]] for p in pairs])
    folds = np.array([p.fold for p in pairs])
    if len(np.unique(folds)) < 2:  # a one-fold list: cross-validate over ten round-robin folds
        folds = np.arange(len(pairs)) % min(10, len(pairs))
    return Evaluation(pairs, a, b, np.array([p.same for p in pairs]), folds, far_target, fallbacks, subtract_mean)


def write_report(path: Path, title: str, metrics: dict, result: Evaluation, aligner: Aligner | None, size: int) -> Path:
    """report.html: the metrics, roc.png, and the worst false accepts / rejects (re-aligned for thumbnails)."""

    def crop(image_path: Path) -> np.ndarray:
        image = load_image(image_path)
        if aligner is None:
            return image
        faces = aligner.align([image])[0]
        return faces[0].crop if faces else centre_crop(image, FALLBACK_CROP, size)

    false_accepts, false_rejects = result.worst()
    mistakes = {
        heading: [
            (str(result.pairs[i].a), str(result.pairs[i].b), float(result.distances[i]), crop(result.pairs[i].a), crop(result.pairs[i].b))
            for i in picks
        ]
        for heading, picks in (
            ("Worst false accepts (different people, nearest)", false_accepts),
            ("Worst false rejects (same person, farthest)", false_rejects),
        )
    }
    return html_report(title, metrics, mistakes, "roc.png", path)


def file_safe(name: str) -> str:
    """A model's name as part of a file name: no separators, no '..' (a checkpoint named '../x' stays in -o)."""
    return re.sub(r"[^A-Za-z0-9_.+=-]", "_", name).replace("..", "_").lstrip(".") or "model"


def evaluate_pairs(
    pipeline: Pipeline, data: Path, pairs_file: Path, output: Path, aligned: bool = False, flip: bool = False,
    far_target: float = 1e-3, subtract_mean: bool = False, on_start=None, on_item=None,
) -> dict:
    """The whole evaluation: embed (cached in output/), score, and write metrics.json, roc.png, report.html.

    Returns the metrics, with the model, settings and where the report is.
    """
    data, output = Path(data), Path(output)
    pair_list = read_pairs(pairs_file, data)
    aligner = None if aligned else pipeline.aligner("center")
    s = pipeline.settings
    settings = "aligned" if aligned else f"{pipeline.mode}-m{s.margin:g}"
    tag = f"{pipeline.info.name}-{settings}{'-flip' if flip else ''}"
    output.mkdir(parents=True, exist_ok=True)
    result = evaluate(
        data, pair_list, pipeline.embedder, aligner, store_path(output, f"embeddings-{file_safe(tag)}"), flip=flip, far_target=far_target,
        subtract_mean=subtract_mean, on_start=on_start, on_item=on_item,
    )
    metrics = {"model": pipeline.info.name, "settings": settings, "flip": flip, **result.metrics()}
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    roc_png({f"{tag} (AUC {metrics['auc']:.4f})": (result.distances, result.same)}, output / "roc.png", far_target)
    write_report(output / "report.html", f"fnet evaluate: {tag}", metrics, result, aligner, pipeline.crop_size)
    return {**metrics, "tag": tag, "report": str(output / "report.html")}
