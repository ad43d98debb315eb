"""Caisse-AP over IP, the till-to-terminal protocol of French card terminals: pure, no I/O.

A message is a series of TLV records: a 2-character tag, a 3-digit length,
then the value (1 to 999 printable ASCII characters). There is no total
length and no terminator, so a reader cannot tell from the bytes alone that
an answer is over: `Decoder.complete()` only says the bytes end on a record
boundary and hold `CZ`; the client (edge/devices/terminal_client.py) also
waits for the line to go quiet, since terminals send their answer in several
TCP segments.

`payment_request` builds what we send; `read_answer` turns the terminal's
answer into a `TerminalAnswer`, never `approved` on a doubt: an echo that
does not match, a missing or larger authorised amount, or no result at all
reads `unknown`, to be settled from the terminal's own slip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Records = list[tuple[str, str]]

VERSION = "0300"
# `CJ`, the 12-character protocol identifier: the value terminals accept
# from any till (field installations send this one).
PROTOCOL_ID = "012345678901"
EURO = "978"
MAX_VALUE = 999

DONE, NOT_DONE = "10", "01"

# AF codes (first 2 characters of AF) and the plain words for them; the till
# translates by code.
REFUSALS: dict[str, str] = {
    "04": "refused",
    "05": "forbidden",
    "06": "abandoned",
    "07": "not completed",
    "08": "timed out on the terminal",
    "09": "format error",
    "11": "cancelled on the terminal",
    "13": "currency not supported",
}

# Our own codes for an answer we cannot trust (status `unknown`) or a refusal
# that gives no reason.
NO_REASON = "no_reason"          # AE 01 without a readable AF
NO_RESULT = "no_result"          # no AE at all
BAD_RESULT = "bad_result"        # AE neither 10 nor 01
AMBIGUOUS = "ambiguous_answer"   # a deciding tag twice, with two values
WRONG_ECHO = "wrong_echo"        # CA, CD or CE on success differ from the request
NO_AMOUNT = "no_amount"          # success without CB
BAD_AMOUNT = "bad_amount"        # CB on success not a positive number
OVER_AMOUNT = "over_amount"      # CB above the amount asked

_REASONS = {
    NO_REASON: "refused by the terminal, no reason given",
    NO_RESULT: "the terminal's answer holds no result",
    BAD_RESULT: "the terminal's answer holds an unknown result",
    AMBIGUOUS: "the terminal's answer contradicts itself",
    WRONG_ECHO: "the terminal's answer is not for this payment",
    NO_AMOUNT: "the terminal approved without saying the amount",
    BAD_AMOUNT: "the terminal approved an unreadable amount",
    OVER_AMOUNT: "the terminal approved more than the amount asked",
}

_DECIDING = ("AE", "AF", "CA", "CB", "CD", "CE")
_TAG_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_DIGITS = frozenset(b"0123456789")


class CaisseAPError(ValueError):
    """Bytes that are not Caisse-AP; `code` names what is wrong."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


def _printable(value: str) -> bool:
    return all(" " <= char <= "~" for char in value)


def encode(records: Records) -> bytes:
    out = []
    for tag, value in records:
        if len(tag) != 2 or not tag.isascii() or not all(ord(c) in _TAG_CHARS for c in tag):
            raise ValueError(f"bad tag {tag!r}: two characters A-Z or 0-9")
        if not 1 <= len(value) <= MAX_VALUE or not _printable(value):
            raise ValueError(f"bad value for {tag}: 1 to {MAX_VALUE} printable ASCII characters")
        out.append(f"{tag}{len(value):03d}{value}")
    return "".join(out).encode("ascii")


class Decoder:
    """Reads records from bytes fed in pieces; the result never depends on the pieces.

    Every byte is checked as it comes (a state machine, one byte at a time),
    so garbage is named at its first bad byte whatever the split. After an
    error the decoder ignores what follows.
    """

    def __init__(self) -> None:
        self.error: str | None = None
        self.error_code: str | None = None
        self.size = 0
        self._records: Records = []
        self._tag = bytearray()
        self._length = bytearray()
        self._value = bytearray()
        self._wanted = 0  # value bytes still expected, once the length is read

    def feed(self, data: bytes) -> None:
        for byte in data:
            if self.error is not None:
                return
            self._byte(byte)
            self.size += 1

    def _fail(self, code: str, what: str, byte: int) -> None:
        self.error_code = code
        self.error = f"{code}: {what} {bytes([byte])!r} at byte {self.size}"

    def _byte(self, byte: int) -> None:
        if len(self._tag) < 2:
            if byte not in _TAG_CHARS:
                self._fail("bad_tag", "tag byte", byte)
            else:
                self._tag.append(byte)
        elif len(self._length) < 3:
            if byte not in _DIGITS:
                self._fail("bad_length", "length byte", byte)
                return
            self._length.append(byte)
            if len(self._length) == 3:
                self._wanted = int(self._length)
                if self._wanted == 0:
                    self._fail("zero_length", "length ending", byte)
        else:
            if not 0x20 <= byte <= 0x7E:
                self._fail("bad_value", f"value byte of {self._tag.decode()}", byte)
                return
            self._value.append(byte)
            if len(self._value) == self._wanted:
                self._records.append((self._tag.decode(), self._value.decode()))
                self._tag.clear()
                self._length.clear()
                self._value.clear()

    def records(self) -> Records:
        return list(self._records)

    def at_boundary(self) -> bool:
        """No record is half read (and no garbage)."""
        return self.error is None and not self._tag

    def complete(self) -> bool:
        """The bytes so far end on a record boundary and hold `CZ`."""
        return self.at_boundary() and any(tag == "CZ" for tag, _ in self._records)


