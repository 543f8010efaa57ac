"""Triplet loss, miners, batches and the training loop: hand computations, brute force,
pytorch-metric-learning as an oracle, resume and DDP agreement, on real LFW faces."""

from __future__ import annotations

import itertools
import json
import os

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from fnet.training.losses import triplet_loss
from fnet.training.miners import all_triplets, hard_triplets, mine, pairwise_squared_distances, semihard_triplets
from fnet.training.sampler import IdentityBalancedSampler

MARGIN = 0.2


def batch(seed: int = 0, people: int = 4, per_person: int = 4, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit embeddings of a few people, close enough that semi-hard negatives exist."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(people, dim, generator=g)
    labels = torch.arange(people).repeat_interleave(per_person)
    emb = centres[labels] + 0.9 * torch.randn(len(labels), dim, generator=g)
    return F.normalize(emb, dim=1), labels


def test_triplet_loss_by_hand():
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]])
    # (0,1,2): d_ap = 2, d_an = 0.4^2 + 0.8^2 = 0.8 -> 2 - 0.8 + 0.2 = 1.4
    # (0,2,3): d_ap = 0.8, d_an = 4 -> max(0, 0.8 - 4 + 0.2) = 0
    loss = triplet_loss(emb, torch.tensor([[0, 1, 2], [0, 2, 3]]), MARGIN)
    assert loss.item() == pytest.approx((1.4 + 0.0) / 2)
    assert triplet_loss(emb, torch.zeros((0, 3), dtype=torch.long), MARGIN).item() == 0.0
    d = pairwise_squared_distances(emb)
    assert d[0, 1].item() == pytest.approx(2.0) and d[0, 2].item() == pytest.approx(0.8)


def brute_semihard(d: np.ndarray, labels: np.ndarray) -> dict[tuple[int, int], set[int]]:
    """For every anchor-positive pair, its semi-hard negatives, by loops."""
    out = {}
    for a, p in itertools.permutations(range(len(labels)), 2):
        if labels[a] == labels[p]:
            out[(a, p)] = {n for n in range(len(labels)) if labels[n] != labels[a] and d[a, p] < d[a, n] < d[a, p] + MARGIN}
    return out


@pytest.mark.parametrize("seed", range(5))
def test_semihard_miner_matches_brute_force(seed):
    emb, labels = batch(seed)
    d = pairwise_squared_distances(emb)
    dn, ln = d.numpy(), labels.numpy()
    expected = brute_semihard(dn, ln)
    hardest, found = semihard_triplets(d, labels, MARGIN, pick="hardest", fallback="drop")
    assert {(a, p) for a, p, _ in hardest.tolist()} == {k for k, v in expected.items() if v}
    for a, p, n in hardest.tolist():
        assert n == min(expected[(a, p)], key=lambda m: dn[a, m])
    randomly, _ = semihard_triplets(d, labels, MARGIN, pick="random", fallback="hardest", generator=torch.Generator().manual_seed(1))
    assert len(randomly) == len(expected)  # every pair gets a triplet: its semi-hard one, or the fallback
    for a, p, n in randomly.tolist():
        if expected[(a, p)]:
            assert n in expected[(a, p)]
        else:  # fallback: the nearest negative beyond the positive (or the nearest of all)
            negatives = [m for m in range(len(ln)) if ln[m] != ln[a]]
            beyond = [m for m in negatives if dn[a, m] > dn[a, p]]
            assert n == min(beyond or negatives, key=lambda m: dn[a, m])
    assert found.sum().item() == sum(1 for v in expected.values() if v)


def test_hard_and_all_miners_match_brute_force():
    emb, labels = batch(3)
    d = pairwise_squared_distances(emb)
    dn, ln = d.numpy(), labels.numpy()
    for a, p, n in hard_triplets(d, labels).tolist():
        assert p == max((m for m in range(len(ln)) if ln[m] == ln[a] and m != a), key=lambda m: dn[a, m])
        assert n == min((m for m in range(len(ln)) if ln[m] != ln[a]), key=lambda m: dn[a, m])
    expected = {
        (a, p, n) for a, p, n in itertools.product(range(len(ln)), repeat=3)
        if a != p and ln[a] == ln[p] and ln[n] != ln[a] and dn[a, p] - dn[a, n] + MARGIN > 0
    }
    assert {tuple(t) for t in all_triplets(d, labels, MARGIN).tolist()} == expected


