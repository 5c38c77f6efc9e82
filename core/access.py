"""Who may reach the app and the HTTP API: loopback by default, a token when exposed.

Both servers bind 127.0.0.1 unless told otherwise. A page on another site can still reach a
local server through DNS rebinding (its own name resolving to 127.0.0.1), so without a token
the servers answer only requests whose ``Host`` names this machine (or a name listed in
``FINBOARD_ALLOWED_HOSTS``). With a token every request must carry it; tokens are compared in
constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

TOKEN_ENV = "FINBOARD_APP_TOKEN"  # the access token the app and the API ask for, when set
ALLOWED_HOSTS_ENV = "FINBOARD_ALLOWED_HOSTS"  # extra host names, comma-separated
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost).

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, without port or IPv6 brackets.

    >>> host_name("localhost:8501"), host_name("[::1]:8501"), host_name("Example.org")
    ('localhost', '::1', 'example.org')
    """
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def extra_allowed_hosts() -> set[str]:
    """Host names allowed besides loopback, from ``FINBOARD_ALLOWED_HOSTS``."""
    listed = os.environ.get(ALLOWED_HOSTS_ENV, "")
    return {host_name(name) for name in listed.split(",") if name.strip()}


def host_allowed(host_header: str | None, token: str | None) -> bool:
    """Whether a request with this ``Host`` may be answered.

    With a token set, the token is the guard and any host may ask (unless
    ``FINBOARD_ALLOWED_HOSTS`` narrows it). Without one only loopback names are answered.

    >>> host_allowed("127.0.0.1:8501", None), host_allowed("evil.example:8501", None)
    (True, False)
    """
    if not host_header:
        return False
    name = host_name(host_header)
    extra = extra_allowed_hosts()
    if is_loopback(name) or name in extra:
        return True
    return bool(token) and not extra


def token_matches(given: str | None, expected: str | None) -> bool:
    """Whether ``given`` is the access token, compared in constant time.

    >>> token_matches("s3cret", "s3cret"), token_matches("guess", "s3cret"), token_matches(None, "x")
    (True, False, False)
    """
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def configured_token() -> str | None:
    """The access token from ``FINBOARD_APP_TOKEN``, or None when the app is local only."""
    return os.environ.get(TOKEN_ENV) or None
