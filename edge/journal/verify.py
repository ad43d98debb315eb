"""`edge verify`: every hash chain and every signature of a journal, offline.

Needs nothing but the journal and the store CA's certificate (`<data>/tls/
store-ca.pem`, or `--ca FILE`). Each origin's first event must certify its
key (a node's certificate from that CA; head office's key with a certificate
from that CA, `headoffice_key_trusted`), and every event of the origin
must be signed with that key and be of a type its role may write. An event
changed and hashed again without its origin's key fails here by name.

Origins written before events were signed are chained but not signed: each
must be covered by a vouch the store CA signed, in the journal itself
(`unsigned_heads_vouched`, edge/journal/vouches.py), its events up to the
vouched seq, with the vouched hash there, each of a type from before signing
that its origin's role may write; then they are named as such, not failed.
A vouch without the CA's signature vouches for nothing and fails by name.
An unsigned event no CA vouch covers fails, whatever the file's own tables
say (`unsigned_origins`, `PRAGMA user_version` decide nothing: a file can be
changed). A journal an edge that signs never opened (schema
below 19) has no signature to check: its chains are checked and it is said
NOT SIGNED, never "every signature verified".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from cryptography import x509
from cryptography.x509.oid import NameOID

from edge.journal.chain import ChainError, Event, chain_problems
from edge.journal.event_types import authorize
from edge.journal.signing import (
    HeadOfficeKeyUnknown,
    OriginKey,
    certified_headoffice_keys,
    certified_key,
    check_signed,
)
from edge.journal.store import EVENT_COLUMNS, row_event
from edge.journal.vouches import (
    UNSIGNED_HEADS_VOUCHED,
    NotVouched,
    Vouch,
    check_ca_vouch,
    is_unsigned_candidate,
    vouch_problem,
    vouched_heads,
)

# The schema step that added signatures (edge/journal/migrations.py): a journal
# still below it was never opened by an edge that signs.
SIGNED_SCHEMA = 19


@dataclass
class Report:
    events: int = 0
    origins: int = 0
    problems: list[str] = field(default_factory=list)
    unsigned: list[str] = field(default_factory=list)  # origins from before signing, vouched
    notes: list[str] = field(default_factory=list)  # vouched further than held here
    signed: bool = True  # False: a journal from before signing, its chains alone checked


def signed_vouches(db: sqlite3.Connection, ca_cert: x509.Certificate, store_id: str,
                   headoffice_keys: set[str]) -> tuple[dict[str, list[Vouch]], list[str]]:
    """({origin: vouches}, problems): every vouch in the journal whose signature verifies
    with its node's certified key and that the store CA signed; vouches that
    disagree at one seq are a problem."""
    vouches: dict[str, list[Vouch]] = {}
    keys: dict[str, OriginKey | None] = {}
    for row in db.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE type = ? "
                          "ORDER BY origin, seq", (UNSIGNED_HEADS_VOUCHED,)).fetchall():
        event = row_event(row)
        if event.origin not in keys:
            first = db.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE origin = ? AND seq = 1",
                               (event.origin,)).fetchone()
            try:
                keys[event.origin] = certified_key(row_event(first), ca_cert, store_id,
                                                   headoffice_keys.__contains__) if first else None
            except ChainError:
                keys[event.origin] = None  # named by the pass over every event
        key = keys[event.origin]
        try:
            if key is None:
                continue
            check_signed(event, key, ca_cert, store_id)
            check_ca_vouch(event, ca_cert)
        except ChainError:
            continue  # named by the pass over every event; it vouches for nothing
        for origin, seq, digest in vouched_heads(event):
            vouches.setdefault(origin, []).append(Vouch(seq, digest, event.origin))
    problems = []
    for origin, held in sorted(vouches.items()):
        for seq in sorted({vouch.seq for vouch in held}):
            named = {vouch.hash: vouch.voucher for vouch in held if vouch.seq == seq}
            if len(named) > 1:
                problems.append(f"{origin}#{seq}: vouched for with different hashes ("
                                + ", ".join(f"{voucher}: {digest[:12]}…"
                                            for digest, voucher in named.items())
                                + "): history from before signing forked")
    return vouches, problems


def signature_problems(
    events: Iterable[Event], ca_cert: x509.Certificate, store_id: str,
    headoffice_keys: set[str], vouches: Mapping[str, list[Vouch]],
    certified: Mapping[str, dict[str, object]] | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """(problems, origins from before signing, notes) of `events` (each origin in seq order).

    `vouches`: the signed vouches the journal holds (`signed_vouches`), the one
    proof that an unsigned origin was written before signing.
    """
    problems: list[str] = []
    unsigned: list[str] = []
    held: dict[str, int] = {}  # last seq of each origin from before signing
    keys: dict[str, OriginKey | None] = {}
    for event in events:
        where = f"{event.origin}#{event.seq}"
        if event.origin not in keys:
            keys[event.origin] = None
            if is_unsigned_candidate(event):
                unsigned.append(event.origin)
            else:
                try:
                    keys[event.origin] = certified_key(event, ca_cert, store_id,
                                                       headoffice_keys.__contains__)
                except HeadOfficeKeyUnknown:
                    problems.append(f"{where}: head office's key here was never certified by "
                                    "the store CA (no headoffice_key_trusted with its "
                                    "certificate)")
                except ChainError as refused:
                    problems.append(str(refused))
                continue
        key = keys[event.origin]
        if key is None:
            if event.origin not in held and event.origin not in unsigned:
                problems.append(f"{where}: its origin's first event certifies no key")
                continue
            held[event.origin] = event.seq
            problem = vouch_problem(event, vouches.get(event.origin, ()))
            if isinstance(problem, NotVouched):
                reach = max((vouch.seq for vouch in vouches.get(event.origin, ())), default=0)
                problems.append(f"{where}: unsigned, and no signed vouch covers it ("
                                + (f"vouched up to #{reach} only" if reach else
                                   "no upgraded node vouched for this origin")
                                + "): not from before signing, or slipped in since")
            elif problem is not None:
                problems.append(str(problem))
            elif not is_unsigned_candidate(event):
                problems.append(f"{where}: signed, but its origin was written before signing "
                                "(no key certified it)")
            continue
        try:
            check_signed(event, key, ca_cert, store_id)
            check_ca_vouch(event, ca_cert)
            # What it says of other origins (edge/journal/event_types.py `authorize`).
            authorize(event, (certified or {}).get)
        except ChainError as refused:
            problems.append(str(refused))
    notes: list[str] = []
    for origin, last in held.items():
        reach = max((vouch.seq for vouch in vouches.get(origin, ())), default=0)
        if last < reach:
            # Below a vouched seq an unsigned event proves nothing by itself (h30: a
            # forged run looks the same): only the chain down from the vouched head does.
            problems.append(f"{origin}: held up to #{last} only, vouched for up to #{reach}: "
                            "unsigned events below a vouched head that no chain from it "
                            "proves (the rest is not here): a forgery would look the same")
    return problems, unsigned, notes


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
        # Never opened by an edge that signs (or its schema number changed: the
        # same answer): no signature to check, and said so, never "verified".
        columns = EVENT_COLUMNS.replace(", sig", ", '' AS sig")
        report.signed = False
        report.problems = chain_problems(
            row_event(row) for row in db.execute(
                f"SELECT {columns} FROM events ORDER BY origin, seq"))
        return report
    else:
        columns = EVENT_COLUMNS
        # Only what the store CA certified: a node's word for a key is no proof.
        headoffice_keys = certified_headoffice_keys(
            (orjson.loads(body) for (body,) in db.execute(
                "SELECT body FROM events WHERE type = 'headoffice_key_trusted'")),
            ca_cert, store_id)

    def events() -> Iterable[Event]:
        for row in db.execute(f"SELECT {columns} FROM events ORDER BY origin, seq"):
            yield row_event(row)

    vouches, disagreeing = signed_vouches(db, ca_cert, store_id, headoffice_keys)
    signatures, report.unsigned, report.notes = signature_problems(
        events(), ca_cert, store_id, headoffice_keys, vouches,
        {origin: orjson.loads(body) for origin, body in db.execute(
            "SELECT origin, body FROM events WHERE seq = 1 AND type = 'origin_certified'")})
    report.problems = chain_problems(events()) + disagreeing + signatures
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
    if not report.signed:
        print(f"NOT SIGNED: chains only. {report.events} events from {report.origins} "
              "origin(s), every hash chain intact, but this journal is from before events "
              "were signed (schema below 19): no signature was checked, and anyone could have "
              "written it. Start the upgraded edge on it once (it vouches, signed, for what it "
              "holds), then verify again.")
        return 2
    print(f"OK: {report.events} events from {report.origins} origin(s), every hash chain "
          "intact, every signature verified")
    if report.unsigned:
        print(f"  {len(report.unsigned)} origin(s) written before events were signed "
              f"(chained, not signed, vouched for by an upgraded node): "
              f"{', '.join(report.unsigned[:10])}")
    for note in report.notes[:10]:
        print(f"  {note}")
    return 0
