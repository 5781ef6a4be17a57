"""The search page in a real headless Chromium (Debian's), driven by Playwright.

Types a query, sees hits and word chips, drops a query word, uploads an image, opens
a word heatmap over a hit, picks another index where the service has several, and
saves screenshots (to ``$LEXSEARCH_SCREENSHOTS`` when set, else to the test's
temporary folder).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.server import ServiceProcess
from model import LexVLA, load_encoder
from tests.conftest import build_index

playwright = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip)")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.is_file():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def screenshots(tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("LEXSEARCH_SCREENSHOTS", tmp_path)) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def browse(browser: object, url: str, query: str, image: Path, out: Path) -> None:
    """The page's whole flow; fails on any page error or failed request until the last step."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.goto(url)
    playwright.expect(page.locator("#stats")).to_contain_text("images")
    playwright.expect(page.locator("#index")).to_be_hidden()  # one index: nothing to pick

    # A text query: hits with matched-word chips, and the query's own words.
    page.fill("#q", query)
    page.press("#q", "Enter")
    hits = page.locator(".hit")
    playwright.expect(hits.first).to_be_visible()
    playwright.expect(page.locator("#status")).to_contain_text("images in")
    assert hits.count() > 0
    first_chips = hits.first.locator(".chip.match")
    assert first_chips.count() > 0
    sizes = [
        float(c.evaluate("e => getComputedStyle(e).fontSize").removesuffix("px"))
        for c in first_chips.all()
    ]
    assert sizes == sorted(sizes, reverse=True), "chips are sized by contribution"
    page.locator(".hit img.thumb").first.evaluate("img => img.decode()")
    page.screenshot(path=str(out / "1-text-query.png"), full_page=False)

    # Drop the query's strongest word by clicking it: the search runs again without it.
    word = page.locator("#query-words .chip").first.get_attribute("data-word")
    page.locator("#query-words .chip").first.locator("button.drop").click()
    playwright.expect(page.locator("#edits .chip.dropped")).to_contain_text(f"−{word}")
    playwright.expect(page.locator(f'#query-words .chip[data-word="{word}"]')).to_have_count(0)
    page.screenshot(path=str(out / "2-word-dropped.png"))

    # An image query by upload, then the heatmap of a matched word over a hit.
    page.set_input_files("#file", str(image))
    playwright.expect(page.locator("#query-image")).to_be_visible()
    playwright.expect(page.locator("#query-words .chip").first).to_be_visible()
    playwright.expect(page.locator("#edits .chip")).to_have_count(0)
    hit = page.locator(".hit").first
    playwright.expect(hit.locator(".chip.match").first).to_be_visible()
    chip = hit.locator(".chip.match").first
    chip.click()
    heat = hit.locator("canvas.heat")
    playwright.expect(heat).to_be_visible()
    playwright.expect(hit.locator(".heat-label")).to_contain_text(
        str(chip.get_attribute("data-word"))
    )
    assert heat.evaluate("c => c.width * c.height") > 1
    page.locator(".hit img.thumb").first.evaluate("img => img.decode()")
    page.screenshot(path=str(out / "3-image-query-heatmap.png"))
    chip.click()
    playwright.expect(heat).to_be_hidden()

    assert not problems, problems

    # Errors are shown, not swallowed.
    page.fill("#q", "-dog")
    page.press("#q", "Enter")
    playwright.expect(page.locator("#status.error")).to_contain_text("no words to search for")
    context.close()


def test_search_page_in_chromium(
    browser: object, live_server: ServiceProcess, photos: Path, tmp_path: Path
) -> None:
    out = screenshots(tmp_path, "tiny")
    browse(
        browser, live_server.url, "a dog runs on the beach", photos / "images" / "coffee.jpg", out
    )
    assert {p.name for p in out.glob("*.png")} == {
        "1-text-query.png",
        "2-word-dropped.png",
        "3-image-query-heatmap.png",
    }


