"""ESC/POS encoding of receipt lines: pure bytes, no device.

Text goes out in code page PC858 (Western European with the euro sign),
selected with ESC t 19, which Epson and most clones understand.
"""

from __future__ import annotations

from edge.receipt import ReceiptLine

ESC, GS = b"\x1b", b"\x1d"
INIT = ESC + b"@"
CODE_PAGE_PC858 = ESC + b"t\x13"
BOLD_ON, BOLD_OFF = ESC + b"E\x01", ESC + b"E\x00"
DOUBLE_SIZE, NORMAL_SIZE = GS + b"!\x11", GS + b"!\x00"
ALIGN_LEFT, ALIGN_CENTER = ESC + b"a\x00", ESC + b"a\x01"
FEED_AND_CUT = GS + b"V\x42\x03"


def drawer_pulse(pin: int = 2) -> bytes:
    """ESC p: pulse the drawer kick-out connector pin 2 or 5 (50 ms on, 500 ms off)."""
    return ESC + b"p" + bytes([0 if pin == 2 else 1, 25, 250])


def encode_text(text: str) -> bytes:
    return text.encode("cp858", errors="replace")


def encode_receipt(
    lines: list[ReceiptLine], *, cut: bool = True, open_drawer: bool = False, drawer_pin: int = 2
) -> bytes:
    out = bytearray(INIT + CODE_PAGE_PC858)
    if open_drawer:
        # Before the text: the drawer opens while the receipt prints.
        out += drawer_pulse(drawer_pin)
    for line in lines:
        out += ALIGN_CENTER if line.center else ALIGN_LEFT
        out += BOLD_ON if line.bold else b""
        out += DOUBLE_SIZE if line.big else b""
        out += encode_text(line.text) + b"\n"
        out += NORMAL_SIZE if line.big else b""
        out += BOLD_OFF if line.bold else b""
    out += ALIGN_LEFT
    if cut:
        out += FEED_AND_CUT
    return bytes(out)
