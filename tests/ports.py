"""Loopback ports for the servers a test starts, each handed out once per run."""

from __future__ import annotations

import socket

# Every port free_port handed out in this run. A port is closed when it is returned and
# bound later (by a node, often one started after the next port is picked, or restarted on
# it), so the kernel may offer it again meanwhile: two nodes of one test then got the same
# port about once in 12,000 pairs, and one of them failed to start.
_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on, never one handed out before in this run."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
