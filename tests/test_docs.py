"""The README's Python example runs as written, on a real photo."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from conftest import DEEPFACE

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_python_example_runs(monkeypatch):
    blocks = python_blocks(README.read_text())
    assert len(blocks) == 1
    monkeypatch.chdir(DEEPFACE)  # the example's couple.jpg
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102 (the point: run the documented code)
    lines = printed.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1] == "different people"  # two faces, two people
