"""Recognition as k-NN on real faces: enrolled photos vs held-out photos of the same people."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
from conftest import DEEPFACE
from typer.testing import CliRunner

from fnet.cli import app
from fnet.core.pretrained import REGISTRY
from fnet.index import IndexParams, build_index, load_index
from fnet.io.store import Rows, write_store
from fnet.search import UNKNOWN, Match, recognize, vote

THRESHOLD = REGISTRY["facenet-casia"].info.threshold  # the default model's calibrated threshold


def split(files, identities):
    """Per person: the last photo is held out, the others are enrolled."""
    by_person = defaultdict(list)
    for i, name in enumerate(files):
        by_person[identities[name]].append(i)
    held = [rows[-1] for rows in by_person.values()]
    enrolled = [i for rows in by_person.values() for i in rows[:-1]]
    return enrolled, held, by_person


def enroll(tmp_path, files, emb, labels, rows):
    n = len(rows)
    write_store(
        tmp_path / "enrolled.h5",
        [Rows(emb[rows], [files[i] for i in rows], [labels[i] for i in rows], np.full((n, 4), np.nan, np.float32))],
        {"model": "facenet-casia", "embedding_dim": 512, "normalization": "fixed", "threshold": THRESHOLD, "dtype": "float32", "root": str(DEEPFACE)},
    )
    build_index(tmp_path / "enrolled.h5", tmp_path / "enrolled.faiss", IndexParams("flat"))
    return load_index(tmp_path / "enrolled.faiss")[0]


def test_held_out_photos_are_recognised(tmp_path, deepface_embeddings, deepface_identities):
    files, emb = deepface_embeddings
    labels = [deepface_identities[f] for f in files]
    enrolled, held, _ = split(files, deepface_identities)
    index = enroll(tmp_path, files, emb, labels, enrolled)
    results = recognize(emb[held], index, [labels[i] for i in enrolled], [files[i] for i in enrolled], k=5, threshold=THRESHOLD)
    accuracy = np.mean([r.identity == labels[h] for r, h in zip(results, held)])
    assert len(held) == 13 and accuracy == 1.0  # 13 people, one held-out photo each


def test_people_never_enrolled_are_unknown(tmp_path, deepface_embeddings, deepface_identities):
    files, emb = deepface_embeddings
    labels = [deepface_identities[f] for f in files]
    _, _, by_person = split(files, deepface_identities)
    strangers = {"person00", "person01", "person02"}  # 23 photos of 3 people left out of the index
    enrolled = [i for person, rows in by_person.items() if person not in strangers for i in rows]
    probes = [i for person in strangers for i in by_person[person]]
    index = enroll(tmp_path, files, emb, labels, enrolled)
    results = recognize(emb[probes], index, [labels[i] for i in enrolled], [files[i] for i in enrolled], k=5, threshold=THRESHOLD)
    assert len(probes) == 23 and all(r.identity == UNKNOWN for r in results)


def test_vote_weighs_nearer_matches_more():
    matches = [Match(0, 0.2, "a1", "alice"), Match(1, 0.9, "b1", "bob"), Match(2, 1.0, "b2", "bob"), Match(3, 2.0, "c", "carol")]
    identity, score = vote(matches, threshold=1.17)
    assert identity == "alice" and 0.5 < score < 1  # 0.97 for alice against 0.27 + 0.17 for bob; carol is too far
    assert vote([Match(0, 1.5, "x", "x")], 1.17) == (UNKNOWN, 0.0)


def test_cli_search_a_folder(tmp_path, deepface_embeddings, deepface_identities):
    files, emb = deepface_embeddings
    labels = [deepface_identities[f] for f in files]
    enrolled, held, _ = split(files, deepface_identities)
    enroll(tmp_path, files, emb, labels, enrolled)
    queries = tmp_path / "queries"
    queries.mkdir()
    for h in held[:3]:
        (queries / files[h]).write_bytes((DEEPFACE / files[h]).read_bytes())
    (queries / "broken.jpg").write_text("no")
    result = CliRunner().invoke(app, ["search", str(queries), "--index", str(tmp_path / "enrolled.faiss"), "--json", "--device", "cpu"])
    assert result.exit_code == 1 and "broken.jpg" in result.output  # one unreadable query
    answers = json.loads(result.stdout[result.stdout.index("[") :])
    assert [a["identity"] for a in answers] == [deepface_identities[files[h]] for h in sorted(held[:3], key=lambda h: files[h])]
    one = CliRunner().invoke(app, ["search", str(queries / files[held[0]]), "--index", str(tmp_path / "enrolled.faiss"), "--json", "--device", "cpu"])
    assert one.exit_code == 0, one.output
    (answer,) = json.loads(one.stdout[one.stdout.index("[") :])
    assert answer["query"] == str(queries / files[held[0]]) and answer["identity"] == deepface_identities[files[held[0]]]
    wrong_model = CliRunner().invoke(app, ["search", str(queries), "--index", str(tmp_path / "enrolled.faiss"), "--model", "other"])
    assert wrong_model.exit_code == 2 and "cannot be compared" in wrong_model.output
