"""The browser's pricing (web/pricing.js) is edge/money.py, case for case.

tests/vectors/pricing.json holds inputs and money.py's answers. The file must
be what the generator makes today (so it follows money.py), and chromium,
importing web/pricing.js as the till does, must give every answer.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Route, async_playwright

from edge.messages import EdgeError
from edge.selling.money import Line, basket_totals, change_due, vat_of_gross

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


def test_money_py_answers_every_vector() -> None:
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


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with served_web_page() as page:
        yield page


# Runs every vector in the page; returns the ones whose answer differs.
RUN_VECTORS = """async (vectors) => {
  const pricing = await import('/pricing.js');
  const wrong = [];
  for (const v of vectors.vat_of_gross) {
    const vat = pricing.vatOfGross(v.gross, v.rate);
    if (vat !== v.vat) wrong.push({ ...v, got: vat });
  }
  for (const v of vectors.basket_totals) {
    const totals = pricing.basketTotals(v.lines);
    if (JSON.stringify(totals) !== JSON.stringify(v.totals)) wrong.push({ ...v, got: totals });
  }
  for (const v of vectors.change_due) {
    let outcome;
    try {
      outcome = { change: pricing.changeDue(v.total, v.tenders) };
    } catch (error) {
      outcome = { error: error.code ?? String(error) };
    }
    const expected = 'error' in v ? { error: v.error } : { change: v.change };
    if (JSON.stringify(outcome) !== JSON.stringify(expected)) wrong.push({ ...v, got: outcome });
  }
  return wrong;
}"""


async def test_the_browser_answers_every_vector_as_money_py_does(page: Page) -> None:
    assert await page.evaluate("window.isSecureContext") is False
    wrong = await page.evaluate(RUN_VECTORS, VECTORS)
    assert wrong == []


async def test_the_browser_refuses_amounts_it_cannot_compute_exactly(page: Page) -> None:
    # Beyond 2^53 a double is no longer an exact integer: an error, never a wrong VAT.
    error = await page.evaluate("""async () => {
        const { vatOfGross } = await import('/pricing.js');
        try { return String(vatOfGross(2 ** 52, 2000)); } catch (e) { return e.name; }
    }""")
    assert error == "RangeError"