def test_miner_and_loss_agree_with_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning")
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.losses import TripletMarginLoss
    from pytorch_metric_learning.miners import TripletMarginMiner
    from pytorch_metric_learning.reducers import MeanReducer

    del pml
    emb, labels = batch(7, people=6, per_person=5, dim=16)
    squared = LpDistance(power=2)
    a, p, n = TripletMarginMiner(margin=MARGIN, type_of_triplets="semihard", distance=squared)(emb, labels)
    oracle = set(zip(a.tolist(), p.tolist(), n.tolist()))
    ours, _ = semihard_triplets(pairwise_squared_distances(emb), labels, MARGIN, fallback="drop", generator=torch.Generator().manual_seed(0))
    assert {(x, y) for x, y, _ in oracle} == {(x, y) for x, y, _ in ours.tolist()}  # the same pairs have semi-hard negatives
    assert {tuple(t) for t in ours.tolist()} <= oracle  # and each chosen one is among pml's
    reference = TripletMarginLoss(margin=MARGIN, distance=squared, reducer=MeanReducer(), smooth_loss=False)
    indices = tuple(ours[:, i] for i in range(3))
    assert triplet_loss(emb, ours, MARGIN).item() == pytest.approx(reference(emb, labels, indices).item(), rel=1e-5)


def test_mining_statistics():
    emb, labels = batch(1)
    triplets, stats = mine(emb, labels, "semihard", MARGIN, generator=torch.Generator().manual_seed(0))
    assert stats.pairs == 4 * 4 * 3 and stats.triplets == len(triplets) == stats.pairs
    assert 0 < stats.semihard_share < 1 and 0 < stats.active_share <= 1 and stats.mean_an > 0
    curriculum_late, late = mine(emb, labels, "curriculum", MARGIN, progress=0.9)
    assert len(curriculum_late) == len(labels) and late.semihard_share != late.semihard_share  # batch-hard: no semihard share


def test_identity_balanced_batches():
    labels = ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["solo"] + ["d"] * 6
    sampler = IdentityBalancedSampler(labels, identities=3, per_identity=3, extra=3, seed=4)
    rows = sampler.batch(0)
    assert len(rows) == 3 * 3 + 3  # always P x K + extra: identities short of K are topped up with extras
    chosen = list(dict.fromkeys(labels[r] for r in rows))[:3]
    assert "solo" not in chosen  # one-face identities only come as extras
    head = [labels[r] for r in rows[: sum(min(3, labels.count(g)) for g in chosen)]]
    assert all(head.count(g) == min(3, labels.count(g)) for g in chosen)
    assert sampler.batch(0) == rows and sampler.batch(1) != rows  # deterministic per batch number
    halves = [IdentityBalancedSampler(labels, 3, 3, 3, seed=4, rank=r, world=2).local(rows) for r in (0, 1)]
    assert halves[0] + halves[1] == rows and len(halves[0]) == len(halves[1])
    with pytest.raises(ValueError, match="evenly"):
        IdentityBalancedSampler(labels, 3, 3, 2, world=2)


# --- the loop, on real faces --------------------------------------------------------------------

PEOPLE = ["George_W_Bush", "Colin_Powell", "Tony_Blair", "Donald_Rumsfeld", "Gerhard_Schroeder", "Ariel_Sharon"]


@pytest.fixture(scope="module")
def face_tree(tmp_path_factory):
    """6 LFW people x 6 photos as 160 px centre crops in identity folders (an aligned tree)."""
    from conftest import lfw_face
    from PIL import Image

    root = tmp_path_factory.mktemp("faces")
    for person in PEOPLE:
        (root / person).mkdir()
        for number in range(1, 7):
            Image.fromarray(lfw_face(person, number, crop=150)).resize((160, 160)).save(root / person / f"{number}.png")
    return root


def config(face_tree, out, **changes):
    from fnet.training.loop import TrainConfig

    base = {"data": str(face_tree), "output": str(out), "identities": 3, "per_identity": 3, "steps": 4, "workers": 0,
                "validate_every": 0, "checkpoint_every": 2, "held_out": 0.34, "lr": 1e-3, "seed": 3}
    return TrainConfig(**{**base, **changes})


def weights(path):
    from fnet.core.checkpoint import load_checkpoint

    return load_checkpoint(path)[0]


