"""Clustering methods, quality metrics and incremental placement: known answers, then real faces."""

from __future__ import annotations

import numpy as np
import pytest

from fnet.clustering import METHODS, ClusterError, ClusterSettings, by_size, cluster
from fnet.clustering import methods as methods_module
from fnet.clustering.assign import assign
from fnet.clustering.graph import chinese_whispers, connected_components
from fnet.clustering.knn import knn_graph
from fnet.evaluation.clustering import bcubed_scores, pairwise_scores


def blobs(sizes: list[int], dim: int = 64, spread: float = 0.35, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in well separated groups (same group: squared L2 ~ spread^2 * 2 ~ 0.25; others ~ 2)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    truth = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[truth] / np.sqrt(dim) + rng.normal(scale=spread / np.sqrt(dim), size=(len(truth), dim))
    order = rng.permutation(len(truth))  # groups interleaved, not in row order
    x, truth = x[order], truth[order]
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when a and b group the items identically (whatever the cluster numbers)."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


SIZES = [40, 25, 12, 7, 5, 3, 2, 2, 1, 1]


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_recovers_known_clusters_exactly(method):
    # k-means gets equal groups: with unequal ones (SIZES) it often splits a big person while
    # merging two small ones (4 of 10 seeds here), the method's known weakness
    x, truth = blobs([12] * 10 if method == "kmeans" else SIZES)
    labels = cluster(x, ClusterSettings(method=method, threshold=1.0, k=10, n_clusters=10))
    if method == "hdbscan":  # density-based: judged on groups of at least its minimum size
        grouped = np.isin(truth, np.flatnonzero(np.array(SIZES) >= 2))
        assert same_partition(labels[grouped], truth[grouped])
    else:
        assert same_partition(labels, truth)


def test_labels_are_numbered_by_size():
    x, _truth = blobs(SIZES)
    labels = cluster(x, ClusterSettings(threshold=1.0, k=10))
    assert np.bincount(labels).tolist() == sorted(SIZES, reverse=True)
    assert by_size(np.array([7, 3, 3, 9, 9, 9])).tolist() == [2, 1, 1, 0, 0, 0]
    assert by_size(np.array([5, 4])).tolist() == [0, 1]  # a tie goes to the cluster seen first


def test_whispers_cut_a_weak_bridge_that_components_follow():
    # two triangles (0-1-2, 3-4-5) with strong edges, and one weak edge 2-3 between them
    source = np.array([0, 1, 0, 3, 4, 3, 2])
    target = np.array([1, 2, 2, 4, 5, 5, 3])
    weight = np.array([1.0, 1, 1, 1, 1, 1, 0.05])
    assert len(set(connected_components(6, source, target).tolist())) == 1
    labels = chinese_whispers(6, source, target, weight)
    assert same_partition(labels, np.array([0, 0, 0, 1, 1, 1]))


def test_an_isolated_face_stays_alone():
    labels = chinese_whispers(3, np.array([0]), np.array([1]), np.array([1.0]))
    assert labels[0] == labels[1] != labels[2]
    assert chinese_whispers(2, np.zeros(0, int), np.zeros(0, int), np.zeros(0)).tolist() == [0, 1]  # no edges at all
    x, _ = blobs([1])
    for method in ("whispers", "components", "agglomerative", "hdbscan"):
        assert cluster(x, ClusterSettings(method=method)).tolist() == [0]  # one face: one cluster


def test_knn_graph_matches_brute_force_without_self():
    x, _ = blobs([30, 20, 10], dim=16, spread=0.8)
    distances, neighbours = knn_graph(x, 5)
    full = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(full, np.inf)
    expected = np.argsort(full, axis=1)[:, :5]
    assert (neighbours != np.arange(len(x))[:, None]).all()
    np.testing.assert_allclose(distances, np.take_along_axis(full, expected, axis=1), atol=1e-5)
    assert (neighbours == expected).mean() > 0.99  # exact search; only float ties may swap


def test_pairwise_and_bcubed_scores_by_hand():
    truth = ["a", "a", "a", "b", "b"]
    found = [1, 1, 2, 2, 2]
    # pairs: true {a1a2, a1a3, a2a3, b1b2}; found {a1a2, a3b1, a3b2, b1b2}; shared {a1a2, b1b2}
    pair = pairwise_scores(truth, found)
    assert (pair.precision, pair.recall, pair.f) == (0.5, 0.5, 0.5)
    # BCubed precision per face: 1, 1, 1/3, 2/3, 2/3; recall: 2/3, 2/3, 1/3, 1, 1
    cube = bcubed_scores(truth, found)
    assert cube.precision == pytest.approx(11 / 15) and cube.recall == pytest.approx(11 / 15)
    assert pairwise_scores(truth, truth).f == bcubed_scores(truth, truth).f == 1.0
    singletons = pairwise_scores(truth, range(5))
    assert singletons.precision == 1.0 and singletons.recall == 0.0 and singletons.f == 0.0


def test_incremental_placement_keeps_old_ids_and_makes_new_clusters():
    x, truth = blobs([20, 15, 10, 6])
    newcomer = truth == 3  # a person never seen before
    old = ~newcomer & (np.arange(len(truth)) < 35)
    new = ~old
    old_labels = cluster(x[old], ClusterSettings(threshold=1.0, k=10))
    new_labels = assign(x[old], old_labels, x[new], ClusterSettings(threshold=1.0, k=10))
    for person in (0, 1, 2):  # new photos of known people join their cluster
        known = set(old_labels[truth[old] == person].tolist())
        assert len(known) == 1 and set(new_labels[truth[new] == person].tolist()) == known
    fresh = set(new_labels[truth[new] == 3].tolist())
    assert len(fresh) == 1 and fresh.pop() > old_labels.max()


def test_dense_methods_refuse_huge_inputs(monkeypatch):
    monkeypatch.setattr(methods_module, "DENSE_MAX_ROWS", 10)
    x, _ = blobs([8, 8])
    with pytest.raises(ClusterError, match="16 faces is over 10: use --method whispers"):
        cluster(x, ClusterSettings(method="agglomerative"))
    with pytest.raises(ClusterError, match="--clusters"):
        cluster(x, ClusterSettings(method="kmeans"))
    with pytest.raises(ClusterError, match="unknown method"):
        cluster(x, ClusterSettings(method="spectral"))


@pytest.mark.slow
def test_real_faces_group_by_person(deepface_embeddings, deepface_identities):
    """deepface-unit's 61 labelled single-person photos (13 people, 2 to 8 photos each) at the model's threshold."""
    files, embeddings = deepface_embeddings
    truth = np.array([deepface_identities[f] for f in files])
    labels = cluster(embeddings, ClusterSettings())  # defaults: whispers, threshold 1.24, k 50
    assert same_partition(labels, truth)


# --- the command line, end to end on real photos -------------------------------------------

def _photos_of(identities: dict[str, str], person: str) -> list[str]:
    return sorted(name for name, who in identities.items() if who == person)


def _read_csv(path):
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _chromium() -> str | None:
    import shutil

    return next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)


