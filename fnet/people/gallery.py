"""The people gallery: named people and their faces in one SQLite file (standard library; no torch).

A face row holds its person, where it came from (photo, face number, box, detector score)
and its embedding, so one transaction covers a face and its vector: a killed enrolment
leaves the gallery as it was before or as it is after, never between. The file runs in
WAL mode (readers never wait for the writer); one writer at a time holds an OS lock beside
it (``people.db.lock``), and a second is refused naming the first. The schema has a version
(``PRAGMA user_version``) and migrations; a gallery from a newer fnet is refused.
A gallery holds one model's embeddings: its name and dimension are fixed at creation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from fnet.errors import FnetError
from fnet.io.lock import exclusive
from fnet.people.schema import MIGRATIONS, SCHEMA_VERSION


class GalleryError(FnetError, ValueError):
    """A gallery that cannot be used as asked (unknown person, other model, newer schema...)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclasses.dataclass(frozen=True)
class Person:
    id: int
    name: str
    faces: int
    photos: int


@dataclasses.dataclass(frozen=True)
class NewFace:
    embedding: np.ndarray  # unit length, the gallery model's
    photo: str = ""  # the source photo, as given
    face: int = 0  # its number in the photo, left to right
    box: tuple[float, float, float, float] = (np.nan,) * 4
    score: float = float("nan")  # detector confidence
    source: str = "photo"  # photo, folder, cluster, import
    thumbnail: bytes | None = None  # a small JPEG of the face (fnet.io.thumbnails.thumbnail_jpeg)


