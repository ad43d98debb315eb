"""The head-office sync protocol, shared by the node (client) and head office (server).

Every call is an HTTPS POST of JSON, `Authorization: Bearer <store token>`,
`Edge-Store: <store id>`. Pushed batches are gzip-compressed
(`Content-Encoding: gzip`). docs/headoffice.md describes each call.
"""

from __future__ import annotations

from typing import Any

from edge.chain import Event, event_from_dict

PUSH_PATH = "/api/sync/v1/events"
PULL_PATH = "/api/sync/v1/catalogue"

# What head office accepts in one push: the node's batches are well below.
MAX_BATCH_EVENTS = 5000
MAX_BATCH_BYTES = 16 * 1024 * 1024  # after decompression
MAX_PULL_EVENTS = 1000


class BadBatch(ValueError):
    """A push that is not a well-formed batch."""


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
