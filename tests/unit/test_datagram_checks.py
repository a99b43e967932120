"""What the UDP sockets check before anything reaches the library (tailnet._datagram)."""

from __future__ import annotations

import ipaddress

import pytest

import tailnet
from tailnet._datagram import check_payload, is_datagram_network, parse_destination

V4 = ipaddress.IPv4Address("100.64.0.1")
V6 = ipaddress.IPv6Address("fd7a::1")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (("100.64.0.1", 53), (V4, 53)),
        ("100.64.0.1:53", (V4, 53)),
        ("[fd7a::1]:53", (V6, 53)),
        ((V6, 53), (V6, 53)),
        (("::ffff:100.64.0.1", 53), (V4, 53)),  # an IPv4-mapped address is the IPv4 one
    ],
)
def test_destinations(address: object, expected: tuple[object, int]) -> None:
    assert parse_destination(address) == expected


@pytest.mark.parametrize(
    ("address", "error", "match"),
    [
        (("peer", 53), tailnet.ConfigurationError, "not an IP address"),
        ("100.64.0.1", tailnet.ConfigurationError, "must be 'ip:port'"),
        (("100.64.0.1", 0), tailnet.ConfigurationError, "out of range"),
        (("0.0.0.0", 53), tailnet.ConfigurationError, "unspecified"),
        (("100.64.0.1", True), TypeError, "ip: str, port: int"),
        (53, TypeError, "address must be"),
    ],
)
def test_bad_destinations(address: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        parse_destination(address)


def test_payload_limits_per_family() -> None:
    assert check_payload(b"x" * tailnet.MAX_DATAGRAM, V4) == tailnet.MAX_DATAGRAM
    assert check_payload(memoryview(b"abc"), V6) == 3
    with pytest.raises(tailnet.DatagramTooLarge, match="IPv4"):
        check_payload(b"x" * (tailnet.MAX_DATAGRAM + 1), V4)
    with pytest.raises(tailnet.DatagramTooLarge, match="unfragmented"):
        check_payload(b"x" * (tailnet.MAX_DATAGRAM6 + 1), V6)
    with pytest.raises(TypeError, match="bytes-like"):
        check_payload("text", V4)


def test_datagram_networks() -> None:
    assert [n for n in ("udp", "udp4", "udp6", "tcp", "UDP", 4) if is_datagram_network(n)] == [
        "udp",
        "udp4",
        "udp6",
    ]
