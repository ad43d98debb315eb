"""`edge staff`: store IT's cashiers: list, add, set a PIN, change a role, disable, enable.

Like `edge pair` (edge/admin.py): through the running node when one holds
the data folder (`POST /api/admin/staff`), else here, under the folder's
lock. Each change is a journal event (`cashier_added`, `cashier_changed`:
the cashier's whole record) and reaches the store's other nodes like any
event. A PIN is read from the terminal (twice, not echoed) or, for scripts,
as one line of standard input (`--pin-stdin`): never from the command line,
where `ps` and shell histories show it, and never logged. The running node
gets it in the body of the local admin request, since the node alone may
hold the pin key (edge/selling/staff.py).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.admin import AdminRefused
from edge.config import Config
from edge.journal.datafolder import FolderInUse
from edge.journal.store import Journal, Tx, local_journal
from edge.selling.staff import ROLES, PinKey, cashier_body, pin_key, pin_problem, pin_secret

ACTIONS = ("list", "add", "set-pin", "role", "disable", "enable")
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MAX_NAME = 80
# How a cashier's PIN hash stands, for `edge staff list`.
PIN_STATES = {
    "keyed": "PIN set",
    "unkeyed": "PIN hashed the old way: set it again (edge staff set-pin)",
    "other_key": "PIN set under another store key: set it again (edge staff set-pin)",
    "none": "no PIN: set one (edge staff set-pin)",
}


# The change itself: the same for the running node and for the command alone

async def carry_out(journal: Journal, key: PinKey, request: dict[str, Any]) -> dict[str, Any]:
    """One `edge staff` request, checked whole before anything is written; the answer."""
    action = request.get("action")
    if action == "list":
        rows = await journal.read_all(f"SELECT {COLUMNS} FROM cashiers ORDER BY id")
        return {"cashiers": [_shown(row, key) for row in rows]}
    if action not in ACTIONS:
        raise AdminRefused("invalid_request", f"action must be one of {', '.join(ACTIONS)}")
    cashier_id = request.get("id")
    if not isinstance(cashier_id, str) or not ID_PATTERN.fullmatch(cashier_id):
        raise AdminRefused("invalid_request", "a cashier's id is 1 to 64 lower-case letters, "
                                            "digits, '.', '_' or '-', starting with a letter "
                                            "or digit")
    pin = request.get("pin")
    if pin is not None and not isinstance(pin, str):
        raise AdminRefused("invalid_request", "pin must be a string of digits")
    if action == "add":
        return await _add(journal, key, cashier_id, request, pin)
    row = await journal.read_one(f"SELECT {COLUMNS} FROM cashiers WHERE id = ?", (cashier_id,))
    if row is None:
        raise AdminRefused("unknown_cashier", f"there is no cashier {cashier_id!r}", 404)
    role = request.get("role") if action == "role" else row["role"]
    if role not in ROLES:
        raise AdminRefused("invalid_request", f"role must be one of {', '.join(ROLES)}")
    secret = None
    if action == "set-pin" or (action == "role" and role == "manager" != row["role"]):
        # A manager's PIN has more digits than a cashier's may: a promotion sets a new one.
        secret = await _secret(key, pin, role)

    def edit(record: dict[str, Any]) -> dict[str, Any]:
        changed = {**record, "role": role}
        if secret is not None:
            changed.pop("pin_salt", None)
            changed.pop("pin_hash", None)
            changed["secret"] = secret
        if action in ("disable", "enable"):
            changed["disabled"] = action == "disable"
        return changed

    return await journal.write(lambda tx: _change(tx, key, cashier_id, edit))


async def _add(journal: Journal, key: PinKey, cashier_id: str, request: dict[str, Any],
               pin: str | None) -> dict[str, Any]:
    name, role = request.get("name"), request.get("role", "cashier")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
        raise AdminRefused("invalid_request", f"name must be 1 to {MAX_NAME} characters")
    if role not in ROLES:
        raise AdminRefused("invalid_request", f"role must be one of {', '.join(ROLES)}")
    body = cashier_body(cashier_id, name.strip(), role, await _secret(key, pin, role))

    def add(tx: Tx) -> dict[str, Any]:
        if tx.fetchone("SELECT 1 FROM cashiers WHERE id = ?", (cashier_id,)):
            raise AdminRefused("cashier_exists", f"cashier {cashier_id!r} exists already: "
                                               "`edge staff set-pin`, `role` or `enable` it", 409)
        tx.append("cashier_added", body)
        return {"cashier": _shown(_row(tx, cashier_id), key)}

    return await journal.write(add)


async def _secret(key: PinKey, pin: str | None, role: str) -> dict[str, str]:
    if pin is None:
        raise AdminRefused("invalid_request", "a PIN is needed")
    problem = pin_problem(pin, role)
    if problem:
        raise AdminRefused("invalid_pin", problem)
    return await asyncio.to_thread(pin_secret, key, pin)  # slow on purpose: off the loop


def _change(tx: Tx, key: PinKey, cashier_id: str,
            edit: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """In the writer: the cashier's record as it is now, edited, journaled if it changed."""
    record = _record(_row(tx, cashier_id))
    changed = edit(record)
    if changed["role"] == "manager" and "secret" not in changed and record["role"] != "manager":
        raise AdminRefused("invalid_pin", "a manager needs a PIN of at least 6 digits")
    if changed != record:
        tx.append("cashier_changed", changed)
    return {"cashier": _shown(_row(tx, cashier_id), key), "changed": changed != record}


