"""People: the gallery, open-set recognition of every face in group photos, named clusters, crash safety."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import DEEPFACE, LFW
from typer.testing import CliRunner

from fnet.cli import app

runner = CliRunner()


def fnet_json(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout)


def read_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def person_tree(root, identities: dict[str, str], people: list[str] | None = None):
    """deepface-unit's single-person photos as ROOT/personNN/imgN.jpg (links)."""
    for image, person in identities.items():
        if people is None or person in people:
            (root / person).mkdir(parents=True, exist_ok=True)
            (root / person / image).symlink_to(DEEPFACE / image)
    return root


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory, deepface_identities):
    """A gallery of deepface-unit's 13 people (person00 is Angelina Jolie), plus Brad Pitt from a crop of couple.jpg."""
    from PIL import Image

    import fnet

    root = tmp_path_factory.mktemp("people")
    gallery = root / "people.db"
    code, report = fnet_json("people", "enrol", str(person_tree(root / "tree", deepface_identities)), "-g", str(gallery), "--device", "cpu")
    assert code == 0 and len(report["people"]) == 13, report
    couple = fnet.load_image(DEEPFACE / "couple.jpg")
    Image.fromarray(couple[:, couple.shape[1] // 2 + 100 :]).save(root / "pitt.jpg")  # his half of the photo
    code, report = fnet_json("people", "add", "Brad Pitt", str(root / "pitt.jpg"), "-g", str(gallery), "--device", "cpu")
    assert code == 0 and report["people"] == {"Brad Pitt": 1}
    return gallery


def test_every_face_of_group_photos_is_named_or_unknown(enrolled, tmp_path):
    code, out = fnet_json("recognize", str(DEEPFACE / "selfie-many-people.jpg"), "-g", str(enrolled), "--device", "cpu", "--draw", str(tmp_path / "selfie.jpg"))
    assert code == 0
    faces = out["photos"][0]["faces"]
    names = [f["name"] for f in faces]
    assert names.count("person00") == 1 and names.count("Brad Pitt") == 1  # both enrolled people found
    assert sum(name is None for name in names) == len(faces) - 2 >= 2  # everyone else refused, not misnamed
    assert [f["face"] for f in faces] == list(range(len(faces)))  # every face, left to right
    assert all(f["distance"] <= out["threshold"]["value"] for f in faces if f["name"])
    assert out["threshold"]["fpir"] == 0.01 and "14 people" in out["threshold"]["why"]  # which threshold, and why
    jolie = faces[names.index("person00")]
    assert jolie["runner_up"] and jolie["margin"] > 0.3  # a clear winner, not a coin toss
    assert (tmp_path / "selfie.jpg").stat().st_size > 10_000  # the drawn photo

    code, out = fnet_json("recognize", str(DEEPFACE / "couple.jpg"), "-g", str(enrolled), "--device", "cpu")
    assert [f["name"] for f in out["photos"][0]["faces"]] == ["person00", "Brad Pitt"]


def test_a_folder_is_recognised_photo_by_photo_and_bad_files_named(enrolled, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DEEPFACE / "img1.jpg", photos / "jolie.jpg")
    shutil.copy(LFW / "George_W_Bush" / "George_W_Bush_0001.jpg", photos / "stranger.jpg")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a photo")
    result = runner.invoke(app, ["recognize", str(photos), "-g", str(enrolled), "--device", "cpu", "--json", "--draw", str(tmp_path / "drawn")])
    assert result.exit_code == 1 and "broken.jpg" in result.stderr
    out = json.loads(result.stdout)
    named = {os.path.basename(p["photo"]): [f["name"] for f in p["faces"]] for p in out["photos"]}
    assert named == {"jolie.jpg": ["person00"], "stranger.jpg": [None]}
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == ["jolie.jpg", "stranger.jpg"]


def test_people_are_renamed_merged_split_and_removed(tmp_path, deepface_identities):
    gallery = str(tmp_path / "g.db")
    tree = person_tree(tmp_path / "tree", deepface_identities, ["person01", "person02"])
    assert fnet_json("people", "enrol", str(tree), "-g", gallery, "--device", "cpu")[0] == 0
    assert fnet_json("people", "enrol", str(tree), "-g", gallery, "--device", "cpu")[1]["skipped"] == 15  # a rerun adds nothing
    assert runner.invoke(app, ["people", "rename", "person01", "Ann", "-g", gallery]).exit_code == 0
    refused = runner.invoke(app, ["people", "rename", "Ann", "person02", "-g", gallery])
    assert refused.exit_code == 2 and "merge" in refused.output  # a name taken: merging is the way
    _, shown = fnet_json("people", "show", "Ann", "-g", gallery)
    first = shown["faces"][0]["id"]
    assert runner.invoke(app, ["people", "split", str(first), "--to", "Someone else", "-g", gallery]).exit_code == 0
    _, listed = fnet_json("people", "list", "-g", gallery)
    counts = {p["name"]: p["faces"] for p in listed["people"]}
    assert counts == {"Ann": 7, "person02": 7, "Someone else": 1}
    assert fnet_json("people", "merge", "Someone else", "Ann", "-g", gallery)[1]["faces"] == 1
    assert fnet_json("people", "remove", "person02", "-g", gallery)[1]["faces"] == 7
    _, listed = fnet_json("people", "list", "-g", gallery)
    assert [(p["name"], p["faces"]) for p in listed["people"]] == [("Ann", 8)]
    missing = runner.invoke(app, ["people", "show", "Nobody", "-g", gallery, "--json"])
    assert missing.exit_code == 2 and "no person named 'Nobody'" in json.loads(missing.stdout)["error"]


def test_a_second_writer_is_refused_naming_the_first(tmp_path, deepface_identities):
    from fnet.io.lock import exclusive

    gallery = tmp_path / "g.db"
    tree = person_tree(tmp_path / "tree", deepface_identities, ["person03"])
    assert fnet_json("people", "enrol", str(tree), "-g", str(gallery), "--device", "cpu")[0] == 0
    with exclusive(gallery):
        refused = runner.invoke(app, ["people", "rename", "person03", "Zoe", "-g", str(gallery)])
        assert refused.exit_code == 2 and f"process {os.getpid()}" in refused.output
        readable = runner.invoke(app, ["people", "list", "-g", str(gallery)])  # readers never wait
        assert readable.exit_code == 0 and "person03" in readable.output


def test_a_gallery_from_a_newer_fnet_or_another_model_is_refused(tmp_path):
    import sqlite3

    from fnet.errors import FnetError
    from fnet.people.gallery import Gallery, NewFace

    path = tmp_path / "g.db"
    with Gallery.open(path, "facenet-casia", 4, create=True) as gallery, gallery.writing():
        gallery.add_faces("Ann", [NewFace(np.array([1, 0, 0, 0], np.float32))])
    with pytest.raises(FnetError, match="holds 'facenet-casia' embeddings"), Gallery.open(path, "other-model"):
        pass
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(FnetError, match="newer fnet"), Gallery.open(path):
        pass


def test_a_killed_enrolment_leaves_the_gallery_before_or_after(tmp_path, deepface_identities):
    gallery = tmp_path / "g.db"
    tree = person_tree(tmp_path / "tree", deepface_identities)
    command = [sys.executable, "-m", "fnet", "people", "enrol", str(tree), "-g", str(gallery), "--device", "cpu"]
    seen = set()
    for delay in (1.0, 2.5, 4.0, 6.0):
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        seen.add(_faces_in(gallery))
        if gallery.exists():
            gallery.unlink()
    assert subprocess.run(command, capture_output=True, check=False).returncode == 0
    complete = _faces_in(gallery)
    assert complete > 55  # deepface-unit's 61 single-person photos, but for faces under the quality floor
    assert seen <= {0, complete}, seen  # nothing in between, whenever the kill came


def _faces_in(gallery) -> int:
    import sqlite3

    if not gallery.exists():
        return 0
    with sqlite3.connect(gallery) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        except sqlite3.OperationalError:  # killed while the schema was being made: rolled back
            return 0


def test_named_clusters_keep_their_names_through_later_runs(tmp_path, deepface_identities):
    by_person: dict[str, list[str]] = {}
    for image, person in sorted(deepface_identities.items()):
        by_person.setdefault(person, []).append(image)
    photos, out, gallery = tmp_path / "photos", tmp_path / "clusters", tmp_path / "g.db"
    photos.mkdir()
    for person in ("person01", "person02", "person03"):
        for image in by_person[person][:3]:
            shutil.copy(DEEPFACE / image, photos / image)
    assert runner.invoke(app, ["cluster", str(photos), "-o", str(out), "--device", "cpu"]).exit_code == 0
    rows = read_rows(out / "clusters.csv")
    number = {deepface_identities[r["path"]]: int(r["cluster"]) + 1 for r in rows}  # person-NNNN as the sheet shows it
    code, report = fnet_json("people", "name", str(out), f"{number['person01']}=Ann", f"{number['person02']}=Bob", "-g", str(gallery))
    assert code == 0 and report["people"] == {"Ann": 3, "Bob": 3}

    for image in by_person["person01"][3:5]:  # two more photos of Ann arrive
        shutil.copy(DEEPFACE / image, photos / image)
    assert runner.invoke(app, ["cluster", str(photos), "-o", str(out), "--device", "cpu"]).exit_code == 0
    rows = read_rows(out / "clusters.csv")
    names = {r["path"]: r["name"] for r in rows}
    assert [names[image] for image in by_person["person01"][:5]] == ["Ann"] * 5  # the newcomers carry the name
    assert {names[image] for image in by_person["person03"][:3]} == {""}  # unnamed stays unnamed
    assert "Ann <small>(person-" in (out / "report.html").read_text()  # the contact sheet shows names

    assert runner.invoke(app, ["cluster", str(photos), "-o", str(out), "--device", "cpu", "--recluster"]).exit_code == 0
    rows = read_rows(out / "clusters.csv")
    assert {r["name"] for r in rows if deepface_identities[r["path"]] == "person02"} == {"Bob"}  # names follow the faces


def test_small_background_faces_are_not_enrolled(tmp_path):
    from PIL import Image

    small = tmp_path / "small.jpg"
    Image.open(DEEPFACE / "img1.jpg").reduce(16).save(small)  # the 557 px face shrinks to 35 px
    code, report = fnet_json("people", "add", "Tiny", str(small), "-g", str(tmp_path / "g.db"), "--device", "cpu")
    assert code == 0 and report["below_quality"] == 1 and report["faces"] == 0


def test_export_and_import_carry_every_face_without_pickle(enrolled, tmp_path):
    from fnet.io.store import Store

    assert runner.invoke(app, ["people", "export", str(tmp_path / "out"), "-g", str(enrolled)]).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["faces.h5", "people.json"]
    with Store(tmp_path / "out" / "faces.h5") as store:  # a store any fnet command reads
        assert len(store) == len(json.loads((tmp_path / "out" / "people.json").read_text())["faces"])
    copy = str(tmp_path / "copy.db")
    first = fnet_json("people", "import", str(tmp_path / "out"), "-g", copy)[1]["added"]
    assert first["Brad Pitt"] == 1 and len(first) == 14
    assert fnet_json("people", "import", str(tmp_path / "out"), "-g", copy)[1]["added"] == {}  # nothing twice
    same = [fnet_json("recognize", str(DEEPFACE / "couple.jpg"), "-g", g, "--device", "cpu")[1]["photos"][0]["faces"] for g in (str(enrolled), copy)]
    assert [f["name"] for f in same[0]] == [f["name"] for f in same[1]] and same[0][0]["distance"] == pytest.approx(same[1][0]["distance"])


def test_the_threshold_follows_the_gallery_size_and_says_why():
    from fnet.people.identify import Identifier, curve_threshold

    assert curve_threshold("facenet-casia", 3) == 0.95 and curve_threshold("facenet-casia", 100) == pytest.approx(0.80)
    assert 0.80 < curve_threshold("facenet-casia", 30) < 0.95  # straight in log N between the measured sizes
    assert curve_threshold("facenet-casia", 10_000) == pytest.approx(0.50)  # and beyond them
    assert curve_threshold("my-model", 10) is None

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    names = [f"p{i // 2}" for i in range(400)]  # 200 people, two faces each
    small = Identifier(x[:20], names[:20], np.arange(20))
    assert small.threshold("facenet-casia", 1.24).why.startswith("0.950: measured on LFW")  # 10 people: the curve
    unknown = small.threshold("my-model", 1.1)
    assert unknown.value == 1.1 and unknown.fpir is None and "unknown" in unknown.why  # not calibrated, and it says so
    large = Identifier(x, names, np.arange(400))
    estimated = large.threshold("my-model", 1.1)
    assert estimated.fpir == 0.01 and "estimated on this gallery's 200 people" in estimated.why
    capped = large.threshold("facenet-casia", 1.24)
    assert capped.value == min(estimated.value, curve_threshold("facenet-casia", 200))

    found = large.identify(x[:1] * 0.99 + x[2:3] * 0.01, threshold=estimated.value)[0]
    assert found.name == "p0" and found.nearest == "p0" and found.runner_up not in (None, "p0") and found.margin > 0
