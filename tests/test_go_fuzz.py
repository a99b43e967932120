"""The Go side's own tests, run as part of the suite.

``go/checks_fuzz_test.go``'s ``FuzzArguments`` drives every parser the C
entry points run before doing any work (dial/listen/datagram addresses,
networks, server options, the local tailnet's config, counter names). Here
it runs its seed corpus and then fuzzes for a short while; a longer run by
hand: ``cd go && go test -run '^$' -fuzz FuzzArguments -fuzztime 10m .``

The unit tests of the bridge's socketpair end (the held byte that turns an
abort into ECONNRESET) and of the gVisor internals it reads run too, and
the check that ``go/errors.go``'s return codes are ``go/tailscale.h``'s, and
that a watch gets each event only after the tracked state has it.

The test binary is built first, on its own: on a busy machine the build
alone takes minutes, and its time must not count against anything but a
hang guard.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

GO_DIR = Path(__file__).resolve().parent.parent / "go"
FUZZ_SECONDS = 15

pytestmark = [
    pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain"),
    pytest.mark.timeout(3600),  # a hang guard: the build is minutes on a loaded machine
]


@pytest.fixture(scope="module")
def go_test_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The go/ package's test binary, built offline (in the test namespace the module cache must do)."""
    binary = tmp_path_factory.mktemp("gotest") / "tailnet.test"
    env = {**os.environ, "CGO_ENABLED": "1", "GOPROXY": "off", "GOFLAGS": "-mod=readonly"}
    built = subprocess.run(
        # -fuzz: built with the coverage instrumentation fuzzing needs.
        ["go", "test", "-c", "-fuzz", "^FuzzArguments$", "-o", str(binary), "."],
        cwd=GO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
        check=False,
    )
    assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
    return binary


def run_go_test(binary: Path, *args: str) -> str:
    done = subprocess.run(
        [str(binary), *args], cwd=GO_DIR, capture_output=True, text=True, timeout=600, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "PASS" in output
    return output


def test_go_fuzz_of_the_c_api_arguments(go_test_binary: Path, tmp_path: Path) -> None:
    run_go_test(
        go_test_binary,
        "-test.run",
        "^FuzzArguments$",
        "-test.fuzz",
        "^FuzzArguments$",
        "-test.fuzztime",
        f"{FUZZ_SECONDS}s",
        "-test.fuzzcachedir",
        str(tmp_path / "corpus"),
    )


def test_go_unit_tests(go_test_binary: Path) -> None:
    output = run_go_test(
        go_test_binary,
        "-test.run",
        "^(TestPairEnd|TestEndpointInternals|TestNetstackQueueInternals|TestReturnCodes|TestWatches"
        "|TestCrashOutput|TestCloseAfterAFailedStart|TestStartAfterCloseIsRefused"
        "|TestAnAbortWhoseReasonWasTakenIsNoEOF|TestAnEchoWaitsForTheReason)",
        "-test.v",
    )
    for name in (
        "TestPairEndDeliversThenEOF",
        "TestPairEndAbortIsReset",
        "TestPairEndDrain",
        "TestPairEndCallerResets",
        "TestEndpointInternals",
        "TestNetstackQueueInternals",
        "TestReturnCodesMatchTheHeader",
        "TestWatchesFollowTheTrackedState",
        "TestCrashOutputKeepsTheReport",
        "TestCrashOutputUnopenable",
        "TestCloseAfterAFailedStart",
        "TestStartAfterCloseIsRefused",
        "TestAnAbortWhoseReasonWasTakenIsNoEOF",
        "TestAnEchoWaitsForTheReason",
    ):
        assert f"--- PASS: {name}" in output
