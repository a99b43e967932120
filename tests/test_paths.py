"""The path to a peer, as ping and status report it: direct, or relayed through DERP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHILD = """
import json, time
from tailnet.testing import LocalTailnet

with LocalTailnet() as net, net.server("derp-a") as a, net.server("derp-b") as b:
    deadline = time.monotonic() + 30
    while a.status().peer("derp-b") is None and time.monotonic() < deadline:
        time.sleep(0.05)  # network maps propagate asynchronously
    ping = a.ping("derp-b", timeout=30)
    peer = a.status().peer("derp-b")
    print(json.dumps({
        "ping_path": ping.path.value, "ping_region": ping.derp_region, "ping_region_id": ping.derp_region_id,
        "direct": ping.direct, "latency": ping.latency, "endpoint": ping.endpoint,
        "peer_path": peer.path.value, "peer_region": peer.derp_region, "peer_direct": peer.direct,
    }))
"""


def test_relayed_path_names_the_derp_region() -> None:
    # TS_DEBUG_ALWAYS_USE_DERP turns off direct UDP for the whole process
    # (read when the library loads), so this runs in a child process.
    env = {**os.environ, "TS_DEBUG_ALWAYS_USE_DERP": "true"}
    result = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["ping_path"] == "derp"
    assert seen["ping_region"] == "local"
    assert seen["ping_region_id"] == 1
    assert not seen["direct"]
    assert seen["endpoint"] is None
    assert seen["latency"] > 0
    assert seen["peer_path"] == "derp"
    assert seen["peer_region"] == "local"
    assert not seen["peer_direct"]
