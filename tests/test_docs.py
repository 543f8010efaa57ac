"""Every Python block of the README and docs/ runs as written, on real photos, so the examples cannot rot."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import DEEPFACE

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PHOTOS = ("img1.jpg", "img2.jpg", "couple.jpg")  # what the examples name, from deepface-unit


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


BLOCKS = [(path, number, code) for path in DOCUMENTS for number, code in enumerate(python_blocks(path))]


@pytest.fixture
def example_folder(tmp_path, monkeypatch):
    """A folder holding the files the examples name: photos, and a store of their faces."""
    import fnet
    from fnet.io.store import Rows, model_attrs, write_store

    for name in PHOTOS:
        (tmp_path / name).symlink_to(DEEPFACE / name)
    emb = fnet.embed([tmp_path / name for name in PHOTOS], device="cpu")
    info = fnet.load_pipeline().info
    boxes = np.full((len(PHOTOS), 4), np.nan, np.float32)
    write_store(tmp_path / "faces.h5", [Rows(emb, list(PHOTOS), ["a", "a", "b"], boxes)], model_attrs(info))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(code: str, name: str, namespace: dict) -> list[str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, name, "exec"), namespace)  # noqa: S102 (the point: run the documented code)
    return printed.getvalue().splitlines()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`fnet serve` on a free loopback port, with Angelina Jolie enrolled (for docs/serve.md's example)."""
    pytest.importorskip("fastapi")
    from test_serve import Server

    import fnet
    from fnet.pipeline import load_pipeline
    from fnet.serve.app import create_app
    from fnet.serve.service import ServeSettings, Service

    settings = ServeSettings(tmp_path_factory.mktemp("serve") / "people.db", device="cpu")
    service = Service(settings, load_pipeline(device="cpu").preload())
    service.enrol("Angelina Jolie", fnet.load_image(DEEPFACE / "img1.jpg"), "img1.jpg")
    with Server(create_app(settings, service)) as url:
        yield url


@pytest.mark.parametrize(("path", "number", "code"), BLOCKS, ids=[f"{p.name}-{n}" for p, n, _ in BLOCKS])
def test_documented_python_runs(path, number, code, example_folder, request, monkeypatch):
    if path.name == "serve.md":
        monkeypatch.setenv("FNET_URL", request.getfixturevalue("server"))
    namespace: dict = {}
    for earlier in python_blocks(path)[:number]:  # a page's blocks run in order, as a reader would
        run(earlier, path.name, namespace)
    run(code, path.name, namespace)


def test_readme_python_example_says_what_it_claims(example_folder):
    lines = run(python_blocks(ROOT / "README.md")[0], "README.md", {})
    assert lines[0].startswith("True ")  # img1 and img2 are one person
    assert [line.split()[0] for line in lines[1:]] == ["0", "1"]  # couple.jpg: two faces, left to right
    assert lines[1].endswith("img1's person") and lines[2].endswith("someone else")  # she is on the left
