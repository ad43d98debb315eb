"""Head-office sync as /healthz and /metrics show it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from edge.sync.client import Counters, SyncClient


async def sync_health(sync: SyncClient | None) -> dict[str, Any]:
    """The `headoffice` part of /healthz."""
    if sync is None:
        return {"state": "disabled"}
    return await sync.status()


def _age(time: str | None) -> float:
    if not time:
        return 0.0
    return max(0.0, (datetime.now(UTC) - datetime.fromisoformat(time)).total_seconds())


def _timestamp(time: str | None) -> float:
    return datetime.fromisoformat(time).timestamp() if time else 0.0


async def sync_metric_rows(sync: SyncClient | None) -> list[tuple[str, str, str, str, Any]]:
    """/metrics rows: (name, kind, help, labels, value); zeros when sync is off."""
    status = await sync.status() if sync is not None else {}
    counters = sync.counters if sync is not None else Counters()
    return [
        ("edge_headoffice_up", "gauge", "1 if the last head-office sync round succeeded.", "",
         int(status.get("state") == "ok")),
        ("edge_headoffice_backlog_events", "gauge", "Events head office has not acknowledged.",
         "", status.get("backlog_events", 0)),
        ("edge_headoffice_oldest_unsent_age_seconds", "gauge",
         "Age of the oldest event head office has not acknowledged.", "",
         round(_age(status.get("oldest_unsent")), 1)),
        ("edge_headoffice_last_success_timestamp_seconds", "gauge",
         "Unix time of the last successful sync round (0: never).", "",
         round(_timestamp(status.get("last_success")), 3)),
        ("edge_headoffice_events_pushed_total", "counter",
         "Events head office acknowledged since start.", "", counters.pushed),
        ("edge_headoffice_events_pulled_total", "counter",
         "Catalogue events from head office applied since start.", "", counters.pulled),
        ("edge_headoffice_errors_total", "counter", "Failed sync rounds since start.", "",
         counters.errors),
        ("edge_headoffice_events_refused_total", "counter",
         "Events head office refused as conflicting since start.", "", counters.refused),
    ]
