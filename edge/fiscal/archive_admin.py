"""`edge archive --period P`: write a period's archive, and record that it was made.

The archive is read from the journal as `edge backup` reads it (one
consistent snapshot, while the node sells or not) and signed with the data
folder's node key (`<data>/tls/`). Its record (`archive_exported`, exports.py)
is a journal event of this node's origin, so one writer makes it: the
running node when one holds the data folder (`POST /api/admin/archive`, with
the admin token, edge/admin.py), else this command under the folder's lock.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from edge.admin import AdminRefused, NodeRefused, admin_error, admin_only, ask_node
from edge.config import Config
from edge.fiscal.archive import ArchiveError, Written, write_archive
from edge.fiscal.exports import export_body, record_export
from edge.fiscal.periods import Period, calendar_of, parse_period
from edge.journal.datafolder import FolderInUse
from edge.journal.store import Journal, folder_trust, local_journal


def archive_name(store_id: str, label: str) -> str:
    return f"edge-archive-{store_id}-{label}.zip"


def run_archive(config: Config, period_text: str, out: Path | None) -> int:
    """`edge archive`: 0 once the archive is written and its export recorded."""
    try:
        period = parse_period(period_text, calendar=calendar_of(config))
    except ValueError as error:
        print(f"Cannot archive: {error}.", file=sys.stderr)
        return 2
    if not config.database.exists():
        print(f"No store data in {config.data_dir}.", file=sys.stderr)
        return 1
    target = out if out is not None and not out.is_dir() else \
        (out or Path.cwd()) / archive_name(config.store_id, period.label)
    try:
        written = write_archive(config.database, period, target, folder_trust(config.data_dir))
    except ArchiveError as error:
        print(f"Archive not written: {error}", file=sys.stderr)
        return 1
    body = export_body(period.as_dict(), written.manifest_sha256, written.files,
                       written.events, target.name)
    try:
        by = _record(config, body)
    except NodeRefused as refused:
        print(f"The archive {target} is written, but its export could not be recorded in the "
              f"journal: {refused}", file=sys.stderr)
        return 1
    _say(written, period, by)
    return 0


def _record(config: Config, body: dict[str, Any]) -> str:
    try:
        asyncio.run(_record_alone(config, body))
        return ""
    except FolderInUse:
        pass  # a node (or another command) holds the folder: the node records it
    ask_node(config, "/api/admin/archive", body, timeout=30)
    return " by the running node"


async def _record_alone(config: Config, body: dict[str, Any]) -> None:
    async with local_journal(config.data_dir, config.database, "edge archive") as journal:
        await record_export(journal, body)


def _say(written: Written, period: Period, by: str) -> None:
    net = written.totals["net"]
    print(f"Archive of {period.label} ({period.start} to {period.end} UTC) written to "
          f"{written.path}: {written.events} events, {written.sales} sale(s) and refund(s), "
          f"net {net['total']} cents.")
    print(f"Manifest SHA-256 {written.manifest_sha256}; its export is recorded in the "
          f"journal{by}. Check it with `edge verify {written.path}`.")


def admin_handler(token_of: Callable[[web.Request], str | None],
                  journal_of: Callable[[web.Request], Journal]) -> Any:
    """`POST /api/admin/archive`: the running node records an export `edge archive` made."""

    @admin_only(token_of)
    async def record(request: web.Request, body: dict[str, Any]) -> web.Response:
        try:
            event = await record_export(journal_of(request), body)
        except AdminRefused as error:
            return admin_error(error.status, error.code, error.message)
        return web.json_response({"origin": event.origin, "seq": event.seq})

    return record


def add_parser(sub: Any) -> None:
    """`edge archive` in the `edge` command (edge/cli.py)."""
    archive = sub.add_parser(
        "archive", help="write a period's signed archive (events, sales, totals, keys), "
                        "checkable with nothing else by `edge verify ARCHIVE`")
    archive.add_argument("--config", type=Path, help="store config file (TOML); none = demo store")
    archive.add_argument("--data", type=Path, help="data folder (default ./edge-data)")
    archive.add_argument("--period", required=True,
                         help="a business day (2026-11-30), a month (2026-11) or a fiscal "
                              "year (2026), cut as closures are (fiscal.day_cutoff, year_start)")
    archive.add_argument("--out", type=Path,
                         help="the file (or folder) to write; default: "
                              "edge-archive-<store>-<period>.zip in the current folder")
