"""Receipt layout: a sale as lines of text for a given paper width. Pure.

French, as the store's customers read it. Widths are characters in the
printer's font A: 48 for 80 mm paper, 32 for 58 mm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

WIDTH_80MM = 48
WIDTH_58MM = 32
TENDER_LABELS = {"cash": "Espèces", "card": "Carte bancaire"}


@dataclass(frozen=True)
class Store:
    name: str
    address: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReceiptLine:
    text: str
    bold: bool = False
    big: bool = False
    center: bool = False


def euros(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100},{cents % 100:02d}"


def rate_label(rate: int) -> str:
    whole, rest = divmod(rate, 100)
    return f"{whole},{rest:02d}".rstrip("0").rstrip(",") + "%"


def columns(left: str, right: str, width: int) -> str:
    room = width - len(right) - 1
    return f"{left[:room]:<{room}} {right}"


def local_time(iso: str) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    return moment.strftime("%d/%m/%Y %H:%M")


def layout(sale: dict[str, Any], store: Store, width: int = WIDTH_80MM) -> list[ReceiptLine]:
    rule = ReceiptLine("-" * width)
    out = [ReceiptLine(store.name, bold=True, big=True, center=True)]
    out += [ReceiptLine(line, center=True) for line in store.address]
    out.append(rule)
    for line in sale["lines"]:
        if line["quantity"] == 1:
            out.append(ReceiptLine(columns(line["name"], euros(line["total"]), width)))
        else:
            out.append(ReceiptLine(line["name"][:width]))
            detail = f"  {line['quantity']} x {euros(line['unit_price'])}"
            out.append(ReceiptLine(columns(detail, euros(line["total"]), width)))
    out.append(rule)
    totals = sale["totals"]
    out.append(ReceiptLine(columns("TOTAL TTC", euros(totals["total"]) + " EUR", width), bold=True))
    out.append(ReceiptLine(f"{totals['items']} article(s)"))
    out.append(ReceiptLine(""))
    out.append(ReceiptLine(_vat_row("TVA", "HT", "TVA", "TTC", width)))
    for vat in totals["vat"]:
        out.append(
            ReceiptLine(
                _vat_row(
                    rate_label(vat["rate"]), euros(vat["base"]), euros(vat["vat"]),
                    euros(vat["total"]), width,
                )
            )
        )
    out.append(ReceiptLine(""))
    for tender in sale["tenders"]:
        label = TENDER_LABELS.get(tender["method"], tender["method"])
        out.append(ReceiptLine(columns(label, euros(tender["amount"]), width)))
        if tender.get("reference"):
            out.append(ReceiptLine(f"  Réf. TPE {tender['reference']}"[:width]))
    if sale["change"]:
        out.append(ReceiptLine(columns("Rendu", euros(sale["change"]), width), bold=True))
    out.append(rule)
    out.append(ReceiptLine(columns(f"Ticket {sale['receipt_number']}", local_time(sale["time"]),
                                   width)))
    out.append(ReceiptLine(f"Caisse {sale['till']}  Caissier {sale['cashier']}"[:width]))
    out.append(ReceiptLine(f"Empreinte {sale['hash'][:16]}"))
    out.append(ReceiptLine("Merci de votre visite !", center=True))
    return out


def _vat_row(rate: str, base: str, vat: str, total: str, width: int) -> str:
    cell = (width - 8) // 3
    return f"{rate:<8}{base:>{cell}}{vat:>{cell}}{total:>{cell}}"


def as_text(lines: list[ReceiptLine], width: int = WIDTH_80MM) -> str:
    return "\n".join(ln.text.center(width).rstrip() if ln.center else ln.text for ln in lines)
