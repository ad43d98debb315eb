"""`edge verify ARCHIVE`: an archive checked with nothing but itself.

No database, no network, no config: the zip alone (archive_files.py says
what is in it). In order:
1. the manifest: signed (manifest.sig) by the exporting node's key, whose
   certificate (keys/exporter.pem) the store CA in keys/ issued (or by head
   office's key, certified by the store CA as head office's: an archive
   `edge headoffice archive` wrote);
2. every file: its SHA-256 as the manifest says, and nothing unlisted;
3. events.jsonl: each line an event in canonical form, in origin then seq
   order; then every hash, chain link (from each origin's genesis) and
   signature, each against its origin's certified key (the journal's own
   check, edge/journal/verify.py, run on the events loaded in a scratch
   database); each origin's last event is the manifest's `heads` (a deleted
   tail shows);
4. totals.json and sales.csv recomputed from the events (period_sales.py);
5. closures.json: each closure of the period recomputed from the events by
   the rule the node closed with, its grand totals, previous closure and
   `covers` anchors (verify_closures.py).

Each break is named by origin and seq, or by file and line. The store CA's
SHA-256 fingerprint is printed: an auditor compares it with the one on the
store's Z reports and in its records, since a forger with a CA of their own
can make a self-consistent archive but not that fingerprint.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from edge.fiscal import archive_files as files
from edge.fiscal import verify_closures
from edge.fiscal.period_sales import counted, gather, period_totals
from edge.fiscal.periods import Period, period_from_dict
from edge.fiscal.totals import differences
from edge.journal.chain import event_from_dict
from edge.journal.event_types import UnfitEvent, checked
from edge.journal.signing import HEADOFFICE
from edge.journal.verify import SIGNED_SCHEMA, verify_journal
from edge.trust.certificates import CertificateRefused, check_signing_certificate, fingerprint

MAX_SHOWN = 50
# What reading a damaged zip member raises (a bad CRC, a broken deflate stream, a bad name).
DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    store: str = ""
    period: Period | None = None
    ca_fingerprint: str = ""
    exporter: str = ""
    exporter_role: str = ""  # node, or headoffice: head office's key, the store CA certified
    events: int = 0
    origins: int = 0
    sales: int = 0
    totals: dict[str, Any] | None = None
    closures: int = 0

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(path: Path) -> Report:
    """Everything the archive at `path` proves, and every break in it."""
    report = Report()
    try:
        zf = zipfile.ZipFile(path)
    except DAMAGED as error:
        report.problems.append(f"{path}: not a readable zip archive ({error})")
        return report
    with zf, tempfile.TemporaryDirectory(prefix="edge-verify-") as scratch:
        manifest = _manifest(zf, report)
        if manifest is None:
            return report
        _files(zf, manifest, report)
        ca_cert = _ca(zf, report)
        if ca_cert is None or report.period is None:
            return report
        db = sqlite3.connect(Path(scratch) / "events.sqlite3", isolation_level=None)
        try:
            _load_events(zf, db, report)
            _guarded(report, files.EVENTS, _chains, db, ca_cert, report)
            _guarded(report, files.MANIFEST, _heads, db, manifest, report)
            _guarded(report, files.TOTALS, _totals, zf, db, report.period, report)
            _guarded(report, files.CLOSURES, closure_problems, zf, db, report)
        finally:
            db.close()
    return report


def _guarded(report: Report, what: str, check: Callable[..., None], *args: Any) -> None:
    """Run one check; a damaged archive is reported as such, never a traceback."""
    try:
        check(*args)
    except Exception as error:  # whatever a damaged file makes a check stumble on
        report.problems.append(f"{what}: could not be checked, the archive is damaged "
                               f"({type(error).__name__}: {error})")


def _read(zf: zipfile.ZipFile, name: str, report: Report) -> bytes | None:
    try:
        return zf.read(name)
    except KeyError:
        report.problems.append(f"{name}: missing from the archive")
    except DAMAGED as error:
        report.problems.append(f"{name}: cannot be read ({error})")
    return None


def _json(zf: zipfile.ZipFile, name: str, kind: type, report: Report) -> Any:
    """A JSON file of the archive, if it is one of `kind` (dict, list); else None, said."""
    raw = _read(zf, name, report)
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, kind):
        report.problems.append(f"{name}: not a JSON {'object' if kind is dict else 'list'}")
        return None
    return value


def _manifest(zf: zipfile.ZipFile, report: Report) -> dict[str, Any] | None:
    raw = _read(zf, files.MANIFEST, report)
    if raw is None:
        return None
    try:
        manifest = orjson.loads(raw)
        report.period = period_from_dict(manifest.get("period"))
        assert isinstance(manifest.get("files"), dict)
    except (orjson.JSONDecodeError, ValueError, AttributeError, AssertionError):
        report.problems.append(f"{files.MANIFEST}: not an edge archive's manifest")
        return None
    report.store = str(manifest.get("store", ""))
    signature = _read(zf, files.SIGNATURE, report)
    exporter = _read(zf, files.EXPORTER, report)
    ca_pem = _read(zf, files.STORE_CA, report)
    if signature is None or exporter is None or ca_pem is None:
        return manifest
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_pem)
        signer = check_signing_certificate(exporter.decode(), ca_cert, report.store)
        signer.public_key.verify(signature, raw)
        report.exporter, report.exporter_role = signer.name, signer.role
    except CertificateRefused as refused:
        report.problems.append(f"{files.EXPORTER}: not a certificate of store {report.store}'s "
                               f"CA ({refused})")
    except UnsupportedAlgorithm:
        report.problems.append(f"{files.EXPORTER}: not a certificate edge makes (damaged?)")
    except (InvalidSignature, ValueError, UnicodeDecodeError):
        report.problems.append(f"{files.SIGNATURE}: the manifest's signature does not verify "
                               "with the exporting node's key: manifest.json was changed")
    return manifest


def _files(zf: zipfile.ZipFile, manifest: dict[str, Any], report: Report) -> None:
    listed: dict[str, Any] = manifest["files"]
    for name, expected in sorted(listed.items()):
        digest = hashlib.sha256()
        try:
            with zf.open(name) as member:
                while chunk := member.read(1 << 20):
                    digest.update(chunk)
        except KeyError:
            report.problems.append(f"{name}: listed in the manifest, missing from the archive")
            continue
        except DAMAGED as error:
            report.problems.append(f"{name}: cannot be read ({error})")
            continue
        if not isinstance(expected, dict) or digest.hexdigest() != expected.get("sha256"):
            report.problems.append(f"{name}: its SHA-256 is not the manifest's: the file was "
                                   "changed")
    for name in zf.namelist():
        if name not in listed and name not in (files.MANIFEST, files.SIGNATURE):
            report.problems.append(f"{name}: not listed in the manifest (added)")


def _ca(zf: zipfile.ZipFile, report: Report) -> x509.Certificate | None:
    try:
        ca_cert = x509.load_pem_x509_certificate(zf.read(files.STORE_CA))
    except (KeyError, *DAMAGED):
        report.problems.append(f"{files.STORE_CA}: no store CA certificate: nothing can be "
                               "checked against it")
        return None
    report.ca_fingerprint = fingerprint(ca_cert)
    return ca_cert


def _lines(zf: zipfile.ZipFile) -> Iterator[tuple[int, bytes]]:
    with zf.open(files.EVENTS) as member:
        yield from enumerate(member, 1)


def _load_events(zf: zipfile.ZipFile, db: sqlite3.Connection, report: Report) -> None:
    """events.jsonl into a table shaped as the journal's `events` (one line at a time)."""
    db.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, origin TEXT, seq INTEGER, "
               "id TEXT, time TEXT, type TEXT, body TEXT, prev_hash TEXT, hash TEXT, sig TEXT, "
               "UNIQUE (origin, seq))")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('store_id', ?)", (report.store,))
    db.execute(f"PRAGMA user_version = {SIGNED_SCHEMA}")  # its events are signed ones
    db.execute("BEGIN")
    where = files.EVENTS
    last: tuple[str, int] | None = None
    try:
        for number, line in _lines(zf):
            try:
                event = event_from_dict(orjson.loads(line))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                report.problems.append(f"{where} line {number}: not an event")
                continue
            try:
                checked(event)  # a type this edge knows, its body fit to be read
            except UnfitEvent as unfit:
                report.problems.append(f"{where} line {number}: {unfit}")
            if files.event_line(event) != line:
                report.problems.append(f"{where} line {number}: {event.origin}#{event.seq} "
                                       "is not in canonical form (changed by hand?)")
            if last is not None and (event.origin, event.seq) <= last:
                report.problems.append(f"{where} line {number}: {event.origin}#{event.seq} "
                                       f"comes after {last[0]}#{last[1]}: out of order "
                                       "(moved or repeated)")
                continue
            last = (event.origin, event.seq)
            db.execute("INSERT INTO events (origin, seq, id, time, type, body, prev_hash, "
                       "hash, sig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (event.origin, event.seq, event.id, event.time, event.type,
                        orjson.dumps(event.body).decode(), event.prev_hash, event.hash,
                        event.sig))
            report.events += 1
    except KeyError:
        report.problems.append(f"{where}: missing from the archive")
    except DAMAGED as error:
        report.problems.append(f"{where}: cannot be read ({error})")
    db.execute("COMMIT")


