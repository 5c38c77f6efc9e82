"""Starting a real app server and Debian's Chromium, for the browser tests and bench/page_load.py.

Chromium is driven by Playwright through ``executable_path`` (no browser download).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    *("--no-sandbox", "--disable-gpu", "--disable-background-networking"),
    *("--disable-component-update", "--disable-sync", "--no-first-run"),
]
# A page is drawn when its script has finished and no element is still a loading placeholder.
LOADED = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app && app.getAttribute('data-test-script-state') === 'notRunning'
    && document.querySelector('h1') && !document.querySelector('[data-testid="stSkeleton"]');
}"""
FINBOARD = [sys.executable, "-c", "from core.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, seconds: float = 90) -> None:
    """Return once something accepts connections on ``port`` of 127.0.0.1."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


def store_env(home: Path) -> dict[str, str]:
    """The environment of a process working on the store in ``home``, offline."""
    env = {
        **os.environ,
        "FINBOARD_HOME": str(home),
        "FINBOARD_DB": str(home / "leaderboard.db"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    env.pop("FINBOARD_MODELS_CONFIG", None)  # the real config: the embedded models
    return env


@contextlib.contextmanager
def running_server(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """Run a server ``command`` listening on ``port``; yield its URL; stop its process group."""
    server = subprocess.Popen(
        command,
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_listening(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def launch_chromium(playwright, *extra_flags: str):
    """Debian's Chromium, headless, with the flags the guide asks for."""
    return playwright.chromium.launch(
        executable_path=shutil.which("chromium"), args=[*CHROMIUM_FLAGS, *extra_flags]
    )
