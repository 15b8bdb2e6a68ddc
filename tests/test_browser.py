"""One real-browser smoke test: `streamlit run app.py` on a free port, driven by Playwright in Debian's
chromium. The page loads, a widget change shows the core's number, no exception element appears, and a
screenshot is saved under artifacts/ (gitignored). Skipped when /usr/bin/chromium is absent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard import fmt
from dashboard.fmt import WORD_JOINER
from planner import api, profiles

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not profiles.model_names() or not profiles.gpus(), reason="no bundled profiles"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _outside_requests(page) -> list[str]:
    """Every URL ``page`` asks for from now on."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    return seen


def _external(urls: list[str], server: str) -> list[str]:
    """The URLs not served by the app's own server (data: and blob: are local)."""
    return [u for u in urls if not u.startswith((server, "data:", "blob:", "about:"))]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("streamlit did not start: " + proc.stdout.read1().decode(errors="replace")[-2000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_plan_page_in_a_real_browser(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{server}/?batch=8", wait_until="domcontentloaded")
    page.get_by_text("Largest batch").first.wait_for(timeout=30_000)
    box = page.get_by_label("Batch (concurrent requests)")
    box.fill("24")
    box.press("Enter")
    page.wait_for_function("() => location.search.includes('batch=24')", timeout=30_000)
    q = dict(x.split("=", 1) for x in page.url.split("?", 1)[1].split("&"))
    p = api.plan(q["model"], q["gpu"], 24, int(q["prompt"]), int(q["output"]), gpus=int(q["gpus"]),
                 weights=q["weights"], kv_dtype=q["kv"], engine=q["engine"], tp=int(q["tp"]))
    page.get_by_text(fmt.ms(p["tpot_s"]), exact=True).first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    assert page.locator('[data-testid="stException"]').count() == 0
    out = ROOT / "artifacts"
    out.mkdir(exist_ok=True)
    page.screenshot(path=str(out / "browser_plan.png"), full_page=True)
    page.close()


PAGES = {"plan": "", "tradeoffs": "tradeoffs", "attention": "attention", "quantization": "quantization",
         "capacity": "capacity", "compare": "compare", "validation": "validation", "learn": "learn"}


# text that appears only once a page's slow part has rendered
LAST_TEXT = {"capacity": "candidates, ranked"}


def test_every_page_renders_without_an_exception(server, browser):
    """Each page in the browser, full-page screenshot at 1400 px wide: under artifacts/, or under
    docs/screenshots/ (the user guide's pictures) with KV_PLANNER_SCREENSHOTS=1."""
    out = ROOT / ("docs/screenshots" if os.environ.get("KV_PLANNER_SCREENSHOTS") else "artifacts")
    out.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    urls = _outside_requests(page)
    for name, path in PAGES.items():
        page.goto(f"{server}/{path}", wait_until="domcontentloaded")
        page.locator("h1").first.wait_for(timeout=60_000)
        if name in LAST_TEXT:  # a page whose search runs for seconds on a cold cache
            page.get_by_text(LAST_TEXT[name]).first.wait_for(timeout=120_000)
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                               timeout=120_000)
        page.wait_for_timeout(2500)  # plotly draws after the script run ends
        assert page.locator('[data-testid="stException"]').count() == 0, name
        # Streamlit scrolls inside its main block, not the page: grow the viewport to the content for a full page
        height = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], "
                               "[data-testid=\"stSidebarContent\"]')].map(e => e.scrollHeight), 1000)")
        page.set_viewport_size({"width": 1400, "height": min(int(height), 12_000)})
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / f"{name}.png"), full_page=True)
        page.set_viewport_size({"width": 1400, "height": 1000})
    # fully offline: no font, icon or script from elsewhere on any page (a ":material/...:" page icon
    # would be fetched from fonts.gstatic.com)
    assert _external(urls, server) == []
    page.close()


PAYLOADS = {"model": "[Session expired: log in](https://evil.example/login)",
            "gpu": "![x](https://evil.example/track.png)",
            "weights": ":red[Your account is locked] https://evil.example www.evil.example x@evil.example :smile: $x^2$"}


def test_a_shared_links_values_render_as_plain_text(server, browser):
    """The review's payloads in one shared link: each warning shows the literal text, with no link,
    no image, no style and no request to the payload's host."""
    from urllib.parse import urlencode, urlparse

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    urls = _outside_requests(page)
    page.goto(f"{server}/?{urlencode(PAYLOADS)}", wait_until="domcontentloaded")
    alerts = page.locator('[data-testid="stAlertContentWarning"]')
    alerts.nth(len(PAYLOADS) - 1).wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    shown = [" ".join(a.inner_text().replace(WORD_JOINER, "").split()) for a in alerts.all()]
    for name, payload in PAYLOADS.items():  # the joiner that breaks autolinks is invisible
        assert any(f"{name}={payload}" in s for s in shown), (name, shown)
    assert page.locator('a[href*="evil.example"]').count() == 0
    assert page.locator('img[src*="evil.example"]').count() == 0
    for a in alerts.all():
        assert a.locator("p").evaluate("p => p.children.length") == 0, "one text paragraph: no element in it"
    assert [u for u in urls if urlparse(u).hostname == "evil.example"] == []
    page.close()


