"""The rendered site in a real browser: Playwright drives Debian's chromium over 127.0.0.1.

The pages are the smoke build of the whole book (fixture `smoke_book`), or the build named by
ASDLIB_SITE_HTML. `.ci/run` installs
chromium with apt and sets ASDLIB_REQUIRE_BROWSER=1, so that in CI a missing browser is a
failure; elsewhere these tests are skipped when /usr/bin/chromium is absent.

The build serves MathJax itself (`_static/mathjax/`, from PyPI's django-static-mathjax; see
`_ext/book_fixes.py`), so the pages must render their math with no network at all: every request
that leaves 127.0.0.1 is recorded, refused and fails the test.
"""

import base64
import functools
import http.server
import io
import os
import re
import threading
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import soundfile
import yaml

from book_helpers import ROOT, toc_files

CHROMIUM = os.environ.get("ASDLIB_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = ROOT / "_build" / "test-artifacts" / "04_arcface.png"
#: The smallest share of its own width a figure may be shrunk to on a 1280-pixel-wide page.
FIGURE_SCALE_MIN = 0.8

if not Path(CHROMIUM).exists():
    if os.environ.get("ASDLIB_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"ASDLIB_REQUIRE_BROWSER=1 but no chromium at {CHROMIUM} "
                           "(apt-get install chromium)")
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)",
                allow_module_level=True)

playwright_sync = pytest.importorskip("playwright.sync_api")


def _chapter_notebooks():
    return [p for p in toc_files() if (ROOT / f"{p}.ipynb").exists()]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(request):
    """The built site served on 127.0.0.1: yields its base URL.

    The smoke build of the test session, or the folder named by ASDLIB_SITE_HTML (to check a
    book-profile build: ASDLIB_SITE_HTML=_build/html pytest tests/test_site.py).
    """
    given = os.environ.get("ASDLIB_SITE_HTML")
    html = Path(given) if given else Path(request.getfixturevalue("smoke_book"))
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
        )
        yield browser
        browser.close()


class Visit:
    """One page opened in a fresh browser context, with its console errors and stray requests."""

    def __init__(self, browser, url):
        self.errors, self.external = [], []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda err: self.errors.append(f"page error: {err}"))
        self.page.goto(url, wait_until="load")

    def _console(self, message):
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _route(self, route):
        url = route.request.url
        if urlparse(url).hostname not in ("127.0.0.1", None) and not url.startswith("data:"):
            self.external.append(url)
            return route.abort()
        return route.continue_()

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def visit(browser, site):
    opened = []

    def open_page(page: str) -> Visit:
        v = Visit(browser, f"{site}/{page}.html")
        opened.append(v)
        return v

    yield open_page
    for v in opened:
        v.close()


def _scroll_through(page):
    """Scroll to the bottom in steps, so that lazily loaded images load."""
    page.evaluate("""async () => {
        for (let y = 0; y < document.body.scrollHeight; y += 600) {
            window.scrollTo(0, y);
            await new Promise(r => setTimeout(r, 20));
        }
        await Promise.all(Array.from(document.images).filter(i => !i.complete).map(
            i => new Promise(r => { i.onload = i.onerror = r; })));
    }""")


def _wait_for_mathjax(page):
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    page.evaluate("() => MathJax.startup.promise")


@pytest.mark.parametrize("page", toc_files() + ["search"])
def test_page_loads_without_errors_and_all_images_show(visit, page):
    v = visit(page)
    _scroll_through(v.page)
    broken = v.page.evaluate(
        "() => Array.from(document.images).filter(i => i.naturalWidth === 0).map(i => i.src)")
    assert broken == [], f"{page}: images that did not load: {broken}"
    assert v.external == [], f"{page}: requests that leave 127.0.0.1: {v.external}"
    assert v.errors == [], f"{page}: {v.errors}"


