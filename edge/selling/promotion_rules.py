"""Catalogue promotions applied to a basket's units: pure, in integer cents.

A promotion `{id, name, kind, products, n, m?, percent?, price?, starts?,
ends?}` takes the units of its products that no earlier promotion (in id
order) took, most expensive first (line order among equal prices), and
forms consecutive groups of `n`; only full groups count:

- `n_for_m`: the last n - m units of each group (the cheapest) are free;
- `nth_percent`: the last unit of each group is `percent` (basis points) off;
- `bundle`: each group costs `price`; its discount max(0, sum - price) is
  split over the group's units by cumulative floor, weighted by unit price.

Units come from "piece" lines that are not price-embedded and carry no
manual discount. The caller filters promotions by date; a promotion that is
not well formed (`promotion_problem`) is ignored rather than stopping a sale.
Units of one line are alike, so a basket is walked as runs of units (a line's
untaken units) and groups made of one run are counted, not enumerated: a
line of 9,999 promoted units costs no more than a line of one.

web/pricing.js is a line-by-line port (tests/vectors/pricing.json).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from edge.selling.rounding import cumulative_floor_shares, round_half_up

BASIS_POINTS = 10_000
KINDS = ("n_for_m", "nth_percent", "bundle")
MAX_GROUP = 1000  # units in one group: far beyond any shop's "n for m"

Segment = tuple[int, int, int]  # line index, unit price, units


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def promotion_problem(promotion: Any) -> str | None:
    """Why a promotion cannot be applied (None when it can): for the catalogue to refuse it."""
    if not isinstance(promotion, dict):
        return "a promotion is an object"
    if not isinstance(promotion.get("id"), str) or not promotion["id"]:
        return "'id' must be a non-empty string"
    kind = promotion.get("kind")
    if kind not in KINDS:
        return f"'kind' must be one of {', '.join(KINDS)}"
    products = promotion.get("products")
    if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
        return "'products' must be a list of product ids"
    n = promotion.get("n")
    if not _is_int(n) or not 1 <= n <= MAX_GROUP:
        return f"'n' must be a whole number from 1 to {MAX_GROUP}"
    if kind == "n_for_m":
        m = promotion.get("m")
        if not _is_int(m) or not 1 <= m < n:
            return "'m' must be a whole number from 1 to n - 1"
    elif kind == "nth_percent":
        percent = promotion.get("percent")
        if not _is_int(percent) or not 1 <= percent <= BASIS_POINTS:
            return "'percent' must be basis points from 1 to 10000"
    else:
        price = promotion.get("price")
        if not _is_int(price) or price < 0:
            return "'price' must be a whole number of cents, 0 or more"
    return None


def takes_promotions(line: dict[str, Any]) -> bool:
    """Pieces at the catalogue price: not weighed, not price-embedded, no manual discount."""
    return ((line.get("unit") or "piece") == "piece" and line.get("price_embedded") is not True
            and line.get("discount") is None)


def _groups(runs: list[list[int]], n: int, count: int) -> Iterator[tuple[int, list[Segment]]]:
    """The first `count` groups of `n` units: (k, segments) = k alike groups of those segments.

    `runs` are [line index, unit price, units] in unit order; consumed.
    """
    at = 0
    while count:
        line, price, units = runs[at]
        if units >= n:
            alike = min(count, units // n)
            runs[at][2] -= alike * n
            count -= alike
            yield alike, [(line, price, n)]
        else:
            segments: list[Segment] = []
            need = n
            while need:
                line, price, units = runs[at]
                take = min(need, units)
                segments.append((line, price, take))
                runs[at][2] -= take
                need -= take
                if runs[at][2] == 0:
                    at += 1
            count -= 1
            yield 1, segments
        if at < len(runs) and runs[at][2] == 0:
            at += 1


def _group_discounts(promotion: dict[str, Any], segments: Sequence[Segment]) -> list[int]:
    """What each segment of one group gets off (the sum over its units)."""
    kind = promotion["kind"]
    if kind == "n_for_m":
        first_free = promotion["m"]  # positions m .. n-1 of the group are free
        discounts = []
        start = 0
        for _, price, units in segments:
            free = max(0, start + units - max(start, first_free))
            discounts.append(free * price)
            start += units
        return discounts
    if kind == "nth_percent":
        discounts = [0] * len(segments)
        last_price = segments[-1][1]
        discounts[-1] = round_half_up(last_price * promotion["percent"], BASIS_POINTS)
        return discounts
    # A segment's units are alike, so the cumulative floor over its units adds
    # up to the one over the segment weighted by price * units (it telescopes).
    weights = [price * units for _, price, units in segments]
    discount = max(0, sum(weights) - promotion["price"])
    return cumulative_floor_shares(discount, weights)


def promotion_discounts(
    lines: Sequence[dict[str, Any]], promotions: Iterable[dict[str, Any]]
) -> list[tuple[int, list[str]]]:
    """Per line, in line order: (cents off by promotions, ids of the promotions that took units)."""
    discounts = [0] * len(lines)
    ids: list[list[str]] = [[] for _ in lines]
    taken = [0] * len(lines)
    usable = [p for p in promotions if promotion_problem(p) is None]
    for promotion in sorted(usable, key=lambda p: p["id"]):
        products = set(promotion["products"])
        runs = [[index, line["unit_price"], line["quantity"] - taken[index]]
                for index, line in enumerate(lines)
                if takes_promotions(line) and line.get("product_id") in products
                and line["quantity"] > taken[index]]
        runs.sort(key=lambda run: -run[1])  # stable: line order among equal prices
        count = sum(run[2] for run in runs) // promotion["n"]
        for alike, segments in _groups(runs, promotion["n"], count):
            off = _group_discounts(promotion, segments)
            for (line, _, units), discount in zip(segments, off, strict=True):
                taken[line] += alike * units
                discounts[line] += alike * discount
                if promotion["id"] not in ids[line]:
                    ids[line].append(promotion["id"])
    return list(zip(discounts, ids, strict=True))
