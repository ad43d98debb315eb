"""`edge verify`: every hash chain and every signature of a journal, offline.

Needs nothing but the journal and the store CA's certificate (`<data>/tls/
store-ca.pem`, or `--ca FILE`). Each origin's first event must certify its
key (a node's certificate from that CA; head office's key as a node of the
store recorded it, `headoffice_key_trusted`), and every event of the origin
must be signed with that key and be of a type its role may write. An event
changed and hashed again without its origin's key fails here by name.

Origins written before events were signed (held when the journal was
upgraded: `unsigned_origins`) are chained but not signed: named as such, not
failed; an unsigned origin that came later, or an unsigned event past where
such an origin stood at the upgrade, fails.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from edge.journal.chain import ChainError, Event, chain_problems
from edge.journal.signing import (
    ORIGIN_CERTIFIED,
    HeadOfficeKeyUnknown,
    OriginKey,
    certified_key,
    check_signed,
)
from edge.journal.store import EVENT_COLUMNS, row_event

# The schema step that added signatures (edge/journal/migrations.py): a journal
# still below it was never opened by an edge that signs.
SIGNED_SCHEMA = 19


@dataclass
class Report:
    events: int = 0
    origins: int = 0
    problems: list[str] = field(default_factory=list)
    unsigned: list[str] = field(default_factory=list)  # origins from before signing


def signature_problems(
    events: Iterable[Event], ca_cert: x509.Certificate, store_id: str,
    headoffice_keys: set[str], unsigned_before: Mapping[str, int] | None,
) -> tuple[list[str], list[str]]:
    """(problems, origins from before signing) of `events` (each origin in seq order).

    `unsigned_before`: {origin: last seq} held when the journal started signing;
    None for a journal never opened by an edge that signs (every origin then).
    """
    problems: list[str] = []
    unsigned: list[str] = []
    keys: dict[str, OriginKey | None] = {}
    for event in events:
        where = f"{event.origin}#{event.seq}"
        if event.origin not in keys:
            keys[event.origin] = None
            legacy = (unsigned_before is None or event.origin in unsigned_before)
            if event.type != ORIGIN_CERTIFIED and legacy:
                unsigned.append(event.origin)
                continue
            try:
                keys[event.origin] = certified_key(event, ca_cert, store_id,
                                                   headoffice_keys.__contains__)
            except HeadOfficeKeyUnknown:
                problems.append(f"{where}: head office's key here was never recorded by a "
                                "node of the store (headoffice_key_trusted)")
            except ChainError as refused:
                problems.append(str(refused))
            continue
        key = keys[event.origin]
        if key is None:
            if event.origin in unsigned:
                limit = None if unsigned_before is None else unsigned_before.get(event.origin)
                if limit is not None and event.seq > limit:
                    problems.append(f"{where}: unsigned, after its origin stood at #{limit} "
                                    "when this journal started signing")
            else:
                problems.append(f"{where}: its origin's first event certifies no key")
            continue
        try:
            check_signed(event, key)
        except ChainError as refused:
            problems.append(str(refused))
    return problems, unsigned


def verify_journal(db: sqlite3.Connection, ca_cert: x509.Certificate,
                   store_id: str | None = None) -> Report:
    """Every chain and signature of the journal open in `db` (read only)."""
    if store_id is None:
        row = db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        named = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        store_id = row[0] if row else (str(named[0].value) if named else "")
    (version,) = db.execute("PRAGMA user_version").fetchone()
    report = Report()
    report.events, report.origins = db.execute(
        "SELECT COUNT(*), COUNT(DISTINCT origin) FROM events").fetchone()
    if version < SIGNED_SCHEMA:
        columns = EVENT_COLUMNS.replace(", sig", ", '' AS sig")
        unsigned_before = None
        headoffice_keys: set[str] = set()
    else:
        columns = EVENT_COLUMNS
        unsigned_before = dict(db.execute("SELECT origin, last_seq FROM unsigned_origins"))
        headoffice_keys = {key for (key,) in db.execute(
            "SELECT json_extract(body, '$.public_key') FROM events "
            "WHERE type = 'headoffice_key_trusted'")}

    def events() -> Iterable[Event]:
        for row in db.execute(f"SELECT {columns} FROM events ORDER BY origin, seq"):
            yield row_event(row)

    report.problems = chain_problems(events())
    signatures, report.unsigned = signature_problems(
        events(), ca_cert, store_id, headoffice_keys, unsigned_before)
    report.problems += signatures
    return report


def run(database: Path, ca_file: Path) -> int:
    """`edge verify`: print what holds and what does not; 0 only if everything does."""
    import sys

    from edge.trust.certificates import load_cert

    if not database.exists():
        print(f"No journal at {database}.", file=sys.stderr)
        return 1
    try:
        ca_cert = load_cert(ca_file.read_bytes())
    except (OSError, ValueError) as error:
        print(f"Cannot read the store CA certificate {ca_file} ({error}): give it with "
              "--ca FILE (store-ca.pem in the data folder's tls/)", file=sys.stderr)
        return 1
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        report = verify_journal(db, ca_cert)
    finally:
        db.close()
    if report.problems:
        print(f"BROKEN: {len(report.problems)} problem(s) in {report.events} events:")
        for problem in report.problems[:50]:
            print(f"  - {problem}")
        if len(report.problems) > 50:
            print(f"  … and {len(report.problems) - 50} more")
        return 1
    print(f"OK: {report.events} events from {report.origins} origin(s), every hash chain "
          "intact, every signature verified")
    if report.unsigned:
        print(f"  {len(report.unsigned)} origin(s) written before events were signed "
              f"(chained, not signed): {', '.join(report.unsigned[:10])}")
    return 0
