"""`fnet embed`: trees to stores, appending, resuming after a kill, shards, model mixing."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from conftest import DEEPFACE, LFW
from PIL import Image
from typer.testing import CliRunner

import fnet
from fnet.cli import app
from fnet.core.checkpoint import save_checkpoint
from fnet.core.info import ModelInfo
from fnet.core.models import create_model
from fnet.io.store import Store, StoreError, merge_stores
from fnet.pipeline.align import align_tree
from fnet.pipeline.aligner import Aligner
from fnet.pipeline.embed import embed_tree, parse_shard

PEOPLE = {"Colin_Powell": 4, "Tony_Blair": 4, "Serena_Williams": 3, "Hugo_Chavez": 3}


@pytest.fixture(scope="module")
def aligned_tree(tmp_path_factory, detector):
    photos = tmp_path_factory.mktemp("photos")
    for person, count in PEOPLE.items():
        (photos / person).mkdir()
        for i in range(1, count + 1):
            shutil.copy(LFW / person / f"{person}_{i:04d}.jpg", photos / person)
    aligned = tmp_path_factory.mktemp("aligned")
    align_tree(photos, aligned, Aligner(detector))
    return photos, aligned


def contents(path) -> dict:
    with h5py.File(path) as f:
        data = {name: f[name][:] for name in f}
        data["attrs"] = {k: v for k, v in f.attrs.items() if k not in ("created", "store_id")}  # each store's own
    return data


def assert_same_store(a, b) -> None:
    x, y = contents(a), contents(b)
    assert x["attrs"] == y["attrs"]
    for name in ("embeddings", "paths", "labels", "boxes", "no_face"):
        np.testing.assert_array_equal(x[name], y[name])


def test_aligned_tree_to_store(aligned_tree, model, tmp_path):
    _, aligned = aligned_tree
    report = embed_tree(aligned, tmp_path / "faces.h5", model)
    assert (report.faces, report.errors, report.total) == (14, 0, 14)
    with Store(tmp_path / "faces.h5") as store:
        data = store.rows()
        assert store.attrs["model"] == "facenet-casia" and store.attrs["embedding_dim"] == 512
        assert sorted(set(data.labels)) == sorted(PEOPLE)
        assert data.paths[0] == "Colin_Powell/Colin_Powell_0001.png"
        assert np.isfinite(data.boxes).all()  # boxes come from the align manifest
        np.testing.assert_allclose(np.linalg.norm(data.embeddings, axis=1), 1.0, atol=1e-5)
        # the same face, embedded directly, gives the same vector
        direct = model.embed([fnet.load_image(aligned / data.paths[5])])[0]
        np.testing.assert_allclose(data.embeddings[5], direct, atol=1e-5)
    assert not (tmp_path / "faces.h5.partial").exists()


def test_rerun_adds_only_new_files(aligned_tree, model, tmp_path):
    _, aligned = aligned_tree
    tree = tmp_path / "tree"
    shutil.copytree(aligned, tree)
    shutil.rmtree(tree / "Hugo_Chavez")
    embed_tree(tree, tmp_path / "faces.h5", model)
    shutil.copytree(aligned / "Hugo_Chavez", tree / "Hugo_Chavez")
    report = embed_tree(tree, tmp_path / "faces.h5", model)
    assert (report.faces, report.skipped, report.total) == (3, 11, 14)
    again = embed_tree(tree, tmp_path / "faces.h5", model)
    assert (again.faces, again.total) == (0, 14)


def test_killed_run_resumes_to_an_identical_store(aligned_tree, model, tmp_path):
    _, aligned = aligned_tree
    embed_tree(aligned, tmp_path / "straight.h5", model, batch_size=4)
    seen = []

    def crash(item, reason):
        seen.append(item)
        if len(seen) == 9:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_tree(aligned, tmp_path / "resumed.h5", model, batch_size=4, part_size=4, on_item=crash)
    assert not (tmp_path / "resumed.h5").exists()
    # a part is written each time 4 faces are in: the crash at the 9th report keeps 2 parts, loses the 9th face
    assert len(list((tmp_path / "resumed.h5.partial").glob("part-*.h5"))) == 2
    report = embed_tree(aligned, tmp_path / "resumed.h5", model, batch_size=4, part_size=4)
    assert report.skipped == 8 and report.faces == 6
    assert_same_store(tmp_path / "straight.h5", tmp_path / "resumed.h5")


def test_shards_merge_to_the_whole(aligned_tree, model, tmp_path):
    _, aligned = aligned_tree
    embed_tree(aligned, tmp_path / "all.h5", model)
    for i in range(3):
        embed_tree(aligned, tmp_path / f"shard{i}.h5", model, shard=(i, 3))
    merge_stores([tmp_path / f"shard{i}.h5" for i in range(3)], tmp_path / "merged.h5")
    with Store(tmp_path / "all.h5") as whole, Store(tmp_path / "merged.h5") as merged:
        a = dict(zip(whole.paths(), whole.embeddings()))
        b = dict(zip(merged.paths(), merged.embeddings()))
    assert a.keys() == b.keys()
    for path, embedding in a.items():
        np.testing.assert_allclose(embedding, b[path], atol=1e-5)
    assert parse_shard("2/3") == (2, 3)
    with pytest.raises(ValueError, match="i/n"):
        parse_shard("3")


def test_another_model_is_refused(aligned_tree, model, tmp_path):
    _, aligned = aligned_tree
    embed_tree(aligned, tmp_path / "faces.h5", model)
    net = create_model("inception_resnet_v1", embedding_dim=128).eval()
    other = tmp_path / "other.safetensors"
    save_checkpoint(other, net.state_dict(), ModelInfo(name="mine", architecture="inception_resnet_v1", embedding_dim=128))
    with pytest.raises(StoreError, match="'facenet-casia'.*not of 'mine'"):
        embed_tree(aligned, tmp_path / "faces.h5", fnet.load_model(other, device="cpu"))


def test_cli_photos_with_align(aligned_tree, tmp_path):
    photos, _ = aligned_tree
    (photos / "broken.jpg").write_text("nope")
    try:
        result = CliRunner().invoke(app, ["embed", str(photos), "-o", str(tmp_path / "f.h5"), "--align", "--half", "--device", "cpu"])
    finally:
        (photos / "broken.jpg").unlink()
    assert result.exit_code == 1 and "broken.jpg" in result.output  # one unreadable file, the rest embedded
    with Store(tmp_path / "f.h5") as store:
        assert len(store) == 14 and store.attrs["dtype"] == "float16"


def test_photos_without_a_face_are_remembered_until_retried(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(LFW / "Colin_Powell/Colin_Powell_0001.jpg", photos / "a.jpg")
    Image.new("RGB", (300, 200), (90, 140, 200)).save(photos / "b.jpg")  # sky: no face
    out = tmp_path / "f.h5"
    args = ["embed", str(photos), "-o", str(out), "--align", "--device", "cpu", "--json"]

    def run(*extra):
        result = CliRunner().invoke(app, args + list(extra))
        return result, json.loads(result.stdout[result.stdout.index("{") :])

    first, report = run()
    assert first.exit_code == 1 and (report["faces"], report["no_face"]) == (1, 1)
    with Store(out) as store:
        assert store.paths() == ["a.jpg"] and store.no_face() == ["b.jpg"]
    again, report = run()
    assert again.exit_code == 1 and (report["faces"], report["no_face"], report["no_face_before"]) == (0, 0, 1)
    assert "--retry-failed" in again.output
    shutil.copy(LFW / "Tony_Blair/Tony_Blair_0001.jpg", photos / "b.jpg")  # the photo replaced by one with a face
    retried, report = run("--retry-failed")
    assert retried.exit_code == 0 and report["faces"] == 1
    with Store(out) as store:
        assert store.paths() == ["a.jpg", "b.jpg"] and store.no_face() == []


def test_linked_folders_are_walked_once(tmp_path):
    from fnet.io.tree import find_images

    library = tmp_path / "library"
    (library / "2024").mkdir(parents=True)
    (library / "2024" / "a.jpg").write_bytes((DEEPFACE / "img1.jpg").read_bytes())
    (library / ".thumbnails").mkdir()
    (library / ".thumbnails" / "a.jpg").write_bytes(b"hidden")
    (library / "linked").symlink_to(DEEPFACE)  # a folder of photos kept elsewhere
    (library / "2024" / "loop").symlink_to(library)  # and a link back up, which must not loop
    found = [p.relative_to(library).as_posix() for p in find_images(library)]
    assert "2024/a.jpg" in found and "linked/img1.jpg" in found and not any(".thumbnails" in p for p in found)
    assert len(found) == 1 + len(list(DEEPFACE.glob("*.jpg")))  # each photo once, the loop cut
