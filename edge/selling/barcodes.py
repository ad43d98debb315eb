"""EAN-13 / EAN-8 / UPC-A check digits, and in-store codes carrying a price or a weight: pure.

A store sets one layout per in-store prefix ("02", "20".."29", GS1 France's
restricted circulation numbers), e.g. `{"prefix": "21", "layout":
"PPIIIIIVVVVVC", "value": "weight"}`: P the prefix, I the item code, X a
check digit over the value (not checked, but part of a valid code), V the
value digits (cents for "price", grams for "weight"), C the EAN-13 check
digit. web/barcodes.js is a line-by-line port (tests/vectors/pricing.json).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from edge.messages import INVALID_BARCODE, EdgeError

IN_STORE_PREFIXES = ("02", *(str(prefix) for prefix in range(20, 30)))
VALUE_KINDS = ("price", "weight")


def gtin_check_digit(digits: str) -> int:
    """The check digit for the GTIN whose other digits are `digits`."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        total += int(char) * (3 if position % 2 == 0 else 1)
    return (10 - total % 10) % 10


def is_valid_gtin(code: str) -> bool:
    if not _is_digits(code) or len(code) not in (8, 12, 13, 14):
        return False
    return gtin_check_digit(code[:-1]) == int(code[-1])


def _is_digits(text: str) -> bool:
    # str.isdigit() also takes "²" and Arabic-Indic digits; a barcode is ASCII.
    return bool(text) and all("0" <= char <= "9" for char in text)


def layout_problem(layout: Any) -> str | None:
    """Why a store's layout cannot be used (None when it can): for the settings check."""
    if not isinstance(layout, dict):
        return "a layout is an object {prefix, layout, value}"
    if layout.get("prefix") not in IN_STORE_PREFIXES:
        return "'prefix' must be 02 or 20 to 29"
    if layout.get("value") not in VALUE_KINDS:
        return "'value' must be 'price' or 'weight'"
    pattern = layout.get("layout")
    if not isinstance(pattern, str) or len(pattern) != 13:
        return "'layout' must be 13 letters of P, I, X, V and C"
    if not pattern.startswith("PP") or not pattern.endswith("C") or \
            any(char not in "IXV" for char in pattern[2:-1]):
        return "'layout' is PP, then I, X and V, then C (e.g. PPIIIIIVVVVVC)"
    if "V" not in pattern or pattern.count("X") > 1:
        return "'layout' needs at least one V and at most one X"
    return None


def read_embedded(barcode: str, layouts: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """`{lookup, value, kind}` for an in-store code the store set a layout for; else None.

    `lookup` is the product's barcode in the catalogue: the same 13 digits with
    every V and X digit 0 and the check digit worked out again. A code of such
    a prefix with a wrong check digit raises `invalid_barcode`. The first
    usable layout of the code's prefix applies; unusable layouts are skipped
    (the settings check names them).
    """
    if not isinstance(barcode, str) or len(barcode) != 13 or not _is_digits(barcode):
        return None
    layout = next((candidate for candidate in layouts if layout_problem(candidate) is None
                   and candidate["prefix"] == barcode[:2]), None)
    if layout is None:
        return None
    if not is_valid_gtin(barcode):
        raise EdgeError(INVALID_BARCODE, f"{barcode} has a wrong check digit: scan it again")
    pattern = layout["layout"]
    value = int("".join(digit for digit, role in zip(barcode, pattern, strict=True)
                        if role == "V"))
    body = "".join("0" if role in "VX" else digit
                   for digit, role in zip(barcode[:12], pattern[:12], strict=True))
    return {"lookup": body + str(gtin_check_digit(body)), "value": value,
            "kind": layout["value"]}
