"""Which web pages may talk to the node, and by which names the node may be asked for.

A browser on the shop's network visits other sites too. Without a check, a
page from anywhere (a customer's laptop, a site a till browser was sent to)
could open `/api/ws` or post to `/api/` with the browser's help, and a page
whose name an attacker points at the node's address (DNS rebinding) could
read what the node serves as if it were the node's own. So:

- **Origin**, on `/api/` (the till websocket, pairing, peers, store IT's
  admin calls): when a request carries one, which every browser does for a
  websocket and for a POST, it must be a page of the store: this node by
  any name it answers to (its configured `server.url`, `edge-<node>.local`,
  its IP addresses, loopback) at its port, or another node of the store
  (a till page served by one node fails over to the others) by its URL,
  its `edge-<node>.local` name, or loopback at its port (a till PC running
  its own node opens `http://localhost:…`). A request without Origin comes
  from no browser page (the Python till, peers, `edge` commands, curl) and
  is let through: it carries its own credentials.
- **Host**, on every request: a name, not an address, must be one of the
  node's own (its configured URL's, `edge-<node>.local`, `localhost`). An
  address is always fine: a rebinding page has a name of its own. A node
  that store IT reaches by a name of the shop's DNS needs that name as
  `server.url`.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import ifaddr
from aiohttp import web

from edge.config import Config

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
ADDRESSES_FRESH_FOR = 30.0  # interface addresses change (DHCP): looked up again after this
WARN_EVERY = 60.0  # a refused name or origin is logged at most once a minute
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

Place = tuple[str, int]  # a host name or address (lower case, no brackets), and a port


def split_host(value: str, default_port: int | None = None) -> Place | None:
    """`name:port`, `[v6]:port` or a bare name as (host, port); None if it is no host."""
    try:
        parts = urlsplit(f"//{value.strip()}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    port = port if port is not None else default_port
    return (host.rstrip(".").lower(), port if port is not None else 0)


def split_origin(origin: str) -> Place | None:
    """An Origin header (`http://name:port`) as (host, port); None for `null` or junk."""
    try:
        parts = urlsplit(origin.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return None
    return (host.rstrip(".").lower(), port if port is not None else DEFAULT_PORTS[parts.scheme])


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def mdns_name(node_id: str) -> str:
    return f"edge-{node_id}.local".lower()


class ServedOrigins:
    """The names and origins a node answers to; `store_nodes` gives the other nodes'."""

    def __init__(self, config: Config, node_id: Callable[[], str | None],
                 store_nodes: Callable[[], Iterable[dict[str, str | None]]],
                 node_name: Callable[[], str | None] = lambda: None) -> None:
        self.config = config
        self._node_id = node_id
        self._node_name = node_name  # its certificate's name: edge-<name>.local (mDNS)
        self._store_nodes = store_nodes
        self._addresses: frozenset[str] = frozenset()
        self._addresses_at = -ADDRESSES_FRESH_FOR
        self._warned: dict[str, float] = {}
        url = split_origin(config.url) if config.url else None
        self._url = url

    # Host

    def own_names(self) -> set[str]:
        names = set(LOOPBACK_NAMES)
        node_id = self._node_id()
        if node_id:
            names.add(mdns_name(node_id))
        node_name = self._node_name()
        if node_name:
            names.add(mdns_name(node_name))
        if self._url is not None:
            names.add(self._url[0])
        if not is_address(self.config.host) and self.config.host not in ("", "0.0.0.0", "::"):
            names.add(self.config.host.lower())
        return names

    def allows_host(self, header: str | None) -> bool:
        """Is this Host header a name of this node (or an address, or absent)?"""
        if header is None:
            return True  # no browser sends a request without one
        place = split_host(header)
        if place is None:
            return False
        return is_address(place[0]) or place[0] in self.own_names()

    # Origin

    def own_addresses(self) -> frozenset[str]:
        """The addresses this node is reached at: its listening one, or every interface's."""
        if self.config.host not in ("", "0.0.0.0", "::"):
            return frozenset({self.config.host.lower()})
        now = time.monotonic()
        if now - self._addresses_at >= ADDRESSES_FRESH_FOR:
            found = set()
            for adapter in ifaddr.get_adapters():
                for ip in adapter.ips:
                    if isinstance(ip.ip, str):
                        found.add(ip.ip.lower())
                    elif isinstance(ip.ip, tuple):
                        found.add(ip.ip[0].lower())
            self._addresses, self._addresses_at = frozenset(found), now
        return self._addresses

    def allows_origin(self, header: str) -> bool:
        place = split_origin(header)
        if place is None:
            return False
        host, port = place
        if self._url is not None and place == self._url:
            return True
        if port == self.config.port and (is_loopback(host) or host in self.own_names()):
            return True
        if port == self.config.port and host in self.own_addresses():
            return True
        return any(self._is_store_node(host, port, node) for node in self._store_nodes())

    @staticmethod
    def _is_store_node(host: str, port: int, node: dict[str, str | None]) -> bool:
        url = split_origin(node.get("url") or "")
        if url is None or url[1] != port:
            return False
        names = {mdns_name(name) for name in (node.get("id"), node.get("name")) if name}
        return host == url[0] or is_loopback(host) or host in names

    def warn(self, what: str, request: web.Request) -> None:
        now = time.monotonic()
        if now - self._warned.get(what, -WARN_EVERY) >= WARN_EVERY:
            if len(self._warned) > 256:
                self._warned.clear()
            self._warned[what] = now
            log.warning("refused a request from %s: %s (set server.url if that is this "
                        "node's own name)", request.remote, what)


SERVED_ORIGINS = web.AppKey("served_origins", ServedOrigins)


@web.middleware
async def check_origin_and_host(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Refuse a request for a name that is not the node's, or from another site's page."""
    served = request.app[SERVED_ORIGINS]
    host = request.headers.get("Host")
    if not served.allows_host(host):
        served.warn(f"Host {host[:100]!r} is not a name of this node", request)
        raise web.HTTPMisdirectedRequest(text="this node does not answer to that name")
    origin = request.headers.get("Origin")
    if origin is not None and request.path.startswith("/api/") \
            and not served.allows_origin(origin):
        served.warn(f"Origin {origin[:100]!r} is not a page of this store", request)
        raise web.HTTPForbidden(text="pages of other sites may not use this node's API")
    return await handler(request)