def default_gallery() -> Path:
    """$FNET_GALLERY, else $XDG_DATA_HOME/fnet/people.db, else ~/.local/share/fnet/people.db."""
    if os.environ.get("FNET_GALLERY"):
        return Path(os.environ["FNET_GALLERY"])
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "fnet" / "people.db"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Gallery:
    """``with Gallery.open(path) as gallery: ...`` to read; ``with gallery.writing(): ...`` to change it."""

    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path, self.db = path, connection

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: str | os.PathLike, model: str | None = None, embedding_dim: int | None = None, create: bool = False) -> Iterator[Gallery]:
        """Open a gallery (create=True: make it if missing, for this model and dimension)."""
        path = Path(path)
        if not path.exists() and not create:
            raise GalleryError(path, "no such gallery; `fnet people enrol` makes one")
        if path.is_dir():
            raise GalleryError(path, "is a folder; --gallery names the gallery file (e.g. people.db)")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(path, isolation_level=None, timeout=30)  # autocommit: transactions are explicit
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            gallery = cls(path, db)
            gallery._migrate(model, embedding_dim)
        except sqlite3.DatabaseError as err:
            raise GalleryError(path, f"not a gallery ({err})") from None
        try:
            yield gallery
        finally:
            db.close()

    def _migrate(self, model: str | None, embedding_dim: int | None) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise GalleryError(self.path, f"made by a newer fnet (schema {version}; this one reads up to {SCHEMA_VERSION})")
        if version < SCHEMA_VERSION:
            with exclusive(self.path), self._transaction():
                for number in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[number].split(";"):  # not executescript: it would commit half-way
                        if statement.strip():
                            self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                if version == 0:
                    if model is None or embedding_dim is None:
                        raise GalleryError(self.path, "a new gallery needs its model")
                    self._set_meta({"model": model, "embedding_dim": str(embedding_dim), "created": _now()})
        if model is not None and model != self.model:
            raise GalleryError(self.path, f"holds {self.model!r} embeddings; faces embedded with {model!r} cannot join it")

    # --- transactions ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextlib.contextmanager
    def writing(self) -> Iterator[Gallery]:
        """One writer at a time (a second is refused, naming the first); all changes in the block commit together."""
        with exclusive(self.path), self._transaction():
            yield self

    # --- metadata -------------------------------------------------------------------------------------
    def _set_meta(self, values: dict[str, str]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())

    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    @property
    def model(self) -> str:
        return self.meta()["model"]

    @property
    def embedding_dim(self) -> int:
        return int(self.meta()["embedding_dim"])

    # --- people -------------------------------------------------------------------------------------
    def people(self) -> list[Person]:
        rows = self.db.execute(
            "SELECT p.id, p.name, COUNT(f.id), COUNT(DISTINCT f.photo) FROM people p LEFT JOIN faces f ON f.person = p.id "
            "GROUP BY p.id ORDER BY p.name COLLATE NOCASE"
        )
        return [Person(*row) for row in rows]

    def person_id(self, name: str, create: bool = False) -> int:
        row = self.db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row:
            return row[0]
        if not create:
            raise GalleryError(self.path, f"no person named {name!r} (`fnet people list` shows who is enrolled)")
        if not name.strip():
            raise GalleryError(self.path, "a person's name cannot be empty")
        return self.db.execute("INSERT INTO people (name, created) VALUES (?, ?)", (name, _now())).lastrowid

    def add_faces(self, name: str, faces: list[NewFace]) -> int:
        """Enrol faces under a name (the person is created if new); returns the person's id."""
        person = self.person_id(name, create=True)
        for f in faces:
            if f.embedding.shape != (self.embedding_dim,):
                raise GalleryError(self.path, f"a {f.embedding.shape[0]}-D embedding cannot join {self.embedding_dim}-D faces")
        self.db.executemany(
            "INSERT INTO faces (person, photo, face, x1, y1, x2, y2, score, source, embedding, added, thumbnail) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(person, f.photo, f.face, *map(sql_number, f.box), sql_number(f.score), f.source, f.embedding.astype("<f4").tobytes(), _now(), f.thumbnail)
             for f in faces],
        )
        return person

    def rename(self, old: str, new: str) -> None:
        person = self.person_id(old)
        if self.db.execute("SELECT 1 FROM people WHERE name = ?", (new,)).fetchone():
            raise GalleryError(self.path, f"{new!r} is enrolled already: `fnet people merge {old!r} {new!r}` joins the two")
        self.db.execute("UPDATE people SET name = ? WHERE id = ?", (new, person))

    def merge(self, source: str, target: str) -> int:
        """Move every face of `source` to `target` and drop `source`; returns the faces moved."""
        moving, keeping = self.person_id(source), self.person_id(target)
        if moving == keeping:
            raise GalleryError(self.path, "a person cannot be merged into themselves")
        moved = self.db.execute("UPDATE faces SET person = ? WHERE person = ?", (keeping, moving)).rowcount
        self.db.execute("DELETE FROM people WHERE id = ?", (moving,))
        return moved

    def move_faces(self, face_ids: list[int], target: str) -> int:
        """Split faces off to another person (created if new); a person left without faces is dropped."""
        missing = set(face_ids) - {row[0] for row in self.db.execute(f"SELECT id FROM faces WHERE id IN ({_marks(face_ids)})", face_ids)}
        if missing:
            raise GalleryError(self.path, f"no face numbered {min(missing)} (`fnet people show NAME` lists a person's faces)")
        person = self.person_id(target, create=True)
        moved = self.db.execute(f"UPDATE faces SET person = ? WHERE id IN ({_marks(face_ids)})", [person, *face_ids]).rowcount
        self.db.execute("DELETE FROM people WHERE id IN (SELECT p.id FROM people p LEFT JOIN faces f ON f.person = p.id WHERE f.id IS NULL)")
        return moved

    def remove(self, name: str) -> int:
        """Forget a person and their faces; returns the faces removed."""
        person = self.person_id(name)
        removed = self.db.execute("DELETE FROM faces WHERE person = ?", (person,)).rowcount
        self.db.execute("DELETE FROM people WHERE id = ?", (person,))
        return removed

    # --- faces ----------------------------------------------------------------------------------------
    def faces(self, name: str | None = None) -> list[dict]:
        """Every face (or one person's), without embeddings: id, person, photo, face number, box, score, source."""
        where, args = ("WHERE p.name = ?", (name,)) if name is not None else ("", ())
        rows = self.db.execute(
            "SELECT f.id, p.name, f.photo, f.face, f.x1, f.y1, f.x2, f.y2, f.score, f.source, f.added "
            f"FROM faces f JOIN people p ON p.id = f.person {where} ORDER BY f.id", args,
        )
        keys = ("id", "person", "photo", "face", "x1", "y1", "x2", "y2", "score", "source", "added")
        return [dict(zip(keys, row)) for row in rows]

    def thumbnails(self, face_ids: list[int]) -> dict[int, bytes]:
        """The faces' JPEG thumbnails (faces enrolled before fnet kept them have none)."""
        rows = self.db.execute(f"SELECT id, thumbnail FROM faces WHERE id IN ({_marks(face_ids)}) AND thumbnail IS NOT NULL", face_ids)
        return dict(rows.fetchall())

    def embeddings(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(N x D float32 embeddings, each face's person name, face ids), in face order."""
        rows = self.db.execute("SELECT f.embedding, p.name, f.id FROM faces f JOIN people p ON p.id = f.person ORDER BY f.id").fetchall()
        dim = self.embedding_dim
        matrix = np.frombuffer(b"".join(r[0] for r in rows), "<f4").reshape(len(rows), dim) if rows else np.zeros((0, dim), np.float32)
        return matrix.astype(np.float32), [r[1] for r in rows], np.array([r[2] for r in rows], np.int64)


def _marks(values: list) -> str:
    return ",".join("?" * len(values))


def sql_number(value: float) -> float | None:
    """SQLite has no NaN: unknown numbers are NULL."""
    return None if value is None or np.isnan(value) else float(value)
