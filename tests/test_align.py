"""The align stage over photo trees: outputs, manifest, bad files, resuming after a kill."""

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
import torch
from conftest import LFW, SHARED_DATA, iou
from PIL import Image
from typer.testing import CliRunner

import fnet
from fnet.cli import app
from fnet.io.manifest import MANIFEST, Manifest
from fnet.pipeline.align import align_tree
from fnet.pipeline.aligner import Aligner, AlignSettings

PEOPLE = {"Colin_Powell": 3, "Tony_Blair": 3, "Serena_Williams": 2}


@pytest.fixture()
def photo_tree(tmp_path):
    """Real LFW photos in identity folders, one group photo, and a folder of bad files."""
    root = tmp_path / "photos"
    for person, count in PEOPLE.items():
        (root / person).mkdir(parents=True)
        for i in range(1, count + 1):
            shutil.copy(LFW / person / f"{person}_{i:04d}.jpg", root / person)
    shutil.copy(SHARED_DATA / "deepface-unit/selfie-many-people.jpg", root)
    bad = root / "bad"
    bad.mkdir()
    (bad / "notes.jpg").write_text("not an image")
    (bad / "truncated.jpg").write_bytes((LFW / "Colin_Powell/Colin_Powell_0004.jpg").read_bytes()[:2000])
    (bad / "empty.png").write_bytes(b"")
    Image.new("RGB", (300, 200), (90, 140, 200)).save(bad / "sky.png")  # a real image without a face
    (root / ".hidden.jpg").write_text("ignored")
    return root


def by_source(manifest_path) -> dict:
    records = {}
    for line in manifest_path.read_text().splitlines():
        record = json.loads(line)
        records.setdefault(record["source"], []).append(record)
    return records


def test_tree_is_aligned_and_every_photo_accounted_for(photo_tree, tmp_path, detector):
    out = tmp_path / "aligned"
    report = align_tree(photo_tree, out, Aligner(detector))
    records = by_source(out / MANIFEST)
    assert len(records) == 13  # 8 portraits + group photo + 4 bad files; hidden file skipped
    assert (report.images, report.faces, report.no_face, report.errors) == (13, 9, 1, 3)
    for person, count in PEOPLE.items():
        for i in range(1, count + 1):
            (record,) = records[f"{person}/{person}_{i:04d}.jpg"]
            assert record["status"] == "ok" and record["output"] == f"{person}/{person}_{i:04d}.png"
            crop = np.asarray(Image.open(out / record["output"]))
            assert crop.shape == (160, 160, 3)
            assert len(record["box"]) == 4 and set(record["landmarks"]) >= {"left_eye", "nose"} and record["score"] > 0.9
    assert records["bad/notes.jpg"][0] == {"source": "bad/notes.jpg", "status": "error", "reason": "not an image, or a format Pillow cannot read"}
    assert "truncated" in records["bad/truncated.jpg"][0]["reason"]
    assert records["bad/empty.png"][0]["reason"] == "empty file"
    assert records["bad/sky.png"][0]["status"] == "no_face"


def test_all_faces_mode_writes_one_crop_per_face(photo_tree, tmp_path, detector):
    out = tmp_path / "aligned"
    align_tree(photo_tree, out, Aligner(detector, AlignSettings(pick="all")))
    group = by_source(out / MANIFEST)["selfie-many-people.jpg"]
    assert len(group) == 4 and len({r["output"] for r in group}) == len(group)
    assert all((out / r["output"]).is_file() for r in group)


def test_interrupted_run_resumes_to_the_same_result(photo_tree, tmp_path, detector):
    aligner = Aligner(detector)
    straight = tmp_path / "straight"
    align_tree(photo_tree, straight, aligner)

    resumed = tmp_path / "resumed"
    seen = []

    def crash_after_five(record):
        seen.append(record)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        align_tree(photo_tree, resumed, aligner, batch_size=2, on_image=crash_after_five)
    # Lines are written a batch at a time, after the batch's crops: the third batch (photos 5
    # and 6) was complete when the fifth photo was reported.
    assert len((resumed / MANIFEST).read_text().splitlines()) == 6
    with open(resumed / MANIFEST, "a") as handle:
        handle.write('{"source": "half a line wri')  # as if killed mid-write
    report = align_tree(photo_tree, resumed, aligner)
    assert report.skipped == 6 and report.images == 7

    assert sorted((resumed / MANIFEST).read_text().splitlines()) == sorted((straight / MANIFEST).read_text().splitlines())
    for png in straight.rglob("*.png"):
        assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(resumed / png.relative_to(straight))))


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes_to_the_same_result(tmp_path, detector):
    """A real kill -9 from outside, mid-run: nothing written is lost or half-written."""
    photos = tmp_path / "photos" / "George_W_Bush"
    photos.mkdir(parents=True)
    for i in range(1, 161):
        shutil.copy(LFW / "George_W_Bush" / f"George_W_Bush_{i:04d}.jpg", photos)
    straight = tmp_path / "straight"
    align_tree(photos.parent, straight, Aligner(detector))

    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "fnet", "align", str(photos.parent), "-o", str(killed), "--device", "cpu", "--batch-size", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = killed / MANIFEST
    while process.poll() is None and (not manifest.exists() or len(manifest.read_bytes().splitlines()) < 20):
        time.sleep(0.005)
    if process.poll() is not None:
        pytest.skip("the run finished before it could be killed (a machine much faster than expected)")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(manifest.read_bytes().splitlines())
    assert 20 <= done < 160

    result = subprocess.run(command[:-2], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(manifest.read_text().splitlines()) == sorted((straight / MANIFEST).read_text().splitlines())
    files = lambda root: sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files(killed) == files(straight)  # no temporary file left behind
    for png in straight.rglob("*.png"):
        assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(killed / png.relative_to(straight))))


