"""`edge backup` and `edge restore`: the documented way to copy a node's journal and put it back.

A backup is SQLite's online backup of the live journal (consistent while the
node sells), marked inside as a backup (`backup_of` in `meta`) and verified
(SQLite's integrity check and every hash chain) before it gets its name; a
restore also checks every signature against the data folder's store CA
(a backup may have been changed while it was kept), as `edge verify` does:
events from before signing only as far as a vouch the store CA signed in
the backup covers them, and a backup from before signing is refused. A
restore needs the node stopped (it takes the data folder's lock), verifies
the backup, keeps the journal it replaces beside it, and puts the backup in
place as a new file. Either way the node that next opens the folder knows it
runs a copy and continues under a new origin (edge/datafolder.py): the
backup's head is older than what peers and head office hold of its origin.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from cryptography import x509

from edge.journal.chain import Event, chain_problems, utc_now
from edge.journal.datafolder import FolderLock
from edge.journal.store import EVENT_COLUMNS, row_event
from edge.journal.verify import SIGNED_SCHEMA, verify_journal
from edge.trust.certificates import load_cert

Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup that cannot be made or trusted: the message says why, in words."""


@dataclass(frozen=True)
class Summary:
    events: int
    origins: int
    origin: str | None
    head_seq: int


def iter_events(db: sqlite3.Connection) -> Iterator[Event]:
    """Every event, each origin in seq order, without holding them all in memory."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    # A journal from before signing (a backup an older edge made) has no `sig` column.
    columns = EVENT_COLUMNS if version >= SIGNED_SCHEMA else EVENT_COLUMNS.replace(
        ", sig", ", '' AS sig")
    for row in db.execute(f"SELECT {columns} FROM events ORDER BY origin, seq"):
        yield row_event(row)


def unsigned_backup() -> str:
    return ("this backup is from before events were signed: nothing in it can be checked, "
            "so this edge does not restore it (restore it with the edge version that made "
            "it, then start this one on it: at the upgrade the store CA node vouches for "
            "what it holds)")


def store_ca_beside(database: Path) -> x509.Certificate | None:
    """The store CA of the data folder holding `database` (`tls/store-ca.pem`), if any."""
    try:
        return load_cert((database.parent / "tls" / "store-ca.pem").read_bytes())
    except (OSError, ValueError):
        return None


def verify(db: sqlite3.Connection, ca_cert: x509.Certificate | None = None) -> Summary:
    """SQLite's integrity check, every chain and, with the store CA, every signature
    (edge/journal/verify.py); BackupError with what is wrong."""
    (integrity,) = db.execute("PRAGMA integrity_check").fetchone()
    if integrity != "ok":
        raise BackupError(f"the database is damaged: {integrity}")
    if ca_cert is not None:
        report = verify_journal(db, ca_cert)
        problems = report.problems
        if not problems and not report.signed:
            raise BackupError(unsigned_backup())
    else:
        problems = chain_problems(iter_events(db))
    if problems:
        raise BackupError(f"{len(problems)} broken hash chain link(s) or signature(s), the "
                          f"first: {problems[0]}")
    events, origins = db.execute("SELECT COUNT(*), COUNT(DISTINCT origin) FROM events").fetchone()
    origin_row = db.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
    origin = origin_row[0] if origin_row else None
    head = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events WHERE origin = ?",
                      (origin,)).fetchone()[0]
    return Summary(events, origins, origin, head)


def _copy(source: sqlite3.Connection, target: Path, progress: Progress | None) -> None:
    """SQLite's online backup into `target` (a new file), fsync'd."""
    copy = sqlite3.connect(target)
    try:
        def step(status: int, remaining: int, total: int) -> None:
            if progress and total:
                progress(f"copied {100 * (total - remaining) // total} %")

        source.backup(copy, pages=4096, progress=step)
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    finally:
        copy.close()
    with target.open("rb") as file:
        os.fsync(file.fileno())


def _mark_as_backup(path: Path, source: str, ca_cert: x509.Certificate | None) -> Summary:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        summary = verify(db, ca_cert)
        marker = {"origin": summary.origin, "head_seq": summary.head_seq, "taken_at": utc_now(),
                  "source": source}
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('backup_of', ?)",
                   (orjson.dumps(marker).decode(),))
        return summary
    finally:
        db.close()


def backup(database: Path, target: Path, progress: Progress | None = None) -> Summary:
    """Copy a journal (live or not) to `target`, marked and verified."""
    if not database.exists():
        raise BackupError(f"no journal at {database}")
    if target.exists():
        raise BackupError(f"{target} already exists: give a new file name")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(database, isolation_level=None)
    try:
        source.execute("PRAGMA query_only = ON")
        _copy(source, partial, progress)
    finally:
        source.close()
    try:
        # Chains only: every event of the live journal had its signature checked when
        # it came in (a year's journal verifies in minutes; a restore does it, below).
        summary = _mark_as_backup(partial, str(database.resolve()), None)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return summary


def restore(backup_file: Path, data_dir: Path, database: Path,
            progress: Progress | None = None) -> tuple[Summary, Path | None]:
    """Put a backup in place of the folder's journal (no node may run); what it replaced."""
    if not backup_file.exists():
        raise BackupError(f"no backup at {backup_file}")
    lock = FolderLock(data_dir)
    lock.acquire("edge restore")
    try:
        ca_cert = store_ca_beside(database)
        source = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True, isolation_level=None)
        try:
            # The same check as `edge verify` (edge/journal/verify.py): an unsigned
            # event needs a CA-signed vouch in the backup itself, nothing else proves it.
            (version,) = source.execute("PRAGMA user_version").fetchone()
            if version < SIGNED_SCHEMA:
                raise BackupError(unsigned_backup())
            verify(source, ca_cert)
            partial = database.with_name(database.name + ".restoring")
            partial.unlink(missing_ok=True)
            _copy(source, partial, progress)
        finally:
            source.close()
        summary = _mark_as_backup(partial, str(backup_file.resolve()), ca_cert)
        kept = None
        if database.exists():
            # The journal it replaces stays whole beside it: its WAL folded in first
            # (an old WAL next to the new file would be replayed into it), then a
            # second name for the same file. A crash anywhere here leaves either
            # the old journal in place or the new one, never neither.
            old = sqlite3.connect(database, isolation_level=None)
            try:
                old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                old.execute("PRAGMA journal_mode = DELETE")
            finally:
                old.close()
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = database.with_name(f"{database.name}.replaced-{stamp}")
            for again in itertools.count(2):  # two restores within a second keep both
                try:
                    os.link(database, kept)
                    break
                except FileExistsError:
                    kept = database.with_name(f"{database.name}.replaced-{stamp}-{again}")
        partial.replace(database)  # atomic: one name, old file or new
        return summary, kept
    finally:
        lock.release()
