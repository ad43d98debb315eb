"""The head-office HTTP service: stores push their events, pull the catalogue.

Every call but `/healthz` needs the store's bearer token (only its SHA-256 is
kept). A push is answered only after its transaction committed, so an
acknowledgement always means "durably here"; a push repeated after a lost
answer finds its events already held and is acknowledged again.

Head office faces the internet, so what a request may cost is bounded
before any of it is read: the token is checked first (an unknown client
never gets a body inflated), a body is inflated here as a stream and
refused past MAX_BATCH_BYTES (a gzip bomb costs at most that), and only a
few bodies are held at once, in all and per store (`Gate`). Every field is
checked by `protocol.py` before it reaches the database: bad input is a
4xx naming what is wrong, never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiohttp import web

from edge import __version__
from edge.headoffice.protocol import (
    MAX_BATCH_BYTES,
    PULL_PATH,
    PUSH_PATH,
    BadBatch,
    is_headoffice_origin,
    parse_pull,
    parse_push,
)
from edge.headoffice.storage import HeadOfficeStorage, StoreCaRefused

log = logging.getLogger(__name__)


@dataclass
class Counters:
    batches: int = 0
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    refused_tokens: int = 0


@dataclass
class Hooks:
    # Tests set it to play a head office that dies between its commit and its answer.
    after_store: Callable[[web.Request], Awaitable[None]] | None = None


# Request bodies held (read, inflated, parsed, stored) at once: in all, and
# per store (a store has a few nodes; each sends one batch at a time). Each
# costs at most MAX_BATCH_BYTES inflated, plus its parsed JSON.
BODIES_AT_ONCE = 4
BODIES_PER_STORE = 2
# Requests queued behind those; past it a store is told to come back (429).
WAITING_AT_MOST = 16
# A body must arrive within this (a slow upload holds a place in the gates).
BODY_SECONDS = 60.0
# An idle connection, or one whose request head has not come, is closed after this.
KEEPALIVE_SECONDS = 30.0
CHUNK = 64 * 1024


class Refused(Exception):
    """A request refused with a status, a code and a message (JSON), nothing stored."""

    def __init__(self, status: int, code: str, message: str,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = (
            status, code, message, retry_after)


class Gate:
    """At most `at_once` holders; at most `waiting` queued behind them, else Refused (429)."""

    def __init__(self, at_once: int, waiting: int = WAITING_AT_MOST) -> None:
        self._turns = asyncio.Semaphore(at_once)
        self._waiting = 0
        self._max_waiting = waiting

    @contextlib.asynccontextmanager
    async def enter(self, who: str) -> AsyncIterator[None]:
        if self._turns.locked() and self._waiting >= self._max_waiting:
            raise Refused(429, "busy", f"{who}: too many requests at once; retry shortly",
                          retry_after=1)
        self._waiting += 1
        try:
            await self._turns.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._turns.release()


@dataclass
class Gates:
    everyone: Gate = field(default_factory=lambda: Gate(BODIES_AT_ONCE, WAITING_AT_MOST * 4))
    stores: dict[str, Gate] = field(default_factory=dict)  # only stores with a valid token

    @contextlib.asynccontextmanager
    async def enter(self, store: str) -> AsyncIterator[None]:
        gate = self.stores.setdefault(store, Gate(BODIES_PER_STORE))
        async with gate.enter(f"store {store}"), self.everyone.enter("head office"):
            yield


STORAGE = web.AppKey("storage", HeadOfficeStorage)
COUNTERS = web.AppKey("counters", Counters)
HOOKS = web.AppKey("hooks", Hooks)
GATES = web.AppKey("gates", Gates)


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error(status: int, code: str, message: str) -> Refused:
    return Refused(status, code, message)


@web.middleware
async def refusals(request: web.Request, handler):  # type: ignore[no-untyped-def]
    try:
        return await handler(request)
    except Refused as refused:
        response = json_response(
            {"error": {"code": refused.code, "message": refused.message}}, refused.status)
        if refused.retry_after is not None:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response


async def authenticate(request: web.Request) -> str:
    """The store whose token the request carries."""
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    store = await request.app[STORAGE].store_for_token(token) if token else None
    if store is None:
        request.app[COUNTERS].refused_tokens += 1
        raise error(401, "invalid_token", "unknown store token: check headoffice.token_file")
    claimed = request.headers.get("Edge-Store", store)
    if claimed != store:
        raise error(403, "wrong_store",
                    f"this token belongs to store {store!r}, not {claimed!r}")
    return store


TOO_LARGE = f"the body is over {MAX_BATCH_BYTES // (1024 * 1024)} MiB (inflated)"


async def read_body(request: web.Request) -> bytes:
    """The body, inflated here as it comes (aiohttp's own inflating is off), within bounds.

    A gzip bomb is refused (413) once its output passes MAX_BATCH_BYTES:
    never more than that is held for it, whatever it would inflate to.
    """
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("gzip", "identity", ""):
        raise error(415, "unsupported_encoding",
                    f"Content-Encoding {encoding[:20]!r}: send gzip or nothing")
    if (request.content_length or 0) > MAX_BATCH_BYTES:
        raise error(413, "too_large", TOO_LARGE)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    body, received = bytearray(), 0
    try:
        async with asyncio.timeout(BODY_SECONDS):
            async for chunk in request.content.iter_chunked(CHUNK):
                received += len(chunk)
                if received > MAX_BATCH_BYTES:
                    raise error(413, "too_large", TOO_LARGE)
                if inflater is None:
                    body += chunk
                    continue
                while chunk:
                    body += inflater.decompress(chunk, MAX_BATCH_BYTES + 1 - len(body))
                    if len(body) > MAX_BATCH_BYTES:
                        raise error(413, "too_large", TOO_LARGE)
                    chunk = inflater.unconsumed_tail
    except TimeoutError:
        raise error(408, "too_slow", f"the body did not arrive within {BODY_SECONDS:.0f} s") \
            from None
    except zlib.error:
        raise error(400, "invalid_request", "the body is not the gzip it says it is") from None
    if inflater is not None and (not inflater.eof or inflater.unused_data):
        raise error(400, "invalid_request", "the body is not one whole gzip stream")
    return bytes(body)


async def read_json(request: web.Request) -> object:
    try:
        return orjson.loads(await read_body(request))
    except orjson.JSONDecodeError:
        raise error(400, "invalid_request", "the body is not JSON (UTF-8)") from None


async def push(request: web.Request) -> web.Response:
    store = await authenticate(request)
    async with request.app[GATES].enter(store):
        return await _push(request, store)


async def _push(request: web.Request, store: str) -> web.Response:
    try:
        node, batch, store_ca = parse_push(await read_json(request))
    except BadBatch as bad:
        raise error(400, bad.code, str(bad)) from None
    storage = request.app[STORAGE]
    # Every event is checked against the store's CA: pinned at the first push
    # that carries it, and never silently replaced.
    if store_ca is not None:
        try:
            await storage.pin_store_ca(store, store_ca)
        except StoreCaRefused as refused:
            status = 409 if refused.code == "store_ca_changed" else 400
            log.warning("store %s node %s: %s", store, node, refused)
            raise error(status, refused.code, str(refused)) from None
    elif await storage.store_ca(store) is None:
        raise error(400, "store_ca_required", "this push carries no store CA and head office "
                    "holds none for this store: upgrade the store's edge")
    receipt = await storage.receive(store, node, batch)
    counters = request.app[COUNTERS]
    counters.batches += 1
    counters.stored += receipt.stored
    counters.duplicates += receipt.duplicates
    counters.conflicts += len(receipt.conflicts)
    if receipt.conflicts:
        log.warning("store %s node %s: %d conflicting event(s) parked, first %s",
                    store, node, len(receipt.conflicts), receipt.conflicts[0])
    if receipt.waiting:
        log.warning("store %s node %s: %d event(s) written before signing and not vouched for "
                    "by the store CA yet, first %s: not kept for now, the node sends them "
                    "again after its next pull (the CA node's vouch may come later; what it "
                    "never vouched for stays on that node)",
                    store, node, len(receipt.waiting), receipt.waiting[0])
    after_store = request.app[HOOKS].after_store
    if after_store is not None:
        await after_store(request)
    return json_response({
        "batch": [batch[0][0], batch[-1][0]],
        "acknowledged": receipt.acknowledged,
        "stored": receipt.stored,
        "duplicates": receipt.duplicates,
        "conflicts": receipt.conflicts,
        "gap": receipt.gap,
        "waiting": receipt.waiting,
    })


async def pull(request: web.Request) -> web.Response:
    """The catalogue events the store lacks, and how far head office holds its origins."""
    store = await authenticate(request)
    async with request.app[GATES].enter(store):
        return await _pull(request, store)


async def _pull(request: web.Request, store: str) -> web.Response:
    try:
        asked = parse_pull(await read_json(request))
    except BadBatch as bad:
        raise error(400, bad.code, str(bad)) from None
    storage = request.app[STORAGE]
    await storage.note_edition(store, asked.node, asked.reads_batches)
    origin, events, more = await storage.catalogue_for(asked.vector, asked.heads, asked.limit)
    held = await storage.held(store, [o for o in asked.vector if not is_headoffice_origin(o)])
    return json_response({
        "origin": origin,
        "events": [event.as_dict() for event in events],
        "more": more,
        "held": held,
    })


async def healthz(request: web.Request) -> web.Response:
    storage = request.app[STORAGE]
    counters = request.app[COUNTERS]
    return json_response({
        "status": "ok", "version": __version__, "origin": storage.origin,
        "received": counters.__dict__,
    })


def make_app(storage: HeadOfficeStorage) -> web.Application:
    # Bodies are inflated by read_body, within bounds, not by aiohttp.
    app = web.Application(client_max_size=MAX_BATCH_BYTES, middlewares=[refusals],
                          handler_args={"auto_decompress": False,
                                        "keepalive_timeout": KEEPALIVE_SECONDS})
    app[STORAGE] = storage
    app[COUNTERS] = Counters()
    app[HOOKS] = Hooks()
    app[GATES] = Gates()
    app.router.add_get("/healthz", healthz)
    app.router.add_post(PUSH_PATH, push)
    app.router.add_post(PULL_PATH, pull)
    return app


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class HeadOfficeServer:
    """The service on a port, started and stopped as a whole (CLI, tests, bench)."""

    def __init__(self, db_url: str, host: str, port: int,
                 tls: ssl.SSLContext | None = None) -> None:
        self.storage = HeadOfficeStorage(db_url)
        self.app = make_app(self.storage)
        self.host, self.port, self.tls = host, port, tls
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    async def start(self) -> None:
        await self.storage.open()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        try:
            await self._runner.setup()
            await web.TCPSite(self._runner, self.host, self.port, ssl_context=self.tls).start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.storage.close()
