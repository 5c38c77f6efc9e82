"""The app in headless Chromium, as its users go through it, asserting on what the pages show.

One real app server on a temporary store for the module (the embedded SmolLM2 and a small
sentiment task made for the test); the journeys run in order and build on each other:

1. the analyst switches presets, starts "Also Fine-tune and Compare" and follows the job;
2. the team lead opens the leaderboard by its own URL and reads the fine-tune's training card;
3. the manager reads the comparison, downloads the report and looks at the cost;
then the Datasets page lists every problem of a bad file at once, and the playground answers
one sentence with the base and the fine-tuned model side by side.

Chromium is Debian's (``browser_support``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser_support import (
    FINBOARD,
    LOADED,
    REPO,
    free_port,
    launch_chromium,
    running_server,
    store_env,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SMALL_TASK = "sentiment_small"
FINISH_S = 900


def _stop_processes_of(home: Path) -> None:
    """Kill what was started for this store: the worker, its jobs, the playground server."""
    marker = f"FINBOARD_HOME={home}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            with contextlib.suppress(OSError):
                os.kill(int(proc.name), signal.SIGKILL)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    """A real app server on a temporary store with a small sentiment task, and a browser."""
    from playwright.sync_api import sync_playwright

    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh --test installs it)")
    home = tmp_path_factory.mktemp("journeys") / "home"
    home.mkdir()
    env = store_env(home)
    make_task = (
        "from core.tasks.authoring import create_synthetic_task as c; "
        f"c('{SMALL_TASK}', 'fin_sentiment', 7, {{'train': 64, 'validation': 16, 'test': 40}})"
    )
    subprocess.run([sys.executable, "-c", make_task], env=env, check=True, cwd=REPO)
    port = free_port()
    try:
        with (
            running_server([*FINBOARD, "app", "--port", str(port)], env, port) as url,
            sync_playwright() as playwright,
        ):
            browser = launch_chromium(playwright)
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.set_default_timeout(60_000)
            yield {"url": url, "home": home, "context": context}
            browser.close()
    finally:
        _stop_processes_of(home)


def _open(app: dict, path: str):
    page = app["context"].new_page()
    page.goto(f"{app['url']}/{path}")
    page.wait_for_function(LOADED, polling=100)
    return page


def _open_box(page, box: str) -> None:
    """Open the Streamlit selectbox labelled ``box``'s list of options.

    Scrolled into view first, as a user would: a click that also scrolls the page opens the
    list and the scroll closes it again.
    """
    combobox = page.get_by_role("combobox", name=box)
    combobox.scroll_into_view_if_needed()
    combobox.click()
    page.get_by_role("option").first.wait_for()


def _choose(page, box: str, option: str) -> None:
    """Pick ``option`` in the Streamlit selectbox labelled ``box``."""
    _open_box(page, box)
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_function(LOADED, polling=100)


def _progress(page) -> float | None:
    # One atomic read in the page: the panel re-renders every second, so a bar counted by a
    # locator may be gone by the time its attribute is asked for (and that waits 60 s).
    value = page.evaluate(
        """() => {
            const bar = document.querySelector("[data-testid='stProgress'] [role='progressbar']");
            return bar ? bar.getAttribute("aria-valuenow") : null;
        }"""
    )
    return float(value) if value is not None else None


def test_analyst_switches_presets_fine_tunes_and_follows_the_job(app):
    from playwright.sync_api import expect

    page = _open(app, "launch")
    expect(page.get_by_text("Apache-2.0")).to_be_visible()  # the embedded SmolLM2 is chosen
    page.get_by_text("Also Fine-tune and Compare").click()
    page.wait_for_function(LOADED, polling=100)
    _choose(page, "Task or dataset", SMALL_TASK)
    page.get_by_text("Settings (LoRA)").click()  # the chosen method's settings
    epochs = page.get_by_role("spinbutton", name="epochs")
    batch = page.get_by_role("spinbutton", name="batch size")
    expect(epochs).to_have_value("1")
    _choose(page, "Preset", "standard")
    expect(epochs).to_have_value("3")  # the fields hold the new preset's values
    expect(batch).to_have_value("16")
    expect(page.get_by_text("3e-4").first).to_be_visible()  # the learning rate, log scale
    _choose(page, "Preset", "quick")
    expect(epochs).to_have_value("1")
    expect(batch).to_have_value("8")
    expect(page.get_by_text("Estimated job time")).to_be_visible()
    page.get_by_text("Preview command").click()
    expect(page.get_by_text(f"--task {SMALL_TASK} --preset quick")).to_be_visible()
    page.get_by_role("button", name="Start: fine-tune and compare").click()
    page.wait_for_url("**/jobs")
    expect(page.get_by_text("Fine-tune & compare").first).to_be_visible()
    seen: list[float] = []
    deadline = time.time() + FINISH_S
    while time.time() < deadline:
        value = _progress(page)
        if value is not None:
            seen.append(value)
        if page.get_by_text("Open the comparison").count():
            break
        if page.get_by_text("Failed:").count():
            pytest.fail(page.get_by_text("Failed:").first.inner_text())
        time.sleep(0.5)
    else:
        pytest.fail("the fine-tune-and-compare job did not finish in time")
    assert len(seen) >= 5 and seen == sorted(seen), f"the whole-job bar went back: {seen}"
    assert seen[0] < 50 and seen[-1] > 50
    table = page.locator("table.fb-table").first  # the queue
    expect(table).to_contain_text("succeeded")  # refreshed with the panel, without a reload
    expect(page.get_by_text("Fine-tuned").first).to_be_visible()
    page.close()


def test_team_lead_opens_the_leaderboard_by_its_url_and_reads_the_training_card(app):
    from playwright.sync_api import expect

    page = _open(app, "leaderboard")
    assert not page.get_by_text("Page not found").count()
    table = page.locator("div.fb-board table")  # a board of a few models: a static table
    expect(table).to_contain_text("SmolLM2 135M Instruct + lora")
    expect(table).to_contain_text("SmolLM2 135M Instruct")
    expect(page.locator("svg[aria-label='overall score by model']")).to_be_visible()
    tuned = next(option for option in _options(page, "Model") if "+ lora" in option)
    _choose(page, "Model", tuned)
    page.get_by_role("tab", name="Training card").click()
    page.wait_for_function(LOADED, polling=100)
    expect(page.get_by_text("Trainable parameters")).to_be_visible()
    expect(page.locator("svg[aria-label='training curve']")).to_be_visible()
    page.get_by_role("tab", name="Per-item results").click()
    page.wait_for_function(LOADED, polling=100)
    items = page.locator("[data-testid='stDataFrame'] table").last
    expect(items).not_to_contain_text("<|im_start|>")  # chat-template tokens are hidden
    page.close()


def _options(page, box: str) -> list[str]:
    _open_box(page, box)
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return options


def test_manager_reads_the_gain_downloads_the_report_and_sees_the_cost(app):
    from playwright.sync_api import expect

    page = _open(app, "comparison")
    expect(page.get_by_role("combobox", name="Base model")).to_have_value("SmolLM2 135M Instruct")
    expect(page.get_by_text("The fine-tuned model").first).to_be_visible()
    for tile in ("Training time", "Energy", "Tokens/s", "Peak memory"):
        expect(page.get_by_text(tile, exact=True).first).to_be_visible()
    expect(page.get_by_text("Gain per task")).to_be_visible()
    page.get_by_role("tab", name="Training").click()  # the long sections are lazy tabs
    expect(page.locator("svg[aria-label='training curve']")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download report").click()
    report = Path(download.value.path()).read_text()
    assert report.startswith("<!DOCTYPE html>") and "SmolLM2 135M Instruct" in report
    assert SMALL_TASK in report and "<script" not in report
    page.close()

    page = _open(app, "cost_roi")
    expect(page.get_by_text("Local / month")).to_be_visible()
    expect(page.get_by_text("Accuracy on the leaderboard")).to_be_visible()
    expect(page.get_by_text("months old")).to_be_visible()  # the default prices are dated
    page.close()


BAD_FILE = (
    b"headline,tone\n"
    b"Shares rose after the results,positive\n"
    b"Profit fell \xff\xfe sharply,negative\n"  # row 3: not UTF-8
    b"The board met on Tuesday,\n"  # row 4: empty label
    b"Analysts turned bullish,bullish\n"  # row 5: unknown label
    b"Shares rose after the results,positive\n"  # row 6: duplicate of row 2
)


def test_datasets_lists_every_problem_of_a_bad_file_at_once(app, tmp_path):
    from playwright.sync_api import expect

    upload = tmp_path / "bad_news.csv"
    upload.write_bytes(BAD_FILE)
    page = _open(app, "datasets")
    page.locator("input[type='file']").set_input_files(str(upload))
    expect(page.get_by_text("Staged: ")).to_be_visible()
    labels = page.get_by_role("textbox", name="Labels (comma-separated, optional)")
    labels.fill("positive, neutral, negative")
    labels.press("Enter")
    page.wait_for_function(LOADED, polling=100)
    page.get_by_role("button", name="Validate").click()
    page.wait_for_function(LOADED, polling=100)
    expect(page.get_by_text("4 problems in bad_news.csv")).to_be_visible()
    problems = page.locator("[data-testid='stTable']").first
    for words in (
        "not valid UTF-8",
        "empty label",
        "unknown label 'bullish'",
        "duplicate of row 2",
    ):
        expect(problems).to_contain_text(words)
    page.close()


def test_playground_answers_with_both_models_side_by_side(app):
    from playwright.sync_api import expect

    page = _open(app, "playground")
    expect(page.get_by_role("combobox", name="Model A")).to_have_value("SmolLM2 135M Instruct")
    expect(page.get_by_role("combobox", name="Model B")).to_have_value(
        re.compile(r"SmolLM2 135M Instruct \+ lora")
    )
    text = page.get_by_role("textbox", name="Text")
    text.fill("Shares of Acme fell 8% after the company cut its full-year outlook.")
    text.press("Control+Enter")
    page.wait_for_function(LOADED, polling=100)
    page.get_by_role("button", name="Ask both").click()
    answers = page.get_by_text("Answer", exact=True)
    expect(answers).to_have_count(2, timeout=120_000)
    expect(page.locator("svg[aria-label='label probabilities']")).to_have_count(2)
    expect(page.get_by_text("Answered in").first).to_be_visible()
    page.close()
