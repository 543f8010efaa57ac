"""The align stage: ``align_tree`` runs an ``Aligner`` over a folder tree, resumably.

``person/img.jpg`` -> ``OUT/person/img.png`` (or ``img_face0.png``, ... for every face), with
a manifest line per photo saying what became of it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np

from fnet.crops import centre_box, centre_crop
from fnet.errors import SettingsError
from fnet.io.ahead import photo_batches
from fnet.io.atomic import atomic_path, remove_leftovers, write_atomic
from fnet.io.images import ImageError, name_problem, whole_photo
from fnet.io.lock import exclusive
from fnet.io.manifest import MANIFEST, Manifest
from fnet.io.png import encode_png
from fnet.io.tree import find_image_rels
from fnet.pipeline.aligner import Aligner, AlignSettings


@dataclasses.dataclass
class AlignReport:
    images: int = 0
    skipped: int = 0  # already done in an earlier run
    failed_before: int = 0  # of those, photos that gave no crop then
    faces: int = 0
    no_face: int = 0
    errors: int = 0
    fallbacks: int = 0  # photos without a detected face, cropped whole (fallback_crop)

    @property
    def failed(self) -> bool:
        return bool(self.no_face or self.errors or self.failed_before)


def crop_stems(rels: Iterable[str]) -> dict[str, str]:
    """The photos whose crops cannot be named by their relative path without its suffix
    ('person/img.jpg' -> 'person/img', then '.png' or '_faceN.png'), with the stem each gets instead.

    Photos of one folder whose names differ only by suffix or case (photo.jpg, photo.png,
    Photo.JPEG) keep their whole name (photo.jpg.png, ...), so that no crop overwrites another
    on any file system, case-insensitive ones included. Only those are listed (crop_stem names
    the rest): a run keeps nothing more for every photo of a library.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for rel in rels:
        path = PurePosixPath(rel)
        groups.setdefault((str(path.parent), path.stem.casefold()), []).append(rel)
    renamed = {}
    for group in (group for group in groups.values() if len(group) > 1):
        for number, rel in enumerate(group):  # the whole name; photos whose names differ only by case get a number too
            name = PurePosixPath(rel).name
            twins = sum(PurePosixPath(other).name.casefold() == name.casefold() for other in group[:number])
            renamed[rel] = rel + (f"~{twins}" if twins else "")
    return renamed


def crop_stem(rel: str, renamed: dict[str, str]) -> str:
    """A photo's crop stem: as crop_stems renamed it, else its relative path without the suffix."""
    return renamed.get(rel) or str(PurePosixPath(rel).with_suffix(""))


CUT = "alignment.json"  # how an aligned folder's crops were cut: mode, size (and margin in crop mode)


def cut_of(settings: AlignSettings) -> dict:
    return {"mode": settings.mode, "size": settings.size, **({"margin": settings.margin} if settings.mode == "crop" else {})}


def describe_cut(cut: dict) -> str:
    margin = f", margin {cut['margin']:g}" if "margin" in cut else ""
    return f"{cut.get('mode')} mode at {cut.get('size')} px{margin}"


def record_cut(output: Path, settings: AlignSettings) -> None:
    """Say in the folder how its crops are cut; a folder cut another way is refused (its crops would mix)."""
    path, cut = output / CUT, cut_of(settings)
    if path.is_file():
        before = json.loads(path.read_text())
        if before != cut:
            raise SettingsError(f"{output} holds crops cut in {describe_cut(before)}; this run cuts {describe_cut(cut)} "
                                "(the model's own alignment, or --mode): align into another folder")
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(cut) + "\n")


def check_cut_fits(folder: Path, mode: str, size: int, model: str) -> None:
    """Crops from `fnet align` must be cut the way the model embeds faces (folders without the record pass)."""
    path = Path(folder) / CUT
    if not path.is_file():
        return
    cut = json.loads(path.read_text())
    if (cut.get("mode"), cut.get("size")) != (mode, size):
        raise SettingsError(
            f"{folder} holds crops cut in {describe_cut(cut)}, but {model} embeds faces cut in {mode} mode at {size} px: "
            f"align the photos again with --model {model}, or embed these crops with the model they were cut for"
        )


def write_png(array: np.ndarray, path: Path) -> None:
    """Atomic: a crash never leaves a half-written crop under the final name."""
    write_atomic(path, encode_png(array))


