"""ESC/POS: receipt lines as printer bytes, and the printer's status bytes. Pure, no device.

What we send is a short list of commands every Epson-compatible printer
understands (Epson, Star in ESC/POS mode, Bixolon, Citizen and the 80 mm
clones): initialise, code page, alignment, bold, double size, native QR code,
drawer pulse, feed and cut, and the real-time status requests (DLE EOT).
docs/devices.md says why this is our own code and not python-escpos.

A receipt is encoded as *segments*: the preamble (initialise, code page and
the drawer pulse), then one segment per line, each setting its own style and
resetting it, then the cut. Any segment boundary is a clean place to split
the bytes into chunks for the device, and the cut is always in the last one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from edge.devices.receipt import ReceiptLine

ESC, GS, DLE, EOT = b"\x1b", b"\x1d", b"\x10", b"\x04"
INIT = ESC + b"@"
BOLD_ON, BOLD_OFF = ESC + b"E\x01", ESC + b"E\x00"
DOUBLE_SIZE, NORMAL_SIZE = GS + b"!\x11", GS + b"!\x00"
ALIGN_LEFT, ALIGN_CENTER = ESC + b"a\x00", ESC + b"a\x01"
# GS V 66 n: feed to the cutter (plus n dots) and cut partially, so the last
# line clears the tear bar whatever the printer's head-to-cutter distance.
FEED_AND_CUT = GS + b"V\x42\x03"


@dataclass(frozen=True)
class CodePage:
    """A printer character table: its ESC t number (Epson numbering) and Python codec."""

    name: str
    number: int
    codec: str
    euro: bool


CODE_PAGES = {
    page.name: page
    for page in (
        # PC858 is PC850 (Western Europe) with the euro sign: the default.
        CodePage("pc858", 19, "cp858", euro=True),
        CodePage("wpc1252", 16, "cp1252", euro=True),
        CodePage("iso8859-15", 40, "iso8859_15", euro=True),
        CodePage("pc850", 2, "cp850", euro=False),
        CodePage("pc437", 0, "cp437", euro=False),
        CodePage("pc852", 18, "cp852", euro=False),
    )
}
DEFAULT_CODE_PAGE = "pc858"

# What to print for a character the code page lacks, before falling back to
# its unaccented letter (NFKD) or "?".
FALLBACKS = {
    "€": "EUR", "œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss",
    # Typographic quotes and dashes, written as escapes to keep them visible.
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"',
    "\u201e": '"', "«": '"', "»": '"', "\u2013": "-", "\u2014": "-", "…": "...",
    "\u00a0": " ", "\u202f": " ", "•": "*",
}


def select_code_page(code_page: str = DEFAULT_CODE_PAGE) -> bytes:
    return ESC + b"t" + bytes([CODE_PAGES[code_page].number])


def encode_text(text: str, code_page: str = DEFAULT_CODE_PAGE) -> bytes:
    """Text in the printer's code page; what it lacks becomes the nearest plain letters.

    Control characters become spaces: a stray DLE EOT or ESC inside a product
    name must never reach the printer as a command.
    """
    codec = CODE_PAGES[code_page].codec
    out = bytearray()
    for char in text:
        if char < " " or "\x7f" <= char < "\xa0":
            out += b" "
            continue
        try:
            out += char.encode(codec)
        except UnicodeEncodeError:
            out += _fallback(char, codec)
    return bytes(out)


def _fallback(char: str, codec: str) -> bytes:
    if char in FALLBACKS:
        return FALLBACKS[char].encode(codec, errors="replace")
    plain = unicodedata.normalize("NFKD", char).encode("ascii", errors="ignore")
    return plain or b"?"


def drawer_pulse(pin: int = 2) -> bytes:
    """ESC p: pulse the drawer kick-out connector, pin 2 or 5: 100 ms on, 500 ms off.

    100 ms, not the 50 ms of much sample code: a short pulse is what leaves
    some solenoid drawers shut one time in five.
    """
    if pin not in (2, 5):
        raise ValueError("the drawer is on pin 2 or pin 5")
    return ESC + b"p" + bytes([0 if pin == 2 else 1, 50, 250])


def _qr_function(function: int, payload: bytes) -> bytes:
    """GS ( k pL pH cn fn payload, for the QR code symbol (cn = 49)."""
    size = len(payload) + 2
    return GS + b"(k" + bytes([size % 256, size // 256, 49, function]) + payload


def qr_code(data: str, module_size: int = 6) -> bytes:
    """A native QR code (model 2, error correction M), printed by the printer itself."""
    content = data.encode("ascii")
    if not 1 <= len(content) <= 7000:
        raise ValueError("QR data must be 1 to 7000 ASCII characters")
    return (
        _qr_function(65, b"\x32\x00")  # model 2
        + _qr_function(67, bytes([module_size]))  # dots per module
        + _qr_function(69, b"\x31")  # error correction M (15 %)
        + _qr_function(80, b"\x30" + content)  # store the data
        + _qr_function(81, b"\x30")  # print it
    )


def encode_line(line: ReceiptLine, code_page: str = DEFAULT_CODE_PAGE, qr_module: int = 6) -> bytes:
    """One line as a self-contained segment: it sets its style and resets it."""
    out = bytearray(ALIGN_CENTER if line.center or line.qr else ALIGN_LEFT)
    if line.qr:
        out += qr_code(line.qr, qr_module) + b"\n"
        return bytes(out)
    out += BOLD_ON if line.bold else b""
    out += DOUBLE_SIZE if line.big else b""
    out += encode_text(line.text, code_page) + b"\n"
    out += NORMAL_SIZE if line.big else b""
    out += BOLD_OFF if line.bold else b""
    return bytes(out)


def preamble(code_page: str = DEFAULT_CODE_PAGE, drawer_pin: int | None = None) -> bytes:
    """Initialise, select the code page and, for a cash sale, kick the drawer.

    The pulse comes first so the drawer opens while the receipt prints.
    """
    out = INIT + select_code_page(code_page)
    return out + (drawer_pulse(drawer_pin) if drawer_pin is not None else b"")


def receipt_segments(
    lines: Iterable[ReceiptLine],
    *,
    code_page: str = DEFAULT_CODE_PAGE,
    cut: bool = True,
    open_drawer: bool = False,
    drawer_pin: int = 2,
    qr_module: int = 6,
) -> list[bytes]:
    segments = [preamble(code_page, drawer_pin if open_drawer else None)]
    segments += [encode_line(line, code_page, qr_module) for line in lines]
    segments.append(ALIGN_LEFT + (FEED_AND_CUT if cut else b""))
    return segments


def encode_receipt(
    lines: Iterable[ReceiptLine],
    *,
    code_page: str = DEFAULT_CODE_PAGE,
    cut: bool = True,
    open_drawer: bool = False,
    drawer_pin: int = 2,
    qr_module: int = 6,
) -> bytes:
    return b"".join(receipt_segments(
        lines, code_page=code_page, cut=cut, open_drawer=open_drawer, drawer_pin=drawer_pin,
        qr_module=qr_module,
    ))


def chunks(segments: list[bytes], size: int) -> list[bytes]:
    """Pack whole segments into chunks of at most `size` bytes (a longer segment is split)."""
    out: list[bytes] = []
    current = bytearray()
    for segment in segments:
        if current and len(current) + len(segment) > size:
            out.append(bytes(current))
            current = bytearray()
        while len(segment) > size:
            out.append(segment[:size])
            segment = segment[size:]
        current += segment
    if current:
        out.append(bytes(current))
    return out


# Real-time status: DLE EOT n. The printer answers one byte at once, even
# while offline or with a full buffer. Every answer has bits 1 and 4 set and
# bits 0 and 7 clear, which tells it from anything else on the line.
PRINTER_STATUS, OFFLINE_CAUSE, ERROR_CAUSE, PAPER_SENSOR = 1, 2, 3, 4


def status_request(n: int) -> bytes:
    return DLE + EOT + bytes([n])


def is_status_byte(value: int) -> bool:
    return value & 0x93 == 0x12


@dataclass(frozen=True)
class StatusReport:
    """What the status bytes say, in the printer's terms and in plain words."""

    state: str  # ready, paper_out, cover_open, error, offline
    paper_near_end: bool
    drawer_open: bool
    detail: str


def read_status(
    printer: int, paper: int, offline_cause: int | None = None, error_cause: int | None = None
) -> StatusReport:
    """Interpret the answers to DLE EOT 1 and 4 (and 2, 3 when the printer is offline).

    The drawer is reported open when its switch pulls pin 3 high, Epson's
    wiring; a drawer wired the other way reads the other way round.
    """
    near_end = bool(paper & 0x0C)
    drawer_open = bool(printer & 0x04)
    offline = bool(printer & 0x08)
    offline_cause = offline_cause or 0
    error_cause = error_cause or 0
    if paper & 0x60 or offline_cause & 0x20:
        state, detail = "paper_out", "paper out: put in a new roll"
    elif offline_cause & 0x04:
        state, detail = "cover_open", "cover open: close the printer's cover"
    elif offline_cause & 0x40 or error_cause & 0x6C:
        state, detail = "error", _error_words(error_cause)
    elif offline:
        state, detail = "offline", "offline: check the printer (paper being fed, or a button)"
    else:
        state, detail = "ready", "ready"
    if near_end and state == "ready":
        detail = "ready, paper near its end: have a new roll at hand"
    return StatusReport(state, near_end, drawer_open, detail)


def _error_words(error_cause: int) -> str:
    if error_cause & 0x08:
        return "error: the cutter is stuck; open the cover, clear the paper, close it"
    if error_cause & 0x40:
        return "error: print head too hot; it resumes by itself when cool"
    if error_cause & 0x20:
        return "error: switch the printer off and on again"
    return "error: the printer reports a fault; switch it off and on again"