def test_manifest_drops_a_partial_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"source": "a", "status": "ok"}\n{"source": "b", "sta')
    with Manifest(path) as manifest:
        assert manifest.done() == {"a"}
        manifest.append({"source": "b", "status": "ok"})
    assert [json.loads(line)["source"] for line in path.read_text().splitlines()] == ["a", "b"]


def test_cli_exit_codes_and_retry(photo_tree, tmp_path):
    runner = CliRunner()
    out = tmp_path / "aligned"
    first = runner.invoke(app, ["align", str(photo_tree), "-o", str(out), "--device", "cpu", "--json"])
    assert first.exit_code == 1  # some photos gave no crop
    summary = json.loads(first.stdout[first.stdout.index("{") :])
    assert summary["faces"] == 9 and summary["errors"] == 3
    again = runner.invoke(app, ["align", str(photo_tree), "-o", str(out), "--device", "cpu", "--json"])
    assert again.exit_code == 1 and json.loads(again.stdout[again.stdout.index("{") :])["failed_before"] == 4
    shutil.rmtree(photo_tree / "bad")
    retried = runner.invoke(app, ["align", str(photo_tree), "-o", str(out), "--device", "cpu", "--retry-failed"])
    assert retried.exit_code == 0, retried.output  # the failed photos are gone: nothing failed now
    missing = runner.invoke(app, ["align", str(tmp_path / "nowhere"), "-o", str(out)])
    assert missing.exit_code == 2 and "not a folder" in missing.output


def test_tight_face_crops_fall_back_to_the_whole_photo(tmp_path):
    """Extended Yale B style photos (grayscale, brows to mouth, 168 x 192): MTCNN finds nothing; --fallback whole uses them."""
    photos = tmp_path / "photos"
    for person in ("Tony_Blair", "Colin_Powell", "George_W_Bush"):
        (photos / person).mkdir(parents=True)
        image = fnet.load_image(LFW / person / f"{person}_0001.jpg")[100:172, 95:158]
        Image.fromarray(image).convert("L").resize((168, 192)).save(photos / person / "face.png")
    runner = CliRunner()
    plain = runner.invoke(app, ["align", str(photos), "-o", str(tmp_path / "plain"), "--device", "cpu", "--json"])
    assert plain.exit_code == 1 and json.loads(plain.stdout)["no_face"] == 3  # nothing detected in any

    out = tmp_path / "fallback"
    result = runner.invoke(app, ["align", str(photos), "-o", str(out), "--device", "cpu", "--fallback", "whole", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["fallbacks"] == 3 and json.loads(result.stdout)["faces"] == 3
    records = [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]
    assert all(r["status"] == "ok" and r["fallback"] and r["box"] == [0, 12, 168, 180] for r in records)
    crop = np.asarray(Image.open(out / "Tony_Blair" / "face.png"))
    assert crop.shape == (160, 160, 3)
    whole = np.asarray(Image.open(photos / "Tony_Blair" / "face.png").convert("RGB"))[12:180]
    expected = np.asarray(Image.fromarray(whole).resize((160, 160), Image.BILINEAR))
    assert np.array_equal(crop, expected)

    store = tmp_path / "faces.h5"
    embedded = runner.invoke(app, ["embed", str(photos), "-o", str(store), "--align", "--fallback", "whole", "--device", "cpu", "--json"])
    assert embedded.exit_code == 0 and json.loads(embedded.stdout)["fallbacks"] == 3
    assert runner.invoke(app, ["embed", str(photos), "-o", str(store), "--fallback", "whole"]).exit_code == 2  # needs --align


def test_large_jpegs_are_cut_from_a_reduced_decode_unless_a_face_is_too_small_there(tmp_path, detector, model, monkeypatch):
    """A 12 MP JPEG is decoded at half size for detection (fnet.io.images.Reduced); a face at least a crop
    across there is cut from it, a smaller one from the whole photo, decoded again. Faces come back in the
    whole photo's pixels either way, matching what decoding it whole finds."""
    from fnet.crops import align_face
    from fnet.io.images import Reduced, load_image, load_reduced

    aligner = Aligner(detector, AlignSettings())
    assert aligner.decode_size == 1024
    lfw = Image.open(LFW / "Colin_Powell/Colin_Powell_0001.jpg")
    close = lfw.resize((3024, 3024)).crop((0, -504, 3024, 3528)).rotate(90, expand=True)  # 4032 x 3024, face ~1,300 px
    exif = close.getexif()
    exif[0x0112] = 8  # stored sideways, shown upright
    far = Image.new("RGB", (4096, 3072), (120, 120, 120))
    far.paste(lfw, (1900, 1400))  # face ~110 px: 55 px in the half-size decode, under the 160 px crop
    photos = {"close": (close, {"exif": exif.tobytes()}), "far": (far, {})}
    wholes = []
    monkeypatch.setattr(Reduced, "whole", lambda self: wholes.append(self.path.stem) or load_image(self.path))
    for name, (image, options) in photos.items():
        image.save(tmp_path / f"{name}.jpg", quality=92, **options)
        path = tmp_path / f"{name}.jpg"
        whole, reduced = load_image(path), load_reduced(path, 1024)
        assert isinstance(reduced, Reduced) and reduced.shape == whole.shape
        [[expected]], [[got]] = aligner.align([whole]), aligner.align([reduced])
        box_overlap = iou(expected.face.box, got.face.box)
        assert box_overlap > 0.9, (name, expected.face.box, got.face.box)
        assert np.abs(expected.face.landmarks - got.face.landmarks).max() < 0.05 * expected.face.width
        embeddings = model.embed(np.stack([expected.crop, got.crop]))
        assert ((embeddings[0] - embeddings[1]) ** 2).sum() < 0.1, name
        if name == "far":  # cut from the whole photo, where its face is: exactly that crop
            assert np.array_equal(got.crop, align_face(whole, got.face, "crop", 160, 32))
    assert wholes == ["far"]



@pytest.mark.slow
def test_real_large_jpegs_give_the_same_faces_decoded_reduced(detector, model):
    """deepface-unit's JPEGs of 2,048 px or more (3-14 MP), every face: decoded at a fraction of their size
    they give the same faces as decoded whole (bench/reduced_decode.py has the speed). Boxes move by a
    few pixels, as with any change to the copy MTCNN searches (tests/test_detector.py)."""
    from fnet.io.images import Reduced, load_image, load_reduced

    aligner = Aligner(detector, AlignSettings(pick="all"))
    large = [p for p in sorted((SHARED_DATA / "deepface-unit").glob("*.jpg")) if isinstance(load_reduced(p, 1024), Reduced)]
    assert len(large) == 15
    overlaps, distances, one_way = [], [], 0
    for path in large:
        [whole], [reduced] = aligner.align([load_image(path)]), aligner.align([load_reduced(path, 1024)])
        pairs = [(a, b) for a in whole for b in reduced if iou(a.face.box, b.face.box) >= 0.5]
        one_way += len(whole) + len(reduced) - 2 * len(pairs)
        overlaps += [iou(a.face.box, b.face.box) for a, b in pairs]
        for a, b in pairs:
            embeddings = model.embed(np.stack([a.crop, b.crop]))
            distances.append(float(((embeddings[0] - embeddings[1]) ** 2).sum()))
    assert len(overlaps) == 18 and one_way <= 1  # measured: 18 faces both ways, one borderline face found reduced only
    # measured: IoU min 0.71 (img54.jpg: a 120 px face at the photo's edge, 50 px where it is searched), median 0.98
    assert min(overlaps) >= 0.65 and np.median(overlaps) >= 0.93, (min(overlaps), np.median(overlaps))
    assert max(distances) < 0.3 and np.median(distances) < 0.05, (max(distances), np.median(distances))  # max 0.22 measured


class _OnAnotherDevice:
    """The real detector, saying it computes elsewhere than the CPU (as on a GPU)."""

    def __init__(self, detector):
        self.detector, self.detect_size = detector, detector.detect_size
        self.device = torch.device("meta")

    def detect(self, images):
        return self.detector.detect(images)


def test_crops_are_written_in_turn_on_a_cpu_and_on_a_thread_beside_a_gpu(photo_tree, tmp_path, detector, monkeypatch):
    """Both ways give the same crops and manifest; only a detector off the CPU gets a writer thread."""
    import threading

    import fnet.pipeline.align as stage

    writers = {}
    encode = stage.encode_png

    def encode_png(array):
        writers.setdefault(threading.current_thread().name.split("_")[0], 0)
        writers[threading.current_thread().name.split("_")[0]] += 1
        return encode(array)

    monkeypatch.setattr(stage, "encode_png", encode_png)
    results = {}
    for name, aligner in (("cpu", Aligner(detector)), ("gpu", Aligner(_OnAnotherDevice(detector)))):
        assert aligner.on_cpu == (name == "cpu")
        writers.clear()
        out = tmp_path / name
        align_tree(photo_tree, out, aligner)
        assert writers == ({"MainThread": 9} if name == "cpu" else {"fnet-crops": 9})
        results[name] = (sorted(by_source(out / MANIFEST).items()),
                         {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.png")})
    assert results["cpu"] == results["gpu"]
