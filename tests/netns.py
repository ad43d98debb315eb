"""Network namespaces made by the tests: real hosts for real mDNS, never the real network."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def linked_hosts(prefix: str = "10.231.0") -> Iterator[tuple[tuple[str, str], tuple[str, str]]]:
    """Two namespaces joined by a veth pair: ((ns_a, addr_a), (ns_b, addr_b))."""
    tag = f"edge{os.getpid() % 100000}"
    a, b = f"{tag}a", f"{tag}b"
    ip("netns", "add", a)
    ip("netns", "add", b)
    try:
        ip("link", "add", f"v{a}", "type", "veth", "peer", "name", f"v{b}")
        ip("link", "set", f"v{a}", "netns", a)
        ip("link", "set", f"v{b}", "netns", b)
        for ns, addr in ((a, f"{prefix}.1"), (b, f"{prefix}.2")):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", f"v{ns}")
            ip("-n", ns, "link", "set", f"v{ns}", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield (a, f"{prefix}.1"), (b, f"{prefix}.2")
    finally:
        for ns in (a, b):
            with contextlib.suppress(subprocess.CalledProcessError):
                ip("netns", "delete", ns)


def in_namespace(ns: str, args: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]


@contextlib.contextmanager
def lone_host(address: str = "10.231.9.2", *more_addresses: str) -> Iterator[str]:
    """A namespace whose only address (besides 127.0.0.1) is `address`, on its loopback.

    Pages served from it are not a secure context, as on a shop's network.
    `more_addresses` go on the same loopback: several "machines" (nodes) that
    the browser in the namespace reaches as it would on a shop's LAN.
    """
    ns = f"edge{os.getpid() % 100000}t"
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        for each in (address, *more_addresses):
            ip("-n", ns, "addr", "add", f"{each}/32", "dev", "lo")
        yield ns
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("netns", "delete", ns)


@contextlib.contextmanager
def switched_hosts(count: int, prefix: str = "10.231.1") -> Iterator[list[tuple[str, str]]]:
    """`count` namespaces on one Ethernet switch (a bridge in a namespace of its own):
    [(ns, address), ...], addresses `prefix`.1, .2, ... Real multicast (mDNS) reaches
    every host, as on a shop's LAN where tills, nodes and anyone on the Wi-Fi meet."""
    tag = f"edge{os.getpid() % 100000}"
    switch = f"{tag}s"
    hosts = [(f"{tag}h{number}", f"{prefix}.{number}") for number in range(1, count + 1)]
    made: list[str] = []
    try:
        for ns in (switch, *(ns for ns, _ in hosts)):
            ip("netns", "add", ns)
            made.append(ns)
        ip("-n", switch, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0",
           "forward_delay", "0")
        ip("-n", switch, "link", "set", "br0", "up")
        for number, (ns, address) in enumerate(hosts, start=1):
            host_end, switch_end = f"v{tag}h{number}", f"v{tag}s{number}"
            ip("link", "add", host_end, "type", "veth", "peer", "name", switch_end)
            ip("link", "set", host_end, "netns", ns)
            ip("link", "set", switch_end, "netns", switch)
            ip("-n", switch, "link", "set", switch_end, "master", "br0")
            ip("-n", switch, "link", "set", switch_end, "up")
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", host_end)
            ip("-n", ns, "link", "set", host_end, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield hosts
    finally:
        for ns in reversed(made):
            with contextlib.suppress(subprocess.CalledProcessError):
                ip("netns", "delete", ns)