def _in_view(page, locator) -> bool:
    """Whether ``locator``'s box lies wholly inside the viewport (Streamlit scrolls inside its main block)."""
    box = locator.bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] and box["x"] + box["width"] <= size["width"]


def _settled(page) -> None:
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)
    page.wait_for_timeout(1500)


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)], ids=["1280x720", "1920x1080"])
def test_plan_not_fit_remedy_save_compare(server, browser, size):
    """plan -> does not fit -> one-click remedy -> save -> compare, at a laptop's and a desktop's size; the fit
    status and the TTFT / TPOT / cost tiles are visible without scrolling, and nothing is fetched from elsewhere."""
    w, h = size
    page = browser.new_page(viewport={"width": w, "height": h})
    urls = _outside_requests(page)
    page.goto(f"{server}/?model=Llama-3.1-8B&gpu=H100-SXM&batch=512&prompt=8192&output=1024",
              wait_until="domcontentloaded")
    page.get_by_text("Does not fit").first.wait_for(timeout=120_000)
    _settled(page)
    out = ROOT / "artifacts"
    out.mkdir(exist_ok=True)
    page.screenshot(path=str(out / f"walk_not_fit_{w}x{h}.png"))
    assert _in_view(page, page.get_by_text("Does not fit").first)
    for label in ("TTFT mean", "TPOT mean", "$ / 1M output tokens"):
        tile = page.locator('[data-testid="stMetric"]', has_text=label).first
        assert _in_view(page, tile), label
        # 48 of the 512 fit in the engine's pool: it queues the rest, so the latency is simulated, and the cost is
        # what that queue sustains: every tile has a figure
        assert "—" not in tile.inner_text(), label
    page.get_by_role("button", name="Batch 48").click()
    page.get_by_text("Fits:").first.wait_for(timeout=120_000)
    _settled(page)
    page.screenshot(path=str(out / f"walk_fits_{w}x{h}.png"))
    assert _in_view(page, page.get_by_text("Fits:").first)
    for label in ("TTFT mean", "TTFT p90", "TPOT mean", "$ / 1M output tokens"):
        tile = page.locator('[data-testid="stMetric"]', has_text=label).first
        assert _in_view(page, tile), label
        assert "—" not in tile.inner_text(), label
    assert "batch=48" in page.url
    page.get_by_role("button", name="Save this plan").click()
    page.wait_for_function("() => location.search.includes('cmp=')", timeout=30_000)
    assert page.get_by_role("button", name="fp8 KV").count() == 0  # the plan fits: no remedies
    box = page.get_by_label("Batch (concurrent requests)")
    box.fill("24")
    box.press("Enter")
    page.wait_for_function("() => location.search.includes('batch=24')", timeout=30_000)
    _settled(page)
    page.get_by_role("button", name="Save this plan").click()
    page.wait_for_function("() => (location.search.match(/cmp=/g) || []).length == 2", timeout=30_000)
    page.get_by_role("link", name="Compare plans").click()
    page.get_by_text("Download compare_plans (CSV)").wait_for(timeout=120_000)
    _settled(page)
    page.screenshot(path=str(out / f"walk_compare_{w}x{h}.png"))
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert _external(urls, server) == []
    page.close()


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_capacity_ranking_fits_a_1280_screen(server, browser, lang):
    """The ranked table's default columns fit the main area at 1280x720 with the sidebar open: no sideways
    scrolling (the rest of the columns are under "Every column" and in the CSV)."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(f"{server}/capacity" + ("?lang=ko" if lang == "ko" else ""), wait_until="domcontentloaded")
    page.get_by_text("순위순" if lang == "ko" else "candidates, ranked").first.wait_for(timeout=120_000)
    _settled(page)
    ranking = page.locator('[data-testid="stDataFrame"]').first   # the first table on the page is the ranking
    ranking.scroll_into_view_if_needed()
    ranking.locator(".dvn-scroller").wait_for(timeout=60_000)   # the grid draws once it is in view
    page.wait_for_timeout(500)
    sizes = page.evaluate("() => [...document.querySelectorAll('[data-testid=\"stDataFrame\"] .dvn-scroller')]"
                          ".map(s => [s.scrollWidth, s.clientWidth])")
    assert sizes, "the ranked table is drawn"
    scroll, width = sizes[0]
    assert scroll <= width + 1, sizes
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()