def decode(data: bytes) -> Records:
    """All records of a whole message; `CaisseAPError` on garbage or a cut record."""
    decoder = Decoder()
    decoder.feed(data)
    if decoder.error is not None:
        raise CaisseAPError(decoder.error_code or "garbage", decoder.error)
    if not decoder.at_boundary():
        raise CaisseAPError("truncated", f"the last record stops at byte {decoder.size}")
    return decoder.records()


def payment_request(*, till_number: int, amount: int, refund: bool) -> Records:
    """A debit (or, `refund`, a credit) of `amount` cents, answered at its end (BA 0).

    Never `BF` (partial payment): recent Ingenico software breaks on it.
    """
    if not 0 <= till_number <= 99:
        raise ValueError("till_number: 0 to 99 (two digits)")
    if amount <= 0:
        raise ValueError("amount: cents, above 0")
    return [
        ("CZ", VERSION), ("CJ", PROTOCOL_ID), ("CA", f"{till_number:02d}"),
        ("CB", f"{amount:02d}"), ("CD", "1" if refund else "0"), ("CE", EURO), ("BA", "0"),
    ]


@dataclass(frozen=True)
class TerminalAnswer:
    status: Literal["approved", "declined", "unknown"]
    code: str | None  # AF's 2 digits on a refusal, or one of our codes above
    reason: str | None  # plain English words
    requested: int  # cents asked
    authorised: int | None = None  # cents, only when approved
    authorisation: str | None = None  # AC
    card: str | None = None  # AA, masked as the terminal gives it
    last4: str | None = None
    expiry: str | None = None  # AB
    aid: str | None = None  # AI
    application: str | None = None  # CC
    read_mode: str | None = None  # CI
    transaction: str | None = None  # stable id from AA, AB, AC, AI, CD; approved only

    @property
    def partial(self) -> bool:
        return self.authorised is not None and self.authorised < self.requested


def transaction_id(values: dict[str, str]) -> str:
    joined = "|".join(values.get(tag, "") for tag in ("AA", "AB", "AC", "AI", "CD"))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def _last4(card: str | None) -> str | None:
    digits = "".join(char for char in card or "" if char.isdigit())
    return digits[-4:] if len(digits) >= 4 else None


def read_answer(request: Records, answer: Records) -> TerminalAnswer:
    asked = dict(request)
    requested = int(asked["CB"])
    values: dict[str, str] = {}
    for tag, value in answer:
        if tag in _DECIDING and values.get(tag, value) != value:
            return _unknown(requested, AMBIGUOUS, values)
        values.setdefault(tag, value)
    result = values.get("AE")
    if result == NOT_DONE:
        # Nothing was charged: the echo is not checked (a cancel has no CB).
        af = values.get("AF", "")
        code = af[:2] if len(af) >= 2 and af[:2].isdigit() else None
        if code is None:
            reason = _REASONS[NO_REASON] + (f": {af.strip()}" if af.strip() else "")
            return _answer("declined", NO_REASON, reason, requested, values)
        base = REFUSALS.get(code, f"refused by the terminal (code {code})")
        extra = af[2:].strip()
        return _answer("declined", code, f"{base}: {extra}" if extra else base, requested, values)
    if result != DONE:
        return _unknown(requested, NO_RESULT if result is None else BAD_RESULT, values)
    if any(values.get(tag) != asked.get(tag) for tag in ("CA", "CD", "CE")):
        return _unknown(requested, WRONG_ECHO, values)
    if "CB" not in values:
        return _unknown(requested, NO_AMOUNT, values)
    amount = values["CB"]
    if not amount.isdigit() or int(amount) == 0:
        return _unknown(requested, BAD_AMOUNT, values)
    if int(amount) > requested:
        return _unknown(requested, OVER_AMOUNT, values)
    return _answer("approved", None, "approved", requested, values,
                   authorised=int(amount), transaction=transaction_id(values))


def _unknown(requested: int, code: str, values: dict[str, str]) -> TerminalAnswer:
    return _answer("unknown", code, _REASONS[code], requested, values)


def _answer(
    status: Literal["approved", "declined", "unknown"], code: str | None, reason: str,
    requested: int, values: dict[str, str], *, authorised: int | None = None,
    transaction: str | None = None,
) -> TerminalAnswer:
    return TerminalAnswer(
        status=status, code=code, reason=reason, requested=requested, authorised=authorised,
        authorisation=values.get("AC"), card=values.get("AA"), last4=_last4(values.get("AA")),
        expiry=values.get("AB"), aid=values.get("AI"), application=values.get("CC"),
        read_mode=values.get("CI"), transaction=transaction,
    )
