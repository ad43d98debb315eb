"""`edge tills`: store IT's tills: list them, revoke one.

Like `edge staff` (edge/selling/staff_admin.py): through the running node
when one holds the data folder (`POST /api/admin/tills`), else here, under
the folder's lock. Revoking is a journal event (`till_revoked`): every node
refuses the till's token at `auth` once the event reaches it, and hangs up
on the till if it is connected there. A revoked till is paired again like a
new one (`edge pair`); it gets a new code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.admin import AdminRefused
from edge.config import Config
from edge.journal.datafolder import FolderInUse
from edge.journal.store import Journal, local_journal
from edge.selling.tills import list_tills, revoke

ACTIONS = ("list", "revoke")


async def carry_out(journal: Journal, request: dict[str, Any],
                    waiting_sales: bool) -> dict[str, Any]:
    """One `edge tills` request; the answer. `waiting_sales`: does a head office take them?"""
    action = request.get("action")
    if action == "list":
        return {"tills": await list_tills(journal, waiting_sales)}
    if action != "revoke":
        raise AdminRefused("invalid_request", f"action must be one of {', '.join(ACTIONS)}")
    code = request.get("code")
    if not isinstance(code, str) or not 1 <= len(code) <= 64:
        raise AdminRefused("invalid_request", "give the till's code, e.g. T03-8dfc74")
    revoked = await journal.write(lambda tx: revoke(tx, code))
    if revoked is None:
        raise AdminRefused("unknown_till", f"there is no till {code!r} (`edge tills list`)", 404)
    return {"till": revoked}


# The command

def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("tills", help="paired tills: list (last seen, sales waiting), "
                                          "revoke one")
    actions = parser.add_subparsers(dest="tills_action", metavar="ACTION", required=True)
    for name, help_text in (("list", "every paired till: when paired, last seen by this "
                                     "node, sales not yet at head office, revoked or not"),
                            ("revoke", "refuse a till's token from now on (a lost or stolen "
                                       "till); it must be paired again")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--config", type=Path,
                            help="store config file (TOML); none = demo store")
        action.add_argument("--data", type=Path, help="data folder (default ./edge-data)")
        if name == "list":
            action.add_argument("--json", action="store_true", help="machine-readable output")
        else:
            action.add_argument("code", help="the till's code, e.g. T03-8dfc74")


def run_tills(config: Config, args: argparse.Namespace) -> int:
    if not config.database.exists():
        print(f"No store data in {config.data_dir}: start `edge serve` once first.",
              file=sys.stderr)
        return 1
    request: dict[str, Any] = {"action": args.tills_action}
    if args.tills_action == "revoke":
        request["code"] = args.code
    try:
        answer = _carry_out_here_or_by_node(config, request)
    except AdminRefused as error:
        print(error.message, file=sys.stderr)
        return 2 if error.status == 400 else 1
    if args.tills_action == "list":
        return _print_list(answer["tills"], args.json)
    till = answer["till"]
    if till["already_revoked"]:
        print(f"Till {till['code']} ({till['name']}) was revoked already.")
    else:
        print(f"Revoked{answer.get('by', '')}: till {till['code']} ({till['name']}). Its token "
              "is refused on every node the revocation reaches; pair it again to use it.")
    return 0


def _carry_out_here_or_by_node(config: Config, request: dict[str, Any]) -> dict[str, Any]:
    from edge.admin import NodeRefused, ask_node

    try:
        return asyncio.run(_carry_out_alone(config, request))
    except FolderInUse:
        pass  # a node (or another command) holds the folder: the node does it
    try:
        answer = ask_node(config, "/api/admin/tills", request)
    except NodeRefused as refused:
        raise AdminRefused("node_refused", str(refused), 409) from None
    return {**answer, "by": " by the running node"}


async def _carry_out_alone(config: Config, request: dict[str, Any]) -> dict[str, Any]:
    async with local_journal(config.data_dir, config.database, "edge tills") as journal:
        return await carry_out(journal, request, bool(config.headoffice_url))


def _local(time: str | None) -> str:
    """An event time (UTC) in this machine's local time, to the minute."""
    if not time:
        return "never"
    try:
        return datetime.fromisoformat(time.replace("Z", "+00:00")).astimezone().strftime(
            "%Y-%m-%d %H:%M")
    except ValueError:
        return time


def _print_list(tills: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps(tills, indent=2, ensure_ascii=False))
        return 0
    if not tills:
        print("No till paired yet: `edge pair` makes a pairing code.")
        return 0
    for till in tills:
        seen = ("connected now" if till.get("connected")
                else f"last seen {_local(till['last_seen'])}")
        waiting = ("" if till["sales_waiting"] is None
                   else f", {till['sales_waiting']} sale(s) not yet at head office")
        revoked = f", REVOKED {_local(till['revoked_at'])}" if till["revoked_at"] else ""
        print(f"{till['code']} ({till['name']}): paired {_local(till['paired_at'])}, "
              f"{seen}{waiting}{revoked}")
    return 0