def _chains(db: sqlite3.Connection, ca_cert: x509.Certificate, report: Report) -> None:
    """Every hash, link and signature: the journal's own check (edge verify)."""
    journal = verify_journal(db, ca_cert, report.store)
    report.origins = journal.origins
    report.problems += journal.problems


def _heads(db: sqlite3.Connection, manifest: dict[str, Any], report: Report) -> None:
    heads = manifest.get("heads")
    if not isinstance(heads, dict):
        report.problems.append(f"{files.MANIFEST}: names no origin's last event (heads)")
        return
    held = {origin: (seq, digest) for origin, seq, digest in db.execute(
        "SELECT origin, seq, hash FROM events e WHERE seq = "
        "(SELECT MAX(seq) FROM events WHERE origin = e.origin)")}
    for origin in sorted({*heads, *held}):
        head = heads.get(origin)
        expected = (head.get("seq"), head.get("hash")) if isinstance(head, dict) else None
        found = held.get(origin)
        if expected == found:
            continue
        if expected is None:
            report.problems.append(f"{files.EVENTS}: origin {origin} is not in the manifest")
        elif found is None:
            report.problems.append(f"{files.EVENTS}: origin {origin}'s events are missing "
                                   f"(the manifest says up to #{expected[0]})")
        else:
            report.problems.append(f"{origin}#{expected[0]}: the manifest's last event of "
                                   f"this origin, but {files.EVENTS} ends at #{found[0]} "
                                   + ("(events deleted at the end)" if found[0] < expected[0]
                                      else "(with another hash)"))