def _check_sheet_in_chromium(sheet, tmp_path, clusters: int) -> None:
    """Chromium parses the page into one section per cluster, each with its faces, and paints them."""
    import subprocess

    from PIL import Image

    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}"]
    dom = subprocess.run([*flags, "--dump-dom", sheet.as_uri()], check=False, capture_output=True, text=True, timeout=120).stdout
    assert dom.count('<section class="cluster"') == clusters
    assert dom.count('<img class="face" src="data:image/jpeg;base64,') >= 2 * clusters
    shot = tmp_path / "sheet.png"
    subprocess.run([*flags, "--window-size=1000,900", f"--screenshot={shot}", sheet.as_uri()], check=False, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert (pixels < 200).mean() > 0.05  # faces painted, not a blank page


def test_cli_clusters_photos_then_places_new_ones(deepface_identities, tmp_path):
    import shutil

    from conftest import DEEPFACE
    from PIL import Image
    from typer.testing import CliRunner

    from fnet.cli import app

    if not DEEPFACE.is_dir():
        pytest.skip(f"deepface-unit data not found at {DEEPFACE}")
    people = {p: _photos_of(deepface_identities, p) for p in ("person00", "person01", "person02", "person03")}
    photos, out = tmp_path / "photos", tmp_path / "people"
    photos.mkdir()
    for person in ("person00", "person01", "person02"):
        for name in people[person][:3]:
            shutil.copy(DEEPFACE / name, photos / name)
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("RGB", (300, 200), (120, 130, 140)).save(photos / "wall.png")

    run = CliRunner().invoke(app, ["cluster", str(photos), "-o", str(out), "--folders", "links", "--device", "cpu"])
    assert run.exit_code == 1, run.output  # one unreadable photo, one without a face; the rest clustered
    assert "broken.jpg" in run.output and "wall.png" in run.output
    rows = _read_csv(out / "clusters.csv")
    truth = np.array([deepface_identities[r["path"]] for r in rows])
    first = np.array([int(r["cluster"]) for r in rows])
    assert len(rows) == 9 and same_partition(first, truth)
    for row in rows:  # people/person-NNNN/ links back to the photo
        link = out / "people" / f"person-{int(row['cluster']) + 1:04d}" / row["path"]
        assert link.is_symlink() and link.resolve() == (photos / row["path"]).resolve()
    _check_sheet_in_chromium(out / "report.html", tmp_path, clusters=3)

    # more photos: two of a known person, two of a newcomer; only they are placed
    (photos / "broken.jpg").unlink(), (photos / "wall.png").unlink()
    added = people["person00"][3:5] + people["person03"][:2]
    for name in added:
        shutil.copy(DEEPFACE / name, photos / name)
    run = CliRunner().invoke(app, ["cluster", str(photos), "-o", str(out), "--device", "cpu", "--json"])
    assert run.exit_code == 0, run.output
    rows = _read_csv(out / "clusters.csv")
    assert [int(r["cluster"]) for r in rows[:9]] == first.tolist()  # old faces keep their ids
    new = {r["path"]: int(r["cluster"]) for r in rows[9:]}
    assert set(new) == set(added)
    person00 = int(first[truth == "person00"][0])
    assert new[added[0]] == new[added[1]] == person00
    assert new[added[2]] == new[added[3]] == first.max() + 1
    assert '"joined": 2' in run.output and '"incremental": true' in run.output


def _store(path, model, files: list[str], embeddings: np.ndarray):
    from fnet.io.store import Rows, model_attrs, write_store

    rows = Rows(embeddings, list(files), [""] * len(files), np.full((len(files), 4), np.nan, np.float32))
    write_store(path, [rows], model_attrs(model.info))
    return path


def test_cli_refuses_another_stores_output_and_bad_options(deepface_embeddings, model, tmp_path):
    from typer.testing import CliRunner

    from fnet.cli import app

    files, embeddings = deepface_embeddings
    a = _store(tmp_path / "a.h5", model, files, embeddings)
    b = _store(tmp_path / "b.h5", model, files[::-1], embeddings[::-1])
    runner = CliRunner()
    assert runner.invoke(app, ["cluster", str(a), "-o", str(tmp_path / "out"), "--no-sheet"]).exit_code == 0
    refused = runner.invoke(app, ["cluster", str(b), "-o", str(tmp_path / "out"), "--no-sheet"])
    assert refused.exit_code == 2 and "use --recluster" in refused.output
    assert runner.invoke(app, ["cluster", str(b), "-o", str(tmp_path / "out"), "--no-sheet", "--recluster"]).exit_code == 0
    kmeans = runner.invoke(app, ["cluster", str(a), "-o", str(tmp_path / "k"), "--method", "kmeans"])
    assert kmeans.exit_code == 2 and "--clusters" in kmeans.output
    assert runner.invoke(app, ["cluster", str(a), "--method", "magic"]).exit_code == 2
