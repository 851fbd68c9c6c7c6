"""The app's access token: ``labeler app --host 0.0.0.0`` serves the labels to the network only with it.

Pure functions; the Streamlit gate that uses them is ``pages/shared/auth.py``.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

TOKEN_ENV = "LABELER_TOKEN"  # how `labeler app` hands the token to the Streamlit process
TOKEN_PARAM = "token"  # the URL query parameter a browser brings it in: http://host:8501/?token=...


def new_token() -> str:
    """A random token (256 bits, URL-safe), as Jupyter makes one per server."""
    return secrets.token_urlsafe(32)


def token_ok(given: str | None, expected: str | None) -> bool:
    """Whether ``given`` is the expected token. No expected token (auth off) lets everyone in; a missing or wrong
    token does not. The comparison takes the same time wherever the strings differ."""
    if not expected:
        return True
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` is reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface
