"""Head-office sync on the wire: TLS, the token, batches, and errors said in plain words.

Pure helpers of edge/sync.py, kept apart so the client reads as the protocol.
"""

from __future__ import annotations

import sqlite3
import ssl
from dataclasses import dataclass

import aiohttp
import orjson

from edge.config import Config
from edge.headoffice.protocol import HEADOFFICE_ORIGIN_GLOB
from edge.journal.chain import SECRET_FIELD, canonical_json, withheld


class SyncError(Exception):
    """A sync round that failed, said in plain words for store IT."""


@dataclass(frozen=True)
class Batch:
    first: int
    last: int
    count: int
    raw_bytes: int
    body: bytes  # gzip


def read_token(config: Config) -> str:
    if config.headoffice_token_file is not None:
        try:
            token = config.headoffice_token_file.read_text().strip()
        except OSError as error:
            raise SyncError(f"cannot read headoffice.token_file: {error.strerror}") from None
    else:
        token = (config.headoffice_token or "").strip()
    if not token:
        raise SyncError("no head-office token: set headoffice.token_file")
    return token


def client_tls(config: Config) -> ssl.SSLContext:
    """Verified TLS: the system's CAs, or only headoffice.ca_file when it is set."""
    cafile = str(config.headoffice_ca_file) if config.headoffice_ca_file else None
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def describe(error: BaseException, config: Config, timeout: float) -> str:
    """What went wrong, for a person: never the token."""
    if isinstance(error, SyncError):
        return str(error)
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        reason = getattr(error.certificate_error, "verify_message", "") or error.certificate_error
        return (f"head office's TLS certificate is not trusted ({reason}): renew it, or "
                "check headoffice.ca_file")
    if isinstance(error, aiohttp.ClientSSLError):
        return f"TLS with head office failed: {error}"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot reach head office at {config.headoffice_url}: {error.strerror or error}"
    if isinstance(error, TimeoutError):
        return f"head office did not answer within {timeout:g} s"
    if isinstance(error, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError
                  | aiohttp.ClientOSError):
        return f"connection to head office lost mid-request ({type(error).__name__})"
    if isinstance(error, aiohttp.ClientError):
        return f"head office call failed: {error}"
    return f"sync failed: {error!r}"


def refusal(status: int, payload: bytes) -> SyncError:
    try:
        detail = orjson.loads(payload)["error"]
        code, message = detail["code"], detail["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        code, message = "", payload[:200].decode(errors="replace")
    if status == 401:
        return SyncError(f"head office refused this store's token ({code or status}): "
                         "check headoffice.token_file")
    if status == 413:
        return SyncError("head office found a batch too large: lower headoffice.batch_bytes")
    if status >= 500:
        return SyncError(f"head office failed: HTTP {status}")
    return SyncError(f"head office refused the request: HTTP {status} {code}: {message}")


def build_batch(
    db: sqlite3.Connection, after: int, max_events: int, max_bytes: int
) -> Batch | None:
    """In sync's thread: the next events past `after`, as a JSON array (not yet compressed).

    Head office's own origins (its catalogue, current or former) are left out.

    SQLite writes each event's JSON itself (the body is stored as JSON already):
    no Python object per event, so the event loop serving tills barely feels it.
    A body's secret (a cashier's PIN hash) goes as its digest (edge/journal/chain.py).
    """
    db.create_function("edge_withheld", 1, _withheld_json, deterministic=True)
    rows = db.execute(
        "SELECT position, json_object('position', position, 'origin', origin, 'seq', seq, "
        "'id', id, 'time', time, 'type', type, 'body', CASE WHEN instr(body, ?) > 0 "
        "THEN json(edge_withheld(body)) ELSE json(body) END, 'prev_hash', prev_hash, "
        "'hash', hash, 'sig', sig) FROM events WHERE position > ? AND origin NOT GLOB ? "
        "ORDER BY position LIMIT ?",
        (f'"{SECRET_FIELD}":{{', after, HEADOFFICE_ORIGIN_GLOB, max_events),
    ).fetchall()
    items, size = [], 0
    for _, item in rows:
        if items and size + len(item) > max_bytes:
            break
        items.append(item)
        size += len(item) + 1
    if not items:
        return None
    body = ("[" + ",".join(items) + "]").encode()
    return Batch(rows[0][0], rows[len(items) - 1][0], len(items), len(body), body)


def _withheld_json(body: str) -> str:
    return canonical_json(withheld(orjson.loads(body))).decode()
