"""``finboard app``: the Streamlit app, bound to 127.0.0.1, stopped with its parent.

The Streamlit server runs as a child process. A SIGTERM, SIGINT or SIGHUP to ``finboard app``
is passed on to it, and on Linux the child also asks the kernel to stop it when its parent
dies for any reason (``kill -9`` included), so the port never stays served by an orphan.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys

import click

from core import paths
from core.access import TOKEN_ENV, is_loopback

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent process dies."""
    name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or name is None:
        return
    ctypes.CDLL(name, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def streamlit_command(port: int, headless: bool, address: str = "127.0.0.1") -> list[str]:
    """The argv that serves the app on ``address:port``."""
    script = paths.REPO_ROOT / "streamlit_app" / "app.py"
    return [
        *(sys.executable, "-m", "streamlit", "run", str(script)),
        *("--server.address", address, "--server.port", str(port)),
        *("--server.headless", str(headless).lower(), "--browser.gatherUsageStats", "false"),
        *("--client.toolbarMode", "minimal"),
        # served, not edited live: no polling of every imported module (see .streamlit/config.toml)
        *("--server.fileWatcherType", "none"),
    ]


def serve(command: list[str], env: dict[str, str] | None = None) -> int:
    """Run ``command`` as a child, pass stop signals on, and return its exit status."""
    child = subprocess.Popen(command, preexec_fn=die_with_parent, env=env)

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    for number in FORWARDED:
        signal.signal(number, forward)
    code = child.wait()
    return code if code >= 0 else 128 - code  # a signal's number the way a shell reports it


@click.command()
@click.option("--port", default=8501, show_default=True)
@click.option(
    "--headless/--no-headless", default=True, show_default=True, help="Do not open a browser."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--expose",
    is_flag=True,
    help="Allow an address other machines reach (needs --token or FINBOARD_APP_TOKEN).",
)
@click.option("--token", default=None, help="Access token users must give (default: env).")
def app(port: int, headless: bool, host: str, expose: bool, token: str | None) -> None:
    """Start the Streamlit app, bound to 127.0.0.1 unless --expose says otherwise."""
    token = token or os.environ.get(TOKEN_ENV)
    if not is_loopback(host):
        if not expose:
            raise click.UsageError(
                f"--host {host} lets other machines reach the app: add --expose and an access "
                f"token (--token or {TOKEN_ENV}), or keep the default 127.0.0.1"
            )
        if not token:
            raise click.UsageError(f"--expose needs an access token: --token or {TOKEN_ENV}")
        click.echo(
            f"WARNING: the app is reachable from the network on {host}:{port}; every visitor "
            "must give the access token.",
            err=True,
        )
    click.echo(f"Starting the app on http://{host}:{port}", err=True)
    env = {**os.environ, TOKEN_ENV: token} if token else None
    raise SystemExit(serve(streamlit_command(port, headless, host), env))


COMMANDS = (app,)
