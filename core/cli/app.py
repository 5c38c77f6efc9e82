"""``finboard app``: the Streamlit app, bound to 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys

import click

from core import paths


@click.command()
@click.option("--port", default=8501, show_default=True)
@click.option(
    "--headless/--no-headless", default=True, show_default=True, help="Do not open a browser."
)
def app(port: int, headless: bool) -> None:
    """Start the Streamlit app bound to 127.0.0.1."""
    script = paths.REPO_ROOT / "streamlit_app" / "app.py"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        str(headless).lower(),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    click.echo(f"Starting the app on http://127.0.0.1:{port}", err=True)
    raise SystemExit(subprocess.call(command))


COMMANDS = (app,)
