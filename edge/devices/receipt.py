"""Receipt layout: a sale as lines of text for a given paper width. Pure.

French, as the store's customers read it. Widths are characters in the
printer's font A: 48 for 80 mm paper, 32 for 58 mm. Besides receipts: the
duplicate copy, the mark that closes a receipt cut short, and the test page.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

WIDTH_80MM = 48
WIDTH_58MM = 32
TENDER_LABELS = {"cash": "Espèces", "card": "Carte bancaire"}


@dataclass(frozen=True)
class Store:
    """Who the receipt is from: its sign, and the legal identity French rules want on it."""

    name: str
    address: tuple[str, ...] = ()
    legal_name: str = ""  # the company (SARL ..., as registered)
    siret: str = ""  # 14 digits
    vat_number: str = ""  # FR + 11 characters
    software: str = ""  # the cash software and its version: "edge 0.1.0"


def receipt_store(config: Any) -> Store:
    """The store as its config (`[store]`) names it, with this edge's version."""
    from edge import __version__

    return Store(config.store_name, tuple(config.store_address), config.store_legal_name,
                 config.store_siret, config.store_vat_number, f"edge {__version__}")


def siret_spaced(siret: str) -> str:
    """`832 147 854 00018`: the SIREN in threes, then the establishment's number."""
    return f"{siret[0:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}" if len(siret) == 14 else siret


def legal_lines(store: Store, width: int) -> list[ReceiptLine]:
    lines = [store.legal_name] if store.legal_name else []
    lines += [f"SIRET {siret_spaced(store.siret)}"] if store.siret else []
    lines += [f"TVA intracom. {store.vat_number}"] if store.vat_number else []
    return [ReceiptLine(line[:width], center=True) for line in lines]


TRAINING_MARK = "MODE ÉCOLE"


@dataclass(frozen=True)
class ReceiptLine:
    text: str
    bold: bool = False
    big: bool = False  # double width and height: half as many characters fit
    center: bool = False
    qr: str = ""  # when set, the line is a QR code of this data, not text


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


def fitted(left: str, right: str, width: int, **style: bool) -> list[ReceiptLine]:
    """`left` and `right` on one line if they fit, else `left` wrapped above `right`."""
    if len(left) + 1 + len(right) <= width:
        return [ReceiptLine(columns(left, right, width), **style)]
    above = [ReceiptLine(part, **style) for part in textwrap.wrap(left, width)]
    return [*above, ReceiptLine(right.rjust(width), **style)]


def local_time(iso: str) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    return moment.strftime("%d/%m/%Y %H:%M")


Copy = Literal["original", "duplicate"]


