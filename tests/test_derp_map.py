"""LocalTailnet.derp_map: the relay and STUN server another control server can hand out."""

from __future__ import annotations

import pytest

import tailnet
from tailnet.testing import LocalTailnet


def test_the_derp_map_names_the_local_relay(local_tailnet: LocalTailnet) -> None:
    regions = local_tailnet.derp_map["Regions"]
    assert list(regions) == ["1"]
    (node,) = regions["1"]["Nodes"]
    assert node["HostName"] == node["IPv4"] == "127.0.0.1"
    assert node["InsecureForTests"] is True
    assert node["DERPPort"] > 0
    assert node["STUNPort"] > 0


def test_a_closed_local_tailnet_has_no_derp_map() -> None:
    net = LocalTailnet()
    net.close()
    with pytest.raises(tailnet.ClosedError):
        _ = net.derp_map


def test_a_buffer_too_small_for_the_derp_map_is_an_error(local_tailnet: LocalTailnet) -> None:
    from tailnet._binding import calls, library

    ffi = library.ffi()
    out, err = ffi.new("char[]", 16), ffi.new("char[]", calls.ERRBUF_SIZE)
    code = library.lib().tailnet_localnet_derp_map(local_tailnet._live(), out, 16, err, calls.ERRBUF_SIZE)
    with pytest.raises(tailnet.ConfigurationError, match="too small"):
        calls.raise_for_code(code, ffi.string(err).decode())
    assert ffi.string(out) == b""  # nothing written, not a truncated map
