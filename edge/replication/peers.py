"""Peers: the nodes of one store replicate their journals to each other.

No leader: every node dials every peer it knows of (found by zeroconf, or
listed in `[peers] urls`) at `/api/peer`, and accepts peers dialling it.
When the node serves TLS (docs/tls.md) a link is mutual TLS: the dialler
shows its node certificate and checks the listener's (issued by the store CA
for the name or address dialled), and the listener refuses, before anything
else, a peer without a verified certificate of this store (close code 4005).
On each link both sides then prove they hold the store key (an HMAC
challenge: the key itself never crosses the wire), then swap version vectors; each then
streams the other what it lacks (`edge/replication/catchup.py`: from a
cursor, one bounded batch at a time, each event once, never echoing back what
the peer sent us, in the time this node's tills leave: `pacing.py`), then
every event it commits. When two links join the same pair of
nodes, each side sends on one of them only.

Events are applied with `Tx.apply`: chain-checked, idempotent. A gap (events
we cannot apply yet) or a failed commit is healed by sending our vector with
`rewind`: the peer resends from there, once, however many batches were in
flight. A tampered event closes the link, is logged, and nothing of it is
applied. Anything unexpected closes the link too (logged, shown as the
peer's `last_error`); dialers retry with backoff, forever.

Liveness is ours, not the websocket heartbeat's: any frame received counts as
contact, each side pings only when it has sent nothing for a while, and a
link silent for SILENCE_LIMIT while we wait on it is dropped (a frozen peer
is noticed within 3 s). Time spent applying a batch is not silence, so a busy
node does not drop its links.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from edge.journal.chain import ChainError, ChainGap, Event, event_from_dict
from edge.journal.store import Tx
from edge.journal.tx import OwnOriginSeen
from edge.replication.catchup import JournalReader, Outflow
from edge.replication.pacing import TillActivity
from edge.trust.certificates import store_uri

if TYPE_CHECKING:
    from edge.node import Node

log = logging.getLogger(__name__)

# The largest frame a peer may send: a batch is at most catchup.MAX_BYTES, and
# one event (a 500-line offline sale) well under a megabyte. Without a bound,
# anyone on the LAN could make the node buffer a frame as large as it says.
MAX_MESSAGE = 4 * 1024 * 1024

PEER_PROTOCOL = 1
PING_EVERY = 0.5  # seconds without sending anything before we ping
SILENCE_LIMIT = 2.5  # seconds of silence (while we wait on the link) before it is dropped
CHECK_EVERY = 0.2
RESYNC_EVERY = 5.0  # seconds between vector exchanges: heals what a push missed, measures lag
CLOSE_WAIT = 2.0  # seconds a closing link may take before its socket is cut
HANDSHAKE_SECONDS = 10.0  # seconds each handshake message may take: a silent socket is dropped
RETRY_MAX = 5.0
REFUSED_RETRY = 60.0  # seconds between dials of a URL whose certificate is not the store's
STABLE_LINK = 10.0  # a link that lasted this long resets the dialer's backoff
WRONG_KEY = 4003
NO_STORE_CERTIFICATE = 4005
BAD_EVENT = 4004
UNEXPECTED = 1011


class PeerRefused(Exception):
    """The other side is not a node of this store (or not one we trust)."""


class ApplyFailed(Exception):
    """Events from a peer could not be applied (a failed commit): the link starts over."""


def proof(key: bytes, role: str, nonces: tuple[str, str], node_id: str) -> str:
    message = f"{role}|{nonces[0]}|{nonces[1]}|{node_id}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


@dataclass
class PeerState:
    """What store IT sees of one peer (`/healthz`, `edge status`), and what it holds."""

    node_id: str
    url: str | None = None
    name: str | None = None  # its certificate's node name (edge-<name>.local), with TLS
    links: int = 0
    links_opened: int = 0
    last_contact: float | None = None
    their_vector: dict[str, int] = field(default_factory=dict)
    events_received: int = 0
    events_already_held: int = 0
    events_sent: int = 0
    outbox_high_water: int = 0
    catchup_yields: int = 0  # catch-up batches that waited for a till command here
    last_error: str | None = None
    last_error_at: float | None = None
    # What the peer holds, as far as we know: its vectors, and the events it sent us.
    known: dict[str, int] = field(default_factory=dict, repr=False)
    # The one link we send on (a pair of nodes may be joined by two).
    sender: PeerLink | None = field(default=None, repr=False)

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
            "events_already_held": self.events_already_held,
            "events_sent": self.events_sent,
            "outbox_high_water": self.outbox_high_water,
            "catchup_yields": self.catchup_yields,
            "links_opened": self.links_opened,
            "last_error": self.last_error,
            "last_error_s_ago": None if self.last_error_at is None
            else round(time.monotonic() - self.last_error_at, 1),
        }

    def failed(self, why: str) -> None:
        """Kept (with when) after the link comes back: store IT sees what keeps happening."""
        self.last_error = why
        self.last_error_at = time.monotonic()


def apply_each_origin(tx: Tx, events: list[Event]) -> tuple[int, dict[str, str], set[str]]:
    """Apply a peer's batch origin by origin: one origin that does not follow (a fork, a
    forgery, a gap) holds back only its own events, never the others'.

    Returns (events applied, refused origins with why, origins with a gap).
    """
    applied, refused, gaps = 0, {}, set()
    for event in events:
        if event.origin in refused or event.origin in gaps:
            continue
        tx.db.execute("SAVEPOINT event")
        try:
            applied += tx.apply(event)
        except OwnOriginSeen:
            tx.db.execute("ROLLBACK TO event")
            tx.db.execute("RELEASE event")
            raise
        except ChainGap:
            gaps.add(event.origin)
        except ChainError as error:
            refused[event.origin] = str(error)
        else:
            tx.db.execute("RELEASE event")
            continue
        tx.db.execute("ROLLBACK TO event")
        tx.db.execute("RELEASE event")
    return applied, refused, gaps


class Peers:
    """This node's side of replication: dialers, accepted links, and their state."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.journal = node.journal
        self.key = node.config.store_key()
        self.url = node.config.public_url()
        self.state: dict[str, PeerState] = {}
        # Our chain heads (origin -> last seq committed here), kept by the listener.
        self.heads: dict[str, int] = {}
        self.reader = JournalReader(node.journal.path)
        # The till websocket marks its commands here; a catch-up waits for them.
        self.till_activity = TillActivity()
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._reached: dict[str, str] = {}  # dialled URL -> the node that answered there
        self._refusals: dict[str, str] = {}  # dialled URL -> why it was refused, last time
        self._links: set[PeerLink] = set()
        self._session: aiohttp.ClientSession | None = None
        self._client_tls: ssl.SSLContext | None = None
        self._unlisten: Any = None
        self._started = False
        self._stopping = False

    @property
    def enabled(self) -> bool:
        return self.key is not None

    async def start(self) -> None:
        if not self.enabled:
            log.info("peer replication is off: no store.key_file in the config")
            return
        await self.reader.open()
        self.heads = await self.journal.version_vector()
        self._session = aiohttp.ClientSession()
        trust = self.node.trust
        if trust is not None:
            self._client_tls = trust.client_context()
        self._unlisten = self.journal.add_listener(self._on_committed)
        self._started = True
        for url in self.node.config.peer_urls:
            self.dial(url)

    async def stop(self) -> None:
        await self.hang_up()
        await _finish(list(self._dialers.values()), "peer dialer")
        self._dialers.clear()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._session:
            await self._session.close()
        if self._started:
            await self.reader.close()
            self._started = False

    async def hang_up(self) -> None:
        """The node is stopping: dial no more, close every link at once, each within CLOSE_WAIT."""
        self._stopping = True
        for task in self._dialers.values():
            task.cancel()
        links = list(self._links)
        await asyncio.gather(*(link.close(1001, "node stopping") for link in links),
                             return_exceptions=True)

    def dial(self, url: str) -> None:
        """Keep a link to the node at `url` (unless it is us, or already dialled)."""
        url = url.rstrip("/")
        if self.node.config.serves_tls and url.startswith("http://"):
            # This node is on the shop network: its peer links are TLS, never plain.
            url = "https://" + url.removeprefix("http://")
        if url == self.url or url in self._dialers or not self._started or self._stopping:
            return
        self._dialers[url] = asyncio.create_task(self._dial_forever(url), name=f"peer {url}")

    def nodes(self) -> list[dict[str, str | None]]:
        """The nodes of the store a till may use, this one first: this node, and every peer
        that proved it belongs to the store (its handshake completed, over mutual TLS when
        this node serves TLS). Never a URL merely dialled or announced: anyone on the shop
        network can announce the store id, and a till would send it its token and PINs.
        """
        trust = self.node.trust
        known: list[dict[str, str | None]] = [{
            "id": self.node.node_id, "url": self.url,
            "name": trust.node_name if trust is not None else None}]
        secure = self.node.config.serves_tls
        known += [{"id": s.node_id, "url": s.url, "name": s.name} for s in self.state.values()
                  if s.url and (not secure or s.url.startswith("https://"))]
        return known

    def unreached(self) -> list[str]:
        """The URLs we dial where no node of this store has answered yet."""
        return [url for url in self._dialers if url not in self._reached]

    async def heard_everything(self) -> bool:
        """Have our peers told us what the store did meanwhile: every node we know of is
        linked, has said what it holds, and we hold all of it?

        Every one: a peer that was down too, or cut off from the node that
        printed, cannot know what that node did.
        """
        states = list(self.state.values())
        if self.unreached():
            return False  # dialled, never reached yet: it may be the one that printed
        if not states or any(not state.links or not state.their_vector for state in states):
            return False
        ours = await self.journal.version_vector()
        return all(ours.get(origin, 0) >= seq
                   for state in states for origin, seq in state.their_vector.items())

    def is_connected(self, node_id: str) -> bool:
        state = self.state.get(node_id)
        return state is not None and state.links > 0

    async def status(self) -> list[dict[str, Any]]:
        vector = await self.journal.version_vector()
        return [state.as_dict(vector) for state in self.state.values()]

    async def _dial_forever(self, url: str) -> None:
        """Dial `url` until the node stops; nothing but a stop ends this loop."""
        delay = 0.2
        while True:
            began = time.monotonic()
            try:
                assert self._session is not None
                tls = self._client_tls if url.startswith("https://") else None
                if url.startswith("https://") and tls is None:
                    raise PeerRefused("this node has no store certificates to dial over TLS")
                async with self._session.ws_connect(
                    f"{url}/api/peer", autoping=False, max_msg_size=MAX_MESSAGE,
                    timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_WAIT),
                    ssl=tls if tls is not None else True,
                ) as ws:
                    link = PeerLink(self, ws, dialer=True, url=url)
                    if tls is not None:
                        link.certificate_name = self._store_certificate_name(ws)
                    await link.run()
            except asyncio.CancelledError:
                raise
            except PeerRefused as refused:
                self._refused(url, str(refused))
            except aiohttp.ClientConnectorCertificateError as error:
                self._refused(url, "its certificate is not one of this store's "
                                   f"({error.certificate_error})")
                delay = max(delay, REFUSED_RETRY)
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                log.debug("peer %s unreachable: %s", url, error)
                self._dial_error(url, f"unreachable: {describe(error)}")
            except Exception as error:
                log.exception("peer %s: unexpected error, dialling again", url)
                self._dial_error(url, describe(error))
            if time.monotonic() - began > STABLE_LINK:
                delay = 0.2
                self._refusals.pop(url, None)
            await asyncio.sleep(delay * (0.5 + secrets.randbelow(1000) / 1000))
            delay = min(delay * 2, max(delay, RETRY_MAX))

    def _refused(self, url: str, why: str) -> None:
        """A URL that is not a node of this store (an impostor, a node of another store):
        said once, and again only if the reason changes; a shop's log is not filled with it."""
        if self._refusals.get(url) != why:
            log.error("peer %s refused: %s (logged again only if that changes)", url, why)
        else:
            log.debug("peer %s refused again: %s", url, why)
        self._refusals[url] = why
        self._dial_error(url, why)

    def _dial_error(self, url: str, error: str) -> None:
        for state in self.state.values():
            if state.url == url and state.links == 0:
                state.failed(error)

    async def accept(self, request: web.Request) -> web.StreamResponse:
        if not self.enabled:
            raise web.HTTPForbidden(text="this node has no store key: replication is off")
        if not self._started or self._stopping:
            raise web.HTTPServiceUnavailable(text="this node is starting or stopping")
        ws = web.WebSocketResponse(autoping=False, max_msg_size=MAX_MESSAGE, timeout=CLOSE_WAIT)
        certificate_name = None
        if request.secure:
            certificate_name = self._store_certificate_name(request)
            if certificate_name is None:
                # A till's browser, or anyone on the network: no node certificate of this
                # store, so no replication, whatever it knows.
                log.warning("peer from %s refused: it showed no certificate of this store",
                            request.remote)
                await ws.prepare(request)
                await ws.close(code=NO_STORE_CERTIFICATE, message=b"no store certificate")
                return ws
        await ws.prepare(request)
        try:
            link = PeerLink(self, ws, dialer=False, url=None)
            link.certificate_name = certificate_name
            await link.run()
        except PeerRefused as refused:
            log.error("peer from %s refused: %s", request.remote, refused)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            log.info("peer from %s: link lost: %s", request.remote, error)
        except Exception:
            log.exception("peer from %s: unexpected error, link closed", request.remote)
        return ws

    def _store_certificate_name(
        self, side: web.Request | aiohttp.ClientWebSocketResponse,
    ) -> str | None:
        """The node name in the other side's verified TLS certificate, if it is one of this
        store's (the CA checked it in the handshake; the store is in its SAN)."""
        transport = side.transport if isinstance(side, web.Request) else _transport_of(side)
        ssl_object = transport.get_extra_info("ssl_object") if transport else None
        certificate = ssl_object.getpeercert() if ssl_object is not None else None
        if not certificate:
            return None
        uris = {value for kind, value in certificate.get("subjectAltName", ()) if kind == "URI"}
        if store_uri(self.node.config.store_id) not in uris:
            return None
        names = [value for rdn in certificate.get("subject", ()) for key, value in rdn
                 if key == "commonName"]
        return names[0] if names else ""

    def _on_committed(self, events: list[Event]) -> None:
        for event in events:
            if event.seq > self.heads.get(event.origin, 0):
                self.heads[event.origin] = event.seq
        for state in self.state.values():
            if state.sender is not None:
                state.sender.outflow.offer(events)

    def peer(self, node_id: str) -> PeerState:
        return self.state.setdefault(node_id, PeerState(node_id))


