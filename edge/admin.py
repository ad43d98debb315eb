"""Store IT's commands and the running node: who does the work, and how they talk.

A node owns its data folder (locked), so a command that writes (`edge devices
test`, `edge sync`, `edge pair`) either takes the same lock, when no node runs, or asks the
running node over HTTP under `/api/admin/`, authenticated by the token the
node keeps in its data folder (`admin-token`, readable only by whoever may
read the journal). Which one is decided by the lock, never by a health probe
that may just have been slow.
"""

from __future__ import annotations

import hmac
import json
import secrets
import ssl
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from edge.config import Config

TOKEN_FILE = "admin-token"
MAX_PAIRING_MINUTES = 7 * 24 * 60  # `edge pair --minutes`: a week at most

AdminHandler = Callable[[web.Request, dict[str, Any]], Awaitable[web.Response]]


def write_admin_token(data_dir: Path) -> str:
    """A fresh token for local admin calls, readable by the node's user only."""
    token = secrets.token_urlsafe(32)
    path = data_dir / TOKEN_FILE
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token + "\n")
    return token


def admin_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class AdminRefused(Exception):
    """A store IT request (`edge staff`, `edge tills`) that cannot be carried out: nothing
    was written. Answered as `admin_error(status, code, message)`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def admin_only(expected: Callable[[web.Request], str | None]) -> Callable[[AdminHandler], Any]:
    """Wrap a handler: refuse without the admin token; hand it the JSON body."""

    def wrap(handler: AdminHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def checked(request: web.Request) -> web.Response:
            token = expected(request)
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not token or not hmac.compare_digest(given, token):
                return admin_error(403, "invalid_token",
                                   f"give the token in {TOKEN_FILE} of the data folder")
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return admin_error(400, "invalid_request", "send a JSON object")
            return await handler(request, body)

        return checked

    return wrap


def node_url(config: Config) -> str:
    host = "127.0.0.1" if config.host in ("0.0.0.0", "", "::") else config.host
    # The running node wrote how it serves (`--tls` may differ from the config).
    try:
        served = (config.data_dir / "till-url").read_text().strip()
    except OSError:
        served = ""
    scheme = served.partition("://")[0] if "://" in served else config.scheme
    return f"{scheme}://{host}:{config.port}"


def local_tls(config: Config) -> ssl.SSLContext | None:
    """Checks a node serving HTTPS is this store's, by its store CA (edge/trust/)."""
    ca_file = config.data_dir / "tls" / "store-ca.pem"
    return ssl.create_default_context(cafile=str(ca_file)) if ca_file.exists() else None


def running_node(config: Config) -> dict[str, Any] | None:
    """The health of this store's node running on this machine, if one answers."""
    try:
        with urllib.request.urlopen(f"{node_url(config)}/healthz", timeout=2,
                                    context=local_tls(config)) as response:
            health = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return health if health.get("store_id") == config.store_id else None


class NodeRefused(Exception):
    """The running node could not be asked, or said no: the message says why, in words."""


def ask_node(config: Config, path: str, body: dict[str, Any], timeout: float = 10) -> Any:
    """POST to the running node's admin API; its JSON answer."""
    token_file = config.data_dir / TOKEN_FILE
    try:
        token = token_file.read_text().strip()
    except OSError as error:
        raise NodeRefused(f"The node runs but {token_file} cannot be read ({error.strerror}): "
                          "run this as the node's user or root.") from None
    request = urllib.request.Request(
        f"{node_url(config)}{path}", method="POST", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout,
                                    context=local_tls(config)) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {error.code}"
        raise NodeRefused(f"The node refused: {message}") from None
    except OSError as error:
        raise NodeRefused(f"The node holds the data folder but does not answer at "
                          f"{node_url(config)} ({error}): is it still starting?") from None
