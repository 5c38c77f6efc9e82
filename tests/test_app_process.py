"""``finboard app`` leaves nothing serving its port once it is stopped, however it is stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

START_S = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_killing_the_app_process_frees_its_port(finboard_home, signum):
    port = _free_port()
    app = subprocess.Popen(
        [sys.executable, "-c", "from core.cli import main; main()", "app", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        assert _wait(lambda: _listening(port), START_S), "the app did not start"
        os.kill(app.pid, signum)
        app.wait(timeout=30)
        assert _wait(lambda: not _listening(port), 10), f"port {port} still served after {signum!r}"
    finally:
        if app.poll() is None:
            app.kill()
