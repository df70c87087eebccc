"""A ``wicket-edge`` process started ahead of time: it imports the appliance's code, then waits
for one line on standard input (a JSON list of arguments) and runs ``wicket-edge`` with them —
the same ``edge.cli.main`` the console script runs, in the same kind of process, signals and
all. The fault run keeps one of these ready so that restarting a killed agent costs the
restart, not the seconds of importing on a busy machine. Empty input: exit without running.
"""

from __future__ import annotations

import json
import sys

import apscheduler.executors.pool  # noqa: F401 - imported ahead: this is the point of the process
import apscheduler.schedulers.blocking  # noqa: F401

import edge.uplink.agent  # noqa: F401
import edge.uplink.service  # noqa: F401
import edge.uplink.snapshot  # noqa: F401
from edge import cli


def main() -> int:
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    argv = json.loads(line)
    sys.stdin.close()
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
