"""The HTML report in a real browser: headless Chromium (Debian's `chromium`) driven by
Playwright. Skipped only where no Chromium is installed; CI installs it (`.ci/run`)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import gradient_image
from helpers import fixed_output_with_faces
from PIL import Image
from typer.testing import CliRunner

from facefix_cli.cli import app
from facefix_cli.io.write import quantize

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")

CHROMIUM = (
    os.environ.get("FACEFIX_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium found (install Debian's chromium: apt-get install -y chromium)",
)
# Never reach out: no updates, no sync, no QUIC probes; no sandbox, as CI runs as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

runner = CliRunner()


def run(*args) -> object:
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def reports(tmp_path_factory, weights_dir) -> dict[str, Path]:
    """A real `fix --report` run (two tiny images upscaled, one corrupt file), then a
    `facefix report` of its outputs plus two outputs whose records list faces, and a broken one."""
    root = tmp_path_factory.mktemp("report")
    run_folder = root / "run"
    run_folder.mkdir()
    for name, (width, height), seed in (("a", (24, 20), 1), ("b", (16, 12), 2)):
        Image.fromarray(quantize(gradient_image(width, height, seed), 8)).save(
            run_folder / f"{name}.png"
        )
    (run_folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    run_report = root / "run.html"
    result = run("fix", run_folder, "-U", "2", "--weights-dir", weights_dir, "--report",
                 run_report, "--json")  # fmt: skip
    assert result.exit_code == 1  # bad.png failed, the others were fixed
    summary = json.loads(result.stdout)
    assert summary["report"] == str(run_report) and summary["failed"] == 1

    faces = root / "faces"
    faces.mkdir()
    fixed_output_with_faces(faces, "moon", "an astronaut on the moon", [(10, 8, 40, 44)])
    fixed_output_with_faces(
        faces, "pilots", "two pilots", [(2, 2, 30, 30), (44, 20, 76, 60)], seed=7
    )
    (faces / "broken.fixed.png").write_bytes(b"not a png at all")
    all_report = root / "all.html"
    result = run("report", run_folder, faces, "-o", all_report)
    assert result.exit_code == 1, result.output  # broken.fixed.png is listed as failed
    assert f"report: {all_report} (4 images, 1 failed" in result.output
    return {"run": run_report, "all": all_report, "root": root}


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, path: Path):
    """The page, with every console error, page error, failed or non-file request recorded."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on(
        "request",
        lambda r: r.url.startswith("file://") or problems.append(f"network request: {r.url}"),
    )
    page.goto(path.as_uri())
    return page, problems


def load_every_image(page) -> int:
    """Scroll each image into view (they are lazy) and wait until all have loaded."""
    images = page.locator("img")
    for index in range(images.count()):
        images.nth(index).scroll_into_view_if_needed()
    page.wait_for_function(
        "[...document.images].every(i => i.complete && i.naturalWidth > 0)", timeout=30_000
    )
    return images.count()


def visible_titles(page) -> list[str]:
    # textContent, not innerText: cards are `content-visibility: auto`, so a card just un-hidden
    # off screen has no layout yet and its innerText reads "" until the browser renders it.
    titles = page.locator(".card:visible h3").all_text_contents()
    return [Path(text.strip()).name for text in titles]


@pytest.mark.parametrize("which", ["run", "all"])
def test_page_loads_every_image_with_no_error_and_no_network(browser, reports, which):
    page, problems = open_page(browser, reports[which])
    count = load_every_image(page)
    # run: 2 cards x (before, after); all: 4 cards x 2 + 3 faces x 2
    assert count == {"run": 4, "all": 14}[which]
    widths = page.evaluate("[...document.images].map(i => i.naturalWidth)")
    assert all(width > 0 for width in widths)
    page.wait_for_timeout(200)  # let late console messages arrive
    assert problems == []
    page.close()


def test_before_after_slider_and_toggle_change_what_is_shown(browser, reports):
    page, problems = open_page(browser, reports["all"])
    load_every_image(page)
    card = page.locator(".card", has_text="pilots.fixed.png")
    compare, slider = card.locator(".compare"), card.locator(".slider")
    compare.scroll_into_view_if_needed()
    slider.fill("0")  # all "after"
    after_only = compare.screenshot()
    clip = card.locator(".after").evaluate("e => getComputedStyle(e).clipPath")
    slider.fill("100")  # all "before"
    before_only = compare.screenshot()
    assert card.locator(".after").evaluate("e => getComputedStyle(e).clipPath") != clip
    assert before_only != after_only
    slider.fill("0")
    assert compare.screenshot() == after_only  # the same control brings it back
    page.locator("#show-all").click()  # every card to "before" at once
    values = page.locator(".slider").evaluate_all("sliders => sliders.map(s => s.value)")
    assert values == ["100"] * 4
    assert compare.screenshot() == before_only
    assert problems == []
    page.close()


def test_filters_hide_the_right_cards_and_a_screenshot_is_written(browser, reports, tmp_path):
    page, problems = open_page(browser, reports["all"])
    # Loads first: hiding a card while its lazy image loads would abort that request.
    load_every_image(page)
    every = ["a.fixed.png", "b.fixed.png", "moon.fixed.png", "pilots.fixed.png"]
    assert sorted(visible_titles(page)) == sorted([*every, "broken.fixed.png"])
    page.locator("#filter-faces").check()
    assert sorted(visible_titles(page)) == ["moon.fixed.png", "pilots.fixed.png"]
    assert page.locator("#failed").is_hidden()  # a section with nothing left to show
    page.locator("#filter-faces").uncheck()
    page.locator("#filter-failed").check()
    assert visible_titles(page) == ["broken.fixed.png"]
    assert page.locator("#failed .reason").text_content().strip().startswith("not a")
    page.locator("#filter-failed").uncheck()
    page.locator("#filter-text").fill("PILOTS")  # prompt "two pilots", any case
    assert visible_titles(page) == ["pilots.fixed.png"]
    page.locator("#filter-text").fill("on the moon")
    assert visible_titles(page) == ["moon.fixed.png"]
    page.locator("#filter-text").fill("b.fixed")  # the file name
    assert visible_titles(page) == ["b.fixed.png"]
    assert page.locator("#shown").inner_text() == "1 of 5 shown"
    page.locator("#filter-text").fill("")
    assert sorted(visible_titles(page)) == sorted([*every, "broken.fixed.png"])
    load_every_image(page)
    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    with Image.open(screenshot) as image:
        assert image.width == 1280 and image.height > 900  # the whole page, not the viewport
    assert problems == []
    page.close()
