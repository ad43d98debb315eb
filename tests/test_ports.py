"""The suite's loopback ports: one port is never handed to two servers of a run.

A port is picked, closed, and bound later by a node. Picked by the kernel (bind to
port 0), it could be offered again meanwhile (about once in 12,000 picks here): two
nodes of one test then shared a port, once in a while, in CI. And ./dev test runs two
workers: a port handed out by one must never be handed out by the other.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import ports
import pytest


@pytest.fixture
def picks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The ports free_port will try, in order (a fresh run: none handed out yet)."""
    tried: list[int] = []
    monkeypatch.setattr(ports, "_PORTS_GIVEN", set())
    monkeypatch.setattr(ports.random, "randrange", lambda *_: tried.pop(0))
    yield tried


def unused_ports(count: int) -> list[int]:
    """Ports nobody holds this instant (the kernel's picks, never free_port's: the other
    worker may be listening on any of those)."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    found = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return found


def test_a_port_is_never_handed_out_twice(picks: list[int]) -> None:
    first, second = unused_ports(2)
    picks.extend([first, first, second])
    assert [ports.free_port(), ports.free_port()] == [first, second]


def test_a_port_someone_listens_on_is_skipped(picks: list[int]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        [free] = unused_ports(1)
        picks.extend([taken.getsockname()[1], free])
        assert ports.free_port() == free


def test_two_workers_never_share_a_port(monkeypatch: pytest.MonkeyPatch) -> None:
    handed: dict[int, set[int]] = {}
    for share in (0, 1):
        monkeypatch.setattr(ports, "_PORTS_GIVEN", set())
        monkeypatch.setattr(ports, "_WORKERS", 2)
        monkeypatch.setattr(ports, "_SHARE", share)
        handed[share] = {ports.free_port() for _ in range(200)}
        assert all(port % 2 == share for port in handed[share])  # FIRST is even
        assert all(ports.FIRST <= port < ports.LAST for port in handed[share])
    assert len(handed[0]) == len(handed[1]) == 200
    assert not handed[0] & handed[1]
