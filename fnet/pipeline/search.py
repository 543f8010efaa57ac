"""The search stage: photos -> nearest stored faces -> an identity by weighted vote, or unknown (fnet.retrieval).

``open_gallery`` reads an index with its store's identities (and, asked for a false positive
rate, estimates the threshold on it); ``search_photos`` aligns and embeds query photos with a
pipeline of the gallery's model and names each one.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnet.errors import SettingsError
from fnet.io.stores import open_store, store_path
from fnet.io.tree import Item
from fnet.pipeline.embed import EmbedReport, embed_tree
from fnet.pipeline.index import load_index
from fnet.retrieval.recognition import Recognition, StrangerThreshold, recognize, threshold_for_fpir

if TYPE_CHECKING:
    from fnet.pipeline.build import Pipeline


@dataclasses.dataclass
class Gallery:
    """An index made by `fnet index`, with its store's identities and paths."""

    path: Path
    index: Any  # the FAISS index; ids are store rows
    meta: dict  # the index's metadata: model, kind, rows, threshold, store
    labels: list[str]
    paths: list[str]
    stranger: StrangerThreshold | None = None  # estimated when open_gallery was given a false positive rate

    @property
    def model(self) -> str:
        return self.meta["model"]

    def check_model(self, name: str, embedding_dim: int | None = None) -> None:
        """Queries must be embedded by the model that made the gallery: another one is refused."""
        if name != self.model:
            raise SettingsError(f"{self.path}: holds {self.model!r} embeddings; a query embedded with {name!r} cannot be compared")
        if embedding_dim is not None and embedding_dim != int(self.meta["embedding_dim"]):
            raise SettingsError(f"{self.path}: holds {self.meta['embedding_dim']}-D embeddings; {name!r} makes {embedding_dim}-D ones")


def open_gallery(index_path: str | Path, store: str | Path | None = None, fpir: float | None = None) -> Gallery:
    """The index, its store's labels and paths (store: where the store is now, if it moved since indexing).

    fpir: also estimate the threshold that names about this share of strangers (see threshold_for_fpir).
    """
    if fpir is not None and not 0 < fpir < 1:
        raise SettingsError(f"--fpir {fpir:g}: a share of strangers, between 0 and 1 (e.g. 0.01)")
    faiss_index, meta = load_index(index_path)
    with open_store(store or meta["store"]) as stored:
        labels, paths = stored.labels(), stored.paths()
        stranger = None if fpir is None else threshold_for_fpir(faiss_index, labels, stored.take, fpir)
    return Gallery(Path(index_path), faiss_index, meta, labels, paths, stranger)


@dataclasses.dataclass
class SearchRun:
    queries: list[str]  # the photos whose face was embedded, as given
    results: list[Recognition]  # one per query
    threshold: float
    report: EmbedReport  # what became of every photo (unreadable, no face)


def search_photos(
    pipeline: Pipeline, query: str | Path, gallery: Gallery, k: int = 5, threshold: float | None = None,
    aligned: bool = False, on_start=None, on_item=None,
) -> SearchRun:
    """Recognise the face (the most central large one) of a photo, or of every photo in a folder.

    threshold: default the stranger estimate of the gallery when it has one, else the model's.
    """
    gallery.check_model(pipeline.info.name, pipeline.info.embedding_dim)
    query = Path(query)
    if not query.exists():
        raise SettingsError(f"{query}: no such file or folder")
    if threshold is None:
        threshold = gallery.stranger.threshold if gallery.stranger else float(gallery.meta["threshold"])
    root = query if query.is_dir() else query.parent
    items = None if query.is_dir() else [Item(query, query.name, "")]
    aligner = None if aligned else pipeline.aligner("center")
    queries, results = [], []
    with tempfile.TemporaryDirectory(prefix="fnet-search-") as tmp:  # the embed stage's store: resumable, batched
        embedded_path = store_path(tmp, "queries")
        report = embed_tree(root, embedded_path, pipeline.embedder, aligner, items=items, on_start=on_start, on_item=on_item)
        if report.total:
            with open_store(embedded_path) as embedded:
                for block in embedded.blocks():
                    queries += [str(root / rel) for rel in block.paths]
                    results += recognize(block.embeddings, gallery.index, gallery.labels, gallery.paths, k, threshold)
    return SearchRun(queries, results, threshold, report)

