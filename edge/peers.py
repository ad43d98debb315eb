"""Peers: the nodes of one store replicate their journals to each other.

No leader: every node dials every peer it knows of (found by zeroconf, or
listed in `[peers] urls`) at `/api/peer`, and accepts peers dialling it. On
each link both sides first prove they hold the store key (an HMAC challenge:
the key itself never crosses the wire), then swap version vectors and send
each other what the other lacks, then push every event they commit. Events
are applied with `Tx.apply`: chain-checked, idempotent. A gap (events missed
while the link was busy or down) is healed by sending our vector again; a
tampered event closes the link, is logged, and nothing of it is applied.

Two nodes cut apart keep selling; when they meet again the vectors tell each
what the other missed. A frozen peer is noticed by websocket heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from edge.chain import ChainError, ChainGap, Event, event_from_dict
from edge.journal import Tx

if TYPE_CHECKING:
    from edge.node import Node

log = logging.getLogger(__name__)

PEER_PROTOCOL = 1
HEARTBEAT = 1.0  # seconds; a frozen peer is dropped after ~1.5 of them
BATCH = 500
RESYNC_EVERY = 5.0  # seconds between vector exchanges on a quiet link
RETRY_MAX = 5.0
WRONG_KEY = 4003
BAD_EVENT = 4004


class PeerRefused(Exception):
    """The other side is not a node of this store (or not one we trust)."""


def proof(key: bytes, role: str, nonces: tuple[str, str], node_id: str) -> str:
    message = f"{role}|{nonces[0]}|{nonces[1]}|{node_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass
class PeerState:
    """What store IT sees of one peer (`/healthz`, `edge status`)."""

    node_id: str
    url: str | None = None
    links: int = 0
    last_contact: float | None = None
    their_vector: dict[str, int] = field(default_factory=dict)
    events_received: int = 0
    events_sent: int = 0
    last_error: str | None = None

    def as_dict(self, our_vector: dict[str, int]) -> dict[str, Any]:
        lag = sum(max(0, seq - self.their_vector.get(origin, 0))
                  for origin, seq in our_vector.items())
        ago = None if self.last_contact is None else round(time.monotonic() - self.last_contact, 1)
        return {
            "node_id": self.node_id,
            "url": self.url,
            "connected": self.links > 0,
            "last_contact_s_ago": ago,
            "lag_events": lag if self.links else None,
            "events_received": self.events_received,
            "events_sent": self.events_sent,
            "last_error": self.last_error,
        }


class Peers:
    """This node's side of replication: dialers, accepted links, and their state."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.journal = node.journal
        self.key = node.config.store_key()
        self.url = node.config.public_url()
        self.state: dict[str, PeerState] = {}
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._links: set[PeerLink] = set()
        self._session: aiohttp.ClientSession | None = None
        self._our_vector: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.key is not None

    async def start(self) -> None:
        if not self.enabled:
            log.info("peer replication is off: no store.key_file in the config")
            return
        self._session = aiohttp.ClientSession()
        self.journal.add_listener(self._on_committed)
        for url in self.node.config.peer_urls:
            self.dial(url)

    async def stop(self) -> None:
        for task in self._dialers.values():
            task.cancel()
        for link in list(self._links):
            await link.close()
        await asyncio.gather(*self._dialers.values(), return_exceptions=True)
        self._dialers.clear()
        if self._session:
            await self._session.close()

    async def hang_up(self) -> None:
        """Close every link now (the node is stopping), so no handler keeps it waiting."""
        for link in list(self._links):
            await link.close(1001, "node stopping")

    def dial(self, url: str) -> None:
        """Keep a link to the node at `url` (unless it is us, or already dialled)."""
        url = url.rstrip("/")
        if url == self.url or url in self._dialers or not self.enabled:
            return
        self._dialers[url] = asyncio.create_task(self._dial_forever(url), name=f"peer {url}")

    def nodes(self) -> list[dict[str, str | None]]:
        """Every node of the store we know a URL for, this one first.

        Peers we dial but never reached are listed too (id unknown): a till
        may reach one this node cannot.
        """
        known: list[dict[str, str | None]] = [{"id": self.node.node_id, "url": self.url}]
        known += [{"id": s.node_id, "url": s.url} for s in self.state.values() if s.url]
        listed = {node["url"] for node in known}
        known += [{"id": None, "url": url} for url in self._dialers if url not in listed]
        return known

    def is_connected(self, node_id: str) -> bool:
        state = self.state.get(node_id)
        return state is not None and state.links > 0

    async def status(self) -> list[dict[str, Any]]:
        vector = await self.journal.version_vector()
        return [state.as_dict(vector) for state in self.state.values()]

    async def _dial_forever(self, url: str) -> None:
        delay = 0.2
        while True:
            try:
                assert self._session is not None
                async with self._session.ws_connect(
                    f"{url}/api/peer", heartbeat=HEARTBEAT, max_msg_size=0
                ) as ws:
                    delay = 0.2
                    await PeerLink(self, ws, dialer=True, url=url).run()
            except asyncio.CancelledError:
                raise
            except PeerRefused as refused:
                log.error("peer %s refused: %s", url, refused)
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                log.debug("peer %s unreachable: %s", url, error)
            await asyncio.sleep(delay * (0.5 + secrets.randbelow(1000) / 1000))
            delay = min(delay * 2, RETRY_MAX)

    async def accept(self, request: web.Request) -> web.StreamResponse:
        if not self.enabled:
            raise web.HTTPForbidden(text="this node has no store key: replication is off")
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=0)
        await ws.prepare(request)
        try:
            await PeerLink(self, ws, dialer=False, url=None).run()
        except PeerRefused as refused:
            log.error("peer from %s refused: %s", request.remote, refused)
        return ws

    def _on_committed(self, events: list[Event]) -> None:
        for link in self._links:
            link.push(events)

    def peer(self, node_id: str) -> PeerState:
        return self.state.setdefault(node_id, PeerState(node_id))


