"""Recognition as k-NN on real faces: enrolled photos vs held-out photos of the same people."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from conftest import DEEPFACE
from typer.testing import CliRunner

from fnet.cli import app
from fnet.core.pretrained import REGISTRY
from fnet.io.store import Rows, write_store
from fnet.pipeline.index import IndexParams, build_index, load_index
from fnet.retrieval.recognition import UNKNOWN, Match, _nearest_other_person, recognize, threshold_for_fpir, vote

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


def nearest_other_person_brute_force(emb, labels, rows):
    d = ((emb[rows, None, :] - emb[None, :, :]) ** 2).sum(-1)
    d[np.asarray(labels)[None, :] == np.asarray(labels)[rows, None]] = np.inf
    return d.min(1)


def test_fpir_threshold_matches_brute_force(tmp_path, deepface_embeddings, deepface_identities):
    files, emb = deepface_embeddings
    labels = [deepface_identities[f] for f in files]
    index = enroll(tmp_path, files, emb, labels, list(range(len(files))))
    firsts = np.array(sorted({label: row for row, label in reversed(list(enumerate(labels)))}.values()))
    nearest = np.sort(nearest_other_person_brute_force(emb, labels, firsts))
    estimate = threshold_for_fpir(index, labels, lambda rows: emb[rows], fpir=0.25)
    assert estimate.people == 13 and estimate.fpir == 3 / 13  # floor(0.25 * 13) people would be named
    assert abs(estimate.threshold - (nearest[2] + nearest[3]) / 2) < 1e-5
    # people with up to 8 photos: the nearest faces are their own, so the search must look further
    np.testing.assert_allclose(_nearest_other_person(index, emb, np.array(labels), np.array(labels), k=1),
                               nearest_other_person_brute_force(emb, labels, np.arange(len(files))), atol=1e-5)


def test_fpir_refuses_what_it_cannot_estimate(tmp_path, deepface_embeddings, deepface_identities):
    files, emb = deepface_embeddings
    labels = [deepface_identities[f] for f in files]
    index = enroll(tmp_path, files, emb, labels, list(range(len(files))))
    with pytest.raises(ValueError, match=r"13 people enrolled: too few to estimate a false positive rate of 0.01 \(at least 100 needed\)"):
        threshold_for_fpir(index, labels, lambda rows: emb[rows], fpir=0.01)
    with pytest.raises(ValueError, match="needs identity labels"):
        threshold_for_fpir(index, [""] * len(files), lambda rows: emb[rows], fpir=0.25)


def test_cli_search_with_fpir(tmp_path, deepface_embeddings, deepface_identities):
    files, emb = deepface_embeddings
    labels = [deepface_identities[f] for f in files]
    enrolled, held, _ = split(files, deepface_identities)
    enroll(tmp_path, files, emb, labels, enrolled)
    query = tmp_path / files[held[0]]
    query.write_bytes((DEEPFACE / files[held[0]]).read_bytes())
    args = ["search", str(query), "--index", str(tmp_path / "enrolled.faiss"), "--device", "cpu", "--json"]
    result = CliRunner().invoke(app, [*args, "--fpir", "0.25"])
    assert result.exit_code == 0, result.output
    assert "of 13 enrolled people, playing strangers to the others, would get a name at it" in result.stderr
    (answer,) = json.loads(result.stdout)
    threshold = float(result.stderr.split("threshold ")[1].split(":")[0])
    assert 0 < threshold < 4 and (answer["matches"][0]["distance"] <= threshold) == (answer["identity"] != UNKNOWN)
    both = CliRunner().invoke(app, [*args, "--fpir", "0.25", "--threshold", "1.0"])
    assert both.exit_code == 2 and "pass one" in both.output
    too_few = CliRunner().invoke(app, [*args, "--fpir", "0.01"])
    assert too_few.exit_code == 2 and "too few" in too_few.output