def test_resume_continues_exactly(face_tree, tmp_path):
    from fnet.training.loop import Trainer

    straight = Trainer(config(face_tree, tmp_path / "straight")).run()

    class Stop(Exception):
        pass

    def stop_after_checkpoint(record):
        if record.get("step") == 3:  # step 2's checkpoint is written; die during step 3
            raise Stop

    with pytest.raises(Stop):
        Trainer(config(face_tree, tmp_path / "resumed"), on_record=stop_after_checkpoint).run()
    trainer = Trainer(config(face_tree, tmp_path / "resumed"))
    assert trainer.start == 2
    resumed = trainer.run()
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [int(line.split('"step": ')[1].split(",")[0]) for line in lines] == [1, 2, 3, 4]


# SGD, not Adam: Adam divides by the gradient's size, so summation-order noise in near-zero
# gradients becomes full-size steps; SGD shows the gradients themselves agree.
DDP_SETTINGS = {"steps": 2, "identities": 4, "gather": True, "freeze_bn": True, "augment": False, "device": "cpu", "optimizer": "sgd", "lr": 0.05}


def _ddp_worker(rank: int, face_tree, out, port: int):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank))
    import torch.distributed as dist

    from fnet.training.loop import Trainer

    torch.set_num_threads(1)
    try:
        assert Trainer(config(face_tree, out, **DDP_SETTINGS)).run().is_file()  # on every rank, once it returns
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_processes_agree_with_one(face_tree, tmp_path):
    import socket

    import torch.multiprocessing as mp

    from fnet.core.models import create_model
    from fnet.training.loop import Trainer

    single = Trainer(config(face_tree, tmp_path / "one", **DDP_SETTINGS)).run()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(face_tree, tmp_path / "two", port), nprocs=2, join=True)
    a, b = weights(single), weights(tmp_path / "two" / "model.safetensors")
    torch.manual_seed(3)  # the Trainer's seed: the same initial weights
    start = create_model("small", embedding_dim=128).state_dict()
    moved = max(float((a[n] - start[n]).abs().max()) for n in a if a[n].is_floating_point())
    assert moved > 1e-3  # training changed the weights by far more than the tolerance below
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)  # float32 sums in another order
    losses = [[json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()] for run in ("one", "two")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5) and losses[0][0] > 0


