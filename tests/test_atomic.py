"""The one mechanism behind every output file: write beside it, then rename."""

from __future__ import annotations

import pytest

from fnet.io.atomic import atomic_path, remove_leftovers


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
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_leftovers_of_a_killed_writer_are_removed_and_nothing_else(tmp_path):
    (tmp_path / "a").mkdir()
    writer = atomic_path(tmp_path / "a" / "face.png")
    leftover = writer.__enter__()  # a process killed here never reaches the rename or the cleanup
    leftover.write_bytes(b"half a png")
    keep = [tmp_path / "a" / "face.png.tmp", tmp_path / ".notes.tmp", tmp_path / "a" / "other.png"]
    for path in keep:
        path.write_text("user's file")
    assert remove_leftovers(tmp_path) == 1
    assert not leftover.exists() and all(path.exists() for path in keep)
    assert remove_leftovers(tmp_path / "not-made-yet") == 0  # a first run: nothing to clean
