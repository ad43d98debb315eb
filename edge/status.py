"""`edge status`: how a node stands, read from its data folder (running or not).

It only reads the SQLite file. Each part is a section registered with
`@section(name)`: a function of the config and a read connection returning a
dict (or None to leave it out), so other parts of the node add their own.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.config import Config
from edge.journal.datafolder import LOCK_FILE, read_node_id

Section = Callable[[Config, sqlite3.Connection], dict[str, Any] | None]
SECTIONS: dict[str, Section] = {}


def section(name: str) -> Callable[[Section], Section]:
    """Register a section; one that finds the data of an older edge (a table or column
    missing until the node upgrades it at start) is left out rather than failing."""

    def register(function: Section) -> Section:
        def read(config: Config, db: sqlite3.Connection) -> dict[str, Any] | None:
            try:
                return function(config, db)
            except sqlite3.OperationalError:
                return None

        SECTIONS[name] = read
        return function

    return register


def node_id(config: Config) -> str | None:
    return read_node_id(config.data_dir)


@section("node")
def _node(config: Config, db: sqlite3.Connection) -> dict[str, Any]:
    # Each origin's seqs are gapless from 1 (its hash chain), so the kept heads
    # count the journal: a COUNT(*) read ten million rows.
    events, origins = db.execute(
        "SELECT COALESCE(SUM(last_seq), 0), COUNT(*) FROM origins").fetchone()
    return {
        "store": config.store_id,
        "node": node_id(config),
        "running": running_in_words(config),
        "data": str(config.data_dir.resolve()),
        "free_space": free_space(config.data_dir),
        "journal_events": events,
        "origins": origins,
    }


def folder_holder(folder: Path) -> tuple[bool | None, str]:
    """Does a process hold this data folder's lock (a running node), and what it wrote there.

    Read from the kernel's table of locks (/proc/locks), never by taking the
    lock: a probe could make a node that starts at that instant fail. None
    when it cannot be told (no /proc/locks).
    """
    lock = folder / LOCK_FILE
    try:
        holder = lock.read_text().strip()
        stat = lock.stat()
    except FileNotFoundError:
        return False, ""
    except OSError as error:
        return None, f"cannot read {lock}: {error.strerror} (run this as root or the node's user)"
    wanted = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    try:
        table = Path("/proc/locks").read_text()
    except OSError:
        return None, holder
    held = any(line.split()[1] == "FLOCK" and line.split()[5] == wanted
               for line in table.splitlines() if len(line.split()) > 5)
    return held, holder


def running_in_words(config: Config) -> str:
    """Whether the node runs, and if it answers, how it stands, in one line."""
    held, holder = folder_holder(config.data_dir)
    if held is False:
        if holder:  # a lock file left written: the process did not stop cleanly
            return f"NO (last run: {holder}; it ended without stopping cleanly)"
        return "NO"
    health = live_health(config)
    who = f" ({holder})" if holder else ""
    if health is None:
        if held is None:
            return f"unknown: no node answers at {node_address(config)}{who}"
        return f"yes{who}, but it does not answer at {node_address(config)}: starting, or stuck"
    return f"yes{who}: {in_words(health)}"


def free_space(folder: Path) -> str:
    try:
        disk = os.statvfs(folder)
    except OSError as error:
        return f"unknown ({error.strerror})"
    free, total = disk.f_bavail * disk.f_frsize, disk.f_blocks * disk.f_frsize
    low = " LOW: free some space, sales stop when the disk is full" if free < LOW_SPACE else ""
    return f"{_size(free)} of {_size(total)}{low}"


# Below this, `edge status` warns: a day of a busy store's journal is well under it.
LOW_SPACE = 200 * 1024 * 1024


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)


def in_words(health: dict[str, Any]) -> str:
    """A running node's state (its /healthz) in one line: `edge status`, systemd's STATUS=.

    First what matters to the shop (selling or not), then what needs a look.
    """
    journal = health.get("journal") or {}
    parts = []
    if journal.get("disk_full_since"):
        parts.append(f"NOT SELLING: disk full since {journal['disk_full_since']} "
                     "(free space in the data folder)")
    elif health.get("failure"):
        parts.append(f"STOPPED: {health['failure']}")
    else:
        parts.append("selling")
    if journal.get("write_back_failed"):
        parts.append(f"NEEDS A RESTART: {journal['write_back_failed']}")
    tills = health.get("tills_connected", 0)
    parts.append(f"{tills} till{'s' if tills != 1 else ''} connected")
    peers = health.get("peers") or []
    if peers:
        connected = sum(1 for peer in peers if peer.get("connected"))
        parts.append(f"{connected} of {len(peers)} peer{'s' if len(peers) != 1 else ''} "
                     "connected")
    headoffice = (health.get("headoffice") or {}).get("state", "disabled")
    if headoffice != "disabled":
        parts.append({"ok": "head office ok", "failing": "head office FAILING",
                      "waiting": "head office not reached yet"}.get(headoffice,
                                                                    f"head office {headoffice}"))
    for printer in health.get("printers") or []:
        if printer.get("state") not in (None, "ready"):
            parts.append(f"printer {printer.get('name')}: {printer.get('detail')}")
    for task in health.get("tasks") or []:
        if task.get("state") == "restarting":
            parts.append(f"{task.get('name')} restarting")
    return "; ".join(parts)


@section("history")
def _history(config: Config, db: sqlite3.Connection) -> dict[str, Any] | None:
    """Restored or copied data folders: which node continues which, and why, in words."""
    from edge.journal.lineage import explain

    rows = db.execute("SELECT * FROM origin_lineage ORDER BY time").fetchall()
    fenced = db.execute("SELECT value FROM meta WHERE key = 'origin_fenced'").fetchone()
    backup = db.execute("SELECT value FROM meta WHERE key = 'backup_of'").fetchone()
    also = {}
    for origin, successor in db.execute(
            "SELECT retired.origin, retired.successor FROM retired_origins AS retired "
            "JOIN origin_lineage AS line ON line.origin = retired.successor "
            "WHERE retired.origin != line.predecessor"):
        also.setdefault(successor, []).append(origin)
    history = {row["origin"]: explain(row, also.get(row["origin"], [])) for row in rows}
    if fenced:
        history["next start"] = (f"another process wrote under this node's origin ({fenced[0]}): "
                                 "the node stopped writing and continues under a new origin "
                                 "when it starts")
    if backup:
        history["next start"] = ("this journal is a restored backup: the node continues under "
                                 "a new origin when it starts")
    return history or None


@section("before signing")
def _before_signing(config: Config, db: sqlite3.Connection) -> dict[str, Any] | None:
    """Events from before signing that only this node holds (no store CA vouch covers them)."""
    from edge.journal.vouches import unvouched_here

    said = unvouched_here(db)
    return {f"held here only ({number})": words
            for number, words in enumerate(said, start=1)} or None


@section("sales to check")
def _sales_to_check(config: Config, db: sqlite3.Connection) -> dict[str, Any] | None:
    from edge.selling.sales import baskets_sold_twice

    return baskets_sold_twice(db) or None


@section("refunds to check")
def _refunds_to_check(config: Config, db: sqlite3.Connection) -> dict[str, Any] | None:
    """Receipts refunded beyond what they sold (by nodes cut apart), for a manager to settle."""
    from edge.selling.refund_conflicts import over_refunds_in_words

    return over_refunds_in_words(db) or None


@section("closures")
def _closures(config: Config, db: sqlite3.Connection) -> dict[str, Any] | None:
    """The last closures; this node lacking what the last one covered, in words."""
    from edge.fiscal.closing import status_in_words

    return status_in_words(db)


@section("automatic archive")
def _auto_archive(config: Config, db: sqlite3.Connection) -> dict[str, Any] | None:
    """The last month's or year's archive written in `<data>/archives`, and any failure."""
    from edge.fiscal.auto_archive import status_in_words

    return status_in_words(db, config.data_dir, config.store_id, node_id(config) or "")


@section("printing")
def _printing(config: Config, db: sqlite3.Connection) -> dict[str, Any] | None:
    """Print jobs a restored node's past left unfinished: how many, and who decides."""
    from edge.devices.in_doubt import stranded_summary

    return stranded_summary(db)