def test_cli_train_writes_a_usable_model_and_curves(face_tree, tmp_path):
    from typer.testing import CliRunner

    import fnet
    from fnet.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(face_tree), "-o", str(out), "--steps", "3", "--identities", "3",
                                      "--per-identity", "3", "--workers", "0", "--validate-every", "3", "--held-out", "0.34"])
    assert result.exit_code == 0, result.output
    model = fnet.load_model(out / "model.safetensors", device="cpu")
    assert model.info.architecture == "small" and model.info.embedding_dim == 128 and model.info.training["steps"] == 3
    last_val = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"val"' in line][-1]
    # a held-out set of a few faces cannot calibrate a threshold: the initial one is kept, and the CLI says why
    assert model.info.threshold == 1.0 and "threshold_kept" in last_val
    assert "kept: only" in " ".join(result.output.split())
    emb = model.embed(np.zeros((2, 96, 96, 3), np.uint8))
    assert emb.shape == (2, 128) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    records = [line for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sum('"kind": "val"' in r for r in records) == 2 and (out / "curves.png").stat().st_size > 10_000


def test_an_unreadable_training_face_is_named_and_replaced(face_tree, tmp_path):
    import shutil

    from fnet.io.tree import tree_items
    from fnet.training.data import FaceFolder

    root = tmp_path / "faces"
    shutil.copytree(face_tree, root)
    (root / PEOPLE[0] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    data = FaceFolder(tree_items(root), 96)
    bad = next(i for i, item in enumerate(data.items) if item.path.name == "broken.png")
    with pytest.warns(UserWarning, match=r"broken\.png.*another face of 'George_W_Bush'"):
        x, label = data[(bad, 0)]
    assert x.shape == (3, 96, 96) and x.std() > 10 and label == data.label_ids[bad]  # a real face, same person


def test_resuming_with_other_settings_is_refused_naming_them(face_tree, tmp_path):
    from fnet.training.loop import Trainer

    Trainer(config(face_tree, tmp_path / "run")).run()
    with pytest.raises(ValueError, match=r"--lr 0.001 there, 0.01 now.*--embedding-dim 128 there, 64 now|--embedding-dim 128 there, 64 now.*--lr"):
        Trainer(config(face_tree, tmp_path / "run", lr=1e-2, embedding_dim=64))
    assert Trainer(config(face_tree, tmp_path / "run", steps=6)).start == 4  # more steps: resumes


def test_validation_pairs_are_balanced_and_small_held_out_sets_keep_the_threshold(face_tree, tmp_path):
    from fnet.training.loop import Trainer, calibrated_threshold, validation_pairs

    labels = ["a"] * 3 + ["b"] * 2 + ["c"] * 40  # few same-person pairs for a and b, many for c
    a, b, same = validation_pairs(labels, 3000)
    assert same.sum() == (~same).sum() > 0
    assert np.all((np.asarray(labels)[a] == np.asarray(labels)[b]) == same)

    distances = np.r_[np.full(60, 1.0), np.full(60, 0.2)]
    same = np.r_[np.ones(60, bool), np.zeros(60, bool)]  # a model that puts strangers nearer than friends
    assert "accepts no held-out pair" in calibrated_threshold(distances, same, 0.5)
    assert "only 10 same-person" in calibrated_threshold(distances[50:70], same[50:70], 1.5)
    assert calibrated_threshold(distances, same, 1.0) is None

    records = []
    trainer = Trainer(config(face_tree, tmp_path / "tiny", validate_every=2), on_record=records.append)
    path = trainer.run()
    kept = [r for r in records if r.get("kind") == "val"]
    assert kept and all("threshold_kept" in r for r in kept)  # a 2-person held-out set calibrates nothing
    from fnet.core.checkpoint import read_info

    assert read_info(path).threshold == 1.0  # the initial threshold, not a held-out guess


# --- the loss seam: ArcFace through the same loop ---------------------------------------------------

def test_arcface_loss_by_hand():
    import math

    from fnet.training.losses import ArcFaceLoss, LossBatch

    loss = ArcFaceLoss(identities=3, embedding_dim=3, scale=10.0, margin=0.3)
    with torch.no_grad():
        loss.weight.copy_(torch.eye(3))  # class c's centre: axis c
    angle = 0.4  # the face lies 0.4 rad from its class's axis, in the plane of axes 0 and 1
    emb = torch.tensor([[math.cos(angle), math.sin(angle), 0.0]], requires_grad=True)
    out = loss(LossBatch(emb, torch.tensor([0]), 1, 0.0, torch.Generator()))
    logits = torch.tensor([math.cos(angle + 0.3), math.sin(angle), 0.0]) * 10.0  # margin on the true class only
    assert out.loss.item() == pytest.approx(float(-torch.log_softmax(logits, 0)[0]), rel=1e-5)
    assert out.stats["batch_accuracy"] == 1.0 and out.stats["true_angle"] == pytest.approx(math.degrees(angle), rel=1e-4)
    out.loss.backward()
    assert emb.grad is not None and loss.weight.grad.abs().sum() > 0  # the classifier is trained too
    assert float(emb.grad[0, 1]) > 0  # a descent step turns the face towards its class's axis


def test_arcface_trains_through_the_loop_and_resumes_exactly(face_tree, tmp_path):
    import fnet
    from fnet.training.loop import Trainer

    settings = {"loss": "arcface", "lr": 1e-2}
    straight = Trainer(config(face_tree, tmp_path / "straight", **settings)).run()

    class Stop(Exception):
        pass

    def stop_after_checkpoint(record):
        if record.get("step") == 3:
            raise Stop

    with pytest.raises(Stop):
        Trainer(config(face_tree, tmp_path / "resumed", **settings), on_record=stop_after_checkpoint).run()
    assert (tmp_path / "resumed" / "checkpoints" / "step-0000002.loss.safetensors").is_file()  # the classifier, to resume
    resumed = Trainer(config(face_tree, tmp_path / "resumed", **settings)).run()
    a, b = weights(straight), weights(resumed)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    records = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert all("batch_accuracy" in r and r["loss"] > 0 for r in records)
    model = fnet.load_model(straight, device="cpu")  # the classifier is not part of the model
    assert not any("weight" == key for key in a) and model.info.embedding_dim == 128


def test_arcface_refuses_triplet_only_options(face_tree, tmp_path):
    from fnet.errors import SettingsError
    from fnet.training.loop import Trainer

    with pytest.raises(SettingsError, match="need --loss triplet"):
        Trainer(config(face_tree, tmp_path / "run", loss="arcface", compatible_with=str(tmp_path / "old.safetensors")))
    with pytest.raises(SettingsError, match="loss"):
        Trainer(config(face_tree, tmp_path / "run", loss="softmax"))