def _totals(zf: zipfile.ZipFile, db: sqlite3.Connection, period: Period,
            report: Report) -> None:
    gather(db, period)
    totals = period_totals(db)
    report.totals = totals
    report.sales = totals["net"]["count"]
    written = _json(zf, files.TOTALS, dict, report)
    if written is not None:
        report.problems += [f"{files.TOTALS}: {difference}"
                            for difference in differences(totals, written)]
    expected = _split_lines(files.csv_chunks(counted(db), totals))
    try:
        with zf.open(files.SALES) as member:
            for number, (want, got) in enumerate(
                    itertools.zip_longest(expected, member, fillvalue=b""), 1):
                if want != got:
                    report.problems.append(
                        f"{files.SALES} line {number}: not what the events give (they give "
                        f"{want.decode(errors='replace').strip() or 'no such line'!r})")
                    return
    except KeyError:
        report.problems.append(f"{files.SALES}: missing from the archive")
    except DAMAGED as error:
        report.problems.append(f"{files.SALES}: cannot be read ({error})")


def _split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The lines (each with its end) of text given in chunks."""
    rest = b""
    for chunk in chunks:
        *lines, rest = (rest + chunk).split(b"\n")
        for line in lines:
            yield line + b"\n"
    if rest:
        yield rest


def closure_problems(zf: zipfile.ZipFile, db: sqlite3.Connection, report: Report) -> None:
    """closures.json against the events (verify_closures.py)."""
    report.closures = sum(1 for _ in db.execute(
        "SELECT 1 FROM events WHERE type = 'closure_made'"))
    report.problems += verify_closures.check(zf, db, report.period)


def run(path: Path) -> int:
    """Print what the archive proves; 0 if it is intact, 1 if anything is broken."""
    report = verify(path)
    if report.period is not None:
        by = ("head office, with its key the store CA certified"
              if report.exporter_role == HEADOFFICE else f"node {report.exporter or '?'}")
        print(f"Archive of store {report.store or '?'}, period {report.period.label} "
              f"({report.period.start} to {report.period.end}, UTC), written by {by}.")
    if report.ca_fingerprint:
        print(f"Store CA fingerprint (SHA-256): {report.ca_fingerprint}")
        print("  Compare it with the one on the store's Z reports and in its records: an "
              "archive made with another CA checks just as well.")
    if report.problems:
        print(f"BROKEN: {len(report.problems)} problem(s):")
        for problem in report.problems[:MAX_SHOWN]:
            print(f"  - {problem}")
        if len(report.problems) > MAX_SHOWN:
            print(f"  … and {len(report.problems) - MAX_SHOWN} more")
        return 1
    totals = report.totals or {}
    print(f"OK: untouched. {report.events} events from {report.origins} origin(s), every "
          "hash chain intact from its first event, every signature verified; "
          f"{report.sales} sale(s) and refund(s) counted, totals and sales.csv recomputed "
          f"from the events: net {totals.get('net', {}).get('total', 0)} cents; "
          f"{report.closures} closure(s) recomputed from the events they cover.")
    return 0
