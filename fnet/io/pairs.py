"""Labelled pair lists: LFW's pairs.txt (View 2) and a plain CSV (path_a, path_b, same)."""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

from fnet.errors import FnetError


@dataclasses.dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool
    fold: int


class PairsError(FnetError, ValueError):
    pass


def _lfw_path(root: Path, name: str, number: str) -> Path:
    return root / name / f"{name}_{int(number):04d}.jpg"


def read_lfw_pairs(pairs_file: str | os.PathLike, image_root: str | os.PathLike) -> list[Pair]:
    """LFW View 2: a header 'folds n', then per fold n same pairs (name i j) and n different (name i name j)."""
    root = Path(image_root)
    lines = [line.split() for line in Path(pairs_file).read_text().splitlines() if line.strip()]
    try:
        folds, per_fold = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError):
        raise PairsError(f"{pairs_file}: first line must be '<folds> <pairs per fold>', e.g. '10 300'") from None
    body = lines[1:]
    if len(body) != folds * 2 * per_fold:
        raise PairsError(f"{pairs_file}: expected {folds * 2 * per_fold} pair lines, found {len(body)}")
    pairs = []
    for index, fields in enumerate(body):
        fold = index // (2 * per_fold)
        if len(fields) == 3:
            pairs.append(Pair(_lfw_path(root, fields[0], fields[1]), _lfw_path(root, fields[0], fields[2]), True, fold))
        elif len(fields) == 4:
            pairs.append(Pair(_lfw_path(root, fields[0], fields[1]), _lfw_path(root, fields[2], fields[3]), False, fold))
        else:
            raise PairsError(f"{pairs_file}:{index + 2}: expected 3 or 4 fields, got {len(fields)}")
    return pairs


_TRUE = {"1", "true", "yes", "same", "y"}
_FALSE = {"0", "false", "no", "different", "diff", "n"}


def read_csv_pairs(csv_file: str | os.PathLike, image_root: str | os.PathLike | None = None, folds: int = 10) -> list[Pair]:
    """CSV with a header; the first two columns are image paths, the third says same (1/yes/true) or not.

    Folds are assigned round-robin (same and different pairs separately) for k-fold metrics.
    """
    root = Path(image_root) if image_root else Path(csv_file).parent
    pairs, counts = [], {True: 0, False: 0}
    with open(csv_file, newline="") as handle:
        rows = csv.reader(handle)
        next(rows, None)  # header
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            label = row[2].strip().lower() if len(row) > 2 else ""
            if label not in _TRUE | _FALSE:
                raise PairsError(f"{csv_file}:{line}: third column must say same (1/yes/true) or different (0/no/false)")
            same = label in _TRUE
            pairs.append(Pair(root / row[0].strip(), root / row[1].strip(), same, counts[same] % folds))
            counts[same] += 1
    return pairs
