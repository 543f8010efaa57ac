"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

import fnet
from fnet.cli import app

runner = CliRunner()


def test_version_and_help():
    assert fnet.__version__ in runner.invoke(app, ["--version"]).output
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "models" in result.output and "demo" in result.output


def test_python_dash_m_works():
    result = subprocess.run([sys.executable, "-m", "fnet", "--version"], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and fnet.__version__ in result.stdout


def test_models_lists_the_default_as_json():
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    default = next(r for r in rows if r["default"])
    assert default["name"] == "facenet-casia" and default["embedding_dim"] == 512


def test_models_shows_one_model():
    result = runner.invoke(app, ["models", "20180408-102900", "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["normalization"] == "fixed"


def test_unknown_model_is_one_clear_error():
    result = runner.invoke(app, ["models", "no-such-model"])
    assert result.exit_code == 2 and "unknown model 'no-such-model'" in result.output


def test_demo_gets_every_verdict_right():
    result = runner.invoke(app, ["demo", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = report["comparisons"]
    assert len(rows) == 13 and all(r["same_person"] == r["predicted_same"] for r in rows)
    assert max(r["distance"] for r in rows if r["same_person"]) < min(r["distance"] for r in rows if not r["same_person"])


def test_bad_checkpoint_path_exits_2_naming_it(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"not a checkpoint")
    result = runner.invoke(app, ["demo", "--model", str(bad)])
    assert result.exit_code == 2 and "model.safetensors" in result.output
