"""The head-office HTTP service: stores push their events, pull the catalogue.

Every call but `/healthz` needs the store's bearer token (only its SHA-256 is
kept). A push is answered only after its transaction committed, so an
acknowledgement always means "durably here"; a push repeated after a lost
answer finds its events already held and is acknowledged again.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

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
from edge.headoffice.storage import HeadOfficeStorage

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


STORAGE = web.AppKey("storage", HeadOfficeStorage)
COUNTERS = web.AppKey("counters", Counters)
HOOKS = web.AppKey("hooks", Hooks)


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden,
}


def error(status: int, code: str, message: str) -> web.HTTPException:
    body = orjson.dumps({"error": {"code": code, "message": message}}).decode()
    return ERRORS[status](text=body, content_type="application/json")


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


async def read_json(request: web.Request) -> object:
    try:
        # aiohttp inflates a gzip body itself; client_max_size bounds the inflated size.
        return orjson.loads(await request.read())
    except RequestPayloadError:
        raise error(400, "invalid_request", "the body is not what its encoding says") from None
    except orjson.JSONDecodeError:
        raise error(400, "invalid_request", "the body is not JSON") from None


async def push(request: web.Request) -> web.Response:
    store = await authenticate(request)
    try:
        node, batch = parse_push(await read_json(request))
    except BadBatch as bad:
        raise error(400, "invalid_request", str(bad)) from None
    receipt = await request.app[STORAGE].receive(store, node, batch)
    counters = request.app[COUNTERS]
    counters.batches += 1
    counters.stored += receipt.stored
    counters.duplicates += receipt.duplicates
    counters.conflicts += len(receipt.conflicts)
    if receipt.conflicts:
        log.warning("store %s node %s: %d conflicting event(s) parked, first %s",
                    store, node, len(receipt.conflicts), receipt.conflicts[0])
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
    })


async def pull(request: web.Request) -> web.Response:
    """The catalogue events the store lacks, and how far head office holds its origins."""
    store = await authenticate(request)
    try:
        vector, heads, limit = parse_pull(await read_json(request))
    except BadBatch as bad:
        raise error(400, "invalid_request", str(bad)) from None
    storage = request.app[STORAGE]
    origin, events = await storage.catalogue_for(vector, heads, limit + 1)
    held = await storage.held(store, [o for o in vector if not is_headoffice_origin(o)])
    return json_response({
        "origin": origin,
        "events": [event.as_dict() for event in events[:limit]],
        "more": len(events) > limit,
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
    app = web.Application(client_max_size=MAX_BATCH_BYTES)
    app[STORAGE] = storage
    app[COUNTERS] = Counters()
    app[HOOKS] = Hooks()
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
