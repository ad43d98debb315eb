"""`edge archive`: a period's signed archive, a zip that proves itself (I/O).

What is in it and why: archive_files.py and the README it carries. Which
events: every origin's chain from its first event up to the last one it
recorded before the period's end, or further when the period's closures (made
after it ended) and the events they cover need it (archive_closures.py; the
last seq and hash of each are the manifest's `heads`), so each chain
verifies from genesis with nothing else, and the period's sales are counted
from exactly those events (period_sales.py), here as by the verifier. The
journal is read in one read transaction (one consistent snapshot while the
node sells, as `edge backup` reads it) and streamed to the zip: memory stays
flat whatever the period. The zip is written beside its name and renamed
once whole and fsync'd: a crash leaves no half archive under the final name.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from edge import __version__
from edge.fiscal import archive_files as files
from edge.fiscal.archive_closures import closures_in, needed_heads
from edge.fiscal.archive_readme import readmes
from edge.fiscal.period_sales import counted, gather, period_totals
from edge.fiscal.periods import Period
from edge.journal.chain import utc_now
from edge.journal.signing import SigningIdentity
from edge.journal.store import EVENT_COLUMNS, row_event
from edge.trust.certificates import cert_pem, fingerprint

ARCHIVED_VIEW = "temp.archived_events"


@dataclass(frozen=True)
class Written:
    path: Path
    manifest_sha256: str
    files: list[str]
    events: int
    sales: int
    totals: dict[str, Any]


class ArchiveError(Exception):
    """An archive that cannot be written: the message says why, in words."""


class _Member:
    """A file of the zip written in chunks, its SHA-256 and size counted on the way."""

    def __init__(self, zf: zipfile.ZipFile, name: str) -> None:
        self.name = name
        self._file: IO[bytes] = zf.open(name, "w", force_zip64=True)
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._digest.update(chunk)
        self.size += len(chunk)

    def close(self) -> dict[str, Any]:
        self._file.close()
        return {"sha256": self._digest.hexdigest(), "bytes": self.size}


def _put(zf: zipfile.ZipFile, listed: dict[str, Any], name: str, chunks: Iterable[bytes]) -> None:
    member = _Member(zf, name)
    for chunk in chunks:
        member.write(chunk)
    listed[name] = member.close()


def select_archived(db: sqlite3.Connection, period: Period,
                    reach: dict[str, int] | None = None) -> None:
    """ARCHIVED_VIEW: each origin's events up to its last one recorded before the end,
    or further, up to `reach` (what the period's closures and their covers need)."""
    db.execute("DROP VIEW IF EXISTS temp.archived_events")
    db.execute("DROP TABLE IF EXISTS temp.archived_heads")
    db.execute("CREATE TABLE temp.archived_heads (origin TEXT PRIMARY KEY, last INTEGER)")
    db.execute("INSERT INTO temp.archived_heads SELECT origin, MAX(seq) AS last "
               "FROM events WHERE time < ? GROUP BY origin", (period.end,))
    db.executemany("INSERT INTO temp.archived_heads VALUES (?, ?) ON CONFLICT (origin) "
                   "DO UPDATE SET last = MAX(last, excluded.last)", sorted((reach or {}).items()))
    db.execute("CREATE TEMP VIEW archived_events AS SELECT e.* FROM main.events e "
               "JOIN archived_heads h ON e.origin = h.origin AND e.seq <= h.last")


def write_archive(database: Path, period: Period, out: Path, identity: SigningIdentity,
                  origin: str = "") -> Written:
    """Write `period`'s archive of the journal `database` to `out` (which must not exist),
    signed with `identity`'s key; `origin`: the exporting node's (said in the manifest)."""
    if not database.exists():
        raise ArchiveError(f"no journal at {database}")
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None)
    try:
        db.execute("BEGIN")  # one snapshot for every read below
        return write_from(db, period, out, identity, origin)
    finally:
        db.close()


def write_from(db: sqlite3.Connection, period: Period, out: Path, identity: SigningIdentity,
               origin: str = "") -> Written:
    """Write the archive from `db`, any SQLite database shaped as a journal: `events` (the
    journal's columns), `closures` (closures.py) and `meta`. The node's journal is one;
    head office fills a scratch one from its storage (edge/headoffice/archive.py)."""
    if out.exists():
        raise ArchiveError(f"{out} already exists: give a new file name")
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        written = _write(db, period, partial, identity, origin)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    with partial.open("rb") as file:
        os.fsync(file.fileno())
    partial.replace(out)
    return Written(out, *written)


def _write(db: sqlite3.Connection, period: Period, partial: Path, identity: SigningIdentity,
           origin: str) -> tuple[str, list[str], int, int, dict[str, Any]]:
    if not origin:
        row = db.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
        origin = row[0] if row else ""
    closures = closures_in(db, period)
    select_archived(db, period, needed_heads(closures))
    listed: dict[str, Any] = {}
    heads: dict[str, dict[str, Any]] = {}
    certified: dict[str, dict[str, Any]] = {}
    headoffice_certs: list[str] = []
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        events = _Member(zf, files.EVENTS)
        count = 0
        for row in db.execute(f"SELECT {EVENT_COLUMNS} FROM {ARCHIVED_VIEW} "
                              "ORDER BY origin, seq"):
            event = row_event(row)
            events.write(files.event_line(event))
            count += 1
            heads[event.origin] = {"seq": event.seq, "hash": event.hash}
            if event.type == "origin_certified" and event.seq == 1:
                certified[event.origin] = event.body
            elif event.type == "headoffice_key_trusted":
                headoffice_certs.append(str(event.body.get("cert", "")))
        listed[files.EVENTS] = events.close()

        gather(db, period, ARCHIVED_VIEW)
        totals = period_totals(db)
        sales = totals["net"]["count"]
        _put(zf, listed, files.SALES, files.csv_chunks(counted(db), totals))
        _put(zf, listed, files.TOTALS, [files.pretty_json(totals)])
        _put(zf, listed, files.CLOSURES, [files.pretty_json(closures)])

        _put(zf, listed, files.STORE_CA, [cert_pem(identity.ca_cert).encode()])
        _put(zf, listed, files.EXPORTER, [identity.signing_cert_pem.encode()])
        for name, body in sorted(certified.items()):
            for key_name, content in files.origin_key_files(name, body):
                _put(zf, listed, key_name, [content])
        for number, cert in enumerate(dict.fromkeys(headoffice_certs), 1):
            _put(zf, listed, f"{files.KEYS}headoffice/{number}.pem", [cert.encode()])

        exported_at = utc_now()
        facts = {"store": identity.store_id, "period": period.label, "version": __version__,
                 "node": identity.node_name, "exported_at": exported_at,
                 "start": period.start, "end": period.end,
                 "fingerprint": fingerprint(identity.ca_cert)}
        for name, text in readmes(**facts).items():
            _put(zf, listed, name, [text])

        manifest = files.pretty_json({
            "format": files.FORMAT, "store": identity.store_id, "period": period.as_dict(),
            "exported_at": exported_at, "edge_version": __version__,
            "exporter": {"node": identity.node_name, "origin": origin,
                         "certificate": files.EXPORTER},
            "store_ca": {"certificate": files.STORE_CA,
                         "sha256_fingerprint": fingerprint(identity.ca_cert)},
            "events": count, "heads": heads, "sales": sales, "files": listed,
        })
        zf.writestr(files.MANIFEST, manifest)
        zf.writestr(files.SIGNATURE, identity.signing_key.sign(manifest))
    return hashlib.sha256(manifest).hexdigest(), sorted(listed), count, sales, totals
