"""What signing every event costs, next to what hashing it already cost.

Per event, on a real sale's body (a four-line `sale_completed`):
- hash: `event_hash` (canonical JSON + SHA-256), what every event always paid;
- sign: Ed25519 over the hash (`signing.sign`), what a node pays per event it writes;
- verify: `signing.check_signed` (registry role check + Ed25519 verify), what every
  intake (peer, head-office pull, head office, `edge verify`) pays per new event;
- certify: `signing.certified_key` on an `origin_certified` (X.509 parse and the CA's
  ECDSA check), paid once per origin.

Pure CPU, one core, no I/O: `python -m bench.signing [--events N]`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ed25519

from edge.journal.chain import ChainHead, event_hash
from edge.journal.signing import (
    Identity,
    OriginKey,
    certified_key,
    check_signed,
    node_certified_body,
    sign,
)
from edge.trust.certificates import cert_pem, issue_signing_certificate, make_store_ca


def sale_body(number: int) -> dict:
    lines = [{"id": f"l{n}", "product_id": f"p{n}", "barcode": f"200000{n}000014",
              "name": f"Produit {n}", "unit_price": 120 + n, "vat_rate": 550, "quantity": 2,
              "total": 2 * (120 + n)} for n in range(4)]
    total = sum(line["total"] for line in lines)
    return {"id": f"s{number}@T01-bench", "basket_id": f"s{number}", "till": "T01-bench",
            "receipt_no": number, "receipt_number": f"T01-bench-{number:06d}", "cashier": "c1",
            "lines": lines, "totals": {"total": total, "items": 8, "vat": []},
            "tenders": [{"method": "cash", "amount": total}], "change": 0}


def per_event(action: Callable[[int], object], count: int) -> float:
    """Microseconds per call, the best of three rounds (the least disturbed by others)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for number in range(count):
            action(number)
        best = min(best, (time.perf_counter() - started) / count * 1e6)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args(argv)

    ca_key, ca_cert = make_store_ca("bench-store")
    key = ed25519.Ed25519PrivateKey.generate()
    cert = issue_signing_certificate(ca_key, ca_cert, "bench-store", "bench", key.public_key())
    identity = Identity("bench-store", "bench", ca_cert, key, cert_pem(cert))
    origin_key = OriginKey("node", key.public_key(), "bench")
    head = ChainHead()
    events = []
    for number in range(args.events):
        event = sign(head.next("bench", "sale_completed", sale_body(number)), key)
        head = ChainHead(event.seq, event.hash)
        events.append(event)
    certificate = sign(ChainHead().next("bench", "origin_certified",
                                        node_certified_body(identity)), key)

    def hash_one(n: int) -> object:
        e = events[n]
        return event_hash(e.origin, e.seq, e.id, e.time, e.type, e.body, e.prev_hash)

    hashing = per_event(hash_one, args.events)
    signing = per_event(lambda n: sign(events[n], key), args.events)
    verifying = per_event(lambda n: check_signed(events[n], origin_key), args.events)
    certifying = per_event(lambda n: certified_key(certificate, ca_cert, "bench-store"), 200)
    print(f"per event ({args.events} four-line sales, one core):")
    print(f"  hash (what every event already cost)  {hashing:7.1f} µs")
    print(f"  sign (a node writing it)              {signing:7.1f} µs  "
          f"({signing / hashing:.1f}x hashing)")
    print(f"  verify (every intake)                 {verifying:7.1f} µs  "
          f"({verifying / hashing:.1f}x hashing)")
    print(f"  certify an origin (once per origin)   {certifying:7.1f} µs")
    print(f"  => a node writing: {(hashing + signing) / hashing:.1f}x the hashing cost; a peer "
          f"taking an event: {(hashing + verifying) / hashing:.1f}x; "
          f"{1e6 / verifying:,.0f} verifications/s")


if __name__ == "__main__":
    main()