async def _finish(tasks: list[asyncio.Task[None]], what: str) -> None:
    """Wait for cancelled tasks, within CLOSE_WAIT twice; say which did not end."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=CLOSE_WAIT)
    for task in pending:
        task.cancel()
    if pending:
        _, pending = await asyncio.wait(pending, timeout=CLOSE_WAIT)
    for task in pending:
        log.error("%s %s did not stop", what, task.get_name())


def _transport_of(
    ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> asyncio.BaseTransport | None:
    # aiohttp keeps the transport private on both sides; cutting it is the
    # only way out of a write that a frozen peer never drains.
    if isinstance(ws, web.WebSocketResponse):
        request = getattr(ws, "_req", None)
        return None if request is None else request.transport
    connection = getattr(ws, "_conn", None)
    return None if connection is None else connection.transport


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
        self.outflow = Outflow(peers.reader, peers.heads, {}, peers.till_activity)
        self._last_sent = time.monotonic()
        self._last_heard = time.monotonic()
        self._waiting_since: float | None = None
        self._vector_at = 0.0
        self._rewind_wanted = False
        self._refill_asked_at: float | None = None
        self._refused: dict[str, str] = {}  # origins whose events we refused, and why
        # With TLS: the node name in the peer's verified store certificate.
        self.certificate_name: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        await self._handshake()
        state = self.state
        assert state is not None
        self.outflow.known = state.known
        if state.links == 0:
            # A new session: what the peer holds is what its next vector says.
            state.known.clear()
        state.links += 1
        state.links_opened += 1
        self.peers._links.add(self)
        if state.sender is None:
            state.sender = self
        self._tasks = [
            asyncio.create_task(self._send_loop(), name=f"peer-send {state.node_id}"),
            asyncio.create_task(self._watch_silence(), name=f"peer-watch {state.node_id}"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)
        try:
            await self._receive_loop()
        except (PeerRefused, ChainError):
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            log.info("peer %s: link lost: %s", state.node_id, describe(error))
            state.failed(f"link lost: {describe(error)}")
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("peer %s: unexpected error, link closed", state.node_id)
            state.failed(describe(error))
            await self.close(UNEXPECTED, "unexpected error")
        finally:
            self.peers._links.discard(self)
            state.links -= 1
            if state.sender is self:
                state.sender = next(
                    (link for link in self.peers._links if link.state is state), None
                )
                if state.sender is not None:
                    state.sender.outflow.wake.set()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            log.info("peer %s disconnected", state.node_id)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """Sending or watching stopped by itself: the link is over (the dialer starts again)."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        assert self.state is not None and error is not None
        if not isinstance(error, ConnectionError | aiohttp.ClientError):
            log.error("peer %s: %s failed, link closed", self.state.node_id, task.get_name(),
                      exc_info=error)
            self.state.failed(describe(error))
        self.abort()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close within CLOSE_WAIT; past it (a frozen peer), cut the socket."""
        try:
            async with asyncio.timeout(CLOSE_WAIT):
                await self.ws.close(code=code, message=reason.encode())
        except asyncio.CancelledError:
            self.abort()
            raise
        except Exception:  # a timeout, or a socket already broken
            self.abort()

    def abort(self) -> None:
        transport = _transport_of(self.ws)
        if transport is not None:
            transport.abort()
        for task in self._tasks:
            task.cancel()

    async def _receive(self) -> dict[str, Any]:
        while True:
            msg = await self.ws.receive(timeout=HANDSHAKE_SECONDS)
            if msg.type is WSMsgType.PING:
                await self.ws.pong(msg.data)
                continue
            if msg.type is WSMsgType.PONG:
                continue
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                raise PeerRefused(f"closed during the handshake ({self.ws.close_code})")
            return orjson.loads(msg.data)

    async def _send(self, message: dict[str, Any]) -> None:
        await self._send_bytes(orjson.dumps(message))

    async def _send_bytes(self, payload: bytes) -> None:
        # send_bytes waits for the socket to drain: a slow peer slows us, no queue grows.
        await self.ws.send_bytes(payload)
        self._last_sent = time.monotonic()

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
        if self.dialer and self.url:
            peers._reached[self.url] = theirs["node"]
        self.state.url = theirs.get("url") or self.url
        if self.certificate_name is not None:
            self.state.name = self.certificate_name
        self.state.last_contact = time.monotonic()
        log.info("peer %s connected (%s)", theirs["node"], self.state.url)

    def _check_hello(self, hello: dict[str, Any]) -> None:
        config = self.peers.node.config
        if hello.get("type") != "hello" or not isinstance(hello.get("node"), str):
            raise PeerRefused("not an edge peer")
        if hello.get("store") != config.store_id:
            raise PeerRefused(f"node {hello['node']} belongs to store {hello.get('store')!r}")
        if hello["node"] == self.peers.node.node_id:
            raise PeerRefused("that is this node itself")

    # Sending: our vector, then what the peer lacks, one batch at a time.

    def ask_for_refill(self) -> None:
        """Send our vector with `rewind`: the peer resends from there (at most once per resync)."""
        now = time.monotonic()
        if self._refill_asked_at is None or now - self._refill_asked_at >= RESYNC_EVERY:
            self._refill_asked_at = now
            self._rewind_wanted = True
            self.outflow.wake.set()

    async def _send_loop(self) -> None:
        state = self.state
        assert state is not None
        outflow = self.outflow
        while True:
            outflow.wake.clear()
            now = time.monotonic()
            if self._rewind_wanted or now - self._vector_at >= RESYNC_EVERY:
                vector = await self.peers.journal.version_vector()
                message: dict[str, Any] = {"type": "vector", "vector": vector}
                if self._rewind_wanted:
                    message["rewind"] = True
                    self._rewind_wanted = False
                await self._send(message)
                self._vector_at = time.monotonic()
            if state.sender is self:
                batch = await outflow.next_batch()
                state.outbox_high_water = max(state.outbox_high_water, outflow.high_water)
                state.catchup_yields += outflow.yields
                outflow.yields = 0
                if batch is not None:
                    await self._send_bytes(batch.payload)
                    state.events_sent += batch.count
                    continue
            quiet = time.monotonic() - self._last_sent
            until = min(PING_EVERY - quiet, RESYNC_EVERY - (time.monotonic() - self._vector_at))
            if until > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(outflow.wake.wait(), until)
            if time.monotonic() - self._last_sent >= PING_EVERY:
                await self.ws.ping()
                self._last_sent = time.monotonic()

    # Receiving

    async def _watch_silence(self) -> None:
        """Drop the link after SILENCE_LIMIT of silence while we wait on it (a frozen peer)."""
        state = self.state
        assert state is not None
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + CHECK_EVERY
            await asyncio.sleep(CHECK_EVERY)
            if loop.time() - due > CHECK_EVERY:
                continue  # our own loop was stalled: let the reader catch up first
            waiting_since = self._waiting_since
            if waiting_since is None:
                continue  # busy with what it received: that is not silence
            silent = time.monotonic() - max(self._last_heard, waiting_since)
            if silent >= SILENCE_LIMIT:
                log.warning("peer %s: silent for %.1f s, link dropped", state.node_id, silent)
                state.failed(f"silent for {silent:.1f} s, link dropped")
                self.abort()
                return

    async def _receive_loop(self) -> None:
        state = self.state
        assert state is not None
        while True:
            self._waiting_since = time.monotonic()
            msg = await self.ws.receive()
            self._waiting_since = None
            self._last_heard = state.last_contact = time.monotonic()
            if msg.type is WSMsgType.PING:
                await self.ws.pong(msg.data)
                continue
            if msg.type is WSMsgType.PONG:
                continue
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return
            message = orjson.loads(msg.data)
            kind = message.get("type")
            if kind == "vector":
                self._on_vector(dict(message["vector"]), rewind=bool(message.get("rewind")))
            elif kind == "events":
                await self._apply(message["events"])

    def _on_vector(self, vector: dict[str, int], *, rewind: bool) -> None:
        state = self.state
        assert state is not None
        state.their_vector = vector
        if rewind:
            # It could not apply what we sent: it holds exactly this, resend from there.
            (state.sender or self).outflow.rewind(vector)
        else:
            for origin, seq in vector.items():
                if seq > state.known.get(origin, 0):
                    state.known[origin] = seq
            if not self.outflow.started:
                self.outflow.start(vector)
        # A new vector only moves the cursor: the running stream goes on from there.
        self.outflow.wake.set()

    async def _apply(self, raw: Iterable[dict[str, Any]]) -> None:
        state = self.state
        assert state is not None
        try:
            # Each origin in seq order, whatever order the batch came in.
            events = sorted((event_from_dict(item) for item in raw),
                            key=lambda event: (event.origin, event.seq))
        except (KeyError, TypeError, ValueError) as error:
            await self._refuse(f"malformed event: {error}")
            return
        # It holds what it sent us: never send those back.
        for event in events:
            if event.seq > state.known.get(event.origin, 0):
                state.known[event.origin] = event.seq

        try:
            applied, refused, gaps = await self.peers.journal.write(
                lambda tx: apply_each_origin(tx, events))
        except OwnOriginSeen as error:
            # The journal stops writing (a copy of this folder runs elsewhere).
            await self._refuse(f"an event of this node's own origin: {error}")
            return
        except Exception as error:
            # Not applied (a failed commit): the link starts over, from vectors.
            raise ApplyFailed(f"could not apply {len(events)} event(s): {describe(error)}") \
                from error
        state.events_received += applied
        state.events_already_held += len(events) - applied - sum(
            1 for event in events if event.origin in refused or event.origin in gaps)
        for origin, why in refused.items():
            # Parked, not applied: the other origins of the link go on flowing.
            if origin not in self._refused:
                log.error("peer %s sent events of %s that do not follow what this node holds "
                          "(tampered or forked), refused, nothing of them applied: %s",
                          state.node_id, origin, why)
            self._refused[origin] = why
            state.failed(f"tampered or forked event refused: {why}")
        if gaps:
            # We missed some: tell them what we have, they send the rest.
            self.ask_for_refill()
        else:
            self._refill_asked_at = None

    async def _refuse(self, why: str) -> None:
        assert self.state is not None
        log.error("peer %s sent bad events, link closed, nothing applied: %s",
                  self.state.node_id, why)
        self.state.failed(why)
        with contextlib.suppress(Exception):
            await self.close(BAD_EVENT, "bad event")
