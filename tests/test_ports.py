"""The suite's loopback ports: one port is never handed to two servers of a run.

A port is picked, closed, and bound later by a node, so the kernel may offer it
again meanwhile (about once in 12,000 picks here): two nodes of one test then
shared a port and one failed to start, once in a while, in CI.
"""

from __future__ import annotations

from types import SimpleNamespace

import ports
import pytest


def test_a_port_the_kernel_offers_again_is_not_handed_out_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offered = iter([41001, 41001, 41003])

    class OfferedSocket:
        """A socket bound where the kernel says: the same port twice in a row."""

        def __init__(self) -> None:
            self.port = next(offered)

        def __enter__(self) -> OfferedSocket:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def bind(self, address: tuple[str, int]) -> None:
            assert address == ("127.0.0.1", 0)

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(ports, "_PORTS_GIVEN", set())
    monkeypatch.setattr(ports, "socket", SimpleNamespace(socket=OfferedSocket))
    assert [ports.free_port(), ports.free_port()] == [41001, 41003]
