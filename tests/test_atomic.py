"""The one mechanism behind every output file: write beside it, then rename."""

from __future__ import annotations

import pytest

from fnet.io.atomic import atomic_path


def test_success_replaces_the_file_readably(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    target.parent.mkdir()
    target.write_text("old")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"  # nobody sees the new content before the rename
    assert target.read_text() == "new"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
