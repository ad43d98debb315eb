"""Zeroconf: the node announces itself as `_edge-pos._tcp.local.`.

TXT carries the store id, node id and protocol version; the mDNS host name
`edge-<node>.local` lets store IT set a till up by name. A node told to
listen on loopback multicasts on loopback only, never on the real network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

import ifaddr
from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from edge import PROTOCOL_VERSION, __version__

log = logging.getLogger(__name__)

SERVICE_TYPE = "_edge-pos._tcp.local."


def host_name(node_id: str) -> str:
    return f"edge-{node_id}.local."


def interfaces_for(host: str) -> list[str] | InterfaceChoice:
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


def service_info(store_id: str, node_id: str, host: str, port: int) -> AsyncServiceInfo:
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
        server=host_name(node_id),
        addresses=[socket.inet_aton(address) for address in addresses_for(host)],
    )


class Advertiser:
    """Owns the node's zeroconf instance and its one registered service."""

    def __init__(self, store_id: str, node_id: str, host: str, port: int) -> None:
        self.info = service_info(store_id, node_id, host, port)
        self.zeroconf = AsyncZeroconf(interfaces=interfaces_for(host), ip_version=IPVersion.V4Only)

    async def start(self) -> None:
        registration = await self.zeroconf.async_register_service(
            self.info, cooperating_responders=True
        )
        await registration
        log.info("announced on the network as %s (%s)", self.info.name, self.info.server)

    async def stop(self) -> None:
        await self.zeroconf.async_unregister_all_services()
        await self.zeroconf.async_close()


async def browse(interface: str | None, seconds: float) -> list[dict[str, object]]:
    """Every edge node answering on the network within `seconds`."""
    from zeroconf import DNSQuestionType, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser

    interfaces = [interface] if interface else InterfaceChoice.All
    azc = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
    names: set[str] = set()

    def on_change(zeroconf: object, service_type: str, name: str,
                  state_change: ServiceStateChange) -> None:
        if state_change is not ServiceStateChange.Removed:
            names.add(name)

    # QM questions: a unicast reply would be swallowed by the node's own socket.
    browser = AsyncServiceBrowser(
        azc.zeroconf, [SERVICE_TYPE], handlers=[on_change], question_type=DNSQuestionType.QM
    )
    try:
        await asyncio.sleep(seconds)
        found = []
        for name in sorted(names):
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(azc.zeroconf, 3000):
                continue
            found.append({
                "name": name,
                "host": info.server,
                "addresses": info.parsed_addresses(),
                "port": info.port,
                "txt": {
                    key.decode(): (value or b"").decode() for key, value in info.properties.items()
                },
            })
        return found
    finally:
        await browser.async_cancel()
        await azc.async_close()