@section("card terminals")
def _terminals(config: Config, db: sqlite3.Connection) -> dict[str, Any] | None:
    """This node's card terminals: busy or free, the last payment; payments to settle."""
    unsettled = db.execute("SELECT COUNT(*) FROM card_payments WHERE status = 'unknown' "
                           "AND settled IS NULL AND request != '{}'").fetchone()[0]
    terminals = {}
    for terminal in config.terminals:
        last = db.execute(
            "SELECT status, requested_at FROM card_payments WHERE node = ? AND terminal = ? "
            "AND request != '{}' ORDER BY requested_at DESC LIMIT 1",
            (node_id(config) or "", terminal.name)).fetchone()
        tills = " ".join(terminal.tills) or "every other till"
        state = ("no payment yet" if last is None else
                 "ON A PAYMENT" if last["status"] in ("requested", "started") else
                 f"last payment {last['status']} (asked at {last['requested_at']})")
        terminals[terminal.name] = f"{terminal.host}:{terminal.port}, tills {tills}; {state}"
    if unsettled:
        terminals["to settle"] = (f"{unsettled} card payment(s) whose answer was lost: the "
                                  "cashier settles each from the terminal's slip")
    return terminals or None


@section("headoffice")
def _headoffice(config: Config, db: sqlite3.Connection) -> dict[str, Any]:
    from edge.sync.backlog import unsent

    if not config.headoffice_url or not config.headoffice_enabled:
        return {"state": "disabled"}
    try:
        row = db.execute(
            "SELECT acknowledged_position, last_attempt, last_success, last_error, last_error_at "
            "FROM headoffice_sync WHERE id = 1"
        ).fetchone()
        backlog, oldest = unsent(db)
    except sqlite3.OperationalError:  # data of an older edge: the node upgrades it at start
        return {"url": config.headoffice_url, "state": "never run"}
    failing = bool(row["last_error_at"]) and (row["last_error_at"] > (row["last_success"] or ""))
    return {
        "url": config.headoffice_url,
        "state": "failing" if failing else ("ok" if row["last_success"] else "waiting"),
        "backlog_events": backlog,
        "oldest_unsent": oldest,
        "last_success": row["last_success"],
        "last_error": row["last_error"],
        "last_error_at": row["last_error_at"],
    }


