"""The browser's pricing (web/pricing.js, web/barcodes.js) is edge/selling's, case for case.

tests/vectors/pricing.json holds inputs and the node's answers (money.py,
promotion_rules.py, rounding.py, barcodes.py). The file must be what the
generator makes today (so it follows the Python), and chromium, importing the
till's modules as the till does, must give every answer.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from playwright.async_api import Page, Route, async_playwright

from edge.messages import EdgeError
from edge.selling.barcodes import is_valid_gtin, read_embedded
from edge.selling.money import (
    Line,
    basket_totals,
    change_due,
    cumulative_floor_shares,
    price_basket,
    round_half_up,
    settle,
    vat_of_gross,
)

VECTORS_DIR = Path(__file__).parent / "vectors"
sys.path.insert(0, str(VECTORS_DIR))
import make_pricing_vectors  # noqa: E402

WEB = Path(__file__).resolve().parent.parent / "web"
VECTORS = json.loads((VECTORS_DIR / "pricing.json").read_text(encoding="utf-8"))
# A made-up origin that Playwright serves from disk: no server, no network, and,
# like a shop's http://192.168.x.x, not a secure context.
ORIGIN = "http://till.invalid"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def test_the_vectors_file_is_what_money_py_gives_today() -> None:
    made = make_pricing_vectors.render(make_pricing_vectors.make_vectors())
    assert (VECTORS_DIR / "pricing.json").read_text(encoding="utf-8") == made, (
        "run .venv/bin/python tests/vectors/make_pricing_vectors.py"
    )


def test_the_vectors_are_many_and_cover_the_edges() -> None:
    assert len(VECTORS["vat_of_gross"]) + len(VECTORS["basket_totals"]) \
        + len(VECTORS["change_due"]) >= 300
    halves = [v for v in VECTORS["vat_of_gross"] if v["rate"] == 2000 and v["gross"] % 6 == 3]
    assert halves, "exact halves (20 % of 3, 9, 15 … cents)"
    errors = {v.get("error") for v in VECTORS["change_due"]}
    assert {"payment_short", "card_overpay", "missing_reference", None} <= errors


def test_the_new_vectors_cover_every_rule() -> None:
    priced = [v for v in VECTORS["price_basket"] if "result" in v]
    kinds = {p["kind"] for v in priced for p in v["promotions"]
             if any(p["id"] in line["promotion_ids"] and line["promotion"]
                    for line in v["result"]["lines"])}
    assert kinds == {"n_for_m", "nth_percent", "bundle"}, "every kind takes something off"
    lines = [(line, out) for v in priced
             for line, out in zip(v["lines"], v["result"]["lines"], strict=True)]
    assert any(out["discount"] and line["discount"]["kind"] == "amount" for line, out in lines)
    assert any(out["discount"] and line["discount"]["kind"] == "percent" for line, out in lines)
    assert any(line.get("unit") == "g" for line, _ in lines)
    assert any(line.get("price_embedded") for line, _ in lines)
    assert any(len(out["promotion_ids"]) > 1 for _, out in lines), "stacked promotions"
    assert any(v["result"]["discounts"]["basket"] and v["basket_discount"]["kind"] == kind
               for v in priced for kind in ("amount", "percent") if v["basket_discount"])
    assert any(len(v["result"]["vat"]) >= 3 for v in priced)
    assert {v.get("error") for v in VECTORS["price_basket"]} == {None, "invalid_field"}
    settled = VECTORS["settle"]
    assert {v.get("error") for v in settled} == {
        None, "payment_short", "card_overpay", "tender_overpay", "meal_voucher_cap",
        "invalid_field", "refund_tenders_mismatch"}
    assert any(v.get("result", {}).get("voucher_excess") for v in settled)
    read = VECTORS["read_embedded"]
    assert {r["result"]["kind"] for r in read if r.get("result")} == {"price", "weight"}
    assert any(r.get("error") == "invalid_barcode" for r in read)
    assert any(len(r["barcode"]) == 8 and r.get("result", 0) is None for r in read)


def python_outcome(compute: Any, *args: Any) -> dict[str, Any]:
    try:
        return {"result": compute(*args)}
    except EdgeError as error:
        return {"error": error.code}


def expected(vector: dict[str, Any]) -> dict[str, Any]:
    return {key: vector[key] for key in ("result", "error") if key in vector}


def test_money_py_answers_every_vector() -> None:
    for vector in VECTORS["round_half_up"]:
        product = vector["a"] * vector["b"]
        assert round_half_up(product, vector["divisor"]) == vector["result"], vector
    for vector in VECTORS["cumulative_floor_shares"]:
        assert cumulative_floor_shares(vector["amount"], vector["weights"]) == vector["shares"]
    for vector in VECTORS["price_basket"]:
        answer = python_outcome(price_basket, vector["lines"], vector["promotions"],
                         vector["basket_discount"])
        assert answer == expected(vector), vector
    for vector in VECTORS["settle"]:
        answer = python_outcome(settle, vector["total"], vector["tenders"],
                                vector["meal_voucher_cap"])
        assert answer == expected(vector), vector
    for vector in VECTORS["read_embedded"]:
        layouts = VECTORS["embedded_layouts"][vector["layouts"]]
        assert python_outcome(read_embedded, vector["barcode"], layouts) == expected(vector), vector
    for vector in VECTORS["is_valid_gtin"]:
        assert is_valid_gtin(vector["code"]) == vector["valid"], vector
    for vector in VECTORS["vat_of_gross"]:
        assert vat_of_gross(vector["gross"], vector["rate"]) == vector["vat"], vector
    for vector in VECTORS["basket_totals"]:
        lines = [Line(**line) for line in vector["lines"]]
        assert basket_totals(lines) == vector["totals"], vector
    for vector in VECTORS["change_due"]:
        try:
            outcome: dict[str, Any] = {"change": change_due(vector["total"], vector["tenders"])}
        except EdgeError as error:
            outcome = {"error": error.code}
        assert outcome == {k: v for k, v in vector.items() if k in ("change", "error")}, vector


@contextlib.asynccontextmanager
async def served_web_page() -> AsyncIterator[Page]:
    """A chromium page on ORIGIN, where web/ is served from disk (import('/pricing.js'))."""
    async def serve_web(route: Route) -> None:
        name = route.request.url.removeprefix(ORIGIN + "/") or "blank.html"
        if name == "blank.html":
            await route.fulfill(body="<!doctype html><title>till modules</title>",
                                content_type="text/html")
        elif (WEB / name).is_file():
            await route.fulfill(path=str(WEB / name), content_type="text/javascript")
        else:
            await route.fulfill(status=404)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = await browser.new_page()
        await page.route(f"{ORIGIN}/**", serve_web)
        await page.goto(f"{ORIGIN}/")
        yield page
        await browser.close()


# Runs every vector in the page; returns the answers, section by section, for
# Python to compare (a difference then shows as a readable diff).
RUN_VECTORS = """async (vectors) => {
  const pricing = await import('/pricing.js');
  const barcodes = await import('/barcodes.js');
  const outcome = (compute) => {
    try {
      return { result: compute() };
    } catch (error) {
      return { error: error.code ?? `${error.name}: ${error.message}` };
    }
  };
  const layouts = vectors.embedded_layouts;
  return {
    vat_of_gross: vectors.vat_of_gross.map((v) => pricing.vatOfGross(v.gross, v.rate)),
    basket_totals: vectors.basket_totals.map((v) => pricing.basketTotals(v.lines)),
    change_due: vectors.change_due.map((v) => {
      const answer = outcome(() => pricing.changeDue(v.total, v.tenders));
      return 'result' in answer ? { change: answer.result } : answer;
    }),
    round_half_up: vectors.round_half_up.map((v) => pricing.roundHalfUp(v.a, v.b, v.divisor)),
    cumulative_floor_shares: vectors.cumulative_floor_shares.map(
      (v) => pricing.cumulativeFloorShares(v.amount, v.weights)),
    price_basket: vectors.price_basket.map(
      (v) => outcome(() => pricing.priceBasket(v.lines, v.promotions, v.basket_discount))),
    settle: vectors.settle.map(
      (v) => outcome(() => pricing.settle(v.total, v.tenders, v.meal_voucher_cap))),
    read_embedded: vectors.read_embedded.map(
      (v) => outcome(() => barcodes.readEmbedded(v.barcode, layouts[v.layouts]))),
    is_valid_gtin: vectors.is_valid_gtin.map((v) => barcodes.isValidGtin(v.code)),
  };
}"""

PYTHON_ANSWERS = {
    "vat_of_gross": lambda v: v["vat"],
    "basket_totals": lambda v: v["totals"],
    "change_due": lambda v: {k: v[k] for k in ("change", "error") if k in v},
    "round_half_up": lambda v: v["result"],
    "cumulative_floor_shares": lambda v: v["shares"],
    "price_basket": expected,
    "settle": expected,
    "read_embedded": expected,
    "is_valid_gtin": lambda v: v["valid"],
}


async def test_the_browser_answers_every_vector_as_the_node_does() -> None:
    async with served_web_page() as page:
        assert await page.evaluate("window.isSecureContext") is False
        answers = await page.evaluate(RUN_VECTORS, VECTORS)
        # Beyond 2^53 a double is no longer an exact integer: an error, never a wrong VAT.
        refused = await page.evaluate("""async () => {
            const { vatOfGross } = await import('/pricing.js');
            try { return String(vatOfGross(2 ** 53, 2000)); } catch (e) { return e.name; }
        }""")
    assert refused == "RangeError"
    for section, answer_of in PYTHON_ANSWERS.items():
        wrong = [(vector, got) for vector, got in zip(VECTORS[section], answers[section],
                                                      strict=True)
                 if got != answer_of(vector)]
        assert wrong == [], section
