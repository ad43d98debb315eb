"""`archive_exported`: the journal's record that a period's archive was made.

Writing an archive is itself an event (issue 11's technical journal): the
period, the SHA-256 of the archive's signed manifest (which names the SHA-256
of every file in it), and its files. Nothing is projected: the record is its
place in the exporting node's chain, which every node and head office holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from edge.admin import AdminRefused
from edge.journal.chain import Event
from edge.journal.event_types import record_type
from edge.journal.store import Journal, Tx

ARCHIVE_EXPORTED = "archive_exported"
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(slots=True)
class ArchiveExported:
    period: str  # as typed: 2026-11-30, 2026-11, 2026
    manifest_sha256: str
    files: list[str]
    start: str = ""  # the period's bounds, as event times (UTC)
    end: str = ""
    events: int = 0
    name: str = ""  # the archive's file name


record_type(ARCHIVE_EXPORTED, schema=ArchiveExported)


def export_body(period: dict[str, str], manifest_sha256: str, files: list[str], events: int,
                name: str) -> dict[str, Any]:
    return {"period": period["label"], "start": period["start"], "end": period["end"],
            "manifest_sha256": manifest_sha256, "files": files, "events": events, "name": name}


def checked_body(request: Any) -> dict[str, Any]:
    """An `archive_exported` body as a command asks for it; AdminRefused if it is not one."""
    if not isinstance(request, dict):
        raise AdminRefused("invalid_request", "send the export as a JSON object")
    digest = request.get("manifest_sha256")
    files = request.get("files")
    if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
        raise AdminRefused("invalid_request", "manifest_sha256 must be 64 hex digits")
    if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
        raise AdminRefused("invalid_request", "files must be a list of names")
    text = ("period", "start", "end", "name")
    if not all(isinstance(request.get(key), str) for key in text) or \
            type(request.get("events")) is not int:
        raise AdminRefused("invalid_request", "period, start, end and name are strings, events "
                                              "a whole number")
    return {key: request[key] for key in (*text, "manifest_sha256", "files", "events")}


async def record_export(journal: Journal, request: Any) -> Event:
    body = checked_body(request)
    return await journal.write(lambda tx: _append(tx, body))


def _append(tx: Tx, body: dict[str, Any]) -> Event:
    return tx.append("archive_exported", body)
