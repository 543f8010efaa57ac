"""The browser UI, driven in Debian's Chromium (Playwright pointed at /usr/bin/chromium; nothing downloaded):
name a cluster, merge two people, upload a group photo and read the names back from the page."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import DEEPFACE
from test_serve import Server, upload

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("no Chromium on this machine (apt-get install chromium)", allow_module_level=True)

SCREENSHOTS = Path(os.environ.get("FNET_SCREENSHOTS", "")) if os.environ.get("FNET_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def site(tmp_path_factory, deepface_identities):
    """A server with a gallery (two names for Angelina Jolie) and a cluster folder of three deepface people."""
    from typer.testing import CliRunner

    from fnet.cli import app
    from fnet.pipeline import load_pipeline
    from fnet.serve.app import create_app
    from fnet.serve.service import ServeSettings, Service

    root = tmp_path_factory.mktemp("ui")
    photos = root / "photos"
    photos.mkdir()
    by_person: dict[str, list[str]] = {}
    for image, person in sorted(deepface_identities.items()):
        by_person.setdefault(person, []).append(image)
    for person in ("person01", "person02", "person03"):
        for image in by_person[person][:3]:
            shutil.copy(DEEPFACE / image, photos / image)
    assert CliRunner().invoke(app, ["cluster", str(photos), "-o", str(root / "clusters"), "--device", "cpu", "--no-sheet"]).exit_code == 0
    settings = ServeSettings(root / "people.db", device="cpu", clusters=root / "clusters")
    service = Service(settings, load_pipeline(device="cpu").preload())
    with Server(create_app(settings, service)) as url, httpx.Client(base_url=url, timeout=120) as client:
        for name, image in (("Jolie", "img1.jpg"), ("Angelina", "img2.jpg")):
            assert client.post(f"/people/{name}/faces", files={"image": upload(DEEPFACE / image)}).status_code == 201
        yield url, root


@pytest.fixture(scope="module")
def page(site):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.goto(site[0] + "/")
            yield page
        finally:
            browser.close()


def shot(page, name: str, folder: Path) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_name_a_cluster_by_typing(page, site):
    page.wait_for_selector(".cluster")
    clusters = page.locator(".cluster")
    assert clusters.count() == 3  # three people, two or more photos each, none named yet
    first = clusters.first
    assert int(first.get_attribute("data-number") or 0) >= 1 and first.locator("img.face").count() == 3
    first.locator("input").fill("Carol")
    first.locator("button").click()
    page.wait_for_selector("#status:has-text('Carol: 3 faces enrolled')")
    page.wait_for_selector(".person[data-name='Carol']")
    sync_api.expect(page.locator(".cluster")).to_have_count(2)  # named: no longer offered
    assert page.locator(".person[data-name='Carol'] img.face").count() == 3  # with her face thumbnails
    shot(page, "named-cluster", site[1])


def test_merge_two_people(page, site):
    page.wait_for_selector(".person[data-name='Angelina']")
    page.select_option("#merge-from", "Angelina")
    page.select_option("#merge-into", "Jolie")
    page.click("#merge")
    page.wait_for_selector("#status:has-text('1 faces of Angelina now belong to Jolie')")
    sync_api.expect(page.locator(".person[data-name='Angelina']")).to_have_count(0)
    assert "2 faces" in page.locator(".person[data-name='Jolie'] h3").inner_text()


def test_upload_a_group_photo_and_read_the_names(page, site):
    page.set_input_files("#upload", str(DEEPFACE / "couple.jpg"))
    page.wait_for_selector(".found-face")
    names = [text.split(" (")[0] for text in page.locator(".found-face").all_inner_texts()]
    assert names == ["Jolie", "unknown"]  # Brad Pitt is not enrolled
    assert page.locator("#photo-wrap .box").count() == 2 and page.locator("#photo-wrap .box.unknown").count() == 1
    shot(page, "recognised", site[1])
