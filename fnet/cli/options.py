"""Options shared by several commands, declared once, and the checks they get before any model loads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fnet.cli.output import json_mode
from fnet.core.detectors import DETECTORS
from fnet.errors import SettingsError

ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="A pretrained model name (see `fnet models`) or an fnet checkpoint file.")
]
DeviceOption = Annotated[str, typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")]
PrecisionOption = Annotated[str, typer.Option(help="auto (bf16 on GPUs and, for inference, on CPUs with AMX, else fp32; fp16 on older GPUs), fp32, fp16 or bf16.")]
JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print machine-readable JSON instead of a table (errors too: {error, path, reason}).",
    callback=json_mode, is_eager=True,
)]
FlipOption = Annotated[bool, typer.Option("--flip", help=(
    "Also embed each face's mirror image and average the two (test-time augmentation; "
    "on LFW it did not help the pretrained model, see docs/evaluate.md)."
))]
DetectorOption = Annotated[str, typer.Option("--detector", help=f"Face detector: {DETECTORS.describe()}.")]
MinFaceOption = Annotated[int, typer.Option("--min-face", min=1, help="Smallest face to find, in pixels (MTCNN's pyramid starts there).")]
RetryFacelessOption = Annotated[
    bool, typer.Option("--retry-failed", help="Detect again the photos in which an earlier run found no face (they are skipped otherwise).")
]
ModeOption = Annotated[
    str, typer.Option(help=(
        "auto: the model's own (crop for facenet-casia, chip for dlib-resnet); crop: detector box + margin; "
        "similarity: 5-point warp to fnet's template; chip: 5-point warp to dlib's face chip."
    ))
]
MarginOption = Annotated[float, typer.Option(min=0, help="Margin around the box, in pixels of the output crop (crop mode).")]
FallbackOption = Annotated[str, typer.Option(help=(
    "none: a photo without a detected face gives no crop (it is reported); whole: its centred square (all of the "
    "shorter side) is taken as the face, for photos that are tight face crops already (e.g. Extended Yale B)."
))]
DetectBatchOption = Annotated[int, typer.Option("--detect-batch", min=1, help="Photos per detector pass (memory grows with it on large photos).")]
DetectSizeOption = Annotated[int, typer.Option("--detect-size", min=0, help=(
    "Photos longer than this (pixels) are searched for faces on a downscaled copy, and cropped from the full photo: "
    "a 12 MP photo then costs what a 1 MP one does, but faces under --min-face times the shrink factor are missed "
    "(79 px in a 12 MP photo at 1024). Raise it, or 0 (full resolution), to find small faces in large photos."
))]
FALLBACKS = {"none": None, "whole": 1.0}  # --fallback -> the share of the shorter side cropped


def fallback_fraction(name: str) -> float | None:
    if name not in FALLBACKS:
        raise SettingsError(f"--fallback must be one of {', '.join(FALLBACKS)}, not {name!r}")
    return FALLBACKS[name]


def check_output(output: Path, folder: bool) -> None:
    """An output that exists must be of the kind the command writes."""
    if folder and output.exists() and not output.is_dir():
        raise SettingsError(f"{output}: exists and is not a folder; -o names the folder to write into")
    if not folder and output.is_dir():
        raise SettingsError(f"{output}: is a folder; -o names the file to write (e.g. {output / 'faces.h5'})")


def check_folder(path: Path) -> None:
    if not path.is_dir():
        raise SettingsError(f"{path}: not a folder")


GalleryOption = Annotated[Path | None, typer.Option("--gallery", "-g", help=(
    "The people gallery (an SQLite file; default $FNET_GALLERY, else ~/.local/share/fnet/people.db)."
))]


def gallery_path(path: Path | None) -> Path:
    from fnet.people.gallery import default_gallery

    return path or default_gallery()


RayOption = Annotated[str | None, typer.Option("--ray", metavar="ADDRESS", help=(
    "Run on Ray (pip install 'fnet[ray]'): local (a Ray started here), auto (the cluster this machine "
    "joined with `ray start`) or ray://HEAD:10001. Photos and outputs must be on storage every node reads."
))]
ActorsOption = Annotated[int, typer.Option("--actors", min=0, help="With --ray: model replicas (0: as many as the cluster's CPUs, or GPUs, allow).")]
ActorCpusOption = Annotated[float, typer.Option("--actor-cpus", min=0.25, help="With --ray: CPUs per replica (its torch threads).")]
RayBatchOption = Annotated[int, typer.Option("--ray-batch", min=1, help="With --ray: photos an actor takes at a time (the unit retried when a node is lost).")]
ActorGpusOption = Annotated[float, typer.Option("--actor-gpus", min=0, help="With --ray: GPUs per replica (> 0 runs the model on CUDA).")]
