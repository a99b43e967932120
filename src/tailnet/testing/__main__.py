"""``python -m tailnet.testing``: a local tailnet in its own process.

The same launcher as ``tailnet local-tailnet`` (same options, same output),
for tests that put nodes in other processes, network namespaces or
containers: ``--json`` prints the tailnet as one JSON line, and commands
on stdin pause, resume or filter it while the test runs. See the
``tailnet local-tailnet`` section of the command line's docs.
"""

from __future__ import annotations

import argparse
import sys

from ._launcher import COMMANDS, DESCRIPTION, add_options, run

__all__ = ["main"]

PROG = "python -m tailnet.testing"


def parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    result = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=COMMANDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(result)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run until quit, end of input, Ctrl-C or SIGTERM; return the exit status."""
    return run(parser().parse_args(argv), PROG)


if __name__ == "__main__":
    sys.exit(main())
