"""`fnet serve` over real HTTP: uvicorn on a free loopback port, real photos, stopped at the end."""

from __future__ import annotations

import concurrent.futures
import struct
import threading
import time
import zlib

import pytest
from conftest import DEEPFACE, LFW

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")


class Server:
    """uvicorn serving an app on 127.0.0.1, port chosen by the kernel, in a thread."""

    def __init__(self, app):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from fnet.pipeline import load_pipeline
    from fnet.serve.service import ServeSettings, Service

    settings = ServeSettings(tmp_path_factory.mktemp("serve") / "people.db", device="cpu", max_queue=8, max_upload_bytes=3 * 2**20, max_pixels=30_000_000)
    return Service(settings, load_pipeline(device="cpu").preload())


@pytest.fixture(scope="module")
def api(service):
    from fnet.serve.app import create_app

    with Server(create_app(service.settings, service)) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client


def upload(path) -> tuple[str, bytes, str]:
    return (path.name, path.read_bytes(), "image/jpeg")


def test_health_and_openapi(api):
    assert api.get("/health").json()["status"] == "ok"
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/faces", "/verify", "/recognize", "/people"} <= set(paths)


def test_faces_and_verify_on_real_photos(api):
    faces = api.post("/faces", files={"image": upload(DEEPFACE / "couple.jpg")}).json()["faces"]
    assert [f["face"] for f in faces] == [0, 1] and faces[0]["box"][0] < faces[1]["box"][0]
    same = api.post("/verify", files={"a": upload(DEEPFACE / "img1.jpg"), "b": upload(DEEPFACE / "img2.jpg")}).json()
    other = api.post("/verify", files={"a": upload(DEEPFACE / "img1.jpg"), "b": upload(LFW / "George_W_Bush" / "George_W_Bush_0001.jpg")}).json()
    assert same["same_person"] and not other["same_person"] and same["distance"] < other["distance"]


def test_people_enrolled_over_http_are_recognised_and_managed(api):
    for image in ("img1.jpg", "img2.jpg"):
        assert api.post("/people/Angelina Jolie/faces", files={"image": upload(DEEPFACE / image)}).status_code == 201
    assert api.post("/people/George/faces", files={"image": upload(LFW / "George_W_Bush" / "George_W_Bush_0001.jpg")}).status_code == 201
    found = api.post("/recognize", files={"image": upload(DEEPFACE / "couple.jpg")}).json()
    assert [f["name"] for f in found["faces"]] == ["Angelina Jolie", None]  # Brad Pitt is not enrolled: unknown
    assert found["threshold"]["fpir"] == 0.01 and "2 people" in found["threshold"]["why"]
    assert api.patch("/people/George", json={"name": "George W. Bush"}).status_code == 200
    people = {p["name"]: p["faces"] for p in api.get("/people").json()["people"]}
    assert people == {"Angelina Jolie": 2, "George W. Bush": 1}
    assert api.delete("/people/Nobody").status_code == 404
    assert api.patch("/people/George W. Bush", json={"nickname": "W"}).status_code == 400  # a clear 4xx, not a 500
    assert api.post("/faces/move", json={"faces": "all", "to": "x"}).status_code == 400
    assert api.delete("/people/George W. Bush").json()["faces"] == 1


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares huge dimensions and holds almost nothing: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_bad_uploads_get_a_clear_4xx_and_good_ones_still_work(api):
    good = (DEEPFACE / "img1.jpg").read_bytes()
    cases = {
        "truncated": (good[: len(good) // 3], 400),
        "not an image": (b"hello, this is text", 400),
        "bomb": (_png_header_only(60_000, 60_000), 413),
        "oversized": (good + b"\x00" * (3 * 2**20), 413),
    }
    for name, (data, status) in cases.items():
        answer = api.post("/faces", files={"image": ("../../etc/passwd", data, "image/jpeg")})
        assert answer.status_code == status, (name, answer.text)
        assert "passwd" not in answer.json().get("error", "") or "image (" in answer.json()["error"]  # a label, not a path
    assert len(api.post("/faces", files={"image": ("ok.jpg", good, "image/jpeg")}).json()["faces"]) == 1


def test_concurrent_requests_are_all_answered(api):
    photo = upload(DEEPFACE / "img1.jpg")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: api.post("/faces", files={"image": photo}), range(6)))
    assert all(a.status_code == 200 and len(a.json()["faces"]) == 1 for a in answers)


