"""Which origin a journal writes under: its own, or a new one when going on would fork it.

A data folder restored from a backup, copied to another box, put back after
being replaced, or signing with a new key must never write a sequence number
that a peer or head office may already hold for its origin
(edge/journal/datafolder.py tells those cases apart). `claim_origin` decides,
when the journal opens, whether this folder goes on with its origin or starts
a new one that records its predecessor and where it was cut
(`origin_started`). A journal upgraded from before signing also owes, once,
the store CA's vouch for what it held then (`vouch_for_unsigned`).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

import orjson

from edge.journal.chain import ChainHead
from edge.journal.datafolder import (
    HeadMark,
    Home,
    home_changed,
    new_node_id,
    read_head_mark,
    read_node_id,
    replaced_journal,
    write_head_mark,
)
from edge.journal.signing import ORIGIN_CERTIFIED, public_hex
from edge.journal.tx import Tx
from edge.journal.vouches import ca_vouch_body, store_ca_key, unvouched_heads

if TYPE_CHECKING:
    from edge.journal.store import Journal

log = logging.getLogger(__name__)


# The journal's own past (restored, replaced, clashed): its predecessor origin
# is this node's, gone for good. A copy elsewhere may still run its predecessor.
SAME_NODE_REASONS = frozenset({
    "restored_from_backup", "restored_or_replaced", "journal_replaced", "origin_clash",
    "new_signing_key", "journal_from_before_signing"})


def key_change(journal: Journal, db: sqlite3.Connection, origin: str) -> str | None:
    """Why this journal cannot sign on under `origin` with its key (None: it can)."""
    first = db.execute("SELECT type FROM events WHERE origin = ? AND seq = 1",
                       (origin,)).fetchone()
    if first is None:
        return None  # nothing written yet: certified by its first event
    if first["type"] != ORIGIN_CERTIFIED:
        return "journal_from_before_signing"
    row = db.execute("SELECT public_key FROM origin_keys WHERE origin = ?",
                     (origin,)).fetchone()
    if row is None or row["public_key"] != public_hex(journal.identity.signing_key):
        return "new_signing_key"
    return None

def stored_head(db: sqlite3.Connection, origin: str) -> ChainHead:
    row = db.execute(
        "SELECT seq, hash FROM events WHERE origin = ? ORDER BY seq DESC LIMIT 1", (origin,)
    ).fetchone()
    return ChainHead(row["seq"], row["hash"]) if row else ChainHead()

def claim_origin(journal: Journal, db: sqlite3.Connection) -> None:
    """Which origin this folder writes; a new one if it cannot safely go on (datafolder.py)."""
    folder = journal.path.parent
    meta = dict(db.execute(
        "SELECT key, value FROM meta WHERE key IN ('origin', 'origin_home', 'incarnation', "
        "'origin_fenced', 'backup_of')").fetchall())
    here = Home.of(journal.path)
    mark = read_head_mark(folder)
    origin = meta.get("origin")
    if origin is None:
        # An edge from before fencing kept its origin only in `node-id`.
        has_events = db.execute("SELECT 1 FROM events LIMIT 1").fetchone()
        origin = (read_node_id(folder) if has_events else None) or new_node_id()
    reason = None
    if "backup_of" in meta:
        reason = "restored_from_backup"
    elif "origin_fenced" in meta:
        reason = "origin_clash"
    elif "origin_home" in meta and (
            changed := home_changed(Home.from_dict(orjson.loads(meta["origin_home"])), here)):
        reason = changed
    elif "origin" in meta and replaced_journal(
            mark, origin, meta.get("incarnation"), stored_head(db, origin).seq):
        reason = "journal_replaced"
    else:
        # An origin is certified once, by its first event: another key (the node
        # joined the store again), or a journal of before signing, starts a new one.
        reason = key_change(journal, db, origin)
    token = new_node_id() + new_node_id()
    db.execute("BEGIN IMMEDIATE")
    try:
        if reason is not None:
            predecessor, cut = origin, stored_head(db, origin)
            origin = new_node_id()
            same_node = reason in SAME_NODE_REASONS
            journal.rotation = {"predecessor": predecessor, "reason": reason,
                             "retires_predecessor": same_node,
                             "cut": {"seq": cut.seq, "hash": cut.hash},
                             "backup": orjson.loads(meta["backup_of"])
                             if "backup_of" in meta else None}
            if same_node and mark is not None and mark.origin != predecessor:
                # The folder ran another origin since (a backup restored twice):
                # that one is this node's past too.
                journal.rotation["also_retires"] = [mark.origin]
        db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [
            ("origin", origin), ("origin_home", orjson.dumps(here.as_dict()).decode()),
            ("incarnation", token)])
        db.execute("DELETE FROM meta WHERE key IN ('origin_fenced', 'backup_of')")
        journal.origin = origin
        journal.head = stored_head(db, origin)
        if journal.rotation is not None:
            Tx(journal, db).append("origin_started", journal.rotation)
        vouch_for_unsigned(journal, db)
        # Before the commit: a crash in between leaves the old token listed too.
        kept = mark.tokens[:1] if mark is not None and mark.origin == origin else ()
        journal.head_mark = HeadMark(origin, (token, *kept), journal.head.seq)
        write_head_mark(folder, journal.head_mark)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def vouch_for_unsigned(journal: Journal, db: sqlite3.Connection) -> None:
    """Vouch, as the store CA, for the events from before signing held here
    (edge/journal/vouches.py).

    Written once, among a journal's first signed events after the upgrade,
    as the upgrade left it owed (migration 20), and only by the node that
    holds the store CA key: without it no other node, nor head office,
    takes those events from anyone. Any other node vouches for nothing:
    what it alone held stays on it, said once here and by `edge status`.
    Never again after: a journal put back later vouches for nothing new.
    """
    if db.execute("SELECT 1 FROM meta WHERE key = 'unsigned_vouch_owed'").fetchone() is None:
        return
    db.execute("DELETE FROM meta WHERE key = 'unsigned_vouch_owed'")
    body = unvouched_heads(db)
    if body is None:
        return
    ca_key = store_ca_key(journal.identity)
    if ca_key is None:
        log.warning(
            "this node does not hold the store CA key, so it vouches for none of the events "
            "from before signing it holds (%s): those the store CA node held when it was "
            "upgraded come back vouched by it; any it did not hold stay on this node only "
            "(`edge status` names them)",
            ", ".join(f"{head['origin']} up to #{head['seq']}" for head in body["heads"]))
        return
    Tx(journal, db).append("unsigned_heads_vouched", ca_vouch_body(body["heads"], ca_key))
    log.warning("vouched, as the store CA, for %d origin(s) written before events were "
                "signed, as this journal holds them: %s", len(body["heads"]),
                ", ".join(f"{head['origin']}#{head['seq']}" for head in body["heads"]))