def big_lines(text: str, width: int, **style: bool) -> list[ReceiptLine]:
    """Double-size text, wrapped at half the width so the printer never breaks a word."""
    return [ReceiptLine(part, big=True, **style)
            for part in textwrap.wrap(text, max(width // 2, 1)) or [""]]


def duplicate_mark(copy_number: int | None) -> str:
    """"DUPLICATA n° 2": a copy's number, counted store-wide (none on copies of before)."""
    return f"DUPLICATA n° {copy_number}" if copy_number else "DUPLICATA"


def layout(
    sale: dict[str, Any], store: Store, width: int = WIDTH_80MM, copy: Copy = "original",
    copy_number: int | None = None,
) -> list[ReceiptLine]:
    """A sale's receipt; `sale` may carry `cashier_name` (else the cashier id is printed).

    `copy_number`: which DUPLICATA of the sale this is (1 for the first copy).
    """
    rule = ReceiptLine("-" * width)
    out = big_lines(store.name, width, bold=True, center=True)
    out += [ReceiptLine(line, center=True) for line in store.address]
    out += legal_lines(store, width)
    training = sale.get("training") is True
    if training:  # a pretend sale (edge/fiscal/training.py): said at the top and the bottom
        out += big_lines(TRAINING_MARK, width, bold=True, center=True)
    if copy == "duplicate":
        out += big_lines(duplicate_mark(copy_number), width, bold=True, center=True)
    if "refund_of" in sale:  # a refund (edge/selling/refunds.py): a negative sale
        out += big_lines("REMBOURSEMENT", width, bold=True, center=True)
        if sale.get("refund_of_receipt"):
            out.append(ReceiptLine(f"Ticket d'origine {sale['refund_of_receipt']}"[:width],
                                   center=True))
    out.append(rule)
    for line in sale["lines"]:
        if line["quantity"] == 1:
            out += fitted(line["name"], euros(line["total"]), width)
        else:
            out += [ReceiptLine(part) for part in textwrap.wrap(line["name"], width)]
            detail = f"  {line['quantity']} x {euros(line['unit_price'])}"
            out.append(ReceiptLine(columns(detail, euros(line["total"]), width)))
    out.append(rule)
    totals = sale["totals"]
    out.append(ReceiptLine(columns("TOTAL TTC", euros(totals["total"]) + " EUR", width), bold=True))
    out.append(ReceiptLine(f"{totals['items']} article(s)"))
    out.append(ReceiptLine(""))
    out.append(ReceiptLine(_vat_row("TVA", "HT €", "TVA €", "TTC €", width)))
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
        out += [ReceiptLine(text[:width]) for text in card_terminal_lines(tender)]
        if tender.get("reference"):
            out.append(ReceiptLine(f"  Réf. TPE {tender['reference']}"[:width]))
    if sale["change"]:
        out.append(ReceiptLine(columns("Rendu", euros(sale["change"]), width), bold=True))
    out.append(rule)
    out += fitted(f"Ticket {sale['receipt_number']}", local_time(sale["time"]), width)
    cashier = sale.get("cashier_name") or sale["cashier"]
    out.append(ReceiptLine(f"Caisse {sale['till']}  Caissier {cashier}"[:width]))
    # The QR code carries the sale's journal hash: anyone can check the
    # receipt against the store's journal (`edge verify` checks the chain).
    out.append(ReceiptLine("", qr=sale["hash"]))
    # The hash's first 16 hex digits: what the node signed is this hash (edge/journal/
    # signing.py), so it finds the signed event in the journal or an archive.
    out.append(ReceiptLine(f"Empreinte {sale['hash'][:16]}", center=True))
    if store.software:
        out.append(ReceiptLine(f"Logiciel {store.software}"[:width], center=True))
    if copy == "duplicate":
        out.append(ReceiptLine("DUPLICATA - ne vaut pas ticket de caisse", bold=True,
                               center=True))
    if training:
        out.append(ReceiptLine(f"{TRAINING_MARK} - ne vaut pas ticket"[:width], bold=True,
                               center=True))
    out.append(ReceiptLine("Merci de votre visite !", center=True))
    return out


def card_terminal_lines(tender: dict[str, Any]) -> list[str]:
    """What the payment terminal said of a card tender (docs/devices.md, "Card terminals").

    `Carte ****1234  Auto 123456`: the masked card and the authorisation
    number, then the card's application and how it was read when the
    terminal gave them. Nothing for a tender typed from a slip, or not a card.
    """
    if tender.get("method") != "card":
        return []
    card = [f"Carte ****{tender['last4']}"] if tender.get("last4") else []
    card += [f"Auto {tender['authorisation']}"] if tender.get("authorisation") else []
    how = [str(tender["application"])] if tender.get("application") else []
    how += [f"Lecture {tender['read_mode']}"] if tender.get("read_mode") else []
    return [f"  {'  '.join(parts)}" for parts in (card, how) if parts]


def interrupted_mark(width: int = WIDTH_80MM) -> list[ReceiptLine]:
    """Printed before a receipt sent again after it was cut short (link lost, restart).

    It ends, with a cut, whatever fragment of the first attempt the printer
    still holds, and tells the cashier the complete receipt follows.
    """
    return [
        ReceiptLine("*" * width),
        ReceiptLine("IMPRESSION INTERROMPUE", bold=True, center=True),
        ReceiptLine("le ticket complet suit", center=True),
        ReceiptLine("*" * width),
    ]


def printer_test_page(
    store: Store, printer: str, description: str, width: int, code_page: str, drawer_pin: int
) -> list[ReceiptLine]:
    """What `edge devices test` prints: enough to check the width, accents, sizes and QR."""
    return [
        *big_lines("Test imprimante", width, bold=True, center=True),
        ReceiptLine(store.name, center=True),
        ReceiptLine("=" * width),
        ReceiptLine(f"Imprimante : {printer}"[:width]),
        ReceiptLine(description[:width]),
        ReceiptLine(f"Largeur : {width} caractères, page {code_page}"[:width]),
        ReceiptLine(f"Tiroir : impulsion broche {drawer_pin}"[:width]),
        ReceiptLine("=" * width),
        ReceiptLine("Accents : àâçéèêëîïôûùüÿ ÀÇÉÈÔ"[:width]),
        ReceiptLine(f"Euro : {euros(123456)} €"),
        ReceiptLine("Gras", bold=True),
        *big_lines("Double", width),
        ReceiptLine("Centré", center=True),
        ReceiptLine(columns("gauche", "droite", width)),
        ReceiptLine("".join(str(n % 10) for n in range(1, width + 1))),
        ReceiptLine("", qr="edge test page"),
        ReceiptLine("Fin du test", center=True),
    ]


def _vat_row(rate: str, base: str, vat: str, total: str, width: int) -> str:
    cell = (width - 8) // 3
    return f"{rate:<8}{base:>{cell}}{vat:>{cell}}{total:>{cell}}"


def as_text(lines: list[ReceiptLine], width: int = WIDTH_80MM) -> str:
    """The readable copy a file printer keeps beside the raw bytes."""
    return "\n".join(_text_line(line, width) for line in lines)


def _text_line(line: ReceiptLine, width: int) -> str:
    if line.qr:
        return f"[QR {line.qr}]".center(width).rstrip()
    return line.text.center(width).rstrip() if line.center else line.text
