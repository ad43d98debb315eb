"""What is in an archive and how each file is written: names, lines, CSV, manifest (pure).

The writer (archive.py) and the verifier (verify_archive.py) both use these,
so what the verifier recomputes is byte for byte what the writer wrote.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization

from edge.fiscal.totals import Counted, Totals, tenders_of
from edge.journal.chain import Event, canonical_json, withheld
from edge.journal.signing import load_public_hex

FORMAT = "edge-archive/1"
EVENTS = "events.jsonl"
SALES = "sales.csv"
TOTALS = "totals.json"
CLOSURES = "closures.json"
README = "README.md"
LISEZMOI = "LISEZMOI.md"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
KEYS = "keys/"
STORE_CA = "keys/store-ca.pem"
EXPORTER = "keys/exporter.pem"
CSV_CHUNK = 64 * 1024


def event_line(event: Event) -> bytes:
    """One line of events.jsonl: the event in canonical form (sorted keys, no spaces,
    UTF-8), its signature as stored. A cashier's PIN hash (a body's `secret`) is
    given by its digest, as head office gets it: the event's hash covers only that."""
    data = event.as_dict()
    data["body"] = withheld(event.body)
    return canonical_json(data) + b"\n"


def pretty_json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def key_file(origin: str, suffix: str = ".pem") -> str:
    """keys/origins/<origin>.pem: an origin's certificate (head office: its public key)."""
    return f"{KEYS}origins/{re.sub(r'[^A-Za-z0-9._-]', '_', origin)}{suffix}"


def origin_key_files(origin: str, certified: Mapping[str, Any]) -> Iterator[tuple[str, bytes]]:
    """The key file(s) of an origin from its `origin_certified` body."""
    cert = certified.get("cert")
    if isinstance(cert, str) and cert:
        yield key_file(origin), cert.encode()
    public = load_public_hex(certified.get("public_key"))
    if public is not None:
        yield key_file(origin, ".pub.pem"), public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# sales.csv: one row per sale (or refund) the period counts, `;`-separated (what a
# French spreadsheet opens as columns), amounts in cents.

def _columns(totals: Totals) -> tuple[list[str], list[str]]:
    net = totals["net"]
    rates = sorted(net["by_rate"], key=int)
    return rates, sorted(net["by_tender"])


def _percent(rate: str) -> str:
    return f"{int(rate) / 100:g}"


def csv_header(totals: Totals) -> list[str]:
    rates, tenders = _columns(totals)
    return (["sale_id", "receipt_number", "kind", "till", "cashier", "recorded_at", "total_cents"]
            + [f"{what}_{_percent(rate)}pct_cents" for rate in rates for what in ("base", "vat")]
            + [f"{tender}_cents" for tender in tenders] + ["change_cents", "flags"])


def csv_row(sale: Counted, totals: Totals) -> list[str | int]:
    rates, tenders = _columns(totals)
    body = sale.body
    vat = {str(line["rate"]): line for line in body["totals"].get("vat", ())}
    paid = tenders_of(body)
    kind = "refund" if "refund_of" in body else "sale"
    return ([body["id"], body.get("receipt_number", ""), kind, body["till"],
             body.get("cashier", ""), sale.first_time, body["totals"]["total"]]
            + [vat.get(rate, {}).get(what, 0) for rate in rates for what in ("base", "vat")]
            + [paid.get(tender, 0) for tender in tenders]
            + [body.get("change") or 0, " ".join(body.get("flags") or ())])


def csv_chunks(sales: Iterable[Counted], totals: Totals) -> Iterator[bytes]:
    """sales.csv in chunks: its header, then one row per sale, in the order given."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(csv_header(totals))
    for sale in sales:
        writer.writerow(csv_row(sale, totals))
        if buffer.tell() >= CSV_CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def sha256_of(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()
