"""``finboard serve``: the HTTP API (``core.api``) under uvicorn, on 127.0.0.1 by default.

Binding an address other than loopback (127.0.0.0/8, ::1, localhost) needs ``--expose`` and
a token (``--token`` or ``FINBOARD_API_TOKEN``); then every request except ``/health`` must
carry ``Authorization: Bearer <token>``, and a warning says the API is reachable from the
network. A token given on loopback is required just the same.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost")
    (True, True, True)
    >>> is_loopback("0.0.0.0"), is_loopback("192.168.1.5"), is_loopback("example.org")
    (False, False, False)
"""

from __future__ import annotations

import click

from core.access import is_loopback

TOKEN_ENV = "FINBOARD_API_TOKEN"


def check_binding(host: str, expose: bool, token: str | None) -> bool:
    """Refuse (UsageError) a non-loopback ``host`` without ``--expose`` and a token.

    Returns whether the API will be reachable from the network.
    """
    if is_loopback(host):
        return False
    if not expose:
        raise click.UsageError(
            f"Refusing to bind {host}: it is reachable from the network. Pass --expose and a "
            f"token (--token or ${TOKEN_ENV}), or bind 127.0.0.1."
        )
    if not token:
        raise click.UsageError(
            f"Refusing to expose the API on {host} without a token: pass --token or set "
            f"${TOKEN_ENV}."
        )
    return True


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8600, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    show_envvar=True,
    default=None,
    help="Require Authorization: Bearer TOKEN on every request except /health "
    "(the environment variable keeps it out of the process list).",
)
@click.option(
    "--expose",
    is_flag=True,
    help="Allow binding an address reachable from the network (needs a token).",
)
def serve(host: str, port: int, token: str | None, expose: bool) -> None:
    """Serve the HTTP API (jobs, results, models, tasks, resources) with docs at /docs."""
    import uvicorn

    from core.api.app import create_app

    token = token or None
    if check_binding(host, expose, token):
        click.echo(
            f"Warning: the finboard API on {host}:{port} is reachable from the network; every "
            "request except /health requires the token (Authorization: Bearer <token>).",
            err=True,
        )
    where = f"[{host}]" if ":" in host else host
    click.echo(f"Serving the finboard API on http://{where}:{port} (docs: /docs)", err=True)
    uvicorn.run(create_app(token), host=host, port=port, log_level="info")


COMMANDS = (serve,)
