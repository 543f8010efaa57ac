"""Nothing lost: outputs that are inputs, crops that would overwrite each other, two writers, kills mid-run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import LFW
from PIL import Image
from typer.testing import CliRunner

from fnet.cli import app
from fnet.io.lock import LockedError, exclusive
from fnet.io.store import Store

runner = CliRunner()


def lfw_tree(root, people=("George_W_Bush",), count=40):
    for person in people:
        (root / person).mkdir(parents=True)
        for number in range(1, count + 1):
            shutil.copy(LFW / person / f"{person}_{number:04d}.jpg", root / person)
    return root


def test_photos_differing_only_by_suffix_or_case_keep_a_crop_each(tmp_path):
    photos = tmp_path / "photos" / "mixed"
    photos.mkdir(parents=True)
    faces = {"photo.jpg": "Colin_Powell", "photo.png": "Tony_Blair", "Photo.JPEG": "Hugo_Chavez", "other.jpg": "Jean_Chretien"}
    for name, person in faces.items():
        image = Image.open(LFW / person / f"{person}_0001.jpg")
        image.save(photos / name, "PNG" if name.endswith("png") else "JPEG", quality=95)
    out = tmp_path / "aligned"
    result = runner.invoke(app, ["align", str(photos.parent), "-o", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    crops = sorted(p.name for p in (out / "mixed").iterdir())
    assert crops == ["Photo.JPEG.png", "other.png", "photo.jpg.png", "photo.png.png"]
    assert len({name.casefold() for name in crops}) == 4  # distinct on a case-insensitive file system too
    arrays = [np.asarray(Image.open(out / "mixed" / name)) for name in crops]
    assert all(not np.array_equal(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1 :])  # four different faces
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["output"] for r in records) == sorted(f"mixed/{name}" for name in crops)


def test_a_second_writer_is_refused_naming_the_first(tmp_path):
    """Two real processes embedding into one store: the second is refused at once; the first's store is whole."""
    photos = lfw_tree(tmp_path / "photos", count=150)  # long enough (10 s here) for the second run to start meanwhile
    store = tmp_path / "faces.h5"
    command = [sys.executable, "-m", "fnet", "embed", str(photos), "-o", str(store), "--align", "--device", "cpu"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "faces.h5.lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text()) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if first.poll() is not None:
        pytest.skip("the first run finished before the second could start")
    second = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    still_running = first.poll() is None
    first.wait(timeout=300)
    assert still_running, "the second run was only refused because the first had finished"
    assert second.returncode == 2
    assert f"faces.h5: in use by another fnet run (process {first.pid}" in " ".join(second.stderr.split())
    assert first.returncode == 0, first.stderr.read()
    with Store(store) as stored:
        assert len(stored) == 150 and len(set(stored.paths())) == 150
    assert not lock.exists()  # released at the end


def test_every_writer_takes_the_lock(tmp_path, model):
    """In-process too: while a store, an index, an align or cluster folder is held, each stage refuses it."""
    from fnet.core.detector import FaceDetector
    from fnet.pipeline.align import align_tree
    from fnet.pipeline.aligner import Aligner
    from fnet.pipeline.embed import embed_tree
    from fnet.pipeline.index import build_index

    photos = lfw_tree(tmp_path / "photos", count=3)
    store = tmp_path / "faces.h5"
    embed_tree(photos, store, model, Aligner(FaceDetector("cpu")))
    with exclusive(store), pytest.raises(LockedError, match="faces.h5: in use by another fnet run"):
        embed_tree(photos, store, model, Aligner(FaceDetector("cpu")))
    with exclusive(tmp_path / "faces.faiss"), pytest.raises(LockedError):
        build_index(store, tmp_path / "faces.faiss")
    with exclusive(tmp_path / "aligned", folder=True), pytest.raises(LockedError):
        align_tree(photos, tmp_path / "aligned", Aligner(FaceDetector("cpu")))
    with exclusive(tmp_path / "clusters", folder=True):
        result = runner.invoke(app, ["cluster", str(store), "-o", str(tmp_path / "clusters"), "--json"])
    assert result.exit_code == 2 and "in use by another fnet run" in json.loads(result.stdout)["error"]
    assert runner.invoke(app, ["cluster", str(store), "-o", str(tmp_path / "clusters")]).exit_code == 0  # free again


def test_a_killed_embed_keeps_all_but_the_last_minutes_work(tmp_path):
    """Parts are saved by time as well as by count: a kill -9 loses at most part_seconds of work.

    In fp32, where a face's embedding does not depend on the batch it was in (bf16 kernels,
    auto on AMX CPUs, differ by up to 5e-4 between batch sizes), so the stores must agree to 1e-5."""
    from fnet.core.detector import FaceDetector
    from fnet.core.loading import load_model
    from fnet.pipeline.aligner import Aligner
    from fnet.pipeline.embed import embed_tree

    photos = lfw_tree(tmp_path / "photos", people=("George_W_Bush", "Colin_Powell"), count=50)
    straight = tmp_path / "straight.h5"
    embed_tree(photos, straight, load_model(device="cpu", precision="fp32"), Aligner(FaceDetector("cpu")))

    killed = tmp_path / "killed.h5"
    child = (
        "import sys; from fnet.pipeline.aligner import Aligner; from fnet.core.detector import FaceDetector; "
        "from fnet.pipeline.embed import embed_tree; from fnet.core.loading import load_model; "
        "embed_tree(sys.argv[1], sys.argv[2], load_model(device='cpu', precision='fp32'), Aligner(FaceDetector('cpu')), "
        "batch_size=8, part_seconds=0.2)"  # a large part_size (4,096) would never fill before the kill
    )
    process = subprocess.Popen([sys.executable, "-c", child, str(photos), str(killed)])
    partial = tmp_path / "killed.h5.partial"
    while process.poll() is None and len(list(partial.glob("part-*.h5"))) < 3:
        time.sleep(0.01)
    if process.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    saved = 0
    for part in partial.glob("part-*.h5"):
        with Store(part) as stored:
            saved += len(stored)
    assert 8 <= saved < 100  # batches of 8 faces were kept although no part reached 4,096 rows

    result = runner.invoke(app, ["embed", str(photos), "-o", str(killed), "--align", "--device", "cpu", "--precision", "fp32", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["skipped"] == saved  # the kept work is not redone
    with Store(straight) as a, Store(killed) as b:
        order_a, order_b = np.argsort(a.paths()), np.argsort(b.paths())
        assert sorted(a.paths()) == sorted(b.paths()) and len(b) == 100
        np.testing.assert_allclose(a.embeddings()[order_a], b.embeddings()[order_b], atol=1e-5)


def test_every_photo_kind_is_processed_or_reported(tmp_path):
    """.avif and .jpe photos are aligned; a .heic photo is named with its reason; none is silently left out."""
    photos = tmp_path / "photos"
    photos.mkdir()
    face = Image.open(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg")
    face.save(photos / "one.avif", "AVIF")
    face.save(photos / "two.jpe", "JPEG")
    (photos / "three.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    result = runner.invoke(app, ["align", str(photos), "-o", str(tmp_path / "out"), "--device", "cpu", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["images"] == 3 and summary["faces"] == 2 and summary["errors"] == 1
    assert "three.heic: HEIC/HEIF photos cannot be decoded here" in " ".join(result.stderr.split())


def test_names_with_markup_characters_are_printed_as_they_are(tmp_path):
    """Rich markup in a file name ('[/]', '[bold]') is text to show, never markup to interpret."""
    photos = tmp_path / "photos" / "[red]Bob["  # with the file names below, paths read '.../[red]Bob[/]...'
    photos.mkdir(parents=True)
    shutil.copy(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg", photos / "]face[bold].jpg")
    (photos / "]bad.jpg").write_bytes(b"not a photo")
    result = runner.invoke(app, ["align", str(photos.parent), "-o", str(tmp_path / "out"), "--device", "cpu"])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "[red]Bob[/]bad.jpg: not an image" in text and "1 faces from 2 photos" in text
    missing = runner.invoke(app, ["verify", str(photos / "]gone.jpg"), str(photos / "]face[bold].jpg")])
    assert missing.exit_code == 2 and "[red]Bob[/]gone.jpg: no such file" in " ".join(missing.output.split())


def test_a_file_name_that_is_not_utf8_is_reported_and_the_run_goes_on(tmp_path, model):
    photos = tmp_path / "photos" / "person"
    photos.mkdir(parents=True)
    shutil.copy(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg", photos / "good.jpg")
    bad = os.fsencode(photos) + b"/caf\xe9.jpg"  # Latin-1 bytes, as an old camera or zip wrote them
    shutil.copy(LFW / "Tony_Blair" / "Tony_Blair_0001.jpg", bad)
    store = tmp_path / "faces.h5"
    result = runner.invoke(app, ["embed", str(photos.parent), "-o", str(store), "--align", "--device", "cpu", "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["errors"] == 1
    assert "caf\\xe9.jpg: file name is not valid UTF-8" in result.stderr
    with Store(store) as stored:
        assert stored.paths() == ["person/good.jpg"]
    aligned = runner.invoke(app, ["align", str(photos.parent), "-o", str(tmp_path / "aligned"), "--device", "cpu"])
    assert aligned.exit_code == 1 and "file name is not valid UTF-8" in aligned.output


def test_a_cluster_run_killed_between_its_two_files_does_not_break_the_next(tmp_path, monkeypatch):
    """clusters.csv written, clusters.json not (the kill): the next run starts from the last complete run."""
    from test_index import clustered, make_store

    from fnet.clustering import output
    from fnet.pipeline.cluster import cluster_store

    embeddings, _ = clustered(300, 20)
    make_store(tmp_path / "s.h5", embeddings[:200])
    _, labels = cluster_store(tmp_path / "s.h5", tmp_path / "out")
    make_store(tmp_path / "s.h5", embeddings)  # 100 new faces

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as if the process died after clusters.csv was renamed into place

    with monkeypatch.context() as patch:
        patch.setattr(output.json, "dumps", killed)
        with pytest.raises(KeyboardInterrupt):
            cluster_store(tmp_path / "s.h5", tmp_path / "out")
    assert len((tmp_path / "out" / "clusters.csv").read_text().splitlines()) == 301  # the new csv, the old json
    report, again = cluster_store(tmp_path / "s.h5", tmp_path / "out")
    assert report.incremental and report.new_faces == 100 and len(again) == 300
    assert np.array_equal(again[:200], labels)  # old ids kept


def test_a_checkpoint_whose_metadata_lies_is_refused(tmp_path):
    """A threshold of 4.0 would call every pair of faces the same person: such a file is refused before use."""
    from fnet.core.checkpoint import save_weights
    from fnet.core.info import ModelInfo
    from fnet.core.models import create_model

    info = ModelInfo(name="mine", architecture="small", embedding_dim=128, input_size=96).to_dict()
    state = create_model("small", embedding_dim=128).state_dict()
    photo = str(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg")
    for field, value, message in (
        ("threshold", 4.0, "threshold must be a squared L2 distance"),
        ("threshold", "1.2", "threshold must be"),
        ("input_size", 0, "input_size must be"),
        ("embedding_dim", -5, "embedding_dim must be"),
    ):
        path = tmp_path / f"{field}.safetensors"
        save_weights(path, state, {**info, field: value})
        result = runner.invoke(app, ["verify", photo, photo, "--model", str(path), "--json"])
        assert result.exit_code == 2, (field, result.output)
        assert message in json.loads(result.stdout)["error"], (field, result.stdout)


def test_a_checkpoint_whose_weights_lie_about_its_network_is_one_error(tmp_path):
    """Declared 512-D inception_resnet_v1, holding the small network's weights: exit 2 naming the file, no traceback."""
    from fnet.core.checkpoint import save_weights
    from fnet.core.info import ModelInfo
    from fnet.core.models import create_model

    path = tmp_path / "liar.safetensors"
    info = ModelInfo(name="liar", architecture="inception_resnet_v1", embedding_dim=512, input_size=160)
    save_weights(path, create_model("small", embedding_dim=128).state_dict(), info.to_dict())
    photo = str(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg")
    result = runner.invoke(app, ["verify", photo, photo, "--model", str(path), "--json"])
    assert result.exit_code == 2 and "do not fit its declared 'inception_resnet_v1'" in json.loads(result.stdout)["error"]


def _store(path, embeddings, paths, root="", dim=None):
    from fnet.io.store import Rows, write_store

    attrs = {"model": "facenet-casia", "embedding_dim": dim or embeddings.shape[1], "normalization": "fixed", "threshold": 1.24, "root": root}
    write_store(path, [Rows(embeddings, paths, ["x"] * len(paths), np.full((len(paths), 4), np.nan, np.float32))], attrs)


def test_non_finite_embeddings_are_never_written_nor_indexed(tmp_path):
    import h5py

    from fnet.io.store import StoreError

    rows = np.eye(3, 8, dtype=np.float32)
    bad = rows.copy()
    bad[1, 0] = np.nan
    with pytest.raises(StoreError, match="the embedding of b.png is not finite"):
        _store(tmp_path / "bad.h5", bad, ["a.png", "b.png", "c.png"])
    assert not (tmp_path / "bad.h5").exists()  # nothing half-written
    _store(tmp_path / "s.h5", rows, ["a.png", "b.png", "c.png"])
    with h5py.File(tmp_path / "s.h5", "r+") as f:  # a hostile store, edited by hand
        f["embeddings"][2, 3] = np.inf
    result = runner.invoke(app, ["index", str(tmp_path / "s.h5"), "-o", str(tmp_path / "s.faiss"), "--json"])
    assert result.exit_code == 2 and "not finite" in json.loads(result.stdout)["error"]
    merged = runner.invoke(app, ["merge", str(tmp_path / "s.h5"), "-o", str(tmp_path / "m.h5")])
    assert merged.exit_code == 2 and "c.png is not finite" in merged.output


def test_a_hostile_stores_paths_never_become_links_outside_its_root(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    x = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    _store(tmp_path / "s.h5", x / np.linalg.norm(x, axis=1, keepdims=True), ["../../../../etc/passwd", "/etc/shadow"], root=str(root))
    result = runner.invoke(app, ["cluster", str(tmp_path / "s.h5"), "-o", str(tmp_path / "out"), "--folders", "links", "--no-sheet"])
    assert result.exit_code == 2 and "outside the store's root" in result.output
    assert not any(p.is_symlink() for p in (tmp_path / "out").rglob("*"))


def test_a_query_model_of_another_dimension_is_refused_by_name(tmp_path):
    """A 128-D index searched with a 512-D model (its name copied) gives one line, not FAISS's assertion."""
    from fnet.errors import SettingsError
    from fnet.pipeline.search import open_gallery

    x = np.random.default_rng(0).normal(size=(20, 128)).astype(np.float32)
    _store(tmp_path / "s.h5", x / np.linalg.norm(x, axis=1, keepdims=True), [f"{i}.png" for i in range(20)])
    assert runner.invoke(app, ["index", str(tmp_path / "s.h5"), "-o", str(tmp_path / "s.faiss")]).exit_code == 0
    gallery = open_gallery(tmp_path / "s.faiss")
    with pytest.raises(SettingsError, match="holds 128-D embeddings; 'facenet-casia' makes 512-D ones"):
        gallery.check_model("facenet-casia", 512)


def test_a_model_name_with_path_parts_never_writes_outside_the_output(tmp_path):
    from fnet.core.checkpoint import load_checkpoint, save_checkpoint
    from fnet.core.pretrained import pretrained_checkpoint
    from fnet.pipeline.evaluate import file_safe

    state, info = load_checkpoint(pretrained_checkpoint("facenet-casia"))
    save_checkpoint(tmp_path / "evil.safetensors", state, info.replace(name="../../../escaped"))
    photos = [LFW / "Colin_Powell" / f"Colin_Powell_000{i}.jpg" for i in (1, 2)] + [LFW / "Tony_Blair" / "Tony_Blair_0001.jpg"]
    (tmp_path / "pairs.csv").write_text("a,b,same\n" + f"{photos[0]},{photos[1]},1\n{photos[0]},{photos[2]},0\n")
    out = tmp_path / "deep" / "eval"
    result = runner.invoke(app, ["evaluate", str(LFW), "--pairs", str(tmp_path / "pairs.csv"), "-o", str(out), "--model", str(tmp_path / "evil.safetensors"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - {tmp_path / "evil.safetensors", tmp_path / "pairs.csv"}
    assert written and all(out in p.parents for p in written), written  # everything inside -o
    assert "/" not in file_safe("../../x") and not file_safe("..").startswith(".")


def _unit(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_store_whose_data_lives_in_other_files_is_refused(tmp_path):
    """An HDF5 dataset with external storage would read /etc/passwd (or any file) as labels."""
    import h5py

    from fnet.io.store import StoreError

    _store(tmp_path / "s.h5", _unit(2), ["a.png", "b.png"])
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 4)
    with h5py.File(tmp_path / "s.h5", "r+") as f:
        del f["labels"]
        f.create_dataset("labels", (2,), dtype="S16", external=[(str(secret), 0, 32)])
    with pytest.raises(StoreError, match="'labels' keeps its data in other files"):
        Store(tmp_path / "s.h5")
    result = runner.invoke(app, ["cluster", str(tmp_path / "s.h5"), "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 2 and "external or virtual" in json.loads(result.stdout)["error"]


def test_appending_to_a_store_never_rewrites_what_it_holds(tmp_path, model):
    """Another folder's photos would get the store's root (their paths dangle); --half would
    rewrite the float32 rows as float16. Both are refused, naming the store; nothing changes."""
    from fnet.io.store import StoreError
    from fnet.pipeline.embed import embed_tree

    first, second = tmp_path / "first", tmp_path / "second"
    for folder, person in ((first, "Colin_Powell"), (second, "Tony_Blair")):
        (folder / person).mkdir(parents=True)
        shutil.copy(LFW / person / f"{person}_0001.jpg", folder / person)
    store = tmp_path / "faces.h5"
    embed_tree(first, store, model)
    before = store.read_bytes()
    with pytest.raises(StoreError, match=f"holds files under {first.resolve()}, not under {second.resolve()}"):
        embed_tree(second, store, model)
    (first / "Colin_Powell" / "more.jpg").write_bytes((LFW / "Colin_Powell" / "Colin_Powell_0002.jpg").read_bytes())
    with pytest.raises(StoreError, match="holds float32 embeddings; appending float16 would rewrite them all"):
        embed_tree(first, store, model, half=True)
    assert store.read_bytes() == before


def test_merge_keeps_each_photo_once(tmp_path):
    _store(tmp_path / "a.h5", _unit(3), ["a.png", "b.png", "b.png"])  # b.png: two faces of one photo
    _store(tmp_path / "b.h5", _unit(3, seed=1), ["b.png", "c.png", "d.png"])
    result = runner.invoke(app, ["merge", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), str(tmp_path / "a.h5"),
                                 "-o", str(tmp_path / "m.h5"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 5
    with Store(tmp_path / "m.h5") as merged, Store(tmp_path / "a.h5") as a:
        assert merged.paths() == ["a.png", "b.png", "b.png", "c.png", "d.png"]
        np.testing.assert_array_equal(merged.embeddings()[:3], a.embeddings())  # the first store's faces win


def test_index_add_refuses_another_stores_rows(tmp_path):
    """The store's id travels into the index's sidecar; rows of another store were once named 'AJ_Cook' at 0.000."""
    _store(tmp_path / "a.h5", _unit(20), [f"a{i}.png" for i in range(20)])
    _store(tmp_path / "b.h5", _unit(30, seed=1), [f"b{i}.png" for i in range(30)])
    assert runner.invoke(app, ["index", str(tmp_path / "a.h5"), "-o", str(tmp_path / "a.faiss")]).exit_code == 0
    result = runner.invoke(app, ["index", str(tmp_path / "b.h5"), "-o", str(tmp_path / "a.faiss"), "--add", "--json"])
    assert result.exit_code == 2 and "built from another store" in json.loads(result.stdout)["error"]


def test_appended_rows_keep_the_store_id_so_its_index_can_grow(tmp_path, model):
    from fnet.pipeline.embed import embed_tree

    photos = tmp_path / "photos"
    (photos / "Colin_Powell").mkdir(parents=True)
    shutil.copy(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg", photos / "Colin_Powell")
    store = tmp_path / "faces.h5"
    embed_tree(photos, store, model)
    assert runner.invoke(app, ["index", str(store), "-o", str(tmp_path / "f.faiss")]).exit_code == 0
    shutil.copy(LFW / "Colin_Powell" / "Colin_Powell_0002.jpg", photos / "Colin_Powell")
    embed_tree(photos, store, model)
    result = runner.invoke(app, ["index", str(store), "-o", str(tmp_path / "f.faiss"), "--add", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 2


def test_an_output_inside_the_input_is_never_read_back(tmp_path):
    """`fnet align photos -o photos/aligned` nested aligned/aligned/... on a rerun; `fnet cluster photos
    -o photos/people --folders crops` grew 4 -> 7 -> 10 faces. Outputs under the input are left out."""
    photos = tmp_path / "photos"
    for person in ("Colin_Powell", "Tony_Blair"):
        (photos / person).mkdir(parents=True)
        for number in (1, 2):
            shutil.copy(LFW / person / f"{person}_{number:04d}.jpg", photos / person)
    for _ in range(2):
        result = runner.invoke(app, ["align", str(photos), "-o", str(photos / "aligned"), "--device", "cpu", "--json"])
        assert result.exit_code == 0, result.output
    assert not (photos / "aligned" / "aligned").exists()
    assert len(list((photos / "aligned").rglob("*.png"))) == 4
    for _ in range(2):
        result = runner.invoke(app, ["cluster", str(photos), "-o", str(photos / "people"), "--folders", "crops",
                                     "--device", "cpu", "--no-sheet", "--json"])
        assert result.exit_code == 0, result.output
        with Store(photos / "people" / "faces.h5") as store:  # the photos, not the crops of the aligned tree or of people/
            assert sorted(store.paths()) == sorted(f"{p}/{p}_{n:04d}.jpg" for p in ("Colin_Powell", "Tony_Blair") for n in (1, 2))


def test_recluster_leaves_only_the_links_clusters_csv_gives(tmp_path):
    """After --recluster (or a switch from crops to links), people/ held links to photos that
    clusters.csv put elsewhere (44 of 64). Each person folder now holds exactly its members."""
    import csv

    centres = _unit(4, dim=16, seed=5)
    rng = np.random.default_rng(6)
    x = np.repeat(centres, 6, axis=0) + rng.normal(size=(24, 16)).astype(np.float32) * 0.08
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    root = tmp_path / "photos"
    root.mkdir()
    _store(tmp_path / "s.h5", x, [f"p{i:02d}.jpg" for i in range(24)], root=str(root), dim=16)
    out = tmp_path / "out"
    clusters = []
    for extra in (["--threshold", "3.5"], ["--threshold", "0.3", "--recluster"]):
        result = runner.invoke(app, ["cluster", str(tmp_path / "s.h5"), "-o", str(out), "--folders", "links", "--no-sheet", *extra])
        assert result.exit_code == 0, result.output
        clusters.append(len(list((out / "people").iterdir())))
    assert clusters == [2, 4]
    with open(out / "clusters.csv", newline="") as handle:
        want = {(row["path"], int(row["cluster"])) for row in csv.DictReader(handle)}
    have = {(link.name, int(link.parent.name.split("-")[1]) - 1) for link in (out / "people").rglob("*") if link.is_symlink()}
    assert have == want


def test_an_index_and_its_sidecar_always_match_even_when_a_rebuild_dies_between_them(tmp_path, monkeypatch):
    from fnet.pipeline.index import build_index, load_index

    _store(tmp_path / "small.h5", _unit(20), [f"a{i}.png" for i in range(20)])
    _store(tmp_path / "large.h5", _unit(50, seed=1), [f"b{i}.png" for i in range(50)])
    build_index(tmp_path / "small.h5", tmp_path / "f.faiss")
    real_replace, calls = os.replace, []

    def dies_before_the_index(src, dst):
        calls.append(dst)
        if str(dst).endswith(".faiss"):  # the sidecar is in place; the new index never lands
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dies_before_the_index)
    with pytest.raises(KeyboardInterrupt):
        build_index(tmp_path / "large.h5", tmp_path / "f.faiss")
    monkeypatch.undo()
    assert [str(c).rsplit(".", 1)[-1] for c in calls] == ["json", "faiss"]
    index, meta = load_index(tmp_path / "f.faiss")  # the old index, with its own metadata
    assert index.ntotal == meta["rows"] == 20 and meta["store"].endswith("small.h5")


def test_searches_during_rebuilds_never_fail(tmp_path):
    """Rebuilding an index 30 times in another process while this one loads it: every load is a matching pair
    (before: 215-394 failed searches in 40 s)."""
    from fnet.pipeline.index import load_index

    _store(tmp_path / "small.h5", _unit(20), [f"a{i}.png" for i in range(20)])
    _store(tmp_path / "large.h5", _unit(50, seed=1), [f"b{i}.png" for i in range(50)])
    assert runner.invoke(app, ["index", str(tmp_path / "small.h5"), "-o", str(tmp_path / "f.faiss")]).exit_code == 0
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys; from fnet.pipeline.index import build_index\n"
        "for i in range(30): build_index(sys.argv[1 + i % 2], sys.argv[3])"
    ), str(tmp_path / "large.h5"), str(tmp_path / "small.h5"), str(tmp_path / "f.faiss")])
    loads = 0
    while writer.poll() is None or loads == 0:
        index, meta = load_index(tmp_path / "f.faiss")
        assert index.ntotal == meta["rows"] and meta["rows"] in (20, 50)
        loads += 1
    assert writer.returncode == 0 and loads > 1


def test_a_replaced_photo_is_embedded_again(tmp_path, model, aligner):
    """A photo replaced under the same name kept its old embedding; so did one without a face before."""
    from fnet.pipeline.embed import embed_tree

    photos = tmp_path / "photos" / "people"
    photos.mkdir(parents=True)
    shutil.copy(LFW / "Colin_Powell" / "Colin_Powell_0001.jpg", photos / "a.jpg")
    shutil.copy(LFW / "Tony_Blair" / "Tony_Blair_0001.jpg", photos / "b.jpg")
    Image.new("RGB", (250, 250), (120, 130, 140)).save(photos / "c.jpg")  # no face
    store = tmp_path / "faces.h5"
    first = embed_tree(photos.parent, store, model, aligner)
    assert (first.faces, first.no_face) == (2, 1)
    with Store(store) as s:
        before, old_id = dict(zip(s.paths(), s.embeddings())), s.attrs["store_id"]
    shutil.copy(LFW / "Hugo_Chavez" / "Hugo_Chavez_0001.jpg", photos / "a.jpg")  # another person, same name
    shutil.copy(LFW / "Serena_Williams" / "Serena_Williams_0001.jpg", photos / "c.jpg")  # now a face
    again = embed_tree(photos.parent, store, model, aligner)
    assert (again.replaced, again.faces, again.skipped, again.no_face, again.total) == (2, 2, 1, 0, 3)
    reference = {p: e for p, e in zip(["a", "c"], fnet_embed([photos / "a.jpg", photos / "c.jpg"], model, aligner))}
    with Store(store) as s:
        after = dict(zip(s.paths(), s.embeddings()))
        assert sorted(s.paths()) == ["people/a.jpg", "people/b.jpg", "people/c.jpg"] and s.no_face() == []
        assert s.attrs["store_id"] != old_id  # rows were dropped: an index of the old store must not be extended
    np.testing.assert_array_equal(after["people/b.jpg"], before["people/b.jpg"])
    assert ((after["people/a.jpg"] - before["people/a.jpg"]) ** 2).sum() > 0.5  # Powell's face is gone
    np.testing.assert_allclose(after["people/a.jpg"], reference["a"], atol=1e-4)
    np.testing.assert_allclose(after["people/c.jpg"], reference["c"], atol=1e-4)
    third = embed_tree(photos.parent, store, model, aligner)
    assert (third.replaced, third.faces, third.skipped) == (0, 0, 3)


def fnet_embed(paths, model, aligner) -> np.ndarray:
    """The embedding of each photo's face, straight from the model."""
    import fnet

    return model.embed(np.stack([aligner.align([fnet.load_image(p)])[0][0].crop for p in paths]))


def test_a_torn_last_metrics_line_is_dropped_not_fatal(tmp_path):
    """A full disk during `fnet train` left half a line; every later run failed on "Expecting ',' delimiter"."""
    from fnet.training.curves import metric_records, plot_curves

    metrics = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "loss": 1.0 / s, "active": 0.5, "d_ap": 0.8, "d_an": 1.3, "spread": 0.1}) for s in (1, 2, 3)]
    metrics.write_text("\n".join(lines) + '\n{"step": 4, "loss": 0.2')
    assert [r["step"] for r in metric_records(metrics)] == [1, 2, 3]
    assert plot_curves(metrics, tmp_path / "curves.png").is_file()


def test_a_full_disk_is_one_line_naming_the_file_and_nothing_is_lost(tmp_path, monkeypatch):
    import errno

    import h5py

    import fnet.io.store as store_module

    _store(tmp_path / "a.h5", _unit(3), ["a.png", "b.png", "c.png"])
    before = (tmp_path / "a.h5").read_bytes()
    real_file = h5py.File

    def full_disk(name, mode="r", *args, **kwargs):
        if mode == "w":
            raise OSError(errno.ENOSPC, "No space left on device", str(name))
        return real_file(name, mode, *args, **kwargs)

    monkeypatch.setattr(store_module.h5py, "File", full_disk)
    result = runner.invoke(app, ["merge", str(tmp_path / "a.h5"), "-o", str(tmp_path / "m.h5"), "--json"])
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)
    assert error["reason"] == "no space left on its disk" and ".m.h5." in error["path"]  # the file being written
    assert (tmp_path / "a.h5").read_bytes() == before and not list(tmp_path.glob("*m.h5*"))


def test_embed_refuses_a_store_its_disk_cannot_hold_and_keeps_its_parts(tmp_path, model, monkeypatch):
    import collections

    import fnet.io.store as store_module
    from fnet.io.store import StoreError
    from fnet.pipeline.embed import embed_tree

    photos = tmp_path / "photos" / "Colin_Powell"
    photos.mkdir(parents=True)
    for number in (1, 2, 3):
        shutil.copy(LFW / "Colin_Powell" / f"Colin_Powell_{number:04d}.jpg", photos)
    store = tmp_path / "faces.h5"
    real_usage = store_module.shutil.disk_usage
    usage = collections.namedtuple("usage", "total used free")
    room = {"free": 2**40}

    def disk_usage(path):
        return usage(2**40, 0, room["free"]) if room["free"] is not None else real_usage(path)

    monkeypatch.setattr(store_module.shutil, "disk_usage", disk_usage)
    seen = []

    def fill_the_disk(item, reason):
        seen.append(item)
        if len(seen) == 3:  # every face is in a part; then the disk fills up before the store is joined
            room["free"] = 2**20

    with pytest.raises(StoreError, match=r"faces.h5: writing 3 faces needs about 1 MB, its disk has 1 MB free"):
        embed_tree(photos.parent, store, model, part_size=1, on_item=fill_the_disk)
    assert not store.exists() and len(list((tmp_path / "faces.h5.partial").glob("part-*.h5"))) == 3
    room["free"] = None  # space again: the same run finishes from its parts, embedding nothing again
    report = embed_tree(photos.parent, store, model, part_size=1)
    assert (report.skipped, report.faces, report.total) == (3, 0, 3)


def test_a_malformed_store_is_one_line_not_a_traceback(tmp_path):
    """A 1-D store, or one with fewer paths than embeddings, crashed index and cluster deep inside."""
    import h5py

    replaced = {"flat": ("embeddings", np.zeros(16, "f4")), "short": ("paths", np.array([b"a.png"]))}
    for name, (dataset, data) in replaced.items():
        _store(tmp_path / f"{name}.h5", _unit(2), ["a.png", "b.png"])
        with h5py.File(tmp_path / f"{name}.h5", "r+") as f:
            del f[dataset]
            f.create_dataset(dataset, data=data)
        for command in (["index", str(tmp_path / f"{name}.h5"), "-o", str(tmp_path / "x.faiss")],
                        ["cluster", str(tmp_path / f"{name}.h5"), "-o", str(tmp_path / "out")]):
            result = runner.invoke(app, [*command, "--json"])
            assert result.exit_code == 2, result.output
            assert "not a well-formed fnet store" in json.loads(result.stdout)["error"]