COLUMNS = "id, name, role, pin_salt, pin_hash, pin_key, disabled"


def _row(tx: Tx, cashier_id: str) -> sqlite3.Row:
    row = tx.fetchone(f"SELECT {COLUMNS} FROM cashiers WHERE id = ?", (cashier_id,))
    if row is None:
        raise AdminRefused("unknown_cashier", f"there is no cashier {cashier_id!r}", 404)
    return row


def _record(row: sqlite3.Row) -> dict[str, Any]:
    """The cashier's whole record as an event body, its PIN hash kept as it was made."""
    body = cashier_body(row["id"], row["name"], row["role"], None, bool(row["disabled"]))
    if row["pin_key"] == "" and row["pin_hash"]:
        body |= {"pin_salt": row["pin_salt"], "pin_hash": row["pin_hash"]}
    elif row["pin_key"] != "?" and row["pin_hash"]:
        body["secret"] = {"pin_salt": row["pin_salt"], "pin_hash": row["pin_hash"],
                          "pin_key": row["pin_key"]}
    return body


def _pin_state(row: sqlite3.Row, key: PinKey) -> str:
    if not row["pin_hash"] or row["pin_key"] == "?":
        return "none"
    if row["pin_key"] == "":
        return "unkeyed"
    return "keyed" if row["pin_key"] == key.id else "other_key"


def _shown(row: sqlite3.Row, key: PinKey) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "role": row["role"],
            "disabled": bool(row["disabled"]), "pin": _pin_state(row, key)}


# The command

def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "staff", help="cashiers: list, add, set-pin, role, disable, enable (PINs asked, never "
                      "given on the command line)")
    actions = parser.add_subparsers(dest="staff_action", metavar="ACTION", required=True)

    def action(name: str, help: str, *, cashier: bool = True,
               pin: bool = False) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help)
        p.add_argument("--config", type=Path, help="store config file (TOML); none = demo store")
        p.add_argument("--data", type=Path, help="data folder (default ./edge-data)")
        if cashier:
            p.add_argument("id", help="the cashier's id, e.g. alice")
        if pin:
            p.add_argument("--pin-stdin", action="store_true",
                           help="read the PIN as one line of standard input (for scripts)")
        return p

    listing = action("list", "every cashier, their role, and how their PIN stands",
                     cashier=False)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    add = action("add", "add a cashier (asks the PIN twice)", pin=True)
    add.add_argument("--name", required=True, help="the name tills show")
    add.add_argument("--role", choices=ROLES, default="cashier", help="cashier (default) or "
                     "manager (a PIN of at least 6 digits)")
    action("set-pin", "set a cashier's PIN (asks it twice)", pin=True)
    role = action("role", "change a cashier's role (to manager: asks a new PIN of 6 digits "
                          "or more)", pin=True)
    role.add_argument("role", choices=ROLES, help="cashier or manager")
    action("disable", "stop a cashier from logging in (kept in the history)")
    action("enable", "let a disabled cashier log in again")


