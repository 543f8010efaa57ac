"""fnet on Ray: a real multi-node Ray cluster on this machine (ray.cluster_utils) embeds a tree of real
photos into the same store as a single process, every photo exactly once even when a node dies
mid-run; an IVF index built from shards on the cluster, merged in memory or on disk, answers as the
one built in one process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import ray
from conftest import DEEPFACE, LFW
from PIL import Image
from ray.cluster_utils import Cluster
from skimage import data as skimage_data
from test_index import clustered, make_store
from typer.testing import CliRunner

from fnet.cli import app
from fnet.pipeline import load_pipeline
from fnet.pipeline.build import PipelineSettings
from fnet.pipeline.embed import embed_tree
from fnet.pipeline.index import build_index, load_index
from fnet.retrieval.faiss_index import IndexFileError, IndexParams, search
from fnet.scale import RayProducer, RaySettings, build_index_on_ray

PEOPLE = {"Colin_Powell": 3, "Tony_Blair": 3, "Serena_Williams": 3, "Hugo_Chavez": 3}
NODE = {"num_cpus": 1, "object_store_memory": 150 * 2**20}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """LFW photos, two larger deepface-unit photos, a photo without a face and a file that is no photo."""
    root = tmp_path_factory.mktemp("photos")
    for person, count in PEOPLE.items():
        (root / person).mkdir()
        for i in range(1, count + 1):
            shutil.copy(LFW / person / f"{person}_{i:04d}.jpg", root / person)
    (root / "unsorted").mkdir()
    for name in sorted(p.name for p in DEEPFACE.glob("img*.jpg"))[:2]:
        shutil.copy(DEEPFACE / name, root / "unsorted")
    Image.fromarray(skimage_data.coffee()).save(root / "unsorted" / "coffee.jpg")
    (root / "unsorted" / "notes.jpg").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def single_process(photos, tmp_path_factory):
    """The reference: plain `fnet embed --align` in this process."""
    pipeline = load_pipeline(device="cpu")
    out = tmp_path_factory.mktemp("single") / "faces.h5"
    report = embed_tree(photos, out, pipeline.embedder, pipeline.aligner())
    return out, report


@pytest.fixture
def cluster(monkeypatch):
    """A head node that only drives, and two worker nodes of one CPU each."""
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # no network
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(**NODE) for _ in range(2)]
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


def store_contents(path) -> dict:
    with h5py.File(path) as f:
        return {name: f[name][:] for name in ("embeddings", "paths", "labels", "boxes", "no_face")}


def assert_same_rows(ray_store, reference) -> None:
    got, want = store_contents(ray_store), store_contents(reference)
    for name in ("paths", "labels", "no_face"):
        np.testing.assert_array_equal(got[name], want[name])
    np.testing.assert_allclose(got["boxes"], want["boxes"], atol=0.05)
    # Actors run torch on one thread, the reference on two: sums in another order, nothing more.
    np.testing.assert_allclose(got["embeddings"], want["embeddings"], atol=2e-5)


def producer(**ray_settings) -> RayProducer:
    return RayProducer(PipelineSettings(device="cpu"), RaySettings(**ray_settings), align=True)


def test_a_ray_cluster_embeds_the_same_store_as_one_process(cluster, photos, single_process, tmp_path):
    reference, expected = single_process
    out = tmp_path / "faces.h5"
    failures = {}
    report = embed_tree(photos, out, None, producer=producer(actors=2, photos_per_call=3),
                        on_item=lambda item, reason: reason and failures.setdefault(item.rel, reason))
    assert (report.faces, report.errors, report.no_face) == (expected.faces, 1, 1)
    assert report.faces == 14  # 12 LFW photos and the two others: one face each
    assert failures == {"unsorted/coffee.jpg": "no face found", "unsorted/notes.jpg": failures["unsorted/notes.jpg"]}
    assert "not an image" in failures["unsorted/notes.jpg"]
    assert_same_rows(out, reference)


def actors_on(node) -> list[int]:
    """Pids of the embedding actors the node's raylet started (its worker processes' children)."""
    raylet = node.all_processes["raylet"][0].process.pid
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue  # a process that ended meanwhile
        if fields.get("PPid", "").strip() == str(raylet) and "EmbedActor" in fields.get("Name", "") + _cmdline(status.parent):
            pids.append(int(status.parent.name))
    return pids


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_text()
    except OSError:
        return ""


def test_killing_a_worker_node_mid_run_still_stores_every_photo_once(cluster, photos, single_process, tmp_path):
    head, (_, second) = cluster
    reference, _ = single_process
    out = tmp_path / "faces.h5"
    seen, killed = [], []

    def on_item(item, reason):
        seen.append(item.rel)
        if len(seen) == 1:  # the first photo is in; one photo per call leaves the others queued or in flight
            killed.extend(actors_on(second))
            head.remove_node(second, allow_graceful=False)  # as when a machine dies: no goodbye
            head.add_node(**NODE)  # the autoscaler's replacement

    report = embed_tree(photos, out, None, producer=producer(actors=2, photos_per_call=1), on_item=on_item)
    assert killed, "no embedding actor was running on the node that was killed"
    assert len(seen) == len(set(seen)) == 16  # every photo reported once
    assert report.faces == 14
    assert_same_rows(out, reference)
    with h5py.File(out) as f:
        paths = [p.decode() for p in f["paths"][:]]
    assert len(paths) == len(set(paths))


def test_cli_embed_on_ray_reports_as_without_and_resumes(cluster, photos, single_process, tmp_path):
    reference, _ = single_process
    out = tmp_path / "faces.h5"
    run = CliRunner().invoke(app, ["embed", str(photos), "-o", str(out), "--align", "--ray", "auto", "--actors", "2", "--json"])
    assert run.exit_code == 1, run.output  # a file that is no photo and a photo without a face
    summary = json.loads(run.stdout)
    assert (summary["faces"], summary["errors"], summary["no_face"]) == (14, 1, 1)
    assert_same_rows(out, reference)
    again = CliRunner().invoke(app, ["embed", str(photos), "-o", str(out), "--align", "--ray", "auto", "--json"])
    assert json.loads(again.stdout)["faces"] == 0  # all stored or known to have no face: nothing sent to Ray


def test_an_index_built_from_shards_on_ray_answers_as_one_built_here(cluster, tmp_path):
    vectors, _ = clustered(6000, 300, seed=3)
    store = tmp_path / "faces.h5"
    make_store(store, vectors)
    here = build_index(store, tmp_path / "here.faiss", IndexParams(kind="ivf"))
    there = build_index_on_ray(store, tmp_path / "there.faiss", IndexParams(kind="ivf"), shards=3)
    assert there["shards"] == 3 and there["rows"] == here["rows"] == 6000
    assert {k: there[k] for k in here} == here
    queries, _ = clustered(200, 300, seed=4)
    (a, _), (b, _) = load_index(tmp_path / "here.faiss"), load_index(tmp_path / "there.faiss")
    (da, ia), (db, ib) = search(a, queries, 5), search(b, queries, 5)
    np.testing.assert_array_equal(ia, ib)  # ids are store rows in both
    np.testing.assert_allclose(da, db, rtol=1e-5)
    assert not (tmp_path / "there.faiss.shards").exists()
    with pytest.raises(IndexFileError, match="--ray builds ivf or ivfpq"):
        build_index_on_ray(store, tmp_path / "flat.faiss", IndexParams(kind="flat"))


def test_an_index_merged_on_disk_answers_the_same_wherever_it_is_moved(cluster, tmp_path, capfd):
    vectors, _ = clustered(6000, 300, seed=3)
    store = tmp_path / "faces.h5"
    make_store(store, vectors)
    build_index(store, tmp_path / "here.faiss", IndexParams(kind="ivf"))
    built = tmp_path / "built"
    built.mkdir()
    # A fresh process on the running cluster: FAISS's C notices must not reach --json's stdout.
    run = subprocess.run([sys.executable, "-m", "fnet", "index", str(store), "-o", str(built / "there.faiss"), "--kind", "ivf",
                          "--ray", cluster[0].address, "--shards", "3", "--on-disk", "--json"], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    meta = json.loads(run.stdout)
    assert meta["shards"] == 3 and meta["rows"] == 6000 and meta["ivfdata"].endswith(".ivfdata")
    lists = built / meta["ivfdata"]
    assert lists.stat().st_size >= vectors.nbytes > 20 * (built / "there.faiss").stat().st_size  # the vectors live in the lists file
    moved = shutil.move(built, tmp_path / "moved")  # the lists are found beside the index, not where they were written
    capfd.readouterr()
    (a, _), (b, _) = load_index(tmp_path / "here.faiss"), load_index(Path(moved) / "there.faiss")
    assert capfd.readouterr().out == ""
    queries, _ = clustered(200, 300, seed=4)
    (da, ia), (db, ib) = search(a, queries, 5), search(b, queries, 5)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_allclose(da, db, rtol=1e-5)
    with pytest.raises(IndexFileError, match="on disk"):
        build_index(store, Path(moved) / "there.faiss", add=True)
    build_index(store, Path(moved) / "there.faiss", IndexParams(kind="ivf"))  # rebuilt in memory: the old lists go
    assert sorted(p.name for p in Path(moved).iterdir()) == ["there.faiss", "there.faiss.json"]
