"""The Embedder on real faces: geometry of the embeddings, batching, TTA, input validation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LFW, SHARED_DATA, lfw_face

from fnet.evaluation.metrics import best_threshold, squared_distances
from fnet.io.pairs import read_lfw_pairs


def pairwise(emb: np.ndarray) -> np.ndarray:
    return ((emb[:, None, :] - emb[None, :, :]) ** 2).sum(-1)


def test_embeddings_are_unit_norm_512d(model, people_crops):
    crops, _ = people_crops
    emb = model.embed(crops[:4])
    assert emb.shape == (4, 512) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_same_person_nearer_than_different_people(model, people_crops):
    """Ten look-alike politicians (hard: many older men in suits), three photos each."""
    crops, labels = people_crops
    d = pairwise(model.embed(crops))
    upper = np.triu_indices(len(labels), 1)
    d, same = d[upper], (labels[:, None] == labels[None, :])[upper]
    # Every same-person pair against every different-person pair: nearly all ordered right.
    ordered = (d[same][:, None] < d[~same][None, :]).mean()
    assert ordered > 0.97, f"only {ordered:.3f} of (same, different) pairs are ordered correctly"
    assert d[same].mean() + 0.5 < d[~same].mean()
    # One distance threshold separates nearly all of them.
    threshold = best_threshold(d, same)
    assert np.mean((d <= threshold) == same) >= 0.95


@pytest.mark.slow
def test_model_threshold_decides_real_lfw_pairs(model):
    """The calibrated threshold on 200 official LFW pairs (fold 1), centre crops."""
    pairs_file = SHARED_DATA / "lfw" / "pairs.txt"
    if not pairs_file.is_file():
        pytest.skip("LFW pairs.txt not in shared data")
    pairs = [p for p in read_lfw_pairs(pairs_file, LFW) if p.fold == 1][::3]

    def crop(path):
        return lfw_face(path.parent.name, int(path.stem.rsplit("_", 1)[1]))

    d = squared_distances(model.embed([crop(p.a) for p in pairs]), model.embed([crop(p.b) for p in pairs]))
    same = np.array([p.same for p in pairs])
    assert len(pairs) == 200 and same.sum() == 100
    assert np.mean((d <= model.info.threshold) == same) >= 0.93


def test_nearest_neighbour_is_same_person(model, people_crops):
    crops, labels = people_crops
    d = pairwise(model.embed(crops))
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).mean() >= 0.9


def test_batch_size_does_not_change_results(model, people_crops):
    crops, _ = people_crops
    np.testing.assert_allclose(model.embed(crops[:7], batch_size=3), model.embed(crops[:7], batch_size=32), atol=1e-5)


def test_a_cpu_embeds_sixteen_faces_a_pass_unless_told(model, people_crops):
    """Larger passes gain a CPU little and cost it memory (fnet.core.embedder.default_batch_size, docs/speed.md)."""
    crops, _ = people_crops
    assert model.device.type == "cpu"
    passes: list[int] = []
    model.embed(crops[np.arange(40) % len(crops)], on_batch=passes.append)
    assert passes == [16, 16, 8]
    passes.clear()
    model.embed(crops[:10], batch_size=4, on_batch=passes.append)
    assert passes == [4, 4, 2]


def test_flip_augmentation_is_mirror_symmetric(model, people_crops):
    crops, _ = people_crops
    with_tta = model.embed(crops[:3], flip=True)
    mirrored = model.embed(np.ascontiguousarray(crops[:3, :, ::-1]), flip=True)
    np.testing.assert_allclose(with_tta, mirrored, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(with_tta, axis=1), 1.0, atol=1e-5)
    # and it differs from the plain embedding (it really embedded the mirror image)
    assert squared_distances(with_tta, model.embed(crops[:3])).min() > 1e-4


def test_other_sizes_are_resized(model, people_crops):
    crops, _ = people_crops
    from PIL import Image

    big = [np.asarray(Image.fromarray(c).resize((250, 250), Image.BILINEAR)) for c in crops[:2]]
    d = squared_distances(model.embed(big), model.embed(crops[:2]))
    assert d.max() < 0.05  # same face, resampled


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((2, 160, 160), np.uint8), "H x W x 3"),
        (np.zeros((1, 160, 160, 3), np.float32), "uint8"),
        (np.zeros((1, 160, 160, 4), np.uint8), "H x W x 3"),
    ],
)
def test_bad_crops_are_refused_clearly(model, bad, message):
    with pytest.raises(ValueError, match=message):
        model.embed(bad)


def test_empty_input_gives_empty_output(model):
    assert model.embed(np.zeros((0, 160, 160, 3), np.uint8)).shape == (0, 512)
