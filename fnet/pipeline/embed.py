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

import contextlib
import dataclasses
import itertools
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from fnet.crops import centre_crop
from fnet.errors import SettingsError
from fnet.io.ahead import photo_batches
from fnet.io.atomic import remove_leftovers
from fnet.io.images import ImageError, Reduced, name_problem, whole_photo
from fnet.io.lock import exclusive
from fnet.io.store import Rows, check_can_extend, check_room, model_attrs, photo_stamp
from fnet.io.stores import open_store, store_format
from fnet.io.tree import NO_BOX, Item, tree_items

if TYPE_CHECKING:  # torch loads with the model, not with this module
    from fnet.core.embedder import Embedder
    from fnet.core.info import ModelInfo
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
    replaced: int = 0  # photos changed on disk since they were embedded: embedded again, old rows dropped

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
        self.stamps: dict[str, tuple[int, int]] = {}  # of the photos in the part (or without a face)
        self.written = 0  # rows in the parts written so far
        self.since = time.monotonic()

    def add(self, rows: Rows) -> None:
        self.buffer.append(rows)
        if sum(len(b) for b in self.buffer) >= self.size or time.monotonic() - self.since >= self.seconds:
            self.flush()

    def flush(self) -> None:
        if self.buffer or self.no_face:
            self.directory.mkdir(parents=True, exist_ok=True)
            rows = Rows.concat(self.buffer) if self.buffer else Rows.empty(int(self.attrs["embedding_dim"]))
            part = self.directory / f"part-{self.index:05d}{self.format.suffix}"
            check_room(part, len(rows), self.attrs)
            self.format.write(part, [rows], self.attrs, self.no_face, self.stamps)
            self.written += len(rows)
            self.index += 1
            self.buffer, self.no_face, self.stamps = [], [], {}
        self.since = time.monotonic()


@dataclasses.dataclass
class Outcome:
    """What became of one photo (or crop): its embedded faces, or why it has none."""

    item: Item
    rows: Rows | None = None  # its faces, embedded (None when it has none)
    failure: str = ""  # "error" (unreadable), "no_face"; "" when it has rows
    reason: str = ""  # the failure, in words
    fallback: bool = False  # no face was detected: the rows are of a centre crop


class Producer(Protocol):
    """Turns the items still to embed into outcomes, in item order (fnet.pipeline.embed embeds here;
    fnet.scale.ray_embed on a Ray cluster)."""

    info: ModelInfo

    def __call__(self, items: list[Item]) -> Iterator[Outcome]: ...


def crops_of(
    aligner: Aligner | None, batch: list[tuple[Item, np.ndarray | Reduced]], fallback_crop: float | None
) -> Iterator[tuple[Item, list[tuple[np.ndarray, tuple]], str]]:
    """(item, its face crops with their boxes, failure) for decoded photos (or crops, without an aligner)."""
    if aligner is None:
        yield from ((item, [(image, item.box)], "") for item, image in batch)
        return
    for (item, image), faces in zip(batch, aligner.align([image for _, image in batch])):
        if faces:  # one per photo, or every face when the aligner picks "all"
            yield item, [(f.crop, f.face.box) for f in faces], ""
        elif fallback_crop:
            yield item, [(centre_crop(whole_photo(image), fallback_crop, aligner.settings.size), NO_BOX)], "fallback"
        else:
            yield item, [], "no_face"


def embed_crops(model: Embedder, found: list[tuple[Item, list[tuple[np.ndarray, tuple]], str]], flip: bool) -> list[Outcome]:
    """Outcomes of photos whose crops crops_of found, the crops of all of them embedded in one pass."""
    crops = [crop for _, faces, _ in found for crop, _ in faces]
    embeddings = model.embed(np.stack(crops), flip=flip) if crops else None
    outcomes, start = [], 0
    for item, faces, failure in found:
        if not faces:
            outcomes.append(Outcome(item, failure="no_face", reason="no face found"))
            continue
        end = start + len(faces)
        boxes = np.array([box for _, box in faces], np.float32)
        rows = Rows(embeddings[start:end], [item.rel] * len(faces), [item.label] * len(faces), boxes)
        outcomes.append(Outcome(item, rows, fallback=failure == "fallback"))
        start = end
    return outcomes


@dataclasses.dataclass
class LocalProducer:
    """Embeds here: photos decoded ahead on threads, detected in batches of detect_batch, faces
    gathered until there are batch_size of them (at least the model's batch) and embedded in
    the model's passes."""

    model: Embedder
    aligner: Aligner | None = None
    flip: bool = False
    batch_size: int = 64
    workers: int = 2
    detect_batch: int = 8
    fallback_crop: float | None = None
    # Held while the networks run. Calls sharing one (a Ray actor taking two batches at once)
    # decode their photos concurrently but take turns on the model, so it never waits for decoding.
    model_lock: contextlib.AbstractContextManager = dataclasses.field(default_factory=contextlib.nullcontext)

    @property
    def info(self) -> ModelInfo:
        return self.model.info

    def __call__(self, items: list[Item]) -> Iterator[Outcome]:
        pending: list = []
        per_batch = self.detect_batch if self.aligner else self.batch_size
        reduce_to = self.aligner.decode_size if self.aligner else None  # crops are decoded whole
        for batch in photo_batches(items, per_batch, self.workers, lambda item: item.path, reduce_to=reduce_to):
            for item, image in batch:
                if isinstance(image, ImageError):
                    yield Outcome(item, failure="error", reason=image.reason)
            readable = [(item, image) for item, image in batch if not isinstance(image, ImageError)]
            with self.model_lock:
                pending.extend(crops_of(self.aligner, readable, self.fallback_crop))
            if sum(len(faces) for _, faces, _ in pending) >= max(self.batch_size, self.model.batch_size):
                with self.model_lock:
                    outcomes = embed_crops(self.model, pending, self.flip)
                yield from outcomes
                pending = []
        if pending:
            with self.model_lock:
                outcomes = embed_crops(self.model, pending, self.flip)
            yield from outcomes


