"""The house rules: each layer imports only the layers below it, and the ground floor needs no torch.

    ground floor   fnet.errors, registry, face, crops, io.*  (numpy, Pillow, h5py; no torch)
    core           fnet.core.*         the networks (torch)
    algorithms     fnet.clustering, fnet.evaluation, fnet.training
    pipeline       fnet.pipeline.*     stages put together from the parts
    scale-out      fnet.scale.*        the pipeline's stages on a Ray cluster
    front ends     fnet.cli.*          parsing and printing only
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fnet"
GROUND = ["fnet", "fnet.errors", "fnet.registry", "fnet.face", "fnet.crops", "fnet.core.detectors"] + [
    f"fnet.io.{p.stem}" for p in sorted((PACKAGE / "io").glob("*.py")) if p.stem != "__init__"
]
FORBIDDEN = {  # a package -> the packages its modules may not import
    "fnet/io": ("torch", "fnet.core", "fnet.pipeline", "fnet.cli", "fnet.training"),
    "fnet/core": ("fnet.pipeline", "fnet.cli", "fnet.training"),
    "fnet/clustering": ("fnet.pipeline", "fnet.cli"),  # torch only lazily, for k-NN on a GPU
    "fnet/evaluation": ("torch", "fnet.pipeline", "fnet.cli"),
    "fnet/retrieval": ("torch", "fnet.pipeline", "fnet.cli"),
    "fnet/people": ("torch", "fnet.core", "fnet.pipeline", "fnet.cli"),
    "fnet/training": ("fnet.pipeline", "fnet.cli"),
    "fnet/pipeline": ("ray", "fnet.cli", "fnet.serve", "fnet.scale"),
    "fnet/scale": ("fnet.cli", "fnet.serve"),  # runs the pipeline on Ray; Ray only inside functions
    "fnet/serve": ("fnet.cli",),
}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def blocked_torch(code: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter in which `import torch` fails."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['torch'] = None\n" + code], check=False, capture_output=True, text=True, timeout=120
    )


def test_ground_floor_imports_without_torch(tmp_path):
    import numpy as np

    from fnet.io.store import Rows, write_store

    store = tmp_path / "faces.h5"
    boxes = np.zeros((2, 4), np.float32)
    write_store(store, [Rows(np.eye(2, 4, dtype=np.float32), ["a/1.png", "b/1.png"], ["a", "b"], boxes)], {"embedding_dim": 4, "model": "m", "threshold": 1.0})
    code = "\n".join(f"import {name}" for name in GROUND) + (
        "\nfrom fnet.io.store import Store"
        f"\nwith Store({str(store)!r}) as s: print(len(s), s.attrs['model'], s.labels())"
        "\nfrom fnet.core.detectors import DETECTORS; print(DETECTORS.names())"
    )
    done = blocked_torch(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["2 m ['a', 'b']", "['mtcnn']"]


def test_command_line_help_needs_no_torch():
    done = blocked_torch("from typer.testing import CliRunner\nfrom fnet.cli import app\nprint(CliRunner().invoke(app, ['faces', '--help']).output)")
    assert done.returncode == 0 and "--detector" in done.stdout, done.stderr


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_downwards(package):
    crossings = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in sorted((PACKAGE.parent / package).rglob("*.py"))
        for name in imported_modules(path)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[package])
    ]
    assert not crossings


def test_command_modules_stay_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (PACKAGE / "cli").rglob("*.py")}
    assert max(sizes.values()) <= 150, sizes
