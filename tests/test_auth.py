"""The token check and the loopback test behind ``labeler app``'s access token."""

from __future__ import annotations

import pytest

from labeler.auth import is_loopback, new_token, token_ok


def test_token_ok() -> None:
    token = new_token()
    assert len(token) >= 40
    assert new_token() != token
    assert token_ok(token, token)
    assert not token_ok(None, token)
    assert not token_ok("", token)
    assert not token_ok(token[:-1], token)
    assert not token_ok(token + "x", token)
    assert not token_ok("ünïcode", token)
    assert token_ok(None, None)  # no token expected: auth off
    assert token_ok("anything", "")


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.1.2.3", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("myhost.example", False), ("", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
