"""The C API's text and byte formats (tailnet._binding.formats), without the library."""

from __future__ import annotations

import ipaddress
import math

import pytest

import tailnet
from tailnet._binding import formats


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100.64.0.1:80 100.64.0.2:1234 7", (("100.64.0.1", 80), ("100.64.0.2", 1234), 7)),
        (
            "[fd7a:115c:a1e0::1]:443 [fd7a:115c:a1e0::2]:5 12",
            (("fd7a:115c:a1e0::1", 443), ("fd7a:115c:a1e0::2", 5), 12),
        ),
        ("100.64.0.1:53 100.64.0.2:5353", (("100.64.0.1", 53), ("100.64.0.2", 5353), None)),  # UDP: no number
    ],
)
def test_a_connection_text_gives_its_addresses_and_number(
    text: str, expected: tuple[tuple[str, int], tuple[str, int], int | None]
) -> None:
    assert formats.parse_connection(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "100.64.0.1:80", "a b c d", "100.64.0.1:80 100.64.0.2:1 x", "100.64.0.1 100.64.0.2:1", "1:2 3:-4"],
)
def test_a_malformed_connection_text_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"not"):
        formats.parse_connection(text)


def test_hostport_keeps_ipv6_without_brackets() -> None:
    assert formats.parse_hostport("[::1]:8080") == ("::1", 8080)
    assert formats.parse_hostport("100.64.0.1:0") == ("100.64.0.1", 0)


def test_listener_text() -> None:
    assert formats.parse_listener("42 100.64.0.1:443") == (42, "100.64.0.1:443")
    for bad in ("", "x 1.2.3.4:5", "42", "42 "):
        with pytest.raises(tailnet.InternalError):
            formats.parse_listener(bad)


def test_lists_ips_domains_addresses() -> None:
    assert formats.parse_ips("100.64.0.1,fd7a::1") == (
        ipaddress.IPv4Address("100.64.0.1"),
        ipaddress.IPv6Address("fd7a::1"),
    )
    assert formats.parse_ips("") == ()
    assert formats.parse_domains("a.ts.net,b.ts.net") == ("a.ts.net", "b.ts.net")
    assert formats.parse_domains("") == ()
    assert formats.parse_addresses("100.64.0.1:5,[fd7a::1]:5") == (("100.64.0.1", 5), ("fd7a::1", 5))


def test_state_and_close_result() -> None:
    assert formats.parse_state("Running") == ("Running", None)
    assert formats.parse_state("NeedsLogin http://c/auth/1") == ("NeedsLogin", "http://c/auth/1")
    assert formats.parse_close_result("2 1048576") == (2, 1048576)
    with pytest.raises(tailnet.InternalError):
        formats.parse_close_result("two bytes")


@pytest.mark.parametrize(
    ("timeout", "ms"), [(None, -1), (0, 0), (0.0001, 1), (1.5, 1500), (math.inf, -1), (True, TypeError)]
)
def test_timeouts_in_milliseconds(timeout: object, ms: int | type[Exception]) -> None:
    if isinstance(ms, type):
        with pytest.raises(ms):
            formats.timeout_ms(timeout)  # type: ignore[arg-type]
    else:
        assert formats.timeout_ms(timeout) == ms  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [-1, math.nan])
def test_a_negative_or_nan_timeout_is_a_configuration_error(timeout: float) -> None:
    with pytest.raises(tailnet.ConfigurationError, match="timeout"):
        formats.timeout_ms(timeout)


def test_c_strings_refuse_nul_and_lone_surrogates_naming_the_argument_only() -> None:
    assert formats.c_string("hostname", "héllo") == "héllo".encode()
    with pytest.raises(tailnet.ConfigurationError, match="authkey must not contain NUL") as info:
        formats.c_string("authkey", "secret\x00key")
    assert "secret" not in str(info.value)
    with pytest.raises(tailnet.ConfigurationError, match="surrogates"):
        formats.c_string("hostname", "\ud800")
    with pytest.raises(TypeError, match="hostname must be a str"):
        formats.c_string("hostname", b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "text"),
    [("peer:80", "peer:80"), (("peer", 80), "peer:80"), (("fd7a::1", 80), "[fd7a::1]:80"), (("h", 0), "h:0")],
)
def test_dial_addresses(address: str | tuple[str, int], text: str) -> None:
    assert formats.format_address(address) == text


@pytest.mark.parametrize(
    ("address", "error"),
    [
        (("h", 70000), tailnet.ConfigurationError),
        (("h", True), TypeError),
        (("h", "80"), TypeError),
        (80, TypeError),
    ],
)
def test_bad_dial_addresses(address: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        formats.format_address(address)  # type: ignore[arg-type]


@pytest.mark.parametrize("ip", ["100.64.0.1", "fd7a:115c:a1e0::1"])
def test_datagram_headers_round_trip(ip: str) -> None:
    address = ipaddress.ip_address(ip)
    message = formats.encode_header(address, 5353) + b"payload"
    assert message[0] == len(address.packed)
    sources: dict[bytes, tuple[str, int]] = {}
    assert formats.decode_datagram(message, sources) == (b"payload", (ip, 5353))
    assert formats.decode_datagram(message, sources) == (b"payload", (ip, 5353))  # from the cache
    assert len(sources) == 1
    assert formats.decode_datagram(formats.encode_header(address, 1), None) == (b"", (ip, 1))


@pytest.mark.parametrize("message", [b"", b"\x05abcdefg", b"\x04\x01\x02", b"\x10" + bytes(10)])
def test_a_malformed_datagram_header_is_an_internal_error(message: bytes) -> None:
    with pytest.raises(tailnet.InternalError, match="malformed datagram header"):
        formats.decode_datagram(message)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (1, "1 s"),
        (0.9999614329999531, "1 s"),
        (0.25, "0.25 s"),
        (0.1 + 0.2, "0.3 s"),
        (90, "90 s"),
        (1234.5, "1234.5 s"),
        (0.0004, "0.0004 s"),
        (0, "0 s"),
        (None, "no limit"),
    ],
)
def test_seconds_in_messages_are_rounded(seconds: float | None, shown: str) -> None:
    assert formats.seconds(seconds) == shown
