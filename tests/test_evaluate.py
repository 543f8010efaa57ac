"""`fnet evaluate` end to end on a slice of the official LFW pairs."""

from __future__ import annotations

import json

import pytest
from conftest import LFW, SHARED_DATA
from typer.testing import CliRunner

from fnet.cli import app
from fnet.pipeline.evaluate import read_pairs

PAIRS = SHARED_DATA / "lfw" / "pairs.txt"


@pytest.fixture(scope="module")
def lfw_slice(tmp_path_factory):
    """Two folds of 30 same + 30 different official pairs, in pairs.txt format."""
    if not PAIRS.is_file():
        pytest.skip("LFW pairs.txt not in shared data")
    lines = PAIRS.read_text().splitlines()[1:]
    chosen = []
    for fold in (0, 1):
        block = lines[fold * 600 : (fold + 1) * 600]
        chosen += block[:30] + block[300:330]
    path = tmp_path_factory.mktemp("pairs") / "pairs.txt"
    path.write_text("2 30\n" + "\n".join(chosen) + "\n")
    return path


@pytest.mark.slow
def test_evaluate_lfw_slice(lfw_slice, tmp_path):
    out = tmp_path / "eval"
    args = ["evaluate", str(LFW), "--pairs", str(lfw_slice), "-o", str(out), "--device", "cpu", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout[result.stdout.index("{") :])
    assert metrics["pairs"] == 120 and metrics["same_pairs"] == 60 and metrics["folds"] == 2
    assert metrics["accuracy"] >= 0.95 and metrics["auc"] >= 0.98
    assert 0.8 < metrics["best_threshold"] < 1.5
    # 30 different pairs set each fold's threshold: FAR 1e-3 cannot be resolved, and the run says so
    assert "needs at least 1,000 different-person pairs" in metrics["val_note"] and "hold 30" in metrics["val_note"]
    assert "needs at least 1,000" in " ".join(result.stderr.split())
    assert (out / "roc.png").stat().st_size > 10_000
    page = (out / "report.html").read_text()
    assert "Worst false rejects" in page and "roc.png" in page
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]
    # the embeddings are cached: a second run embeds nothing and agrees exactly
    cached = list(out.glob("embeddings-*.h5"))
    assert len(cached) == 1
    again = CliRunner().invoke(app, args)
    assert json.loads(again.stdout[again.stdout.index("{") :])["accuracy"] == metrics["accuracy"]


def test_csv_pairs_and_bad_pairs(tmp_path):
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text("a,b,same\nColin_Powell/Colin_Powell_0001.jpg,Colin_Powell/Colin_Powell_0002.jpg,1\n")
    pairs = read_pairs(csv_file, LFW)
    assert pairs[0].same and pairs[0].a == LFW / "Colin_Powell/Colin_Powell_0001.jpg"
    missing = tmp_path / "missing.csv"
    missing.write_text("a,b,same\nnobody/x.jpg,nobody/y.jpg,0\n")
    result = CliRunner().invoke(app, ["evaluate", str(LFW), "--pairs", str(missing), "-o", str(tmp_path / "e")])
    assert result.exit_code == 2 and "not found" in result.output
