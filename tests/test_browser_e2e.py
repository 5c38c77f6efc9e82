"""End to end in headless Chromium: launch "Also Fine-tune and Compare" from the app and wait
until the comparison table shows both models.

The app runs as a real Streamlit server on a temporary store; the embedded SmolLM2 is
fine-tuned (quick preset, LoRA) on a small sentiment task made for the test, by the real
worker and job processes. Chromium is Debian's, driven by Playwright through
``executable_path`` (no browser download).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SMALL_TASK = "sentiment_small"
FINISH_S = 900


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(port: int, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("the Streamlit server did not come up")


def _stop_processes_of(home: Path) -> None:
    """Kill what was started for this store: the detached worker and its job processes."""
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


@pytest.fixture
def app_server(tmp_path: Path):
    """A real app server on a temporary store with a small sentiment task."""
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh --test installs it)")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "FINBOARD_HOME": str(home),
        "FINBOARD_DB": str(home / "leaderboard.db"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    env.pop("FINBOARD_MODELS_CONFIG", None)  # the real config: the embedded models
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from core.tasks.authoring import create_synthetic_task as c; "
            f"c('{SMALL_TASK}', 'fin_sentiment', 7, {{'train': 64, 'validation': 16, 'test': 40}})",
        ],
        env=env,
        check=True,
        cwd=REPO,
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(REPO / "streamlit_app" / "app.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_http(port)
        yield f"http://127.0.0.1:{port}", home
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        _stop_processes_of(home)


def test_finetune_and_compare_from_the_browser(app_server):
    from playwright.sync_api import expect, sync_playwright

    url, home = app_server
    shots = home / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/launch")
        expect(page.get_by_text("Hardware found")).to_be_visible(timeout=60_000)
        expect(page.get_by_role("combobox", name="Base model")).to_be_visible()
        expect(page.get_by_text("Apache-2.0")).to_be_visible()  # the embedded SmolLM2 is chosen
        page.get_by_text("Also Fine-tune and Compare").click()
        task_box = page.get_by_role("combobox", name="Task or dataset")
        expect(task_box).to_be_visible(timeout=30_000)
        task_box.click()
        page.get_by_role("option", name=SMALL_TASK).click()
        expect(page.get_by_text("Estimated training time")).to_be_visible(timeout=30_000)
        page.screenshot(path=str(shots / "launch.png"))
        page.get_by_role("button", name="Start: fine-tune and compare").click()
        page.wait_for_url("**/jobs", timeout=60_000)
        expect(page.get_by_text("Fine-tune & compare").first).to_be_visible(timeout=60_000)
        deadline = time.time() + FINISH_S
        while time.time() < deadline:
            if page.get_by_text("Open the comparison").count():
                break
            if page.get_by_text("Failed:").count():
                pytest.fail(page.get_by_text("Failed:").first.inner_text())
            time.sleep(3)
        else:
            pytest.fail("the fine-tune-and-compare job did not finish in time")
        page.screenshot(path=str(shots / "jobs.png"))
        page.goto(f"{url}/comparison")
        base_box = page.get_by_role("combobox", name="Base model")
        tuned_box = page.get_by_role("combobox", name="Fine-tuned model")
        expect(tuned_box).to_have_value(
            re.compile(r"SmolLM2 135M Instruct \+ lora"), timeout=60_000
        )
        expect(base_box).to_have_value("SmolLM2 135M Instruct")
        table = page.locator("[data-testid='stDataFrame'] table").first
        expect(table).to_contain_text("Fine-tuned", timeout=60_000)
        expect(table).to_contain_text(SMALL_TASK)
        expect(table).to_contain_text("Accuracy")  # one task: no overall row
        page.screenshot(path=str(shots / "comparison.png"), full_page=True)
        browser.close()
    from core import store

    db = store.connect(home / "leaderboard.db")
    pair = next(iter(db.query("select * from comparisons")))
    assert pair["base_model_id"] == "smollm2-135m-instruct"
    fingerprints = {
        row["split_fingerprint"]
        for row in db.query(
            "select split_fingerprint from scores where id in (?, ?)",
            [pair["base_score_id"], pair["finetuned_score_id"]],
        )
    }
    assert len(fingerprints) == 1, "base and fine-tuned were scored on the same items"