def embed_tree(
    root: Path,
    output: Path,
    model: Embedder | None,
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
    producer: Producer | None = None,
    exclude: tuple[Path, ...] = (),
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
    producer: embeds elsewhere (e.g. ``fnet.scale.RayProducer``) instead of with model and aligner here.
    exclude: folders under root not to read (the caller's output).
    """
    root, output = Path(root), Path(output)
    if producer is None:
        producer = LocalProducer(model, aligner, flip, batch_size, workers, detect_batch, fallback_crop)
    with exclusive(output):  # one writer per store: a second run is refused, naming this one
        attrs = model_attrs(producer.info, root=str(root.resolve()), half=half)
        partial = output.with_name(output.name + ".partial")
        remove_leftovers(partial)  # a killed run's half-written part, never renamed into place
        existing = [output] if output.exists() else []
        parts = sorted(partial.glob(f"part-*{store_format().suffix}"))
        done: set[str] = set()
        faceless: set[str] = set()
        stamps: dict[str, tuple[int, int]] = {}
        held = 0  # rows in the store and the parts already written
        for path in existing + parts:
            with open_store(path) as store:
                check_can_extend(path, store.attrs, attrs)
                held += len(store)
                done.update(store.paths())
                faceless.update(store.no_face())
                stamps.update(store.stamps())
                if path == output:  # appending keeps the store's identity: its indexes stay valid
                    attrs["store_id"] = store.attrs.get("store_id")
        index, count = shard
        items = [item for i, item in enumerate(tree_items(root, exclude) if items is None else items) if i % count == index]
        now = {item.rel: _stamp(item.path) for item in items if item.rel in stamps or item.rel not in done}
        changed = {rel for rel, stamp in now.items() if rel in stamps and stamp != stamps[rel]}  # replaced or edited
        if changed:
            done, faceless = done - changed, faceless - changed
            attrs["store_id"] = None  # rows are dropped: a new identity, so that an old index is not extended
        todo = [item for item in items if item.rel not in done]
        report = EmbedReport(skipped=len(items) - len(todo), replaced=len(changed))
        if not retry_failed:
            report.no_face_before = sum(item.rel in faceless for item in todo)
            todo = [item for item in todo if item.rel not in faceless]
        problems = {item.rel: name_problem(item.rel) for item in todo}
        unnamed = [item for item in todo if problems[item.rel]]
        todo = [item for item in todo if not problems[item.rel]]
        if on_start:
            on_start(len(todo) + len(unnamed))

        writer = _PartWriter(partial, attrs, part_size, first_index=len(parts), seconds=part_seconds)
        run_stamps: dict[str, tuple[int, int]] = {}
        found_now: set[str] = set()  # retried photos that have a face this time
        faceless_now: set[str] = set()  # photos without a face in this run
        outcomes = itertools.chain((Outcome(item, failure="error", reason=problems[item.rel]) for item in unnamed), producer(todo))
        for outcome in outcomes:
            rel = outcome.item.rel
            if rel in done:  # a retried task delivered it twice: each photo lands once
                continue
            done.add(rel)
            if outcome.failure != "error" and now.get(rel):  # embedded, or known to have no face: as of this file
                writer.stamps[rel] = run_stamps[rel] = now[rel]
            if outcome.rows is not None:
                writer.add(outcome.rows)
                report.faces += len(outcome.rows)
                report.fallbacks += outcome.fallback
                if rel in faceless:
                    found_now.add(rel)
            elif outcome.failure == "no_face":
                report.no_face += 1
                writer.no_face.append(rel)
                faceless_now.add(rel)
            else:
                report.errors += 1
            if on_item:
                on_item(outcome.item, outcome.reason or None)
        writer.flush()

        earlier = existing + parts  # rows of a changed photo in them are stale
        parts = sorted(partial.glob(f"part-*{store_format().suffix}"))
        if parts or not existing:
            no_face = (faceless | faceless_now) - found_now  # as read at the start, plus this run's
            new_parts = parts[len(earlier) - len(existing):]
            check_room(output, held + writer.written, attrs)
            blocks = itertools.chain(_blocks(earlier, drop=changed), _blocks(new_parts))
            report.total = store_format(output).write(output, blocks, {**attrs, "created": None}, no_face, {**stamps, **run_stamps})
            shutil.rmtree(partial, ignore_errors=True)
        else:
            with open_store(output) as store:
                report.total = len(store)
        return report


def _blocks(paths: list[Path], drop: set[str] = frozenset()) -> Iterator[Rows]:
    for path in paths:
        with open_store(path) as store:
            for block in store.blocks():
                block = block.without(drop)
                if len(block):
                    yield block


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        return photo_stamp(path)
    except OSError:  # gone since the folder was listed: its read will say so
        return None