@section("peers")
def _peers(config: Config, db: sqlite3.Connection) -> dict[str, Any] | None:
    """The store's other nodes: what this journal holds of each, and the live link if up."""
    me = node_id(config)
    rows = db.execute(
        """SELECT e.origin, e.seq, e.time FROM origins AS o
           JOIN events AS e ON e.origin = o.origin AND e.seq = o.last_seq
           WHERE o.origin != ? AND o.origin NOT LIKE 'headoffice%' ORDER BY o.origin""",
        (me or "",),
    ).fetchall()
    live = _live_peers(config)
    if not rows and not live and not config.peer_urls:
        return None
    peers: dict[str, Any] = {}
    for row in rows:
        peers[row["origin"]] = f"last event #{row['seq']} at {row['time']}"
    for peer in live or []:
        link = "connected" if peer["connected"] else "NOT CONNECTED"
        ago = peer["last_contact_s_ago"]
        contact = "never" if ago is None else f"{ago} s ago"
        lag = "" if peer["lag_events"] is None else f", lacks {peer['lag_events']} event(s)"
        held = peers.get(peer["node_id"], "no events yet")
        peers[peer["node_id"]] = f"{link} ({peer['url']}), last contact {contact}{lag}; {held}"
    if live is None:
        peers["link state"] = "unknown: this node is not running (or not on its configured port)"
    return peers


def _live_peers(config: Config) -> list[dict[str, Any]] | None:
    """The running node's own view of its peer links, from its /healthz."""
    health = live_health(config)
    return None if health is None else health.get("peers", [])


def node_address(config: Config) -> str:
    """Where the node serving this data folder answers, from here."""
    import urllib.parse

    url_file = config.data_dir / "till-url"
    try:
        base = url_file.read_text().strip()
    except OSError:
        base = f"{config.public_url()}/"
    parts = urllib.parse.urlsplit(base)
    if parts.hostname and parts.hostname.endswith(".local"):
        # The shop-network name; from the node itself, loopback is surer.
        base = parts._replace(netloc=f"127.0.0.1:{parts.port}").geturl()
    return base.rstrip("/")


def live_health(config: Config) -> dict[str, Any] | None:
    """The running node's /healthz, if this store's node answers."""
    import json
    import urllib.request

    from edge.admin import local_tls

    try:
        with urllib.request.urlopen(f"{node_address(config)}/healthz", timeout=2,
                                    context=local_tls(config)) as reply:
            health = json.load(reply)
    except (OSError, ValueError):
        return None
    return health if isinstance(health, dict) and health.get("store_id") == config.store_id \
        else None


def collect_status(config: Config) -> dict[str, dict[str, Any]]:
    db = sqlite3.connect(config.database, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        db.execute("PRAGMA query_only = ON")
        status = {}
        for name, function in SECTIONS.items():
            part = function(config, db)
            if part is not None:
                status[name] = part
        return status
    finally:
        db.close()


def format_status(status: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, part in status.items():
        lines.append(f"{name}:")
        if not part:
            lines.append("  none yet")  # e.g. peers configured, none heard from so far
            continue
        width = max(len(key) for key in part)
        for key, value in part.items():
            shown = "-" if value is None else value
            lines.append(f"  {key.replace('_', ' '):<{width}}  {shown}")
    return "\n".join(lines)
