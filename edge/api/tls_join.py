"""The CA node's join endpoints (edge/trust/join.py has the whole story).

- `GET /api/tls/ca`: the store CA's certificate, to anyone (it is public; the
  joiner checks it against the fingerprint in its join code).
- `POST /api/tls/join`: a joiner's public keys and names with a join code's
  secret; answered with its certificates. Unauthenticated like pairing, so
  throttled per address like pairing (PairingThrottle: counted before the code
  is checked), its body bounded, and a wrong, used or expired code changes
  nothing and is logged.
- `POST /api/admin/tls/join-code`: `edge tls join-code` while the node runs.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

from edge.admin import admin_error, admin_only
from edge.messages import (
    INVALID_JOIN_CODE,
    INVALID_REQUEST,
    NAME_TAKEN,
    NOT_THE_CA_NODE,
    TOO_MANY_ATTEMPTS,
    EdgeError,
)
from edge.node import Node
from edge.selling.tills import PairingThrottle
from edge.trust.folder import TrustFolder, TrustProblem
from edge.trust.join import (
    MAX_JOIN_BYTES,
    IssuedNames,
    JoinCodes,
    JoinRefused,
    answer_join,
    check_name,
    parse_join_request,
)

log = logging.getLogger(__name__)

JOIN_THROTTLE = web.AppKey("join_throttle", PairingThrottle)
STATUS = {INVALID_JOIN_CODE: 403, TOO_MANY_ATTEMPTS: 429, NOT_THE_CA_NODE: 409,
          NAME_TAKEN: 409}


def _node(request: web.Request) -> Node:
    from edge.api.server import NODE

    return request.app[NODE]


def _error(code: str, message: str, retry_after: int | None = None) -> web.Response:
    response = web.Response(
        body=orjson.dumps({"error": {"code": code, "message": message}}),
        status=STATUS.get(code, 400), content_type="application/json")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


async def store_ca(request: web.Request) -> web.Response:
    node = _node(request)
    assert node.trust is not None
    return web.Response(body=node.trust.ca_file.read_bytes(),
                        content_type="application/x-pem-file")


async def join(request: web.Request) -> web.Response:
    node = _node(request)
    remote = request.remote or ""
    if not request.secure:
        return _error(INVALID_REQUEST, "join over HTTPS: this node serves plain HTTP "
                                       "(server.tls)")
    folder = TrustFolder(node.config.data_dir)
    if not folder.holds_ca_key():
        return _error(NOT_THE_CA_NODE, "this node does not hold the store CA key: join "
                                       "through the node where `edge tls init` was run")
    if request.content_length is None or request.content_length > MAX_JOIN_BYTES:
        return _error(INVALID_REQUEST, f"send a JSON object of at most {MAX_JOIN_BYTES} bytes")
    throttle = request.app[JOIN_THROTTLE]
    try:
        throttle.attempt(remote)  # counted before the code is checked
    except EdgeError as refused:
        return _error(refused.code, refused.message,
                      (refused.data or {}).get("retry_after"))
    try:
        body = orjson.loads(await request.read())  # bounded: content_length checked above
        wanted = parse_join_request(body)
    except (ValueError, JoinRefused) as error:
        return _error(INVALID_REQUEST, str(error) if isinstance(error, JoinRefused)
                      else "send a JSON object")
    codes = JoinCodes(folder)
    # No await from here to the certificate: two requests with one code cannot both
    # pass. A code's 128-bit secret cannot be guessed, so wrong codes withdraw none
    # (that would only let anyone on the network stop the store joining a node).
    code = codes.find(wanted.secret)
    if code is None:
        log.warning("join refused from %s (node name %r): wrong, used or expired join code",
                    remote, wanted.name)
        return _error(INVALID_JOIN_CODE, "wrong, used or expired join code: make a new one "
                                         "with `edge tls join-code` on the CA node")
    renewing = code.get("name")
    if renewing is not None and wanted.name != renewing:
        return _error(INVALID_REQUEST, f"this join code is for node {renewing!r}: join with "
                                       f"--name {renewing}")
    clash = IssuedNames(folder).clash(wanted.name, wanted.dns, wanted.addresses, renewing)
    if clash is not None:
        log.warning("join refused from %s (node name %r): %s", remote, wanted.name, clash)
        return _error(NAME_TAKEN, clash)
    codes.use(wanted.secret)
    throttle.succeeded(remote)
    try:
        answer = answer_join(folder, node.config.store_id, wanted)
    except TrustProblem as problem:
        return _error(NOT_THE_CA_NODE, str(problem))
    IssuedNames(folder).record(wanted.name, wanted.dns, wanted.addresses)
    log.info("node %s joined the store from %s (certificate for %s)", wanted.name, remote,
             ", ".join(wanted.dns + wanted.addresses))
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


def _admin_token(request: web.Request) -> str | None:
    return _node(request).admin_token


@admin_only(_admin_token)
async def admin_join_code(request: web.Request, body: dict[str, Any]) -> web.Response:
    """`edge tls join-code` while the node runs: the node, which owns the folder, makes it."""
    try:
        name = body.get("name")
        code = JoinCodes(TrustFolder(_node(request).config.data_dir)).make(
            name=check_name(name) if isinstance(name, str) else None)
    except ValueError as error:
        return admin_error(400, INVALID_REQUEST, str(error))
    except TrustProblem as problem:
        return admin_error(409, NOT_THE_CA_NODE, str(problem))
    return web.Response(body=orjson.dumps({"code": code}), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app[JOIN_THROTTLE] = PairingThrottle()
    app.router.add_get("/api/tls/ca", store_ca)
    app.router.add_post("/api/tls/join", join)
    app.router.add_post("/api/admin/tls/join-code", admin_join_code)
