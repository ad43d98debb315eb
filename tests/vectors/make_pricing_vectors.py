"""Write tests/vectors/pricing.json: inputs and what edge/money.py answers.

The browser till carries a copy of the pricing rules (web/pricing.js) to sell
offline; tests/test_pricing_vectors.py checks both against this file. Seeded,
so running it again gives the same file unless money.py changed:

    .venv/bin/python tests/vectors/make_pricing_vectors.py
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge.messages import EdgeError  # noqa: E402
from edge.selling.money import Line, basket_totals, change_due, vat_of_gross  # noqa: E402

OUTPUT = Path(__file__).with_name("pricing.json")
SEED = 20261125
FRENCH_RATES = (0, 210, 550, 1000, 2000)
# Rates with an even VAT fraction give exact halves (20 %: gross / 6, 100 %: gross / 2).
ODD_RATES = (1, 5, 99, 500, 2500, 3333, 5000, 9999, 10000)
# Characters Python's str.strip() and JavaScript's trim() disagree on.
BLANKISH = ("", " ", "\t", "\n\r", "\x1c\x1d\x1e\x1f", "\x85", "\xa0", "\u3000", "\ufeff")


def assert_exact_in_browser(gross: int, rate: int) -> None:
    """The browser computes in doubles: every intermediate must stay an exact integer."""
    assert 2 * abs(gross) * rate + 2 * (10_000 + rate) < 2**53, (gross, rate)


def vat_cases(rng: random.Random) -> list[dict[str, Any]]:
    grosses: list[tuple[int, int]] = []
    for rate in FRENCH_RATES + ODD_RATES:
        grosses += [(gross, rate) for gross in (0, 1, 2, 3, 5, 6, 9, 11, 99, 100, 101)]
    # Exact halves: 20 % of gross / 6 is x.5 when gross = 3 mod 6; 100 %: odd grosses.
    grosses += [(6 * k + 3, 2000) for k in (0, 1, 7, 100, 12345, 10**9)]
    grosses += [(2 * k + 1, 10000) for k in (0, 1, 50, 10**10)]
    # Just below and above the halves.
    grosses += [(6 * k + 3 + delta, 2000) for k in (2, 999) for delta in (-1, 1)]
    grosses += [(rng.randrange(1, 10**7), rng.choice(FRENCH_RATES)) for _ in range(80)]
    all_rates = FRENCH_RATES + ODD_RATES
    grosses += [(rng.randrange(10**9, 10**11), rng.choice(all_rates)) for _ in range(20)]
    # Refunds are not sold yet, but the function is defined for them.
    grosses += [(-gross, rate) for gross, rate in ((3, 2000), (1, 10000), (120, 550), (999, 1000))]
    for gross, rate in grosses:
        assert_exact_in_browser(gross, rate)
    return [{"gross": g, "rate": r, "vat": vat_of_gross(g, r)} for g, r in grosses]


def basket_cases(rng: random.Random) -> list[dict[str, Any]]:
    baskets: list[list[dict[str, int]]] = [
        [],
        [{"unit_price": 120, "quantity": 1, "vat_rate": 550}],
        [{"unit_price": 120, "quantity": 1, "vat_rate": 550},
         {"unit_price": 150, "quantity": 1, "vat_rate": 1000}],
        [{"unit_price": 3, "quantity": 1, "vat_rate": 2000}],
        [{"unit_price": 1, "quantity": 3, "vat_rate": 2000}],
        [{"unit_price": 99_999_999, "quantity": 9999, "vat_rate": 2000}],
        [{"unit_price": 1, "quantity": 9999, "vat_rate": rate} for rate in FRENCH_RATES],
        [{"unit_price": 100, "quantity": 1, "vat_rate": 0}],
        # Same rate on several lines: VAT is worked out on the rate's sum, not per line.
        [{"unit_price": 3, "quantity": 1, "vat_rate": 2000} for _ in range(7)],
        # Rates arrive unsorted; the breakdown is sorted.
        [{"unit_price": 500, "quantity": 2, "vat_rate": rate} for rate in (2000, 210, 1000, 550)],
    ]
    for _ in range(120):
        rates = rng.sample(FRENCH_RATES + ODD_RATES, rng.randint(1, 4))
        baskets.append([
            {
                "unit_price": rng.choice((rng.randrange(1, 1000), rng.randrange(1, 100_000))),
                "quantity": rng.choice((1, 1, 2, 3, rng.randrange(1, 10_000))),
                "vat_rate": rng.choice(rates),
            }
            for _ in range(rng.randint(1, 12))
        ])
    vectors = []
    for lines in baskets:
        totals = basket_totals(Line(**line) for line in lines)
        for row in totals["vat"]:
            assert_exact_in_browser(row["total"], row["rate"])
        vectors.append({"lines": lines, "totals": totals})
    return vectors


def change_cases(rng: random.Random) -> list[dict[str, Any]]:
    cash = lambda amount: {"method": "cash", "amount": amount}  # noqa: E731
    card = lambda amount, ref="TPE-1": {"method": "card", "amount": amount, "reference": ref}  # noqa: E731
    cases: list[tuple[int, list[dict[str, Any]]]] = [
        (270, [cash(500)]), (270, [cash(270)]), (270, [cash(269)]), (270, []),
        (270, [card(270)]), (270, [card(271)]), (270, [card(100), cash(170)]),
        (270, [card(100), cash(169)]), (270, [card(100), cash(5000)]),
        (270, [card(100), card(170, "B")]), (270, [card(300), cash(0)]),
        (270, [{"method": "card", "amount": 270}]),
        (270, [{"method": "card", "amount": 270, "reference": None}]),
        (0, [cash(0)]), (0, [card(0)]), (1, [card(2), cash(1)]),
        # Missing reference wins over the other errors, then card overpay, then short.
        (270, [card(500, "")]), (270, [card(100, ""), cash(1)]), (270, [card(500), cash(1)]),
        (10**10, [cash(10**10 - 1)]), (10**10, [cash(10**10 + 12345)]),
    ]
    cases += [(270, [card(270, ref)]) for ref in BLANKISH]
    cases += [(270, [card(270, f" {ref}x{ref} ")]) for ref in BLANKISH]
    for _ in range(80):
        total = rng.randrange(1, 100_000)
        tenders: list[dict[str, Any]] = []
        if rng.random() < 0.5:
            tenders.append(card(rng.randrange(1, total + 10), rng.choice(("A1", "", " 7 "))))
        tenders += [cash(rng.randrange(0, 2 * total + 2)) for _ in range(rng.randint(0, 2))]
        cases.append((total, tenders))
    vectors = []
    for total, tenders in cases:
        vector: dict[str, Any] = {"total": total, "tenders": tenders}
        try:
            vector["change"] = change_due(total, tenders)
        except EdgeError as error:
            vector["error"] = error.code
        vectors.append(vector)
    return vectors


def make_vectors() -> dict[str, Any]:
    rng = random.Random(SEED)
    return {
        "about": "edge/money.py's answers; made by tests/vectors/make_pricing_vectors.py",
        "vat_of_gross": vat_cases(rng),
        "basket_totals": basket_cases(rng),
        "change_due": change_cases(rng),
    }


def render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, ensure_ascii=True, indent=1) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(make_vectors()), encoding="utf-8")
    counts = {key: len(value) for key, value in make_vectors().items() if isinstance(value, list)}
    print(f"wrote {OUTPUT}: {counts}")
