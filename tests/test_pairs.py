"""Pair lists: LFW's pairs.txt and CSV."""

from __future__ import annotations

import pytest
from conftest import LFW, SHARED_DATA

from fnet.io.pairs import PairsError, read_csv_pairs, read_lfw_pairs


def test_lfw_view2_has_ten_folds_of_300_plus_300():
    pairs_file = SHARED_DATA / "lfw" / "pairs.txt"
    if not pairs_file.is_file():
        pytest.skip("LFW pairs.txt not in shared data")
    pairs = read_lfw_pairs(pairs_file, LFW)
    assert len(pairs) == 6000
    for fold in range(10):
        in_fold = [p for p in pairs if p.fold == fold]
        assert sum(p.same for p in in_fold) == 300 and sum(not p.same for p in in_fold) == 300
    assert all(p.a.is_file() and p.b.is_file() for p in pairs[:50] + pairs[-50:])
    same = [p for p in pairs if p.same]
    assert all(p.a.parent == p.b.parent for p in same)


def test_csv_pairs_and_their_errors(tmp_path):
    good = tmp_path / "pairs.csv"
    good.write_text("a,b,same\nx/1.jpg,x/2.jpg,1\nx/1.jpg,y/1.jpg,no\ny/1.jpg,y/2.jpg,Yes\n")
    pairs = read_csv_pairs(good, folds=2)
    assert [p.same for p in pairs] == [True, False, True]
    assert [p.fold for p in pairs] == [0, 0, 1]
    assert pairs[0].a == tmp_path / "x/1.jpg"
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,same\nx.jpg,y.jpg,maybe\n")
    with pytest.raises(PairsError, match="bad.csv:2"):
        read_csv_pairs(bad)


def test_bad_lfw_header(tmp_path):
    bad = tmp_path / "pairs.txt"
    bad.write_text("ten folds\n")
    with pytest.raises(PairsError, match="first line"):
        read_lfw_pairs(bad, tmp_path)
