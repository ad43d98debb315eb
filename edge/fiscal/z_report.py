"""The Z (and a month's, a year's closure) as printed: a closure as receipt lines. Pure.

Printed on the closing manager's till's printer (print job kind `z_report`,
edge/devices/print_queue.py); French, as the store keeps it. Everything on
it is in the closure event (closures.py), so a Z printed again says the same:
the period, "Z n°", totals per VAT rate and per tender, sales and refunds
apart, late sales, the perpetual grand totals, the first 16 hex digits of
the closure's own hash and of the previous one's, how many nodes' chains it
covers, and the store CA's SHA-256 fingerprint (`edge verify ARCHIVE` prints
it too).
"""

from __future__ import annotations

from typing import Any

from edge.devices.receipt import (
    TENDER_LABELS,
    ReceiptLine,
    Store,
    big_lines,
    columns,
    euros,
    local_time,
    rate_label,
)

TITLES = {"day": "Z journalier", "month": "Clôture mensuelle", "year": "Clôture annuelle"}


def _section(title: str, figures: dict[str, Any], width: int) -> list[ReceiptLine]:
    lines = [ReceiptLine(columns(f"{title} ({figures['count']})", euros(figures["total"]),
                                 width), bold=True)]
    for rate, by_rate in sorted(figures["by_rate"].items(), key=lambda kv: int(kv[0])):
        lines.append(ReceiptLine(columns(f"  TVA {rate_label(int(rate))} HT "
                                         f"{euros(by_rate['base'])} TVA",
                                         euros(by_rate["vat"]), width)))
    for tender, amount in sorted(figures["by_tender"].items()):
        method, _, kind = tender.partition("/")
        label = TENDER_LABELS.get(method, method.replace("_", " ").capitalize())
        label += f" {kind}" if kind else ""
        lines.append(ReceiptLine(columns(f"  {label}", euros(amount), width)))
    return lines


def z_lines(closure: dict[str, Any], store: Store, width: int) -> list[ReceiptLine]:
    """`closure`: as `closure/close` answers it (its body with hash, origin, seq, time)."""
    totals = closure["totals"]
    late = closure["late"]
    lines = [*big_lines(TITLES.get(closure["kind"], "Clôture"), width, bold=True, center=True),
             ReceiptLine(store.name, center=True),
             *(ReceiptLine(part, center=True) for part in store.address),
             ReceiptLine("=" * width),
             ReceiptLine(columns("Période", closure["period"], width), bold=True),
             ReceiptLine(columns("Z n°", str(closure["number"]), width), bold=True),
             ReceiptLine(columns("Du", local_time(closure["bounds"]["start"]), width)),
             ReceiptLine(columns("Au", local_time(closure["bounds"]["end"]), width)),
             ReceiptLine(columns("Faite le", local_time(closure["time"]), width)),
             ReceiptLine("-" * width),
             *_section("Ventes", totals["sales"], width),
             *_section("Remboursements", totals["refunds"], width),
             ReceiptLine("-" * width),
             ReceiptLine(columns("NET TTC", euros(totals["net"]["total"]), width), bold=True),
             *[ReceiptLine(columns(f"  dont TVA {rate_label(int(rate))}", euros(figures["vat"]),
                                   width))
               for rate, figures in sorted(totals["net"]["by_rate"].items(),
                                           key=lambda kv: int(kv[0]))]]
    if late["count"]:
        lines.append(ReceiptLine(columns(f"dont arrivées en retard ({late['count']})",
                                         euros(late["total"]), width)))
    lines += [ReceiptLine("-" * width),
              ReceiptLine(columns("Grand total", euros(closure["grand_total"]), width),
                          bold=True),
              ReceiptLine(columns("Grand total absolu", euros(closure["grand_total_abs"]),
                                  width), bold=True),
              ReceiptLine("-" * width),
              ReceiptLine(f"Empreinte {closure['hash'][:16]}"[:width]),
              ReceiptLine(f"Précédente {(closure.get('previous') or '-')[:16]}"[:width]),
              ReceiptLine(f"Chaînes couvertes : {len(closure['covers'])}"[:width])]
    if closure.get("store_ca"):  # compared with an archive's by the auditor
        fingerprint = closure["store_ca"]
        lines += [ReceiptLine("Empreinte SHA-256 de l'AC du magasin :"[:width]),
                  *(ReceiptLine(fingerprint[at:at + width])
                    for at in range(0, len(fingerprint), width))]
    if closure.get("alone"):
        lines.append(ReceiptLine(f"Sans : {', '.join(closure['alone'])}"[:width]))
    if closure.get("superseded"):
        lines.append(ReceiptLine("REMPLACÉE", bold=True, center=True))
    lines.append(ReceiptLine(store.software or "edge", center=True))
    return lines