class PeerLink:
    """One websocket to one peer, either direction, once it proved the store key."""

    def __init__(
        self, peers: Peers, ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
        *, dialer: bool, url: str | None,
    ) -> None:
        self.peers = peers
        self.ws = ws
        self.dialer = dialer
        self.url = url
        self.state: PeerState | None = None
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def run(self) -> None:
        await self._handshake()
        assert self.state is not None
        self.state.links += 1
        self.peers._links.add(self)
        sender = asyncio.create_task(self._send_loop(), name="peer-sender")
        resync = asyncio.create_task(self._resync_loop(), name="peer-resync")
        try:
            await self._receive_loop()
        finally:
            self.peers._links.discard(self)
            self.state.links -= 1
            resync.cancel()
            self._outbox.put_nowait(None)
            await asyncio.gather(sender, resync, return_exceptions=True)
            log.info("peer %s disconnected", self.state.node_id)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code=code, message=reason.encode())

    async def _receive(self) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=10)
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            raise PeerRefused(f"closed during the handshake ({self.ws.close_code})")
        return orjson.loads(msg.data)

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send_bytes(orjson.dumps(message))

    async def _handshake(self) -> None:
        peers = self.peers
        config = peers.node.config
        assert peers.key is not None
        mine = secrets.token_hex(16)
        hello = {"type": "hello", "protocol": PEER_PROTOCOL, "store": config.store_id,
                 "node": peers.node.node_id, "url": peers.url, "nonce": mine}
        if not self.dialer:
            await self._send(hello)
            theirs = await self._receive()
            self._check_hello(theirs)
            expected = proof(peers.key, "dialer", (mine, theirs["nonce"]), theirs["node"])
            if not hmac.compare_digest(expected, str(theirs.get("proof", ""))):
                await self.close(WRONG_KEY, "wrong store key")
                raise PeerRefused(f"node {theirs['node']} does not hold the store key")
            await self._send({"type": "welcome", "proof": proof(
                peers.key, "listener", (theirs["nonce"], mine), peers.node.node_id)})
        else:
            theirs = await self._receive()
            self._check_hello(theirs)
            hello["proof"] = proof(peers.key, "dialer", (theirs["nonce"], mine), hello["node"])
            await self._send(hello)
            welcome = await self._receive()
            expected = proof(peers.key, "listener", (mine, theirs["nonce"]), theirs["node"])
            if not hmac.compare_digest(expected, str(welcome.get("proof", ""))):
                await self.close(WRONG_KEY, "wrong store key")
                raise PeerRefused(f"node {theirs['node']} does not hold the store key")
        self.state = peers.peer(theirs["node"])
        self.state.url = theirs.get("url") or self.url
        self.state.last_contact = time.monotonic()
        self.state.last_error = None
        log.info("peer %s connected (%s)", theirs["node"], self.state.url)

    def _check_hello(self, hello: dict[str, Any]) -> None:
        config = self.peers.node.config
        if hello.get("type") != "hello" or not isinstance(hello.get("node"), str):
            raise PeerRefused("not an edge peer")
        if hello.get("store") != config.store_id:
            raise PeerRefused(f"node {hello['node']} belongs to store {hello.get('store')!r}")
        if hello["node"] == self.peers.node.node_id:
            raise PeerRefused("that is this node itself")

    def push(self, events: list[Event]) -> None:
        self._outbox.put_nowait({"type": "events", "events": [e.as_dict() for e in events]})

    async def _send_loop(self) -> None:
        await self._send({"type": "vector", "vector": await self.peers.journal.version_vector()})
        while (message := await self._outbox.get()) is not None:
            if self.ws.closed:
                return
            await self._send(message)
            if message["type"] == "events" and self.state:
                self.state.events_sent += len(message["events"])

    async def _resync_loop(self) -> None:
        # Heals anything a live push missed; also how lag is measured.
        while True:
            await asyncio.sleep(RESYNC_EVERY)
            vector = await self.peers.journal.version_vector()
            self._outbox.put_nowait({"type": "vector", "vector": vector})

    async def _receive_loop(self) -> None:
        assert self.state is not None
        async for msg in self.ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            self.state.last_contact = time.monotonic()
            message = orjson.loads(msg.data)
            if message.get("type") == "vector":
                self.state.their_vector = dict(message["vector"])
                await self._send_missing(self.state.their_vector)
            elif message.get("type") == "events":
                await self._apply(message["events"])

    async def _send_missing(self, vector: dict[str, int]) -> None:
        journal = self.peers.journal
        vector = dict(vector)
        while events := await journal.events_after(vector, BATCH):
            self._outbox.put_nowait({"type": "events", "events": [e.as_dict() for e in events]})
            for event in events:
                vector[event.origin] = max(vector.get(event.origin, 0), event.seq)

    async def _apply(self, raw: Iterable[dict[str, Any]]) -> None:
        assert self.state is not None
        try:
            events = [event_from_dict(item) for item in raw]
        except (KeyError, TypeError, ValueError) as error:
            await self._refuse(f"malformed event: {error}")
            return

        def work(tx: Tx) -> int:
            return sum(tx.apply(event) for event in events)

        try:
            applied = await self.peers.journal.write(work)
        except ChainGap:
            # We missed some: tell them what we have, they send the rest.
            vector = await self.peers.journal.version_vector()
            self._outbox.put_nowait({"type": "vector", "vector": vector})
            return
        except ChainError as error:
            await self._refuse(f"tampered or forked event: {error}")
            return
        self.state.events_received += applied

    async def _refuse(self, why: str) -> None:
        assert self.state is not None
        log.error("peer %s sent bad events, link closed, nothing applied: %s",
                  self.state.node_id, why)
        self.state.last_error = why
        with contextlib.suppress(Exception):
            await self.close(BAD_EVENT, "bad event")
