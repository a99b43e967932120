"""The LocalAPI exchange (tailnet._localapi): the request bytes and the response parsing, no I/O."""

from __future__ import annotations

import base64

import pytest

import tailnet
from tailnet._localapi import Exchange

LOOPBACK = tailnet.Loopback(("127.0.0.1", 4321), "proxy-secret", "api-secret")


def test_the_request_carries_the_credential_and_the_header() -> None:
    exchange = Exchange(LOOPBACK, "POST", "/localapi/v0/x?y=1", {"a": 1})
    head, _, body = exchange.data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /localapi/v0/x?y=1 HTTP/1.1"
    assert "Host: 127.0.0.1:4321" in lines
    assert f"Authorization: Basic {base64.b64encode(b':api-secret').decode()}" in lines
    assert "Sec-Tailscale: localapi" in lines
    assert "Content-Type: application/json" in lines
    assert body == b'{"a": 1}'
    assert f"Content-Length: {len(body)}" in lines


@pytest.mark.parametrize(
    ("method", "path"), [("get", "/x"), ("GET", "x"), ("GET", "/a b"), ("GET", "/a\r\nX: 1"), ("G\nET", "/")]
)
def test_bad_methods_and_paths_are_refused_before_anything_is_sent(method: str, path: str) -> None:
    with pytest.raises(tailnet.ConfigurationError):
        Exchange(LOOPBACK, method, path, None)


def test_a_body_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="body must be"):
        Exchange(LOOPBACK, "POST", "/x", 3.5)  # type: ignore[arg-type]


def test_responses_parse_and_errors_carry_their_status() -> None:
    exchange = Exchange(LOOPBACK, "GET", "/localapi/v0/status", None)
    ok = exchange.response(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"x": [1]}')
    assert (ok.status, ok.headers["content-type"], ok.json()) == (200, "application/json", {"x": [1]})
    with pytest.raises(tailnet.LocalAPIError, match="HTTP 403 Forbidden: denied") as info:
        exchange.response(b"HTTP/1.1 403 Forbidden\r\n\r\ndenied")
    assert info.value.status == 403
    with pytest.raises(tailnet.LocalAPIError, match="malformed response") as info:
        exchange.response(b"not http at all")
    assert info.value.status == 0


def test_the_loopback_repr_hides_both_credentials() -> None:
    assert "secret" not in repr(LOOPBACK)
    assert LOOPBACK.proxy_url == "socks5://tsnet:proxy-secret@127.0.0.1:4321"
