"""Loopback ports for the servers a test starts, each handed out once per run."""

from __future__ import annotations

import os
import random
import socket

# Below the kernel's own range (ip_local_port_range, 32768-60999 by default): the kernel
# never gives one of these to a connection or a bind(0) on its own, so a port stays free
# between its pick here and the bind of the node it is for (often started later, or
# restarted on it). Picked by the kernel before, two nodes of one test got the same port
# about once in 12,000 pairs.
FIRST, LAST = 20_000, 32_768
# Every port free_port handed out in this run: never twice.
_PORTS_GIVEN: set[int] = set()
# Under pytest-xdist (./dev test runs two workers) each worker has its own share of the
# ports (every n-th), so two workers never hand out the same one either.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
_SHARE = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def free_port() -> int:
    """A loopback port nobody listens on, never one handed out before in this run."""
    while True:
        port = random.randrange(FIRST + _SHARE, LAST, _WORKERS)
        if port in _PORTS_GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # someone has it
                continue
        _PORTS_GIVEN.add(port)
        return port
