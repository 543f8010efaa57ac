"""``fnet embed --ray``: photos aligned and embedded by Ray Data actors, written here as by ``fnet embed``.

The driver lists the photos with fnet's own rules (which files are photos, what an earlier run
already stored, the store's row order) and hands Ray Data a table of paths. Actors, each holding a
``fnet.pipeline`` model and detector, read, align and embed batches of them where they run (the
photos must be visible to every node, e.g. on a shared file system). Ray Data keeps the order and
retries what a lost node was doing; the driver turns what comes back into the same outcomes that a
single-process run yields, so parts, resume and the final atomic join are ``fnet.pipeline.embed``'s.
A photo delivered twice (a retried task) is written once.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fnet.io.store import Rows
from fnet.io.tree import Item
from fnet.pipeline.build import Pipeline, PipelineSettings
from fnet.pipeline.embed import LocalProducer, Outcome
from fnet.scale.cluster import import_ray, ray_failures

BOX = ("x0", "y0", "x1", "y1")


@dataclasses.dataclass(frozen=True)
class RaySettings:
    actors: int = 0  # model replicas; 0: as many as the cluster's CPUs (or GPUs) allow
    actor_cpus: float = 1.0  # CPUs per actor; its torch threads follow
    actor_gpus: float = 0.0  # GPUs per actor (> 0 puts the model on CUDA)
    # Photos an actor takes at a time (also the retry unit). Each call starts its decode-ahead
    # afresh; with one call at a time, 16 or 32 photos left the model idle enough to cost 18% of
    # the rate on one node. Actors now take two calls at once (one decodes while the other has
    # the model), and 64 keeps a lost node's redo small.
    photos_per_call: int = 64


class EmbedActor:
    """A Ray Data callable class: a batch of photo paths -> one row per face found, or per failure."""

    def __init__(self, settings: PipelineSettings, align: bool, flip: bool, detect_batch: int,
                 fallback_crop: float | None, threads: int):
        os.environ["FNET_THREADS"] = str(threads)  # torch's pool sized to this actor's CPUs, not the node's
        pipeline = Pipeline(settings)
        self.dim = pipeline.info.embedding_dim
        self.produce = LocalProducer(
            pipeline.embedder, pipeline.aligner() if align else None, flip=flip,
            workers=2, detect_batch=detect_batch, fallback_crop=fallback_crop, model_lock=threading.Lock(),
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [
            Item(Path(path), rel, label, tuple(float(batch[k][i]) for k in BOX))
            for i, (path, rel, label) in enumerate(zip(batch["path"], batch["rel"], batch["label"]))
        ]
        return outcome_columns(list(self.produce(items)), self.dim)


def outcome_columns(outcomes: list[Outcome], dim: int) -> dict[str, np.ndarray]:
    """Outcomes as Ray Data columns: a row per embedded face, a row (zero embedding) per photo without one."""
    rel, emb, box, failure, reason, fallback = [], [], [], [], [], []
    for o in outcomes:
        count = len(o.rows) if o.rows is not None else 1
        rel += [o.item.rel] * count
        emb.append(o.rows.embeddings.astype(np.float32) if o.rows is not None else np.zeros((1, dim), np.float32))
        box.append(o.rows.boxes if o.rows is not None else np.full((1, 4), np.nan, np.float32))
        failure += [o.failure] * count
        reason += [o.reason] * count
        fallback += [o.fallback] * count
    return {
        "rel": np.array(rel, dtype=object), "embedding": np.concatenate(emb), "box": np.concatenate(box),
        "failure": np.array(failure, dtype=object), "reason": np.array(reason, dtype=object), "fallback": np.array(fallback),
    }


def outcomes_of(batches: Iterator[dict[str, np.ndarray]], items: dict[str, Item]) -> Iterator[Outcome]:
    """The driver's side of outcome_columns: consecutive rows of one photo -> its Outcome."""
    group: list[tuple[dict, int]] = []

    def close() -> Outcome:
        batch, i = group[0]
        item = items[batch["rel"][i]]
        if batch["failure"][i]:
            return Outcome(item, failure=batch["failure"][i], reason=batch["reason"][i])
        embeddings = np.stack([b["embedding"][j] for b, j in group])
        boxes = np.stack([b["box"][j] for b, j in group]).astype(np.float32)
        return Outcome(item, Rows(embeddings, [item.rel] * len(group), [item.label] * len(group), boxes),
                       fallback=bool(batch["fallback"][i]))

    for batch in batches:
        for i in range(len(batch["rel"])):
            if group and batch["rel"][i] != group[0][0]["rel"][group[0][1]]:
                yield close()
                group = []
            group.append((batch, i))
    if group:
        yield close()


@dataclasses.dataclass
class RayProducer:
    """fnet.pipeline.embed's Producer on a Ray cluster (connect first: ``fnet.scale.cluster.connected``)."""

    settings: PipelineSettings
    ray_settings: RaySettings = RaySettings()
    align: bool = False
    flip: bool = False
    detect_batch: int = 8
    fallback_crop: float | None = None

    def __post_init__(self):
        self.info = Pipeline(self.settings).info  # the model's metadata, no weights: those load in the actors

    def __call__(self, items: list[Item]) -> Iterator[Outcome]:
        if not items:
            return
        ray = import_ray()
        import pyarrow as pa

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # the store's rows in the tree's order, as without Ray
        context.enable_progress_bars = False  # fnet reports progress itself
        context.print_on_execution_start = False
        r = self.ray_settings
        table = pa.table({
            "path": [str(item.path) for item in items], "rel": [item.rel for item in items],
            "label": [item.label for item in items], **{k: [item.box[j] for item in items] for j, k in enumerate(BOX)},
        })
        # Blocks cut here, not by a repartition: that would be a CPU task waiting behind actors holding every CPU.
        blocks = [table.slice(start, r.photos_per_call) for start in range(0, len(items), r.photos_per_call)]
        photos = ray.data.from_arrow(blocks)
        actors = min(r.actors or self._actors(ray), len(blocks))  # more would wait for work that never comes
        settings = dataclasses.replace(self.settings, device="cuda" if r.actor_gpus > 0 else "cpu")
        embedded = photos.map_batches(
            EmbedActor, batch_size=r.photos_per_call, batch_format="numpy", num_cpus=r.actor_cpus, num_gpus=r.actor_gpus or None,
            # Two calls at a time per actor: one decodes its photos while the other has the model (see
            # LocalProducer.model_lock). Lost actors restart, and their batches are retried.
            compute=ray.data.ActorPoolStrategy(size=actors, max_concurrent_calls_per_actor=2),
            fn_constructor_kwargs={
                "settings": settings, "align": self.align, "flip": self.flip, "detect_batch": self.detect_batch,
                "fallback_crop": self.fallback_crop, "threads": max(1, int(r.actor_cpus)),
            },
        )
        with ray_failures("embedding"):  # an actor that cannot start (a missing model, no CUDA, ...)
            yield from outcomes_of(embedded.iter_batches(batch_size=None, batch_format="numpy"), {i.rel: i for i in items})

    def _actors(self, ray) -> int:
        resources = ray.cluster_resources()
        r = self.ray_settings
        if r.actor_gpus > 0:
            return max(1, int(resources.get("GPU", 0) // r.actor_gpus))
        return max(1, int(resources.get("CPU", 1) // r.actor_cpus))