def run_staff(config: Config, args: argparse.Namespace) -> int:
    if not config.database.exists():
        print(f"No store data in {config.data_dir}: start `edge serve` once first.",
              file=sys.stderr)
        return 1
    action = args.staff_action
    request: dict[str, Any] = {"action": action}
    if action != "list":
        request["id"] = args.id
    if action == "add":
        request |= {"name": args.name, "role": args.role}
    if action == "role":
        request["role"] = args.role
    if action in ("add", "set-pin") or (action == "role" and args.role == "manager"):
        try:
            request["pin"] = read_pin(args.pin_stdin)
        except AdminRefused as error:
            print(error.message, file=sys.stderr)
            return 2
        problem = pin_problem(request["pin"], request.get("role", "cashier"))
        if problem and action != "set-pin":  # set-pin: the cashier's role decides
            print(f"{problem}: nothing changed.", file=sys.stderr)
            return 2
    try:
        answer = _carry_out_here_or_by_node(config, request)
    except AdminRefused as error:
        print(error.message, file=sys.stderr)
        return 2 if error.status == 400 else 1
    if action == "list":
        return _print_list(answer["cashiers"], args.json)
    shown = answer["cashier"]
    if action != "add" and not answer.get("changed", True):
        print(f"Nothing to change: {_line(shown)}")
    else:
        print(f"Done{answer.get('by', '')}: {_line(shown)}")
    return 0


def read_pin(from_stdin: bool) -> str:
    """The PIN, from one line of standard input or asked twice on the terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise AdminRefused("invalid_request", "No terminal to ask the PIN on: give it as one "
                                            "line of standard input with --pin-stdin.")
    pin = getpass.getpass("PIN: ")
    if getpass.getpass("PIN again: ") != pin:
        raise AdminRefused("invalid_request", "The two PINs differ: nothing changed.")
    return pin


def _carry_out_here_or_by_node(config: Config, request: dict[str, Any]) -> dict[str, Any]:
    from edge.admin import NodeRefused, ask_node

    try:
        return asyncio.run(_carry_out_alone(config, request))
    except FolderInUse:
        pass  # a node (or another command) holds the folder: the node does it
    try:
        answer = ask_node(config, "/api/admin/staff", request, timeout=30)
    except NodeRefused as refused:
        raise AdminRefused("node_refused", str(refused), 409) from None
    return {**answer, "by": " by the running node"}


async def _carry_out_alone(config: Config, request: dict[str, Any]) -> dict[str, Any]:
    try:
        key = pin_key(config)
    except OSError as error:
        raise AdminRefused("no_pin_key", f"cannot read the store key "
                                       f"({error.strerror}): run this as the node's user or "
                                       "root", 403) from None
    async with local_journal(config.data_dir, config.database, "edge staff") as journal:
        return await carry_out(journal, key, request)


def _line(cashier: dict[str, Any]) -> str:
    disabled = ", disabled" if cashier["disabled"] else ""
    return (f"{cashier['id']} ({cashier['name']}, {cashier['role']}{disabled}): "
            f"{PIN_STATES[cashier['pin']]}")


def _print_list(cashiers: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps(cashiers, indent=2, ensure_ascii=False))
    elif not cashiers:
        print("No cashiers yet: `edge staff add ID --name NAME` adds one.")
    else:
        for cashier in cashiers:
            print(_line(cashier))
    return 0
