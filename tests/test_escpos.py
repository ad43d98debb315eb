"""ESC/POS encoding and receipt layout: golden bytes for 80 mm and 58 mm, and the pieces.

The golden files hold one receipt segment per line, as a Python bytes
literal, so a change shows in a diff line by line. After a deliberate layout
change, regenerate them with `EDGE_UPDATE_GOLDEN=1 .venv/bin/pytest
tests/test_escpos.py`, read the diff, and commit it.
"""

from __future__ import annotations

import ast
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.devices import escpos
from edge.devices.receipt import WIDTH_58MM, WIDTH_80MM, ReceiptLine, Store, as_text, layout
from edge.selling.money import Line, basket_totals

GOLDEN = Path(__file__).parent / "golden"
HASH = "9f2c6a1d5e8b4f7a0c3d2e1f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b"
# With the legal identity a receipt must carry (issue 11): the golden files show it.
STORE = Store("Boulangerie du Marché", ("12 place du Marché", "75011 Paris"),
              "SARL Boulangerie du Marché", "83214785400018", "FR67832147854", "edge 0.1.0")


def sample_sale() -> dict:
    items = [  # name, unit price, VAT rate, quantity
        ("Baguette tradition", 120, 550, 2),
        ("Éclair au café", 290, 550, 1),
        ("Café crème", 220, 1000, 1),
        ("Jus d'orange pressé 25 cl", 350, 2000, 1),
    ]
    lines = [
        {"id": f"l{n}", "product_id": f"p{n}", "barcode": None, "name": name,
         "unit_price": price, "vat_rate": rate, "quantity": quantity, "total": price * quantity}
        for n, (name, price, rate, quantity) in enumerate(items)
    ]
    totals = basket_totals(Line(ln["unit_price"], ln["quantity"], ln["vat_rate"]) for ln in lines)
    return {
        "id": "sale-1", "till": "T01", "receipt_no": 42, "receipt_number": "T01-000042",
        "cashier": "chloe", "cashier_name": "Chloé", "lines": lines, "totals": totals,
        "tenders": [{"method": "card", "amount": 500, "reference": "A7F3"},
                    {"method": "cash", "amount": 1000}],
        "change": 500 + 1000 - totals["total"],
        "time": "2026-11-25T09:42:07.123Z", "hash": HASH,
    }


@pytest.fixture
def paris_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Receipts print the store's local time: pin it to Paris whatever the machine says."""
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def golden_segments(width: int) -> list[bytes]:
    lines = layout(sample_sale(), STORE, width)
    return escpos.receipt_segments(lines, code_page="pc858", open_drawer=True, drawer_pin=2,
                                   qr_module=6 if width > 32 else 5)


@pytest.mark.parametrize(("width", "name"), [(WIDTH_80MM, "receipt-80mm"),
                                              (WIDTH_58MM, "receipt-58mm")])
def test_a_sample_receipt_is_exactly_the_golden_bytes(
    paris_time: None, width: int, name: str
) -> None:
    segments = golden_segments(width)
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("EDGE_UPDATE_GOLDEN"):
        path.write_text("".join(repr(segment) + "\n" for segment in segments))
    expected = [ast.literal_eval(line) for line in path.read_text().splitlines()]
    assert segments == expected
    data = b"".join(segments)
    # What the golden file must hold, whoever regenerates it:
    assert data.startswith(b"\x1b@" + b"\x1bt\x13" + b"\x1bp\x00\x32\xfa")  # init, PC858, drawer
    assert data.endswith(b"\x1ba\x00\x1dV\x42\x03")  # align left, feed and cut
    assert b"\x1bE\x01\x1d!\x11Boulangerie" in data  # bold, double size
    assert "Éclair au café".encode("cp858") == b"\x90clair au caf\x82" and b"\x90clair" in data
    assert b"TVA     " in data and b"HT \xd5" in data  # the euro sign in code page 858
    assert escpos.qr_code(HASH, 6 if width > 32 else 5) in data
    assert b"25/11/2026 10:42" in data and b"Chlo\x82" in data
    for line in as_text(layout(sample_sale(), STORE, width), width).splitlines():
        assert len(line) <= width or line.strip().startswith("[QR"), line