@pytest.mark.parametrize("page", [p for p in _chapter_notebooks() if not p.endswith("preface")])
def test_math_is_typeset_and_colab_opens_this_chapter(visit, page):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = urlparse(config["repository"]["url"]).path.strip("/")
    v = visit(page)
    _wait_for_mathjax(v.page)
    typeset = v.page.locator("mjx-container").count()
    raw = v.page.evaluate(r"() => document.querySelectorAll('.math:not(:has(mjx-container))').length")
    assert typeset > 0, f"{page}: no typeset math"
    assert raw == 0, f"{page}: {raw} math blocks left untypeset"
    colab = v.page.locator("a[href*='colab.research.google.com']")
    assert colab.count() >= 1, f"{page}: no Colab launch button"
    hrefs = {colab.nth(i).get_attribute("href") for i in range(colab.count())}
    assert hrefs == {f"https://colab.research.google.com/github/{repo}/blob/main/{page}.ipynb"}
    assert v.errors == [], f"{page}: {v.errors}"


def test_a_solution_dropdown_opens_on_click(visit):
    v = visit("book/04_arcface")
    # exercises are numbered within their chapter
    assert v.page.locator("text=Exercise 4.1").count() >= 1
    solution = v.page.locator("div.solution.dropdown").first
    body = solution.locator("section, div.section, div.highlight").first
    assert not body.is_visible(), "the solution is shown before a click"
    solution.locator("button.toggle-button, .admonition-title").first.click()
    body.wait_for(state="visible", timeout=5_000)
    v.page.wait_for_timeout(600)  # let the opening animation finish before the screenshot
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    v.page.screenshot(path=str(SCREENSHOT), full_page=False)
    assert SCREENSHOT.stat().st_size > 10_000


def test_search_finds_arcface(visit):
    v = visit("search")
    v.page.goto(v.page.url + "?q=ArcFace", wait_until="load")
    v.page.wait_for_selector("#search-results ul.search li", timeout=30_000)
    found = v.page.locator("#search-results ul.search li a").all_inner_texts()
    assert any(re.search("ArcFace", text) for text in found), found


def test_audio_players_play_a_real_wav(visit):
    v = visit("book/01_task_and_data")
    players = v.page.locator("audio")
    assert players.count() >= 2, "chapter 1 has no audio players"
    state = v.page.evaluate("""async () => {
        const a = document.querySelector('audio');
        if (a.readyState < 1) await new Promise((ok, bad) => {
            a.onloadedmetadata = ok; a.onerror = () => bad(String(a.error && a.error.code)); });
        await a.play();
        await new Promise(r => setTimeout(r, 300));
        const state = {duration: a.duration, time: a.currentTime};
        a.pause();
        return state;
    }""")
    assert state["duration"] > 0.5 and state["time"] > 0, state
    # the player's source is the clip itself, a wav file inlined as base64
    src = players.first.locator("source").get_attribute("src")
    header, data = src.split(",", 1)
    assert re.fullmatch(r"data:audio/(x-)?wav;base64", header), header
    wav, rate = soundfile.read(io.BytesIO(base64.b64decode(data)))
    assert rate == 16_000 and abs(len(wav) / rate - state["duration"]) < 0.01
    assert float(np.abs(wav).max()) > 0.0


@pytest.mark.parametrize("page", ["book/02_autoencoder_baseline", "book/04_arcface"])
def test_math_renders_offline_from_the_build_itself(visit, page):
    """No request leaves 127.0.0.1 (the route refuses it), and still every formula is typeset:
    MathJax and its fonts come from the build's _static/mathjax/."""
    v = visit(page)
    _wait_for_mathjax(v.page)
    loaded = v.page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)"
                             ".filter(n => n.includes('mathjax'))")
    assert loaded and all("/_static/mathjax/" in n for n in loaded), loaded
    assert v.page.locator("mjx-container").count() > 0
    assert v.external == [], v.external


@pytest.mark.parametrize("page", ["book/02_autoencoder_baseline", "book/05_mixup",
                                  "book/08_training_tastgram"])
def test_figures_are_sized_for_the_page(visit, page):
    """A figure drawn much wider than the text column is shrunk until its labels cannot be read:
    every figure must show at FIGURE_SCALE_MIN of its own width or more."""
    v = visit(page)
    _scroll_through(v.page)
    sizes = v.page.evaluate("""() => Array.from(document.querySelectorAll('.cell_output img'))
        .map(i => [i.src.split('/').pop(), i.clientWidth, i.naturalWidth])""")
    assert sizes, f"{page}: no figure"
    shrunk = [(name, shown, own) for name, shown, own in sizes if shown < FIGURE_SCALE_MIN * own]
    assert not shrunk, f"{page}: figures shrunk below {FIGURE_SCALE_MIN:.0%} of their width: {shrunk}"
