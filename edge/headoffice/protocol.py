"""The head-office sync protocol, shared by the node (client) and head office (server).

Every call is an HTTPS POST of JSON, `Authorization: Bearer <store token>`,
`Edge-Store: <store id>`. Pushed batches are gzip-compressed
(`Content-Encoding: gzip`). docs/headoffice.md describes each call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from edge.journal.chain import Event
from edge.journal.event_types import UnfitEvent, checked, registry
from edge.journal.signing import HEADOFFICE_ORIGIN_PREFIX, is_headoffice_origin

PUSH_PATH = "/api/sync/v1/events"
PULL_PATH = "/api/sync/v1/catalogue"

# What head office accepts in one push: the node's batches are well below.
MAX_BATCH_EVENTS = 5000
MAX_BATCH_BYTES = 16 * 1024 * 1024  # after decompression
MAX_PULL_EVENTS = 1000
# A pull's `reads`: the node applies catalogue events of many products
# (edge/selling/catalogue_batches.py); head office writes them once every store does.
CATALOGUE_BATCHES = "catalogue_batches"
MAX_VECTOR_ORIGINS = 10_000  # a store's nodes, ever, and head office's origins

# What one field may hold. Head office indexes and stores these as they come
# (PostgreSQL BIGINT and TEXT): anything else must be refused here with a
# 400, never reach the database and come back as a 500.
MAX_SEQ = 2**63 - 1  # BIGINT; positions too
# A node's id (6 hex), a test's `n1`, head office's `headoffice-<6 hex>-<8 hex>`.
ORIGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
EVENT_ID = re.compile(r"[\x21-\x7e]{1,100}")  # a uuid4 today: printable, no space
TIME = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]{5,18}(Z|[+-]\d\d:\d\d)")
HASH = re.compile(r"[0-9a-f]{64}")
SIG = re.compile(r"[0-9a-f]{128}")  # Ed25519, hex; "" for an event written before signing
MAX_CA_PEM = 8192  # the store CA's certificate, which a push carries

# Every head-office origin starts so (edge/journal/signing.py): `headoffice-<6 hex>`
# for a new database, `headoffice-<6 hex>-<8 hex>` for one that continued after a
# restore. Nodes never push these (they are head office's own catalogue).
HEADOFFICE_ORIGIN_GLOB = HEADOFFICE_ORIGIN_PREFIX + "*"  # for SQL: `origin GLOB ?`
__all__ = ["HEADOFFICE_ORIGIN_GLOB", "HEADOFFICE_ORIGIN_PREFIX", "is_headoffice_origin"]


class BadBatch(ValueError):
    """A request that is not well formed: answered 400 with `code`, nothing stored."""

    def __init__(self, message: str, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.code = code


def _is_seq(value: Any, low: int = 1) -> bool:
    return type(value) is int and low <= value <= MAX_SEQ


def _is_origin(value: Any) -> bool:
    return isinstance(value, str) and ORIGIN.fullmatch(value) is not None


@dataclass(frozen=True)
class Pull:
    vector: dict[str, int]  # every origin the node holds, with its last seq
    heads: dict[str, str]  # the hash of its last event of each head-office origin
    limit: int
    node: str  # the node pulling ('' from an edge that did not say)
    reads_batches: bool  # it reads catalogue events of many products


def parse_pull(data: Any) -> Pull:
    """A decoded pull body; BadBatch if it is not one."""
    if not isinstance(data, dict):
        raise BadBatch('send {"vector": {origin: seq}, "heads": {origin: hash}, "limit": n}')
    vector, heads = data.get("vector"), data.get("heads", {})
    limit = data.get("limit", MAX_PULL_EVENTS)
    if not isinstance(vector, dict) or not isinstance(heads, dict) \
            or len(vector) > MAX_VECTOR_ORIGINS or len(heads) > MAX_VECTOR_ORIGINS:
        raise BadBatch(f"'vector' and 'heads' are objects of at most {MAX_VECTOR_ORIGINS} "
                       "origins")
    if not all(map(_is_origin, vector)) or not all(map(_is_origin, heads)):
        raise BadBatch("'vector' and 'heads' are keyed by origins (letters, digits, '._-', "
                       "at most 64)")
    if not all(_is_seq(seq, low=0) for seq in vector.values()):
        raise BadBatch(f"vector values are sequence numbers from 0 to {MAX_SEQ}")
    if not all(isinstance(digest, str) and HASH.fullmatch(digest) for digest in heads.values()):
        raise BadBatch("heads values are event hashes (64 hex digits)")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise BadBatch("'limit' is a number of events, at least 1")
    reads, node = data.get("reads", []), data.get("node", "")
    if not isinstance(reads, list) or len(reads) > 16 \
            or not all(isinstance(item, str) and len(item) <= 64 for item in reads):
        raise BadBatch("'reads' is a list of at most 16 names")
    if node != "" and not _is_origin(node):
        raise BadBatch("'node' is a node's id (letters, digits, '._-', at most 64)")
    return Pull(vector, heads, min(limit, MAX_PULL_EVENTS), node, CATALOGUE_BATCHES in reads)


def parse_push(data: Any) -> tuple[str, list[tuple[int, Event]], str | None]:
    """(node, [(position, event)], store CA PEM or None) from a decoded push body,
    positions strictly increasing.

    Every field is checked before anything is stored: its type, its length,
    seqs and positions within BIGINT, the event type one this head office
    knows, and the body fitting that type's schema (as a node's journal
    checks it). One bad event refuses the whole batch, naming it.
    """
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise BadBatch("send a JSON object {\"node\", \"events\": [...]}")
    node, items, store_ca = data.get("node"), data["events"], data.get("store_ca")
    if not _is_origin(node):
        raise BadBatch("'node' must name the node that sends the batch (its id)")
    if store_ca is not None and not (isinstance(store_ca, str) and 0 < len(store_ca)
                                     <= MAX_CA_PEM):
        raise BadBatch(f"'store_ca' is the store CA's certificate (PEM, at most {MAX_CA_PEM} "
                       "characters)", "store_ca_invalid")
    if not items or len(items) > MAX_BATCH_EVENTS:
        raise BadBatch(f"a batch holds 1 to {MAX_BATCH_EVENTS} events")
    batch: list[tuple[int, Event]] = []
    last = 0
    for number, item in enumerate(items):
        event = _event(item, f"events[{number}]")
        position = item["position"]
        if position <= last:
            raise BadBatch(f"events[{number}]: positions must increase")
        last = position
        batch.append((position, event))
    for number, (_, event) in enumerate(batch):
        _check_body(event, f"events[{number}]")
    return node, batch, store_ca


def _event(item: Any, where: str) -> Event:
    """One pushed event, every field checked; BadBatch naming the field otherwise."""
    if not isinstance(item, dict):
        raise BadBatch(f"{where} is not an event: send an object")
    missing = [key for key in ("position", *EVENT_FIELDS) if key not in item]
    if missing:
        raise BadBatch(f"{where} is not an event: {', '.join(missing)} missing")
    for key, fits, what in FIELD_CHECKS:
        if not fits(item[key]):
            raise BadBatch(f"{where}.{key} must be {what}")
    sig = item.get("sig", "")
    if not (isinstance(sig, str) and (sig == "" or SIG.fullmatch(sig))):
        raise BadBatch(f"{where}.sig must be a signature (128 hex digits)")
    return Event(item["origin"], item["seq"], item["id"], item["time"], item["type"],
                 item["body"], item["prev_hash"], item["hash"], sig)


def _check_body(event: Event, where: str) -> None:
    """A type head office knows, and a body that fits it (what a node's journal checks)."""
    if is_headoffice_origin(event.origin):
        return  # head office's own catalogue coming back: skipped, whatever it holds
    try:
        checked(event)
    except UnfitEvent as unfit:
        if event.type not in registry():
            raise BadBatch(f"{where}: unknown event type {event.type!r}: a store on a newer "
                           "edge than head office? upgrade head office", "unknown_event_type"
                           ) from None
        raise BadBatch(f"{where}: {unfit}", "unfit_event") from None


EVENT_FIELDS = ("origin", "seq", "id", "time", "type", "body", "prev_hash", "hash")
FIELD_CHECKS: tuple[tuple[str, Any, str], ...] = (
    ("position", _is_seq, f"a whole number from 1 to {MAX_SEQ}"),
    ("origin", _is_origin, "an origin (letters, digits, '._-', at most 64)"),
    ("seq", _is_seq, f"a whole number from 1 to {MAX_SEQ}"),
    ("id", lambda v: isinstance(v, str) and EVENT_ID.fullmatch(v), "an event id (at most 100)"),
    ("time", lambda v: isinstance(v, str) and TIME.fullmatch(v), "an ISO 8601 UTC time"),
    ("type", lambda v: isinstance(v, str) and 0 < len(v) <= 64, "an event type"),
    ("body", lambda v: isinstance(v, dict), "an object"),
    ("prev_hash", lambda v: isinstance(v, str) and HASH.fullmatch(v), "64 hex digits"),
    ("hash", lambda v: isinstance(v, str) and HASH.fullmatch(v), "64 hex digits"),
)