def test_picking_an_index(
    browser: object, two_index_server: ServiceProcess, more_index: Path, tmp_path: Path
) -> None:
    """With two indexes, the page searches the one picked, and its hits' thumbnails and
    heatmaps come from that index."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.goto(two_index_server.url)
    picker = page.locator("#index")
    playwright.expect(picker).to_be_visible()
    assert picker.locator("option").all_inner_texts() == ["photos", "more"]
    picker.select_option("more")
    playwright.expect(page.locator("#stats")).to_contain_text("3 images")
    playwright.expect(page.locator("#stats")).to_contain_text("index more")
    page.fill("#q", "a brown cat sleeps on the sofa")
    page.press("#q", "Enter")
    hits = page.locator(".hit")
    playwright.expect(hits.first).to_be_visible()
    ids = {str(hit.get_attribute("data-id")) for hit in hits.all()}
    assert ids and ids <= {"cat-a.png", "cat-b.png", "navy.png"}
    page.locator(".hit img.thumb").first.evaluate("img => img.decode()")
    hits.first.locator(".chip.match").first.click()
    playwright.expect(hits.first.locator("canvas.heat")).to_be_visible()
    page.screenshot(path=str(screenshots(tmp_path, "indexes") / "4-index-picked.png"))
    assert not problems, problems
    context.close()


# What clip-front asks for that is not there: the 2.45 wheel lacks the web-components
# polyfill loader (current browsers need no polyfill) and the page names no icon.
CLIP_FRONT_MISSING = ("/clip-front/vendor/webcomponents-loader.js", "/favicon.ico")


def test_clip_front_searches_this_service(
    browser: object, two_index_server: ServiceProcess, tmp_path: Path
) -> None:
    """clip-retrieval's own web page, served from its wheel, queries this service."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    problems: list[str] = []
    missing = tuple(two_index_server.url + path for path in CLIP_FRONT_MISSING)

    def console(message: Any) -> None:
        known = message.location["url"].startswith(missing) or missing[0] in message.text
        if message.type == "error" and not known:
            problems.append(f"console: {message.text}")

    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", console)
    page.on(
        "response",
        lambda r: (
            r.status >= 400 and r.url not in missing and problems.append(f"{r.status} {r.url}")
        ),
    )
    page.goto(f"{two_index_server.url}/clip-front/")
    page.fill("#searchBar", "a cat sleeps on the sofa")
    page.press("#searchBar", "Enter")
    pictures = page.locator("img.pic")
    playwright.expect(pictures.first).to_be_visible()
    pictures.first.evaluate("img => img.decode()")
    sources = [str(p.get_attribute("src")) for p in pictures.all()]
    assert all(s.startswith(f"{two_index_server.url}/images/") for s in sources), sources
    page.screenshot(path=str(screenshots(tmp_path, "clip-front") / "clip-front.png"))
    assert not problems, problems
    context.close()


@pytest.mark.slow
def test_search_page_on_the_default_model(browser: object, photos: Path, tmp_path: Path) -> None:
    """The same flow on the shipped model (real words, a 7x7 patch grid), for screenshots."""
    model: LexVLA = load_encoder()
    index = build_index(photos, tmp_path / "index", model, model_name="default")
    server = ServiceProcess(index)
    try:
        server.wait_ready()
        answer = httpx.get(f"{server.url}/search", params={"q": "a cat lying on a blanket"}).json()
        assert len(answer["query"]["words"]) == model.config.sparse.query_top_k == 64
        heatmap = httpx.get(f"{server.url}/heatmaps/chelsea.jpg", params={"word": "cat"}).json()
        assert (heatmap["rows"], heatmap["cols"]) == (7, 7), "EfficientNet-Lite0's patch grid"
        out = screenshots(tmp_path, "default")
        browse(
            browser, server.url, "a cat lying on a blanket", photos / "images" / "rocket.jpg", out
        )
    finally:
        server.stop()
        shutil.rmtree(index, ignore_errors=True)
