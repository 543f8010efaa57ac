"""What the server does, without HTTP: one pipeline, one batcher, the gallery; every method takes
decoded photos and returns the same result objects as the Python API and the CLI."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import numpy as np

from fnet.crops import pick_faces
from fnet.errors import SettingsError
from fnet.io.thumbnails import thumbnail_jpeg
from fnet.people.gallery import Gallery, NewFace
from fnet.people.identify import DEFAULT_FPIR, Identifier, ThresholdChoice
from fnet.pipeline.build import Pipeline
from fnet.pipeline.faces import FoundFace, faces_in
from fnet.pipeline.people import Quality, RecognisedFace, identified
from fnet.pipeline.verify import Verdict, VerifyError, verify_photos
from fnet.serve.batcher import Batcher


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    gallery: Path
    model: str | None = None
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 on GPUs and AMX CPUs, else fp32
    token: str | None = None  # bearer token required on every route but /health
    clusters: Path | None = None  # a `fnet cluster` folder whose groups the UI offers to name
    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 40_000_000  # decoded photo size limit, checked from the header
    max_queue: int = 32  # requests in progress at once; more are answered 503
    max_batch: int = 16  # photos per model pass (detection, then all their faces embedded)
    max_wait: float = 0.005  # seconds a pass waits for more photos


class Service:
    def __init__(self, settings: ServeSettings, pipeline: Pipeline):
        self.settings, self.pipeline = settings, pipeline
        # one model thread: a batch of photos is detected, then all its faces embedded, back to back
        self.batcher = Batcher(lambda images: faces_in(pipeline, images), settings.max_batch, settings.max_wait, "faces")
        self._cache: tuple[tuple, Identifier, ThresholdChoice] | None = None
        self._cache_lock = threading.Lock()

    def close(self) -> None:
        self.batcher.close()

    def faces(self, image: np.ndarray) -> list[FoundFace]:
        return self.batcher.submit([image]).result()[0]  # photos of concurrent requests share passes

    def verify(self, a: np.ndarray, b: np.ndarray, threshold: float | None = None) -> Verdict:
        return verify_photos(self.pipeline, a, b, threshold=threshold)

    def identifier(self) -> tuple[Identifier, ThresholdChoice]:
        """The gallery's faces and threshold, rebuilt when the gallery file changed (whoever wrote it)."""
        path = self.settings.gallery
        key = tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else None for p in (path, Path(f"{path}-wal")))
        with self._cache_lock:
            if self._cache is None or self._cache[0] != key:
                with Gallery.open(path, self.pipeline.info.name) as gallery:
                    identifier = Identifier(*gallery.embeddings())
                info = self.pipeline.info
                self._cache = (key, identifier, identifier.threshold(info.name, info.threshold, DEFAULT_FPIR))
            return self._cache[1], self._cache[2]

    def recognize(self, image: np.ndarray) -> tuple[list[RecognisedFace], ThresholdChoice]:
        if not self.settings.gallery.exists():
            raise SettingsError(f"{self.settings.gallery.name}: nobody is enrolled yet (POST /people/NAME/faces)")
        identifier, chosen = self.identifier()
        if not len(identifier.names):
            raise SettingsError(f"{self.settings.gallery.name}: nobody is enrolled yet (POST /people/NAME/faces)")
        return identified([self.faces(image)], identifier, chosen.value)[0], chosen

    def enrol(self, name: str, image: np.ndarray, photo: str, quality: Quality = Quality()) -> NewFace:
        """The photo's main face joins `name` (created if new); one transaction."""
        found = self.faces(image)
        if not found:
            raise VerifyError(photo, "no face found (if it is an aligned crop already, pass --aligned)")
        chosen = found[pick_faces([f.face for f in found], image.shape, "center")[0]]  # as choose_face picks
        if problem := quality.problem(chosen.face):
            raise VerifyError(photo, problem)
        face = NewFace(chosen.embedding, photo, chosen.number, chosen.face.box, chosen.face.score, "upload", thumbnail_jpeg(chosen.crop))
        info = self.pipeline.info
        with Gallery.open(self.settings.gallery, info.name, info.embedding_dim, create=True) as gallery, gallery.writing():
            gallery.add_faces(name, [face])
        return face


def loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def env_token() -> str | None:
    return os.environ.get("FNET_TOKEN") or None
