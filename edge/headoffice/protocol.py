"""The head-office sync protocol, shared by the node (client) and head office (server).

Every call is an HTTPS POST of JSON, `Authorization: Bearer <store token>`,
`Edge-Store: <store id>`. Pushed batches are gzip-compressed
(`Content-Encoding: gzip`). docs/headoffice.md describes each call.
"""

from __future__ import annotations

from typing import Any

from edge.journal.chain import Event, event_from_dict

PUSH_PATH = "/api/sync/v1/events"
PULL_PATH = "/api/sync/v1/catalogue"

# What head office accepts in one push: the node's batches are well below.
MAX_BATCH_EVENTS = 5000
MAX_BATCH_BYTES = 16 * 1024 * 1024  # after decompression
MAX_PULL_EVENTS = 1000
MAX_VECTOR_ORIGINS = 10_000  # a store's nodes, ever, and head office's origins

# Every head-office origin starts so: `headoffice-<6 hex>` for a new database,
# `headoffice-<6 hex>-<8 hex>` for one that continued after a restore. Nodes
# never push these (they are head office's own catalogue), whichever is current.
HEADOFFICE_ORIGIN_PREFIX = "headoffice-"
HEADOFFICE_ORIGIN_GLOB = HEADOFFICE_ORIGIN_PREFIX + "*"  # for SQL: `origin GLOB ?`


def is_headoffice_origin(origin: str) -> bool:
    return origin.startswith(HEADOFFICE_ORIGIN_PREFIX)


class BadBatch(ValueError):
    """A push that is not a well-formed batch."""


def parse_pull(data: Any) -> tuple[dict[str, int], dict[str, str], int]:
    """(vector, heads, limit) from a decoded pull body; BadBatch if it is not one.

    `vector` is every origin the node holds with its last seq; `heads` the hash
    of the last event of each head-office origin it holds.
    """
    if not isinstance(data, dict):
        raise BadBatch('send {"vector": {origin: seq}, "heads": {origin: hash}, "limit": n}')
    vector, heads = data.get("vector"), data.get("heads", {})
    limit = data.get("limit", MAX_PULL_EVENTS)
    if not isinstance(vector, dict) or not isinstance(heads, dict) \
            or len(vector) > MAX_VECTOR_ORIGINS or len(heads) > MAX_VECTOR_ORIGINS:
        raise BadBatch(f"'vector' and 'heads' are objects of at most {MAX_VECTOR_ORIGINS} "
                       "origins")
    if any(not isinstance(seq, int) or isinstance(seq, bool) or seq < 0
           for seq in vector.values()):
        raise BadBatch("vector values are sequence numbers")
    if any(not isinstance(digest, str) for digest in heads.values()):
        raise BadBatch("heads values are event hashes")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise BadBatch("'limit' is a number of events, at least 1")
    return vector, heads, min(limit, MAX_PULL_EVENTS)


def parse_push(data: Any) -> tuple[str, list[tuple[int, Event]]]:
    """(node, [(position, event)]) from a decoded push body, positions strictly increasing."""
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise BadBatch("send a JSON object {\"node\", \"events\": [...]}")
    node, items = data.get("node"), data["events"]
    if not isinstance(node, str) or not node:
        raise BadBatch("'node' must name the node that sends the batch")
    if not items or len(items) > MAX_BATCH_EVENTS:
        raise BadBatch(f"a batch holds 1 to {MAX_BATCH_EVENTS} events")
    batch: list[tuple[int, Event]] = []
    last = 0
    for number, item in enumerate(items):
        try:
            position = item["position"]
            event = event_from_dict(item)
        except (KeyError, TypeError, ValueError) as error:
            raise BadBatch(f"events[{number}] is not an event: {error!r}") from None
        if not isinstance(position, int) or position <= last:
            raise BadBatch(f"events[{number}]: positions must increase")
        last = position
        batch.append((position, event))
    return node, batch