def test_the_readable_copy_of_the_sample_receipt(paris_time: None) -> None:
    text = as_text(layout(sample_sale(), STORE, WIDTH_58MM), WIDTH_58MM)
    assert text.splitlines()[:4] == [
        "         Boulangerie du",  # double size: wrapped at 16 characters
        "             Marché",
        "       12 place du Marché",
        "          75011 Paris",
    ]
    assert "Ticket T01-000042\n                25/11/2026 10:42" in text  # too long for one
    assert "TOTAL TTC              11,00 EUR" in text
    assert "5,5%        5,02    0,28    5,30" in text
    assert "Rendu                       4,00" in text
    assert "Ticket T01-000042" in text and "Caisse T01  Caissier Chloé" in text
    assert f"[QR {HASH}]" in text


def test_a_duplicate_says_so_at_the_top_and_the_bottom(paris_time: None) -> None:
    text = as_text(layout(sample_sale(), STORE, WIDTH_80MM, copy="duplicate"), WIDTH_80MM)
    assert text.count("DUPLICATA") == 2


def test_the_qr_code_is_the_bytes_python_escpos_sends() -> None:
    # python-escpos 3.1, Dummy().qr(HASH, native=True, size=6, ec=QR_ECLEVEL_M).output
    assert escpos.qr_code(HASH, 6) == (
        b"\x1d(k\x04\x001A2\x00\x1d(k\x03\x001C\x06\x1d(k\x03\x001E1\x1d(kC\x001P0"
        + HASH.encode() + b"\x1d(k\x03\x001Q0"
    )


def test_drawer_pulse_on_pin_2_or_5() -> None:
    assert escpos.drawer_pulse(2) == b"\x1bp\x00\x32\xfa"
    assert escpos.drawer_pulse(5) == b"\x1bp\x01\x32\xfa"
    with pytest.raises(ValueError, match="pin 2 or pin 5"):
        escpos.drawer_pulse(3)
    lines = [ReceiptLine("x")]
    assert escpos.drawer_pulse(5) in escpos.encode_receipt(lines, open_drawer=True, drawer_pin=5)
    assert b"\x1bp" not in escpos.encode_receipt(lines)


@pytest.mark.parametrize(("code_page", "number", "euro"), [
    ("pc858", 19, b"\xd5"), ("wpc1252", 16, b"\x80"), ("iso8859-15", 40, b"\xa4"),
    ("pc850", 2, b"EUR"), ("pc437", 0, b"EUR"),
])
def test_each_code_page_is_selected_and_has_a_euro(code_page: str, number: int,
                                                   euro: bytes) -> None:
    assert escpos.select_code_page(code_page) == b"\x1bt" + bytes([number])
    assert escpos.encode_text("5 €", code_page) == b"5 " + euro
    assert escpos.encode_text("é", code_page).decode(escpos.CODE_PAGES[code_page].codec) == "é"


def test_what_a_code_page_lacks_prints_as_plain_letters() -> None:
    assert escpos.encode_text("Œuf “bio” — 2€", "pc437") == b'OEuf "bio" - 2EUR'
    assert escpos.encode_text("Ştefan ĳ 漢", "pc858") == b"Stefan ij ?"


def test_control_characters_never_reach_the_printer_as_commands() -> None:
    assert escpos.encode_text("a\x10\x04\x01b\x1b@c\x9bd") == b"a   b @c d"


def test_chunks_keep_every_byte_in_order_and_split_only_between_segments() -> None:
    segments = [bytes([n]) * (n * 37 % 300 + 1) for n in range(60)]
    chunked = escpos.chunks(segments, 512)
    assert b"".join(chunked) == b"".join(segments)
    assert all(len(chunk) <= 512 for chunk in chunked)
    boundaries = {sum(len(s) for s in segments[:n]) for n in range(len(segments) + 1)}
    position = 0
    for chunk in chunked:
        position += len(chunk)
        assert position in boundaries
    assert escpos.chunks([b"x" * 1300], 512) == [b"x" * 512, b"x" * 512, b"x" * 276]


@pytest.mark.parametrize(("replies", "state", "near_end", "drawer"), [
    ((0x12, 0x12, None, None), "ready", False, False),
    ((0x16, 0x1E, None, None), "ready", True, True),
    ((0x1A, 0x72, 0x32, None), "paper_out", False, False),
    ((0x1A, 0x12, 0x16, None), "cover_open", False, False),
    ((0x1A, 0x12, 0x52, 0x1A), "error", False, False),
    ((0x1A, 0x12, 0x12, None), "offline", False, False),
])
def test_status_bytes_in_plain_words(replies: tuple, state: str, near_end: bool,
                                     drawer: bool) -> None:
    report = escpos.read_status(*replies)
    assert (report.state, report.paper_near_end, report.drawer_open) == (state, near_end, drawer)
    assert report.detail
    assert all(escpos.is_status_byte(byte) for byte in replies if byte is not None)
