"""The app keeps strangers out: loopback by default, a token when exposed, a Host allow-list.

Real servers in headless Chromium. DNS rebinding is played by Chromium's host resolver: the
name ``rebind.test`` resolves to 127.0.0.1, as an attacker's name would after rebinding, so
the browser sends ``Host: rebind.test`` to the local server.
"""

from __future__ import annotations

import subprocess

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
from click.testing import CliRunner

from core import access
from core.cli import main

REBIND = "rebind.test"
TOKEN = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def browser():
    import shutil

    from playwright.sync_api import sync_playwright

    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh --test installs it)")
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright, f"--host-resolver-rules=MAP {REBIND} 127.0.0.1")
        yield chromium
        chromium.close()


def _text_of(browser, url: str) -> str:
    page = browser.new_page()
    try:
        page.goto(url)
        page.wait_for_function(
            "() => document.querySelector('[data-testid=\"stApp\"]')"
            "?.getAttribute('data-test-script-state') === 'notRunning'",
            polling=100,
            timeout=60_000,
        )
        return page.locator("[data-testid='stMain']").inner_text()
    finally:
        page.close()


@pytest.mark.browser
def test_a_local_app_answers_localhost_and_refuses_a_rebound_name(browser, tmp_path):
    port = free_port()
    env = store_env(tmp_path)
    env.pop(access.TOKEN_ENV, None)
    with running_server([*FINBOARD, "app", "--port", str(port)], env, port):
        assert "Leaderboard" in _text_of(browser, f"http://127.0.0.1:{port}/")
        assert "Leaderboard" in _text_of(browser, f"http://localhost:{port}/")
        refused = _text_of(browser, f"http://{REBIND}:{port}/")
    assert "answers requests for this machine only" in refused
    assert "Leaderboard" not in refused


@pytest.mark.browser
def test_an_exposed_app_asks_for_the_token(browser, tmp_path):
    from playwright.sync_api import expect

    port = free_port()
    command = [*FINBOARD, "app", "--port", str(port), "--host", "0.0.0.0", "--expose"]
    env = {**store_env(tmp_path), access.TOKEN_ENV: TOKEN}
    with running_server(command, env, port) as url:
        assert "give the access token" in _text_of(browser, url)
        page = browser.new_page()
        page.goto(url)
        page.get_by_label("Access token").fill("a guess")
        page.get_by_role("button", name="Open the app").click()
        expect(page.get_by_text("That is not the access token.")).to_be_visible()
        page.get_by_label("Access token").fill(TOKEN)
        page.get_by_role("button", name="Open the app").click()
        page.wait_for_function(LOADED, polling=100, timeout=60_000)
        expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible()
        page.close()
        # the token in the URL opens it too, from any name the server is reached by
        opened = _text_of(browser, f"http://{REBIND}:{port}/?token={TOKEN}")
        assert "Leaderboard" in opened and "give the access token" not in opened


@pytest.mark.browser
def test_streamlit_run_on_every_interface_without_a_token_serves_nobody(browser, tmp_path):
    port = free_port()
    command = [*FINBOARD[:1], "-m", "streamlit", "run", str(REPO / "streamlit_app" / "app.py")]
    command += ["--server.port", str(port), "--server.address", "0.0.0.0"]
    env = store_env(tmp_path)
    env.pop(access.TOKEN_ENV, None)
    with running_server(command, env, port) as url:
        text = _text_of(browser, url)
    assert "without an access token, so it serves nobody" in text


def test_shipped_streamlit_config_binds_loopback_with_xsrf():
    import tomllib

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["enableXsrfProtection"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "add --expose"),
        (["--host", "0.0.0.0", "--expose"], "needs an access token"),
    ],
)
def test_binding_elsewhere_needs_expose_and_a_token(args, message, monkeypatch):
    monkeypatch.delenv(access.TOKEN_ENV, raising=False)
    result = CliRunner().invoke(main, ["app", *args])
    assert result.exit_code == 2 and message in result.output


def test_exposing_prints_a_warning(monkeypatch):
    started: list[list[str]] = []
    monkeypatch.setattr(
        "core.cli.app.serve", lambda command, env=None: started.append(command) or 0
    )
    result = CliRunner().invoke(
        main, ["app", "--host", "0.0.0.0", "--expose", "--token", TOKEN, "--port", "8600"]
    )
    assert result.exit_code == 0, result.output
    assert "WARNING: the app is reachable from the network" in result.output
    assert started and "0.0.0.0" in started[0]


@pytest.mark.parametrize(
    ("host", "token", "allowed"),
    [
        ("127.0.0.1:8501", None, True),
        ("localhost:8501", None, True),
        ("[::1]:8501", None, True),
        ("rebind.test:8501", None, False),
        ("192.168.1.20:8501", None, False),
        ("rebind.test:8501", TOKEN, True),  # the token guards an exposed app
        (None, None, False),
    ],
)
def test_host_allow_list(host, token, allowed, monkeypatch):
    monkeypatch.delenv(access.ALLOWED_HOSTS_ENV, raising=False)
    assert access.host_allowed(host, token) is allowed


def test_listed_names_are_allowed_and_narrow_an_exposed_app(monkeypatch):
    monkeypatch.setenv(access.ALLOWED_HOSTS_ENV, "board.example.com, 10.0.0.5")
    assert access.host_allowed("board.example.com:8501", None)
    assert access.host_allowed("10.0.0.5", TOKEN)
    assert not access.host_allowed("rebind.test", TOKEN)


def test_tokens_are_compared_in_constant_time(monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    import hmac

    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b))
    assert access.token_matches(TOKEN, TOKEN)
    assert not access.token_matches(TOKEN[:-1] + "x", TOKEN)
    assert not access.token_matches("", TOKEN)
    assert len(compared) == 2


def test_the_app_process_runs_from_the_checkout_config():
    """``streamlit run`` from the project folder picks up the shipped config (loopback)."""
    out = subprocess.run(
        [*FINBOARD[:1], "-m", "streamlit", "config", "show"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 'address = "127.0.0.1"' in out
