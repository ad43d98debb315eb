"""Zeroconf: the node announces itself as `_edge-pos._tcp.local.`.

TXT carries the store id, node id and protocol version; the mDNS host name
`edge-<node name>.local` (the name its TLS certificate covers, kept across a
restored journal) lets store IT set a till up by name. A node told to listen
on loopback multicasts on loopback only, never on the real network.

A node found is only dialled (in the scheme this node serves: a store's nodes
on the shop network all serve HTTPS), never listed to tills: it is listed once
its peer handshake proved it belongs to the store (edge/replication/peers.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ifaddr

from edge import PROTOCOL_VERSION, __version__

if TYPE_CHECKING:
    from zeroconf import InterfaceChoice, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo

# zeroconf is imported where it is used: a node that does not advertise (most tests, and
# every `edge` command but `serve` and `discover`) does not pay its import (~20 ms).

log = logging.getLogger(__name__)

SERVICE_TYPE = "_edge-pos._tcp.local."


def host_name(node_name: str) -> str:
    return f"edge-{node_name}.local."


def interfaces_for(host: str) -> list[str] | InterfaceChoice:
    from zeroconf import InterfaceChoice

    if host in ("0.0.0.0", ""):
        return InterfaceChoice.All
    return [host]


def addresses_for(host: str) -> list[str]:
    if host not in ("0.0.0.0", ""):
        return [host]
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback:
                found.append(ip.ip)
    return found or ["127.0.0.1"]


def service_info(store_id: str, node_id: str, host: str, port: int,
                 name: str | None = None) -> AsyncServiceInfo:
    from zeroconf.asyncio import AsyncServiceInfo

    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"edge-{node_id}.{SERVICE_TYPE}",
        port=port,
        properties={
            "store": store_id,
            "node": node_id,
            "protocol": str(PROTOCOL_VERSION),
            "version": __version__,
        },
        server=host_name(name or node_id),
        addresses=[socket.inet_aton(address) for address in addresses_for(host)],
    )


def _found(info: AsyncServiceInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "host": info.server,
        "addresses": info.parsed_addresses(),
        "port": info.port,
        "txt": {key.decode(): (value or b"").decode() for key, value in info.properties.items()},
    }


class Discovery:
    """The node's zeroconf: announces it, and finds the store's other nodes."""

    def __init__(self, store_id: str, node_id: str, host: str, port: int, *,
                 name: str | None = None, scheme: str = "http") -> None:
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncZeroconf

        self.store_id = store_id
        self.node_id = node_id
        self.scheme = scheme
        self.info = service_info(store_id, node_id, host, port, name)
        self.zeroconf = AsyncZeroconf(interfaces=interfaces_for(host), ip_version=IPVersion.V4Only)
        self._browser: AsyncServiceBrowser | None = None
        self._lookups: set[asyncio.Task[None]] = set()

    async def announce(self) -> None:
        registration = await self.zeroconf.async_register_service(
            self.info, cooperating_responders=True
        )
        await registration
        log.info("announced on the network as %s (%s)", self.info.name, self.info.server)

    def watch(self, on_peer: Callable[[str], None]) -> None:
        """Call `on_peer(url)` for every other node of this store that shows up."""
        from zeroconf import DNSQuestionType, ServiceStateChange
        from zeroconf.asyncio import AsyncServiceBrowser

        def on_change(zeroconf: object, service_type: str, name: str,
                      state_change: ServiceStateChange) -> None:
            if state_change is not ServiceStateChange.Removed:
                task = asyncio.create_task(self._look_up(name, on_peer))
                self._lookups.add(task)
                task.add_done_callback(self._lookups.discard)

        # QM questions: a unicast reply would be swallowed by our own socket.
        self._browser = AsyncServiceBrowser(
            self.zeroconf.zeroconf, [SERVICE_TYPE], handlers=[on_change],
            question_type=DNSQuestionType.QM,
        )

    async def _look_up(self, name: str, on_peer: Callable[[str], None]) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(self.zeroconf.zeroconf, 3000):
            return
        found = _found(info)
        txt = found["txt"]
        ours = txt.get("store") == self.store_id and txt.get("node") != self.node_id
        if ours and found["addresses"]:
            on_peer(f"{self.scheme}://{found['addresses'][0]}:{found['port']}")

    async def stop(self) -> None:
        if self._browser is not None:
            await self._browser.async_cancel()
        for task in self._lookups:
            task.cancel()
        await asyncio.gather(*self._lookups, return_exceptions=True)
        await self.zeroconf.async_unregister_all_services()
        await self.zeroconf.async_close()


async def browse(interface: str | None, seconds: float) -> list[dict[str, Any]]:
    """Every edge node answering on the network within `seconds`."""
    from zeroconf import DNSQuestionType, InterfaceChoice, IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    interfaces = [interface] if interface else InterfaceChoice.All
    azc = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
    names: set[str] = set()

    def on_change(zeroconf: object, service_type: str, name: str,
                  state_change: ServiceStateChange) -> None:
        if state_change is not ServiceStateChange.Removed:
            names.add(name)

    browser = AsyncServiceBrowser(
        azc.zeroconf, [SERVICE_TYPE], handlers=[on_change], question_type=DNSQuestionType.QM
    )
    try:
        await asyncio.sleep(seconds)
        found = []
        for name in sorted(names):
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if await info.async_request(azc.zeroconf, 3000):
                found.append(_found(info))
        return found
    finally:
        await browser.async_cancel()
        await azc.async_close()
