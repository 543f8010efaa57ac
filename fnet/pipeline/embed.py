"""The embed stage: aligned crops (or photos, aligning on the way) -> an HDF5 embeddings store.

Crash-safe and resumable without rewriting a growing file: finished faces go into
immutable part files (``OUT.partial/part-NNNNN.h5``, each written whole then renamed);
at the end the existing store and the parts are joined into ``OUT`` in one atomic write.
A killed run leaves ``OUT`` as it was plus complete parts; running again continues after
them and produces the same store as an uninterrupted run. Photos in which no face was found
are remembered in the store too, so that a rerun does not detect them again
(``retry_failed`` does).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fnet.crops import centre_crop
from fnet.errors import SettingsError
from fnet.io.atomic import remove_leftovers
from fnet.io.images import ImageError, name_problem, photo_batches
from fnet.io.lock import exclusive
from fnet.io.store import Rows, check_same_model, model_attrs
from fnet.io.stores import open_store, store_format
from fnet.io.tree import NO_BOX, Item, tree_items

if TYPE_CHECKING:  # torch loads with the model, not with this module
    from fnet.core.embedder import Embedder
    from fnet.pipeline.aligner import Aligner

FALLBACK_CROP = 0.7  # no face detected: the centre 70 % of the photo (where LFW's faces are)


def parse_shard(spec: str) -> tuple[int, int]:
    """'2/8' -> (2, 8): this process embeds items i with i % 8 == 2."""
    try:
        index, count = (int(v) for v in spec.split("/"))
    except ValueError:
        raise SettingsError(f"--shard must look like i/n, e.g. 0/4, not {spec!r}") from None
    if not 0 <= index < count:
        raise SettingsError(f"--shard {spec}: i must be in 0..n-1")
    return index, count


@dataclasses.dataclass
class EmbedReport:
    faces: int = 0  # embedded in this run
    skipped: int = 0  # already in the store or in parts
    errors: int = 0
    no_face: int = 0
    no_face_before: int = 0  # photos without a face in an earlier run, not detected again
    fallbacks: int = 0  # photos without a detected face, embedded from a centre crop
    total: int = 0  # rows in the store at the end

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.no_face or self.no_face_before)


class _PartWriter:
    """Buffers rows and writes them as numbered part files of `size` rows, or of what `seconds` gave.

    A kill loses at most the rows of the part being filled: at most `size` rows, and at most
    `seconds` of work, whichever comes first (slow photos fill parts slowly).
    """

    def __init__(self, directory: Path, attrs: dict, size: int, first_index: int, seconds: float = 60.0):
        self.directory, self.attrs, self.size, self.index, self.seconds = directory, attrs, size, first_index, seconds
        self.format = store_format()  # parts are written in the default format, whatever the output's
        self.buffer: list[Rows] = []
        self.no_face: list[str] = []  # written with the next part
        self.since = time.monotonic()

    def add(self, rows: Rows) -> None:
        self.buffer.append(rows)
        if sum(len(b) for b in self.buffer) >= self.size or time.monotonic() - self.since >= self.seconds:
            self.flush()

    def flush(self) -> None:
        if self.buffer or self.no_face:
            self.directory.mkdir(parents=True, exist_ok=True)
            rows = Rows.concat(self.buffer) if self.buffer else Rows.empty(int(self.attrs["embedding_dim"]))
            self.format.write(self.directory / f"part-{self.index:05d}{self.format.suffix}", [rows], self.attrs, self.no_face)
            self.index += 1
            self.buffer, self.no_face = [], []
        self.since = time.monotonic()


def embed_tree(
    root: Path,
    output: Path,
    model: Embedder,
    aligner: Aligner | None = None,
    shard: tuple[int, int] = (0, 1),
    half: bool = False,
    flip: bool = False,
    batch_size: int = 64,
    workers: int = 2,
    part_size: int = 4096,
    part_seconds: float = 60.0,
    on_start: Callable[[int], None] | None = None,
    on_item: Callable[[Item, str | None], None] | None = None,
    items: list[Item] | None = None,
    fallback_crop: float | None = None,
    retry_failed: bool = False,
    detect_batch: int = 8,
) -> EmbedReport:
    """Embed every crop (or, with an aligner, the faces it picks in every photo) under root into the store at output.

    items: embed these instead of everything under root.
    fallback_crop: with an aligner, embed a photo without a detected face from a centred
    square of this fraction of its shorter side instead of skipping it (evaluation
    protocols need every image); such rows have a NaN box.
    retry_failed: detect again the photos in which an earlier run found no face.
    detect_batch: photos per detector pass, with an aligner.
    part_size, part_seconds: finished rows are saved (a kill keeps them) every part_size rows or
    part_seconds, whichever comes first.
    """
    root, output = Path(root), Path(output)
    with exclusive(output):  # one writer per store: a second run is refused, naming this one
        attrs = model_attrs(model.info, root=str(root.resolve()), half=half)
        partial = output.with_name(output.name + ".partial")
        remove_leftovers(partial)  # a killed run's half-written part, never renamed into place
        existing = [output] if output.exists() else []
        parts = sorted(partial.glob(f"part-*{store_format().suffix}"))
        done: set[str] = set()
        faceless: set[str] = set()
        for path in existing + parts:
            with open_store(path) as store:
                check_same_model(path, store.attrs, attrs)
                done.update(store.paths())
                faceless.update(store.no_face())
        index, count = shard
        items = [item for i, item in enumerate(tree_items(root) if items is None else items) if i % count == index]
        todo = [item for item in items if item.rel not in done]
        report = EmbedReport(skipped=len(items) - len(todo))
        if not retry_failed:
            report.no_face_before = sum(item.rel in faceless for item in todo)
            todo = [item for item in todo if item.rel not in faceless]
        problems = {item.rel: name_problem(item.rel) for item in todo}
        unnamed = [item for item in todo if problems[item.rel]]
        todo = [item for item in todo if not problems[item.rel]]
        if on_start:
            on_start(len(todo) + len(unnamed))

        writer = _PartWriter(partial, attrs, part_size, first_index=len(parts), seconds=part_seconds)
        pending: list[tuple[Item, np.ndarray, tuple]] = []
        found_now: set[str] = set()  # retried photos that have a face this time
        faceless_now: set[str] = set()  # photos without a face in this run

        def embed_pending() -> None:
            emb = model.embed(np.stack([crop for _, crop, _ in pending]), flip=flip)
            boxes = np.array([box for _, _, box in pending], np.float32)
            writer.add(Rows(emb, [i.rel for i, _, _ in pending], [i.label for i, _, _ in pending], boxes))
            for item in dict.fromkeys(item for item, _, _ in pending):  # once per photo, however many faces
                if item.rel in faceless:
                    found_now.add(item.rel)
                if on_item:
                    on_item(item, None)
            pending.clear()

        def failed(item: Item, reason: str, counter: str) -> None:
            setattr(report, counter, getattr(report, counter) + 1)
            if on_item:
                on_item(item, reason)

        for item in unnamed:
            failed(item, problems[item.rel], "errors")

        photos_per_batch = detect_batch if aligner else batch_size
        for batch in photo_batches(todo, photos_per_batch, workers, lambda item: item.path):
            readable = [(item, image) for item, image in batch if not isinstance(image, ImageError)]
            for item, image in batch:
                if isinstance(image, ImageError):
                    failed(item, image.reason, "errors")
            if aligner is None:
                crops = [(item, image, item.box) for item, image in readable]
            else:
                aligned = aligner.align([image for _, image in readable])
                crops = []
                for (item, image), faces in zip(readable, aligned):
                    if faces:  # one per photo, or every face when the aligner picks "all"
                        crops.extend((item, f.crop, f.face.box) for f in faces)
                    elif fallback_crop:
                        crops.append((item, centre_crop(image, fallback_crop, aligner.settings.size), NO_BOX))
                        report.fallbacks += 1
                    else:
                        failed(item, "no face found", "no_face")
                        writer.no_face.append(item.rel)
                        faceless_now.add(item.rel)
            pending.extend(crops)
            report.faces += len(crops)
            if len(pending) >= batch_size:
                embed_pending()
        if pending:
            embed_pending()
        writer.flush()

        parts = sorted(partial.glob(f"part-*{store_format().suffix}"))
        if parts or not existing:
            no_face = (faceless | faceless_now) - found_now  # as read at the start, plus this run's
            report.total = store_format(output).write(output, _blocks(existing + parts), {**attrs, "created": None}, no_face)
            shutil.rmtree(partial, ignore_errors=True)
        else:
            with open_store(output) as store:
                report.total = len(store)
        return report


def _blocks(paths: list[Path]) -> Iterator[Rows]:
    for path in paths:
        with open_store(path) as store:
            yield from store.blocks()
