"""The HTTP side of a node: the till app, health, metrics, pairing and the till websocket.

Only the static app, `/healthz`, `/metrics` and pairing answer without
credentials; everything else happens on the websocket after `auth`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSCloseCode, web

from edge import __version__
from edge.admin import MAX_PAIRING_MINUTES, AdminRefused, admin_error, admin_only
from edge.api.commands import till_connections
from edge.api.connections import CONNECTIONS, HEAD_SECONDS, ConnectionGuard, read_body_in_time
from edge.api.origins import SERVED_ORIGINS, ServedOrigins, check_origin_and_host
from edge.api.till_shell import service_worker_handler
from edge.api.tls_join import add_routes as add_tls_join_routes
from edge.api.websocket_api import MAX_MESSAGE_BYTES, Connection
from edge.config import Config
from edge.devices import print_jobs
from edge.fiscal import archive_admin, closure_admin
from edge.messages import INVALID_PAIRING_CODE, INVALID_REQUEST, EdgeError
from edge.node import Node
from edge.replication.discovery import Discovery
from edge.schema import CONTROL_CHARACTERS
from edge.selling import catalogue_admin, staff, staff_admin, tills, tills_admin
from edge.sync.status import sync_health, sync_metric_rows

log = logging.getLogger(__name__)

NODE = web.AppKey("node", Node)
STARTED = web.AppKey("started", float)
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
HTTP_STATUS = {"invalid_pairing_code": 403, "too_many_attempts": 429}


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json"
    )


async def healthz(request: web.Request) -> web.Response:
    node = request.app[NODE]
    journal = node.journal
    return json_response({
        "status": ("ok" if node.tasks.all_up and not node.failure
                   and not any(journal.troubles().values()) else "degraded"),
        "store_id": node.config.store_id,
        "node_id": node.node_id,
        "version": __version__,
        "uptime_s": round(time.monotonic() - request.app[STARTED], 1),
        "journal": {"origin": journal.origin, "seq": journal.head.seq, **journal.troubles()},
        "printers": node.print_queue.statuses(),
        "terminals": node.terminals.statuses(),  # card terminals (edge/devices/terminals.py)
        "tills_connected": len(node.till_sockets),
        # Counts only: /healthz answers anyone on the shop's network, and a
        # list of tills (names, last seen) tells a thief which one is idle.
        # Store IT reads the list with `edge tills list`.
        "tills": await tills.till_counts(node.journal),
        "peers": await node.peers.status(),
        "tasks": node.tasks.statuses(),
        "headoffice": await sync_health(node.sync),
    })


async def metrics(request: web.Request) -> web.Response:
    node = request.app[NODE]
    rows = [
        ("edge_info", "gauge", "Node identity.",
         f'{{store="{node.config.store_id}",node="{node.node_id}",version="{__version__}"}}', 1),
        ("edge_till_connections", "gauge", "Till websockets open now.", "",
         len(node.till_sockets)),
        ("edge_http_connections", "gauge", "HTTP connections open now (tills, peers, pages).",
         "", request.app[CONNECTIONS].open),
        ("edge_http_connections_refused_total", "counter",
         "Connections closed at once: over the per-address or total bound.", "",
         request.app[CONNECTIONS].refused),
        ("edge_http_connections_evicted_total", "counter",
         "Idle connections closed to make room for a new one.", "",
         request.app[CONNECTIONS].evicted),
        ("edge_commands_total", "counter", "Till commands handled.", "", node.metrics.commands),
        ("edge_command_errors_total", "counter", "Till commands answered with an error.", "",
         node.metrics.command_errors),
        ("edge_sales_total", "counter", "Sales completed through this node.", "",
         node.metrics.sales),
        ("edge_journal_commits_total", "counter", "Journal transactions committed.", "",
         node.journal.commits),
        ("edge_journal_events_total", "counter", "Journal events committed since start.", "",
         node.journal.committed_events),
        ("edge_journal_seq", "gauge", "Last sequence number of this node's journal.", "",
         node.journal.head.seq),
        ("edge_receipts_printed_total", "counter", "Receipts printed by this node.", "",
         node.print_queue.printed),
    ]
    rows += await sync_metric_rows(node.sync)
    lines = []
    for name, kind, help_text, labels, value in rows:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name}{labels} {value}"]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8")


async def pair(request: web.Request) -> web.Response:
    node = request.app[NODE]
    try:
        data = await request.json(loads=orjson.loads)
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        return _error(EdgeError(INVALID_REQUEST, "send a JSON object: {\"code\", \"name\"}"))
    code, name = data.get("code"), data.get("name") or "Caisse"
    if not isinstance(code, str) or not code.isdigit() or len(code) != 6:
        return _error(EdgeError(INVALID_REQUEST, "'code' must be the 6-digit pairing code"))
    if not isinstance(name, str) or len(name) > 40 or CONTROL_CHARACTERS.search(name):
        return _error(EdgeError(INVALID_REQUEST, "'name' must be a till name of 40 characters"))
    # A till paired again shows the tokens it had (docs/protocol.md, "Paired again").
    previous = data.get("previous") or []
    if not isinstance(previous, list) or len(previous) > tills.MAX_PREVIOUS_TOKENS or not all(
            isinstance(token, str) and 0 < len(token) <= 256 for token in previous):
        return _error(EdgeError(INVALID_REQUEST, "'previous' must be a list of at most "
                                f"{tills.MAX_PREVIOUS_TOKENS} till tokens"))
    try:
        # Counted before the code is checked, per address: see PairingThrottle.
        node.pairing_throttle.attempt(request.remote or "")
        token, till = await tills.pair(node.journal, code, name.strip() or "Caisse", previous)
    except EdgeError as error:
        if error.code == INVALID_PAIRING_CODE and node.pairing_throttle.wrong_guess():
            withdrawn = await tills.withdraw_pairing_codes(node.journal)
            if withdrawn:
                log.warning("%d wrong pairing codes guessed: the %d code(s) not yet used "
                            "are withdrawn (make a new one with edge pair)",
                            node.pairing_throttle.max_wrong, withdrawn)
        return _error(error)
    node.pairing_throttle.succeeded(request.remote or "")
    log.info("till %s (%s) paired%s", till["code"], till["name"],
             f", taking over the unsent sales of {', '.join(till['takes_over'])}"
             if till.get("takes_over") else "")
    return json_response({"token": token, "till": till})


def _error(error: EdgeError) -> web.Response:
    response = json_response(
        {"error": {"code": error.code, "message": error.message, **(
            {"data": error.data} if error.data else {})}},
        status=HTTP_STATUS.get(error.code, 400),
    )
    if error.data and "retry_after" in error.data:
        response.headers["Retry-After"] = str(error.data["retry_after"])
    return response


async def till_websocket(request: web.Request) -> web.WebSocketResponse:
    node = request.app[NODE]
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=10.0)
    await ws.prepare(request)
    node.till_sockets.add(ws)
    try:
        transport = request.transport
        # Until it shows a till's token, a newcomer may take its place (and
        # it is closed after AUTH_WITHIN anyway).
        trusted = request.app[CONNECTIONS].untrusted(request.protocol)
        await Connection(node, ws, transport.abort if transport else None,
                         on_authenticated=trusted).serve()
    finally:
        node.till_sockets.discard(ws)
    return ws


def _admin_token(request: web.Request) -> str | None:
    return request.app[NODE].admin_token


@admin_only(_admin_token)
async def admin_test_page(request: web.Request, body: dict[str, Any]) -> web.Response:
    """`edge devices test NAME` while the node runs: a test page and a drawer pulse."""
    node = request.app[NODE]
    name = body.get("printer")
    worker = node.print_queue.workers.get(name) if isinstance(name, str) else None
    if worker is None:
        return admin_error(404, "no_printer", f"no printer {name!r} on this node")
    job = await print_jobs.request_test(node.journal, name)
    return json_response({**job, "status": worker.status_json()})


@admin_only(_admin_token)
async def admin_sync(request: web.Request, body: dict[str, Any]) -> web.Response:
    """`edge sync` while the node runs: one head-office round now, by the node itself."""
    node = request.app[NODE]
    if node.sync is None:
        return admin_error(409, "no_headoffice", "head-office sync is off on this node")
    error = None
    try:
        await node.sync.sync_once()
    except Exception as failure:  # the round's outcome is the answer, whatever it was
        error = str(failure)
    return json_response({"error_message": error, "status": await node.sync.status()})


@admin_only(_admin_token)
async def admin_pair(request: web.Request, body: dict[str, Any]) -> web.Response:
    """`edge pair` while the node runs: the node, which owns the folder, makes the code."""
    minutes = body.get("minutes", 15)
    if type(minutes) is not int or not 1 <= minutes <= MAX_PAIRING_MINUTES:
        return admin_error(400, "invalid_request",
                           f"minutes must be a whole number from 1 to {MAX_PAIRING_MINUTES}")
    node = request.app[NODE]
    code = await node.journal.with_own_connection(tills.create_pairing_code,
                                                  node.config.database, minutes * 60)
    return json_response({"code": code, "minutes": minutes})


@admin_only(_admin_token)
async def admin_staff(request: web.Request, body: dict[str, Any]) -> web.Response:
    """`edge staff` while the node runs: the node, which owns the folder and the pin key."""
    node = request.app[NODE]
    try:
        answer = await staff_admin.carry_out(node.journal, staff.pin_key(node.config), body)
    except AdminRefused as error:
        return admin_error(error.status, error.code, error.message)
    return json_response(answer)


async def _tills_seen(node: Node) -> list[dict[str, Any]]:
    """Every paired till, with whether it is connected here now (the store IT page)."""
    connected = till_connections(node)
    return [{**till, "connected": connected.get(till["code"], 0)}
            for till in await tills.list_tills(node.journal, bool(node.config.headoffice_url))]


@admin_only(_admin_token)
async def admin_tills(request: web.Request, body: dict[str, Any]) -> web.Response:
    """`edge tills` while the node runs: the node, which owns the folder, lists or revokes."""
    node = request.app[NODE]
    try:
        answer = await tills_admin.carry_out(node.journal, body, bool(node.config.headoffice_url))
    except AdminRefused as error:
        return admin_error(error.status, error.code, error.message)
    if "tills" in answer:
        answer["tills"] = await _tills_seen(node)
    return json_response(answer)


@admin_only(_admin_token)
async def admin_catalogue(request: web.Request, body: dict[str, Any]) -> web.Response:
    """`edge catalogue import` and the store IT page's form: the node puts the parts
    together and imports them, all or nothing."""
    try:
        answer = await catalogue_admin.carry_out(request.app[NODE].journal, body)
    except AdminRefused as error:
        return admin_error(error.status, error.code, error.message)
    return json_response(answer)


async def peer_websocket(request: web.Request) -> web.StreamResponse:
    return await request.app[NODE].peers.accept(request)


async def status_page(request: web.Request) -> web.FileResponse:
    """The store IT page: /healthz in plain words."""
    return web.FileResponse(WEB_DIR / "status.html")


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / "index.html")


@web.middleware
async def security_headers(request: web.Request, handler):  # type: ignore[no-untyped-def]
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-cache")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    )
    return response


def make_app(config: Config, usb_backend: Any = None) -> web.Application:
    # A request head must come within HEAD_SECONDS of the connection opening or
    # of the previous answer (aiohttp's keep-alive timer is armed at both).
    app = web.Application(middlewares=[check_origin_and_host, read_body_in_time,
                                       security_headers],
                          client_max_size=64 * 1024,
                          handler_args={"keepalive_timeout": HEAD_SECONDS})
    # Counts connections once `install`ed on the runner's server (edge/cli.py `serve`).
    app[CONNECTIONS] = ConnectionGuard()
    app[NODE] = node = Node(config, usb_backend)
    # Pages of the store: its verified nodes', and those store IT configured (a till page
    # served by a configured peer may fail over here before the two nodes linked).
    configured = [{"id": None, "url": url} for url in config.peer_urls]
    app[SERVED_ORIGINS] = ServedOrigins(
        config, lambda: node.journal.origin or None, lambda: [*node.store_nodes(), *configured],
        node_name=lambda: node.trust.node_name if node.trust else None)
    app[STARTED] = time.monotonic()
    app.router.add_get("/", index)
    app.router.add_get("/sw.js", service_worker_handler(WEB_DIR))  # before the static files
    app.router.add_get("/status", status_page)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/api/pair", pair)
    app.router.add_post("/api/admin/devices/test", admin_test_page)
    app.router.add_post("/api/admin/sync", admin_sync)
    app.router.add_post("/api/admin/pair", admin_pair)
    app.router.add_post("/api/admin/staff", admin_staff)
    app.router.add_post("/api/admin/tills", admin_tills)
    app.router.add_post("/api/admin/catalogue", admin_catalogue)
    app.router.add_post("/api/admin/archive", archive_admin.admin_handler(
        _admin_token, lambda request: request.app[NODE].journal))
    app.router.add_post("/api/admin/close", closure_admin.admin_handler(
        _admin_token, lambda request: request.app[NODE]))
    app.router.add_get("/api/ws", till_websocket)
    app.router.add_get("/api/peer", peer_websocket)
    add_tls_join_routes(app)  # /api/tls/ca, /api/tls/join, /api/admin/tls/join-code
    app.router.add_static("/", WEB_DIR, show_index=False, follow_symlinks=False)
    app.cleanup_ctx.append(_run_node)
    app.on_shutdown.append(_hang_up)
    if config.advertise:
        app.cleanup_ctx.append(_advertise)
    return app


async def _run_node(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE]
    await node.start()
    yield
    await node.stop()


async def _hang_up(app: web.Application) -> None:
    """On stop, tell tills and peers we are going (they move on) rather than wait for them."""
    node = app[NODE]

    async def close_till(ws: web.WebSocketResponse) -> None:
        # All at once and bounded: a frozen till must not hold the stop past
        # systemd's TimeoutStopSec; past the bound, aiohttp's shutdown cuts it.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"node stopping")

    await asyncio.gather(node.peers.hang_up(), *map(close_till, list(node.till_sockets)))


async def _advertise(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE]
    assert node.trust is not None
    # Its mDNS name is the one its certificate covers, `edge-<node name>.local`: kept
    # across a restored journal (a new node id), so tills keep the address they know.
    discovery = Discovery(node.config.store_id, node.node_id, node.config.host, node.config.port,
                          name=node.trust.node_name, scheme=node.config.scheme)
    # Announcing takes a second or two; the node serves meanwhile.
    announce = asyncio.create_task(discovery.announce(), name="zeroconf-announce")
    if node.peers.enabled:
        discovery.watch(node.peers.dial)
    yield
    announce.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await announce
    await discovery.stop()
