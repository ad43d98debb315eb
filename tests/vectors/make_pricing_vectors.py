"""Write tests/vectors/pricing.json: inputs and what edge/selling's pricing answers.

The browser till carries a copy of the pricing rules (web/pricing.js) to sell
offline; tests/test_pricing_vectors.py checks both against this file. Seeded,
so running it again gives the same file unless money.py (or promotion_rules.py,
rounding.py, barcodes.py) changed. Sections: vat_of_gross, basket_totals and
change_due (the old shapes), round_half_up, cumulative_floor_shares,
price_basket, settle, read_embedded and is_valid_gtin:

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
from edge.selling.barcodes import gtin_check_digit, is_valid_gtin, read_embedded  # noqa: E402
from edge.selling.money import (  # noqa: E402
    Line,
    basket_totals,
    change_due,
    cumulative_floor_shares,
    price_basket,
    round_half_up,
    settle,
    vat_of_gross,
)

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


def rounding_cases(rng: random.Random) -> list[dict[str, Any]]:
    """round_half_up(a * b, d): the browser takes a, b and d apart (a * b may pass 2^53)."""
    triples = [(1, 1, 2), (3, 1, 2), (5, 1, 10), (15, 1, 10), (25, 1, 10), (105, 5000, 10_000),
               (1, 5000, 10_000), (1, 4999, 10_000), (0, 7, 3), (-3, 1, 2), (3, -1, 2),
               (-5, -1, 10), (1999, 250, 1000), (1, 500, 1000), (1, 499, 1000),
               (99_999_999, 9999, 1000), (5 * 10**14, 10_000, 10_000), (2**53 - 1, 1, 7),
               (10**15, 9999, 10_000), (123_456_789_012, 3333, 10_000)]
    triples += [(rng.randrange(0, 10**12), rng.randrange(0, 10_001), rng.choice((1000, 10_000)))
                for _ in range(40)]
    return [{"a": a, "b": b, "divisor": d, "result": round_half_up(a * b, d)}
            for a, b, d in triples]


def allocation_cases(rng: random.Random) -> list[dict[str, Any]]:
    cases: list[tuple[int, list[int]]] = [
        (0, []), (0, [0, 0]), (0, [5]), (5, [5]), (1, [1, 1, 1]), (2, [1, 1, 1]), (100, [1, 2, 3]),
        (10, [3, 0, 7]), (7, [0, 0, 1]), (99, [33, 33, 33]), (10**14, [10**14, 1, 10**14 - 1]),
        (123_456_789, [987_654_321, 3, 5 * 10**12]),
    ]
    for _ in range(40):
        weights = [rng.choice((0, rng.randrange(1, 1000), rng.randrange(1, 10**9)))
                   for _ in range(rng.randint(1, 12))]
        if sum(weights) == 0:
            weights.append(1)
        cases.append((rng.randrange(0, sum(weights) + 1), weights))
    return [{"amount": a, "weights": w, "shares": cumulative_floor_shares(a, w)} for a, w in cases]


def line(line_id: str, product: str, price: int, quantity: int = 1, rate: int = 550,
         **extra: Any) -> dict[str, Any]:
    # barcode and name are left out: pricing never reads them.
    return {"id": line_id, "product_id": product, "unit_price": price, "vat_rate": rate,
            "quantity": quantity, **extra}


def promo(promotion_id: str, kind: str, products: list[str], n: int,
          **extra: Any) -> dict[str, Any]:
    return {"id": promotion_id, "name": promotion_id, "kind": kind, "products": products,
            "n": n, **extra}


def amount_off(value: int) -> dict[str, Any]:
    return {"kind": "amount", "value": value, "reason": "geste"}


def percent_off(value: int) -> dict[str, Any]:
    return {"kind": "percent", "value": value, "reason": "fidelite", "approved_by": "bob"}


Basket = tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]


def curated_baskets() -> list[Basket]:
    three_for_two = promo("3pour2", "n_for_m", ["croissant", "chocolatine"], 3, m=2)
    second_half = promo("2e-50", "nth_percent", ["eclair"], 2, percent=5000)
    bundle = promo("formule", "bundle", ["sandwich", "boisson", "dessert"], 3, price=850)
    weighed = line("w", "comte", 2490, 347, unit="g")
    embedded = line("e", "croissant", 437, price_embedded=True)
    return [
        ([], [], None),
        ([line("a", "croissant", 110, 3)], [three_for_two], None),
        ([line("a", "croissant", 110, 2)], [three_for_two], None),  # a group not full
        ([line("a", "croissant", 110, 5), line("b", "chocolatine", 120, 2)], [three_for_two], None),
        ([line("a", "eclair", 105, 3)], [second_half], None),  # 52.5 cents off: 53
        ([line("a", "sandwich", 550), line("b", "boisson", 180, rate=1000),
          line("c", "dessert", 260, 2)], [bundle], None),
        ([line("a", "sandwich", 300), line("b", "boisson", 100), line("c", "dessert", 100)],
         [bundle], None),  # the bundle costs more than its units: nothing off
        # Stacked on shared products: "3pour2" (id order first) takes its units first.
        ([line("a", "croissant", 110, 4), line("b", "chocolatine", 120, 2)],
         [promo("z-lot", "bundle", ["chocolatine", "croissant"], 2, price=150), three_for_two],
         None),
        ([line("a", "croissant", 110, 3, discount=amount_off(50)), line("b", "croissant", 110, 3)],
         [three_for_two], None),  # a manual discount takes no promotion
        ([weighed, embedded, line("a", "croissant", 110, 2)],
         [promo("any", "n_for_m", ["comte", "croissant"], 2, m=1)], None),
        ([line("a", "pain", 120, 2, discount=amount_off(1000))], [], None),  # capped at the line
        ([line("a", "pain", 120, 2, discount=percent_off(10_000))], [], None),
        ([line("a", "pain", 105, 1, discount=percent_off(5000))], [], None),
        ([line("a", "pain", 120), line("b", "vin", 1290, rate=2000)], [], amount_off(10**6)),
        ([line("a", "pain", 120), line("b", "vin", 1290, rate=2000), weighed],
         [], percent_off(1500)),
        ([line("a", "pain", 120, discount=percent_off(10_000)), line("b", "gateau", 333, 3)],
         [], amount_off(100)),  # a line at 0 takes no share
        ([line("a", "pain", 0)], [], amount_off(100)),
        ([line("a", "pain", 120)], [], percent_off(0)),
        ([line("g", "comte", 1999, 250, unit="g"), line("h", "jambon", 1, 500, unit="g"),
          line("i", "jambon", 1, 499, unit="g"), line("j", "jambon", 2990, 1, unit="g")], [], None),
        ([line("a", "croissant", 110, 9999)], [three_for_two], None),
        ([line(f"l{i}", "croissant", 100 + i, 7) for i in range(30)],
         [promo("gros", "bundle", ["croissant"], 100, price=5000),
          promo("petit", "nth_percent", ["croissant"], 7, percent=3333)], amount_off(777)),
        # Python orders ids by code point, not by UTF-16 unit.
        ([line("a", "croissant", 110, 4)],
         [promo("\U0001F950", "n_for_m", ["croissant"], 2, m=1),
          promo("\uffff", "bundle", ["croissant"], 2, price=99)], None),
        # Promotions that are not well formed are ignored.
        ([line("a", "croissant", 110, 4)],
         [promo("bad-m", "n_for_m", ["croissant"], 2, m=2),
          promo("bad-kind", "free", ["croissant"], 1),
          {"id": "no-n", "kind": "bundle", "products": ["croissant"], "price": 1},
          promo("bad-pct", "nth_percent", ["croissant"], 2, percent=10_001)], None),
        # Refused: what a cashier typed is out of range.
        ([line("a", "pain", 120, discount={"kind": "free", "value": 1})], [], None),
        ([line("a", "pain", 120, discount=percent_off(10_001))], [], None),
        ([line("a", "pain", 120, discount=amount_off(-1))], [], None),
        ([line("a", "pain", 120)], [], {"kind": "percent", "value": 1.5}),
        ([line("a", "pain", 120, unit="kg")], [], None),
    ]


def random_basket(rng: random.Random) -> Basket:
    products = ["p1", "p2", "p3", "p4", "p5"]
    lines = []
    for index in range(rng.randint(0, 10)):
        extra: dict[str, Any] = {}
        shape = rng.random()
        if shape < 0.15:
            extra = {"unit": "g"}
            quantity = rng.randrange(1, 5000)
        elif shape < 0.25:
            extra = {"price_embedded": True}
            quantity = 1
        else:
            quantity = rng.choice((1, 1, 2, 3, 4, 6, rng.randrange(1, 50)))
        if rng.random() < 0.2:
            extra["discount"] = rng.choice((amount_off(rng.randrange(0, 2000)),
                                            percent_off(rng.randrange(0, 10_001))))
        lines.append(line(f"l{index}", rng.choice(products), rng.choice((0, 95, 110, 120, 250))
                          if rng.random() < 0.5 else rng.randrange(0, 5000), quantity,
                          rng.choice(FRENCH_RATES), **extra))
    promotions = []
    for index in range(rng.randint(0, 4)):
        kind = rng.choice(("n_for_m", "nth_percent", "bundle"))
        n = rng.randint(1, 5)
        shape: dict[str, Any] = {"n_for_m": {"m": max(1, rng.randint(1, n - 1 or 1))},
                                 "nth_percent": {"percent": rng.randint(1, 10_000)},
                                 "bundle": {"price": rng.randrange(0, 2000)}}[kind]
        promotions.append(promo(f"promo-{rng.randint(0, 9)}{index}", kind,
                                rng.sample(products, rng.randint(1, 3)), n, **shape))
    basket_discount = rng.choice((None, None, amount_off(rng.randrange(0, 3000)),
                                  percent_off(rng.randrange(0, 10_001))))
    return lines, promotions, basket_discount


def price_basket_cases(rng: random.Random) -> list[dict[str, Any]]:
    baskets = curated_baskets() + [random_basket(rng) for _ in range(120)]
    return [{"lines": lines, "promotions": promotions, "basket_discount": discount,
             **outcome(price_basket, lines, promotions, discount)}
            for lines, promotions, discount in baskets]


def settle_cases(rng: random.Random) -> list[dict[str, Any]]:
    def tender(method: str, amount: Any, **extra: Any) -> dict[str, Any]:
        return {"method": method, "amount": amount, **extra}

    def paper(amount: int) -> dict[str, Any]:
        return tender("meal_voucher", amount, kind="paper")

    def voucher_card(amount: int) -> dict[str, Any]:
        return tender("meal_voucher", amount, kind="card")

    cash = lambda amount: tender("cash", amount)  # noqa: E731
    card = lambda amount: tender("card", amount)  # noqa: E731
    cap = 2500
    cases: list[tuple[int, list[dict[str, Any]], int]] = [
        (0, [], cap), (270, [], cap), (270, [cash(270)], cap), (270, [cash(500)], cap),
        (270, [cash(269)], cap), (270, [card(270)], cap), (270, [card(271)], cap),
        (270, [tender("card", 270, reference="TPE-1")], cap),  # a reference, never needed
        (3000, [card(1000), card(1500), cash(2000)], cap),  # two cards and cash
        (3000, [paper(2600)], cap), (3000, [paper(1500), voucher_card(1001)], cap),
        (3000, [paper(1500), voucher_card(1000), cash(500)], cap),
        (1000, [paper(1200)], cap), (1000, [paper(1200), cash(500)], cap),  # no change on vouchers
        (1000, [paper(900), cash(50)], cap), (1000, [paper(900), cash(100)], cap),
        (1000, [voucher_card(1001)], cap), (1000, [tender("cheque", 1001)], cap),
        (1000, [card(600), tender("cheque", 500)], cap),
        (1000, [card(1200), tender("cheque", 1)], cap),
        (1000, [tender("gift_voucher", 1000)], cap),
        (1000, [tender("gift_voucher", 400), cash(600)], cap),
        (5000, [paper(2600), card(6000)], cap),  # the cap is checked first
        (2000, [paper(1900)], 1900), (2000, [paper(1901)], 1900), (2000, [paper(1)], 0),
        (2000, [cash(100)] * 20, cap), (2000, [cash(100)] * 21, cap),
        (100, [cash(0)], cap), (100, [cash(-100)], cap), (100, [tender("bitcoin", 100)], cap),
        (100, [tender("meal_voucher", 100)], cap),
        (100, [tender("meal_voucher", 100, kind="ticket")], cap),
        (100, [cash(1.5)], cap), (100, [cash("100")], cap), (100, [cash(None)], cap),
        # Refunds: negative tenders adding up to the refund exactly.
        (-500, [card(-300), cash(-200)], cap), (-500, [cash(-499)], cap), (-500, [], cap),
        (-500, [cash(500)], cap), (-500, [cash(-600), cash(100)], cap),
    ]
    methods = ("cash", "card", "meal_voucher", "cheque", "gift_voucher")
    for _ in range(100):
        # Tenders around the total, so that every rule is met as often as broken.
        total = rng.randrange(0, 10_000)
        parts = sorted(rng.randrange(0, total + 1) for _ in range(rng.randint(0, 3)))
        amounts = [b - a for a, b in zip([0, *parts], [*parts, total], strict=True)]
        tenders = []
        for amount in amounts:
            amount = max(1, amount + rng.choice((0, 0, 0, -1, 1, rng.randrange(-500, 500))))
            method = rng.choice(methods)
            extra = {"kind": rng.choice(("paper", "card"))} if method == "meal_voucher" else {}
            tenders.append(tender(method, amount, **extra))
        cases.append((total, tenders, rng.choice((cap, cap, 0, 1000, 10**6))))
    return [{"total": total, "tenders": tenders, "meal_voucher_cap": limit,
             **outcome(settle, total, tenders, limit)} for total, tenders, limit in cases]


# A vector names its layouts ("layouts": "store"), written once in the file.
STORE_LAYOUTS = [
    {"prefix": "21", "layout": "PPIIIIIVVVVVC", "value": "weight"},
    {"prefix": "22", "layout": "PPIIIIXVVVVVC", "value": "price"},
    {"prefix": "02", "layout": "PPIIIIIIVVVVC", "value": "price"},
    {"prefix": "02", "layout": "PPIIIIIVVVVVC", "value": "weight"},  # the first usable one wins
    {"prefix": "26", "layout": "PPIIIIIVVVVV", "value": "price"},  # not usable: ignored
    {"prefix": "30", "layout": "PPIIIIIVVVVVC", "value": "price"},
    {"prefix": "27", "layout": "PPIIIIXXVVVVC", "value": "price"},
    {"prefix": "28", "layout": "PPIIIIIVVVVVC", "value": "kilo"},
]
EMBEDDED_LAYOUTS: dict[str, list[dict[str, Any]]] = {"store": STORE_LAYOUTS, "none": []}


def with_check_digit(body: str) -> str:
    return body + str(gtin_check_digit(body))


def embedded_cases(rng: random.Random) -> list[dict[str, Any]]:
    codes = [
        with_check_digit("211234501234"), with_check_digit("221234700150"),
        with_check_digit("020001230199"), with_check_digit("210000000000"),
        with_check_digit("219999999999"), "2112345012341", "2112345012349",
        "3017620422003",  # an ordinary EAN-13
        "20123455", "21234565",  # 8-digit codes are never read
        with_check_digit("231234501234"), with_check_digit("261234501234"),
        with_check_digit("271234501234"), with_check_digit("281234501234"),
        with_check_digit("301234501234"), "211234501234", "21123450123411", "21123450123a4",
        "\uff12\uff11" + with_check_digit("211234501234")[2:], "",
    ]
    for _ in range(40):
        body = rng.choice(("21", "22", "02", "20", "29")) + "".join(
            rng.choice("0123456789") for _ in range(10))
        code = with_check_digit(body)
        if rng.random() < 0.3:
            code = code[:-1] + str((int(code[-1]) + rng.randint(1, 9)) % 10)
        codes.append(code)
    cases = [(code, "store") for code in codes] + [(with_check_digit("211234501234"), "none")]
    return [{"barcode": code, "layouts": layouts,
             **outcome(read_embedded, code, EMBEDDED_LAYOUTS[layouts])} for code, layouts in cases]


def gtin_cases() -> list[dict[str, Any]]:
    codes = ["5449000000996", "5449000000997", "54490000009x6", "3017620422003", "20123455",
             "96385074", "036000291452", "10614141000415", "", "1", "12345678901", "\u00b2" * 8,
             "\u0663" * 13, "".join(chr(0xFF10 + int(d)) for d in "5449000000996")]
    return [{"code": code, "valid": is_valid_gtin(code)} for code in codes]


def outcome(compute: Any, *args: Any) -> dict[str, Any]:
    """{"result": ...} or {"error": code}, as the browser reports it too."""
    try:
        return {"result": compute(*args)}
    except EdgeError as error:
        return {"error": error.code}


def make_vectors() -> dict[str, Any]:
    rng = random.Random(SEED)
    return {
        "about": "edge/selling's pricing answers; made by tests/vectors/make_pricing_vectors.py",
        "vat_of_gross": vat_cases(rng),
        "basket_totals": basket_cases(rng),
        "change_due": change_cases(rng),
        "round_half_up": rounding_cases(rng),
        "cumulative_floor_shares": allocation_cases(rng),
        "price_basket": price_basket_cases(rng),
        "settle": settle_cases(rng),
        "embedded_layouts": EMBEDDED_LAYOUTS,
        "read_embedded": embedded_cases(rng),
        "is_valid_gtin": gtin_cases(),
    }


def render(vectors: dict[str, Any]) -> str:
    """One vector a line: a change to the rules shows as the vectors it changes."""
    sections = []
    for key, value in vectors.items():
        if isinstance(value, list):
            rows = ",\n".join(f"  {json.dumps(row, ensure_ascii=True)}" for row in value)
            sections.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            sections.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=True)}")
    return "{\n" + ",\n".join(sections) + "\n}\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(make_vectors()), encoding="utf-8")
    counts = {key: len(value) for key, value in make_vectors().items() if isinstance(value, list)}
    print(f"wrote {OUTPUT}: {counts}")