def align_tree(
    source: Path,
    output: Path,
    aligner: Aligner,
    batch_size: int = 8,
    workers: int = 2,
    on_image: Callable[[list[dict]], None] | None = None,  # a photo's manifest records
    on_start: Callable[[int], None] | None = None,
    retry_failed: bool = False,
    fallback_crop: float | None = None,
) -> AlignReport:
    """Align every photo under source into output; photos already in the manifest are skipped.

    retry_failed: also redo photos that gave no crop before (no face, unreadable).
    fallback_crop: a photo without a detected face gives the centred square of this fraction
    of its shorter side (1.0: photos that are tight face crops already); its record says so.
    """
    source, output = Path(source), Path(output)
    report = AlignReport()
    all_rels = find_image_rels(source, exclude=[output])  # an output inside the input is not read back
    renamed = crop_stems(all_rels)
    with exclusive(output, folder=True), Manifest(output / MANIFEST) as manifest:  # one writer per output folder
        for suffix in (".png", ".tmp"):  # a killed run's half-written crops (and alignment.json), never renamed into place
            remove_leftovers(output, suffix)
        record_cut(output, aligner.settings)
        last_status = {r["source"]: r["status"] for r in manifest.records}  # a retried photo's newest line wins
        failed = {source for source, status in last_status.items() if status != "ok"}
        done = manifest.done() - (failed if retry_failed else set())
        todo = [rel for rel in all_rels if rel not in done]
        report.skipped = len(all_rels) - len(todo)
        report.failed_before = sum(rel in failed and rel in done for rel in all_rels)
        if on_start:
            on_start(len(todo))
        def finish(written: Future) -> None:
            # The batch's crops are on disk: one write and one fsync for its lines (one per photo
            # cost a disk flush each). A line present still means its crops are complete.
            batch_records = written.result()
            manifest.append(*(record for records in batch_records for record in records))
            for records in batch_records:
                report.images += 1
                report.faces += sum(r["status"] == "ok" for r in records)
                report.fallbacks += records[0].get("fallback", False)
                report.no_face += records[0]["status"] == "no_face"
                report.errors += records[0]["status"] == "error"
                if on_image:
                    on_image(records)

        def write(photos: list) -> list[list[dict]]:
            return [_records(rel, photo, faces, output, crop_stem(rel, renamed), aligner.settings) for rel, photo, faces in photos]

        # Beside a GPU, a writer thread encodes one batch's crops while the detector has the next
        # (one batch's crops more in memory). On a CPU the detector's threads already fill every
        # core, and a writer beside them only makes them wait for one: crops are written in turn.
        with ThreadPoolExecutor(1, thread_name_prefix="fnet-crops") if not aligner.on_cpu else _InTurn() as writer:
            written = None
            for batch in photo_batches(todo, batch_size, workers, path_of=source.joinpath, reduce_to=aligner.decode_size,
                                       for_cpu=aligner.on_cpu):
                good = [(rel, image) for rel, image in batch if not isinstance(image, ImageError)]
                aligned = dict(zip([rel for rel, _ in good], aligner.align([image for _, image in good])))
                if written is not None:
                    finish(written)
                # The writer gets the crops, not the decoded photos: those are freed for the next batch.
                written = writer.submit(write, [(rel, _Written.of(image, aligned.get(rel), fallback_crop, aligner.settings.size),
                                                 aligned.get(rel)) for rel, image in batch])
            if written is not None:
                finish(written)
    return report


class _InTurn(Executor):
    """An executor that runs each task as it is submitted, on the caller's thread."""

    def submit(self, task: Callable, /, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(task(*args))
        except Exception as err:  # noqa: BLE001 (raised again by result(), as a thread's would be)
            future.set_exception(err)
        return future


@dataclasses.dataclass(frozen=True)
class _Written:
    """What writing a photo's crops and records needs of its decoded image."""

    shape: tuple[int, ...]  # the whole photo's, also when it was decoded Reduced
    fallback: np.ndarray | None = None  # its centre crop, when no face was found and a fallback was asked for
    fallback_box: list[float] | None = None

    @classmethod
    def of(cls, image, faces, fallback_crop: float | None, size: int):
        if isinstance(image, ImageError):
            return image
        if not faces and fallback_crop:
            box = [round(v, 2) for v in centre_box(image.shape, fallback_crop)]
            return cls(image.shape, centre_crop(whole_photo(image), fallback_crop, size), box)
        return cls(image.shape)


def _records(rel: str, photo: _Written | ImageError, faces, output: Path, stem: str, settings: AlignSettings) -> list[dict]:
    base = {"source": rel}
    if problem := name_problem(rel):  # its crop could be written, but no store could hold its name
        return [{**base, "status": "error", "reason": problem}]
    if isinstance(photo, ImageError):
        return [{**base, "status": "error", "reason": photo.reason}]
    if not faces and photo.fallback is not None:
        name = stem + ".png"
        write_png(photo.fallback, output / name)
        return [{**base, "status": "ok", "output": name, "face": 0, "box": photo.fallback_box, "fallback": True}]
    if not faces:
        return [{**base, "status": "no_face", "reason": "no face found", "height": photo.shape[0], "width": photo.shape[1]}]
    records = []
    for aligned in faces:
        name = stem + (".png" if settings.pick != "all" else f"_face{aligned.index}.png")
        write_png(aligned.crop, output / name)
        records.append({**base, "status": "ok", "output": name, "face": aligned.index, **aligned.face.to_dict()})
    return records
