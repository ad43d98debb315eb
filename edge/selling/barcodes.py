"""EAN-13 / EAN-8 / UPC-A check digits: pure."""

from __future__ import annotations


def gtin_check_digit(digits: str) -> int:
    """The check digit for the GTIN whose other digits are `digits`."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        total += int(char) * (3 if position % 2 == 0 else 1)
    return (10 - total % 10) % 10


def is_valid_gtin(code: str) -> bool:
    if not code.isdigit() or len(code) not in (8, 12, 13, 14):
        return False
    return gtin_check_digit(code[:-1]) == int(code[-1])
