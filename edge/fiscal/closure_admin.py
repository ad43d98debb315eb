"""`edge close --day [DATE] | --month [YYYY-MM] | --year [YYYY]`: close a period.

A closure is an event of the closing node's chain, so one writer makes it:
the running node when one holds the data folder (`POST /api/admin/close`,
with the admin token, edge/admin.py; it knows which peers it has heard
everything from), else this command under the folder's lock. Alone, the
command hears no peer: if the config names peers, it refuses unless
`--alone` (the closure then names them). Without a period, the next one to
close (closing.py).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from edge.admin import NodeRefused, admin_error, admin_only, ask_node
from edge.config import Config
from edge.fiscal.closing import Request, caught_up_missing, close_period, describe
from edge.fiscal.periods import DAY, MONTH, YEAR, calendar_of
from edge.journal.datafolder import FolderInUse
from edge.journal.store import local_journal
from edge.messages import EdgeError

NEXT = "next"  # `--day` without a date


def run_close(config: Config, kind: str, period: str | None, alone: bool) -> int:
    """`edge close`: 0 once the period is closed."""
    request = {"kind": kind, "period": period, "alone": alone}
    if not config.database.exists():
        print(f"No store data in {config.data_dir}.", file=sys.stderr)
        return 1
    try:
        said = asyncio.run(_close_alone(config, request))
    except FolderInUse:  # a node (or another command) holds the folder: the node closes
        try:
            said = ask_node(config, "/api/admin/close", request, timeout=120)["said"] + \
                " (by the running node)"
        except NodeRefused as refused:
            print(f"Not closed: {refused}", file=sys.stderr)
            return 1
    except EdgeError as error:
        print(f"Not closed: {error.message} ({error.code}).", file=sys.stderr)
        return 1
    print(said)
    return 0


async def _close_alone(config: Config, request: dict[str, Any]) -> str:
    async with local_journal(config.data_dir, config.database, "edge close") as journal:
        closure = await close_period(journal, calendar_of(config), Request(
            request["kind"], request["period"], alone=request["alone"],
            missing=list(config.peer_urls)))
    return describe(closure)


def admin_handler(token_of: Callable[[web.Request], str | None],
                  node_of: Callable[[web.Request], Any]) -> Any:
    """`POST /api/admin/close {kind, period, alone}`: the running node closes."""

    @admin_only(token_of)
    async def close(request: web.Request, body: dict[str, Any]) -> web.Response:
        node = node_of(request)
        kind, period, alone = body.get("kind"), body.get("period"), body.get("alone") is True
        if kind not in (DAY, MONTH, YEAR) or not (period is None or isinstance(period, str)):
            return admin_error(400, "invalid_request", "kind is day, month or year; period a "
                                                       "string or none")
        try:
            closure = await close_period(node.journal, calendar_of(node.config), Request(
                kind, period, made_by="cli", alone=alone,
                missing=await caught_up_missing(node)))
        except EdgeError as error:
            return admin_error(409, error.code, error.message)
        return web.json_response({"closure": closure.as_json(), "said": describe(closure)})

    return close


def add_parser(sub: Any) -> None:
    """`edge close` in the `edge` command (edge/cli.py)."""
    close = sub.add_parser(
        "close", help="close a business day (the Z), a month or a year for the whole store")
    close.add_argument("--config", type=Path, help="store config file (TOML); none = demo store")
    close.add_argument("--data", type=Path, help="data folder (default ./edge-data)")
    which = close.add_mutually_exclusive_group(required=True)
    which.add_argument("--day", nargs="?", const=NEXT, metavar="DATE",
                       help="a business day (2026-11-30); none: the next one to close")
    which.add_argument("--month", nargs="?", const=NEXT, metavar="YYYY-MM",
                       help="a month, once all its days are closed; none: the next one")
    which.add_argument("--year", nargs="?", const=NEXT, metavar="YYYY",
                       help="a fiscal year, once all its months are closed; none: the next one")
    close.add_argument("--alone", action="store_true",
                       help="close although some nodes are not heard from (they are named in "
                            "the closure; what they hold falls in the next one)")


def run_from_args(config: Config, args: Any) -> int:
    for kind in (DAY, MONTH, YEAR):
        value = getattr(args, kind)
        if value is not None:
            return run_close(config, kind, None if value == NEXT else value, args.alone)
    return 2