def test_the_batcher_joins_concurrent_faces_into_shared_passes(service):
    import numpy as np

    from fnet.serve.batcher import Batcher

    crops = np.stack([service.pipeline.aligner().align([fnet_image(name)])[0][0].crop for name in ("img1.jpg", "img2.jpg", "couple.jpg")])
    alone = service.pipeline.embedder.embed(crops)
    batcher = Batcher(service.pipeline.embedder.embed, max_batch=32, max_wait=0.2)
    try:
        with concurrent.futures.ThreadPoolExecutor(9) as pool:
            rows = list(pool.map(lambda i: batcher.submit(crops[i % 3 : i % 3 + 1]).result(), range(9)))
    finally:
        batcher.close()
    assert batcher.batches < 9  # nine requests, fewer forward passes
    for i, row in enumerate(rows):  # and each request got its own face's embedding back
        np.testing.assert_allclose(row[0], alone[i % 3], atol=1e-5)


def fnet_image(name: str):
    import fnet

    return fnet.load_image(DEEPFACE / name)


def test_a_token_guards_every_route_but_health(service):
    import dataclasses

    from fnet.serve.app import create_app

    guarded = dataclasses.replace(service.settings, token="s3cret")
    with Server(create_app(guarded, service)) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/people").status_code == 401
        assert client.get("/people", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/people", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_serve_refuses_a_public_address_without_a_token():
    from typer.testing import CliRunner

    from fnet.cli import app

    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"], env={"FNET_TOKEN": ""})
    assert result.exit_code == 2 and "--token" in result.output


def test_a_full_queue_answers_503_at_once(service):
    import dataclasses

    from fnet.serve.app import create_app

    tight = dataclasses.replace(service.settings, max_queue=1)
    photo = upload(DEEPFACE / "couple.jpg")
    with Server(create_app(tight, service)) as url, httpx.Client(base_url=url, timeout=120) as client, concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: client.post("/faces", files={"image": photo}), range(4)))
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 200 and set(codes) <= {200, 503} and 503 in codes  # the rest refused, none hung or failed
    assert all("busy" in a.json()["detail"] for a in answers if a.status_code == 503)



def test_killing_the_server_mid_enrolment_loses_nothing_acknowledged(tmp_path):
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url, gallery = f"http://127.0.0.1:{port}", tmp_path / "people.db"
    command = [sys.executable, "-m", "fnet", "serve", "--port", str(port), "-g", str(gallery), "--device", "cpu"]

    def start() -> subprocess.Popen:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    return process
            except httpx.TransportError:
                time.sleep(0.1)
        process.kill()
        raise RuntimeError("fnet serve did not start")

    photos = sorted(LFW.glob("*/*_0001.jpg"))[:40]
    acknowledged: list[str] = []
    server = start()

    def enrol() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for photo in photos:
                try:
                    answer = client.post(f"/people/{photo.parent.name}/faces", files={"image": upload(photo)})
                except httpx.TransportError:
                    return  # the server died under this request: not acknowledged
                if answer.status_code == 201:
                    acknowledged.append(photo.parent.name)

    worker = threading.Thread(target=enrol)
    worker.start()
    while len(acknowledged) < 5:
        time.sleep(0.05)
    server.send_signal(signal.SIGKILL)
    server.wait()
    worker.join()
    assert 5 <= len(acknowledged) < len(photos)  # killed part-way
    server = start()
    try:
        people = {p["name"]: p["faces"] for p in httpx.get(url + "/people").json()["people"]}
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert set(acknowledged) <= set(people)  # every acknowledged enrolment survived the kill
    assert len(people) <= len(acknowledged) + 1  # and at most the one in flight besides
