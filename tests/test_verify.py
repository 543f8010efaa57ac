"""`fnet verify` on real labelled pairs, and its exit codes."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import DEEPFACE
from PIL import Image
from typer.testing import CliRunner

from fnet.cli import app
from fnet.pipeline.verify import VerifyError, choose_face, verify

runner = CliRunner()


def labelled_pairs() -> list[tuple[str, str, bool]]:
    with open(DEEPFACE / "master.csv", newline="") as handle:
        return [(r["file_x"], r["file_y"], r["Decision"].strip() == "Yes") for r in csv.DictReader(handle)]


@pytest.mark.slow
def test_verify_is_right_on_every_labelled_pair(model, aligner):
    """deepface-unit's 299 labelled pairs (38 same person, 261 different), full pipeline."""
    pairs = labelled_pairs()
    files = sorted({a for a, _, _ in pairs} | {b for _, b, _ in pairs})
    faces = {f: choose_face(DEEPFACE / f, aligner) for f in files}
    verdicts = [(verify(faces[a], faces[b], model), same) for a, b, same in pairs]
    assert sum(same for _, same in verdicts) >= 20 and sum(not same for _, same in verdicts) >= 20
    wrong = [(v.a.path, v.b.path, round(v.distance, 3)) for v, same in verdicts if v.same != same]
    assert not wrong
    same_d = [v.distance for v, same in verdicts if same]
    diff_d = [v.distance for v, same in verdicts if not same]
    assert max(same_d) < min(diff_d)  # a clean margin on this set


def test_group_photo_faces_are_numbered_left_to_right(aligner):
    first = choose_face(DEEPFACE / "selfie-many-people.jpg", aligner, number=0)
    second = choose_face(DEEPFACE / "selfie-many-people.jpg", aligner, number=1)
    assert first.faces_found == 4 and first.face.box[0] < second.face.box[0]
    with pytest.raises(VerifyError, match="no face 99"):
        choose_face(DEEPFACE / "selfie-many-people.jpg", aligner, number=99)


def test_cli_same_different_and_errors(tmp_path):
    same = runner.invoke(app, ["verify", str(DEEPFACE / "img1.jpg"), str(DEEPFACE / "img2.jpg"), "--device", "cpu", "--json"])
    assert same.exit_code == 0, same.output
    report = json.loads(same.stdout)
    assert report["same_person"] and report["distance"] <= report["threshold"]

    different = runner.invoke(app, ["verify", str(DEEPFACE / "img1.jpg"), str(DEEPFACE / "img3.jpg"), "--device", "cpu"])
    assert different.exit_code == 1 and "Different people" in different.stdout

    sky = tmp_path / "sky.png"
    Image.new("RGB", (300, 200), (90, 140, 200)).save(sky)
    no_face = runner.invoke(app, ["verify", str(sky), str(DEEPFACE / "img2.jpg"), "--device", "cpu"])
    assert no_face.exit_code == 2 and "sky.png: no face found" in no_face.output

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    unreadable = runner.invoke(app, ["verify", str(broken), str(DEEPFACE / "img2.jpg"), "--device", "cpu"])
    assert unreadable.exit_code == 2 and "broken.jpg" in unreadable.output


def test_cli_on_aligned_crops(tmp_path, aligner):
    for name in ("img1.jpg", "img2.jpg"):
        Image.fromarray(choose_face(DEEPFACE / name, aligner).crop).save(tmp_path / f"{name}.png")
    result = runner.invoke(app, ["verify", str(tmp_path / "img1.jpg.png"), str(tmp_path / "img2.jpg.png"), "--aligned", "--json", "--device", "cpu"])
    assert result.exit_code == 0 and json.loads(result.stdout)["same_person"]


def test_a_missing_photo_is_refused_before_torch_loads(tmp_path):
    """The check comes first: with torch made unimportable, the answer is still the missing file (exit 2)."""
    import subprocess
    import sys

    code = "import sys; sys.modules['torch'] = None\nfrom fnet.cli import main\nmain()"
    result = subprocess.run(
        [sys.executable, "-c", code, "verify", str(tmp_path / "nope.jpg"), str(tmp_path / "also.jpg")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2 and "nope.jpg: no such file" in result.stderr, result.stderr[-500:]
