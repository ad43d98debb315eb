"""The till session (web/session.js) on its own: no DOM, no node, no network.

One chromium page on a blank document imports web/session.js with the till's
own ledger, catalogue and basket code, and fakes around them
(tests/till_session_fakes.js): a clock that moves only when told, nodes that
keep baskets and sales as edge does, and a client that loses its node or finds
none. Each test is one scenario run in the page; its observations come back
here to be checked. Totals of offline sales are checked against
edge/selling/money.py, not against the till's own arithmetic.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Route
from test_pricing_vectors import ORIGIN, served_web_page

from edge.selling.money import Line, basket_totals

FAKES = Path(__file__).resolve().parent / "till_session_fakes.js"
PRICES = {"111": (120, 550), "222": (95, 550), "333": (250, 2000)}  # as PRODUCTS in the fakes


class ModulePage:
    """One page for the whole module, driven from its own thread and event loop,
    so that no test's loop holds Playwright's tasks (conftest checks none is left)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="till-session-page")
        self.opened: Any = None
        self.page: Page | None = None

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.run(self._open(), timeout=60)

    async def _open(self) -> None:
        self.opened = served_web_page()
        self.page = await self.opened.__aenter__()

        async def serve_fakes(route: Route) -> None:
            await route.fulfill(path=str(FAKES), content_type="text/javascript")

        await self.page.route(f"{ORIGIN}/_test/till_session_fakes.js", serve_fakes)

    def close(self) -> None:
        try:
            if self.opened is not None:
                self.run(self.opened.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    def scenario(self, body: str) -> Any:
        """Runs `body` (JS, with `f` the fakes module) in the page; returns what it returns."""
        assert self.page is not None
        fakes = "const f = await import('/_test/till_session_fakes.js');"
        return self.run(self.page.evaluate(f"async () => {{ {fakes}\n{body}\n}}"))


@pytest.fixture(scope="module")
def page() -> Iterator[ModulePage]:
    module_page = ModulePage()
    try:
        module_page.start()
        yield module_page
    finally:
        module_page.close()


def totals_of(barcodes: list[str]) -> dict[str, Any]:
    """What edge/selling/money.py makes of a basket of these scans, one line each."""
    return basket_totals(
        Line(unit_price=PRICES[code][0], quantity=1, vat_rate=PRICES[code][1]) for code in barcodes)


# --- sale in flight ------------------------------------------------------------------------

# The till sells two items on node a, which records the sale and dies before answering.
SALE_IN_FLIGHT = """
  const a = new f.FakeNode('a', state);
  const till = await f.tillOn(a);
  await till.scan('111', '222');
  a.dieOn = 'sale/complete';
  till.session.pay([{ method: 'cash', amount: 500 }]);
  await f.settle();
  const inFlight = { paying: till.session.paying, sold: till.eventsOf('sold').length,
                     saleInFlight: till.session.saleInFlight === till.session.basketId };
  till.client.lose();
  await f.settle();
  till.client.connect(b);
  await f.settle();
  await till.clock.advance(10000);  // nothing more comes later
  return {
    inFlight,
    sold: till.eventsOf('sold').map(({ sale }) =>
      [sale.id, sale.receipt_no, sale.node, Boolean(sale.offline)]),
    completes: till.client.callsOf('sale/complete').map(([node, , args]) =>
      [node, args.basket_id, args.receipt_no]),
    basketAdds: till.client.callsOf('basket/add').map(([node]) => node),
    printed: till.shown, kept: till.ledger.keptSales, waiting: till.ledger.waitingSales,
    nextReceiptNo: till.ledger.nextReceiptNo, paying: till.session.paying,
    basket: till.session.basket,
    saleInFlight: till.session.saleInFlight, errors: till.errorCodes(),
  };
"""


def check_sold_once(outcome: dict[str, Any], answered_by: str) -> None:
    assert outcome["inFlight"] == {"paying": True, "sold": 0, "saleInFlight": True}
    [(sale_id, receipt_no, node, offline)] = outcome["sold"]
    basket_id = sale_id.split("@")[0]
    assert sale_id == f"{basket_id}@T01-aaaaaa" and receipt_no == 1 and not offline
    assert node == answered_by
    # Sent to a, then the same command (same basket, same receipt number) to b.
    assert outcome["completes"] == [["a", basket_id, 1], ["b", basket_id, 1]]
    assert outcome["printed"] == [sale_id]
    assert outcome["kept"] == 1 and outcome["waiting"] == 0 and outcome["nextReceiptNo"] == 2
    assert outcome["paying"] is False and outcome["basket"] is None
    assert outcome["saleInFlight"] is None
    assert outcome["errors"] == []


def test_a_sale_whose_node_died_before_answering_is_answered_once_by_the_next_node_that_has_it(
    page: ModulePage,
) -> None:
    outcome = page.scenario(
        "const state = new f.StoreState(); const b = new f.FakeNode('b', state);" + SALE_IN_FLIGHT)
    check_sold_once(outcome, answered_by="a")  # b had it from a: the same sale, not a second one
    assert outcome["basketAdds"] == ["a", "a", "b"]  # reconcile found the basket sold, and stopped


def test_a_sale_whose_node_died_before_answering_is_completed_once_on_a_node_that_lacks_it(
    page: ModulePage,
) -> None:
    outcome = page.scenario(
        "const state = new f.StoreState(); const b = new f.FakeNode('b', new f.StoreState());"
        + SALE_IN_FLIGHT)
    check_sold_once(outcome, answered_by="b")
    assert outcome["basketAdds"] == ["a", "a", "b", "b"]  # the basket was put back on b first


# --- sending ---------------------------------------------------------------------------------


def test_a_scan_goes_to_the_node_before_the_screen_draws_it_pending(page: ModulePage) -> None:
    # The node answers while the page draws: a basket's first line took 6-16 ms to draw,
    # which a scan used to wait for (docs/benchmarks.md, "eighth session").
    outcome = page.scenario("""
      const till = await f.tillOn(new f.FakeNode('a'));
      const order = [];
      const call = till.client.call.bind(till.client);
      till.client.call = (type, args) => {
        order.push(`sent ${type}`);
        return call(type, args);
      };
      till.session.addEventListener('change', () => order.push(
        `drawn, ${till.session.pendingLines().length} pending`));
      till.session.addItem({ barcode: '111' });
      till.session.addItem({ barcode: '222' });
      await f.settle();
      return { order: order.slice(0, 4), lines: till.session.lines.length };
    """)
    # The second scan waits for the first's answer, and is drawn pending meanwhile.
    assert outcome["order"] == ["sent basket/add", "drawn, 1 pending", "drawn, 2 pending",
                                "drawn, 1 pending"]
    assert outcome["lines"] == 2


# --- offline --------------------------------------------------------------------------------


def test_with_every_node_down_a_sale_goes_to_the_outbox_numbered_and_priced_by_the_till(
    page: ModulePage,
) -> None:
    outcome = page.scenario("""
      const till = await f.tillOn(new f.FakeNode('a'));
      await till.scan('111');
      await till.everyNodeDown();
      await till.scan('111', '333');  // from the till's copy of the catalogue
      const pending = till.session.hasPendingAdds();
      till.session.pay([{ method: 'cash', amount: 1000 }]);
      await f.settle();  // no node to wait for: at once
      await till.scan('222');
      till.session.pay([{ method: 'card', amount: 95, reference: 'TPE-1' }]);
      await f.settle();
      return {
        pending,
        sold: till.eventsOf('sold').map(({ sale }) =>
          ({ id: sale.id, no: sale.receipt_no, number: sale.receipt_number, offline: sale.offline,
             totals: sale.totals, change: sale.change, lines: sale.lines.length })),
        outbox: till.store.outbox.map(({ sale }) => sale.receipt_no),
        waiting: till.ledger.waitingSales, nextReceiptNo: till.ledger.nextReceiptNo,
        printed: till.shown, completes: till.client.callsOf('sale/complete').length,
        errors: till.errorCodes(),
      };
    """)
    assert outcome["pending"] is False
    first, second = outcome["sold"]
    assert (first["no"], first["number"], first["offline"]) == (1, "T01-aaaaaa-000001", True)
    assert first["lines"] == 3 and first["totals"] == totals_of(["111", "111", "333"])
    assert first["change"] == 1000 - 490
    assert (second["no"], second["number"], second["change"]) == (2, "T01-aaaaaa-000002", 0)
    assert second["totals"] == totals_of(["222"])
    assert first["id"] != second["id"]
    assert outcome["outbox"] == [1, 2] and outcome["waiting"] == 2 and outcome["nextReceiptNo"] == 3
    assert outcome["completes"] == 0  # nothing asked of the node that was lost
    # printing.js is shown them (and shows them as not printed).
    assert outcome["printed"] == [first["id"], second["id"]]
    assert outcome["errors"] == []


# --- failover -------------------------------------------------------------------------------

# Node a is lost while the client still tries the others: a sale waits for one.
FAILOVER = """
  const till = await f.tillOn(new f.FakeNode('a'));
  await till.scan('111');
  till.client.lose();
  await f.settle();
  const paidAt = till.clock.now();
  till.session.pay([{ method: 'cash', amount: 200 }]);
  await f.settle();
  await till.clock.advance(WAIT_BEFORE);
  const waited = { sold: till.eventsOf('sold').length, paying: till.session.paying,
                   waiting: till.ledger.waitingSales };
  THEN
  await f.settle();
  const sold = till.eventsOf('sold').map(({ sale }) =>
    ({ offline: Boolean(sale.offline), node: sale.node ?? null }));
  return { waited, sold, after: till.clock.now() - paidAt, waiting: till.ledger.waitingSales,
           completes: till.client.callsOf('sale/complete').map(([node]) => node) };
"""


def failover(page: ModulePage, wait_before: int, then: str) -> dict[str, Any]:
    return page.scenario(FAILOVER.replace("WAIT_BEFORE", str(wait_before)).replace("THEN", then))


def test_a_sale_waits_the_failover_time_for_another_node_then_completes_offline(
    page: ModulePage,
) -> None:
    outcome = failover(page, 4999, "await till.clock.advance(1);")
    assert outcome["waited"] == {"sold": 0, "paying": True, "waiting": 0}
    assert outcome["sold"] == [{"offline": True, "node": None}]
    assert outcome["after"] == 5000 and outcome["waiting"] == 1 and outcome["completes"] == []


def test_a_sale_waiting_for_another_node_goes_to_the_one_that_answers(page: ModulePage) -> None:
    outcome = failover(page, 2000, "till.client.connect(new f.FakeNode('b'));")
    assert outcome["waited"] == {"sold": 0, "paying": True, "waiting": 0}
    assert outcome["sold"] == [{"offline": False, "node": "b"}]
    assert outcome["waiting"] == 0 and outcome["completes"] == ["b"]


def test_a_sale_waiting_for_another_node_completes_offline_as_soon_as_none_answers(
    page: ModulePage,
) -> None:
    outcome = failover(page, 1000, "till.client.giveUp();")
    assert outcome["sold"] == [{"offline": True, "node": None}]
    assert outcome["after"] == 1000 and outcome["waiting"] == 1


# --- reconcile ------------------------------------------------------------------------------


def test_on_reconnect_the_outbox_goes_first_and_leaves_once_recorded(page: ModulePage) -> None:
    outcome = page.scenario("""
      const till = await f.tillOn(new f.FakeNode('a'));
      await till.everyNodeDown();
      for (const code of ['111', '333']) {
        await till.scan(code);
        till.session.pay([{ method: 'cash', amount: 500 }]);
        await f.settle();
      }
      const before = { waiting: till.ledger.waitingSales, outbox: till.store.outbox.length };
      const b = new f.FakeNode('b');
      till.client.connect(b);  // the PIN is still in memory: logged in again, not asked
      await f.settle();
      const order = till.client.calls.filter(([node]) => node === 'b').map(([, type]) => type);
      return {
        before, order, ready: till.session.ready, waiting: till.ledger.waitingSales,
        outbox: till.store.outbox.length, onB: b.salesHeld(),
        records: till.client.callsOf('sale/record').map(([, , args]) => args.offline),
        errors: till.errorCodes(),
      };
    """)
    assert outcome["before"] == {"waiting": 2, "outbox": 2}
    order = outcome["order"]
    steps = ["login", "sale/record", "sale/held", "basket/get"]
    assert [order.index(step) for step in steps] == sorted(order.index(step) for step in steps)
    assert outcome["records"] == [True, True]  # each once: sale/held lists them, nothing is resent
    assert outcome["onB"] == [[1, True], [2, True]]
    assert outcome["waiting"] == 0 and outcome["outbox"] == 0 and outcome["ready"] is True
    assert outcome["errors"] == []


def test_a_node_that_lacks_a_sale_another_node_acknowledged_gets_it_and_one_that_holds_it_does_not(
    page: ModulePage,
) -> None:
    outcome = page.scenario("""
      const till = await f.tillOn(new f.FakeNode('a'));
      await till.scan('222');
      till.session.pay([{ method: 'cash', amount: 100 }]);
      await f.settle();  // a acknowledged it, and dies before passing it on
      till.client.lose();
      const b = new f.FakeNode('b');
      till.client.connect(b);
      await f.settle();
      const onB = b.salesHeld();
      till.client.lose();
      till.client.connect(new f.FakeNode('c', b.state));  // c has it from b
      await f.settle();
      const sent = (type, field) =>
        till.client.callsOf(type).map(([node, , args]) => [node, args[field]]);
      return { onB, records: sent('sale/record', 'offline'), held: sent('sale/held', 'since') };
    """)
    assert outcome["onB"] == [[1, False]]  # resent as a sale another node acknowledged
    assert outcome["records"] == [["b", False]]
    assert outcome["held"] == [["b", 1], ["c", 1]]


def test_a_basket_changed_offline_is_put_back_on_the_node_as_the_till_has_it(
    page: ModulePage,
) -> None:
    outcome = page.scenario("""
      const a = new f.FakeNode('a');
      const till = await f.tillOn(a);
      await till.scan('111', '222');
      await till.everyNodeDown();
      const [bread, croissant] = till.session.lines;
      till.session.changeQuantity(bread.id, +2);
      till.session.removeLine(croissant.id);
      await till.scan('333');
      const rows = (lines) => lines.map((line) => [line.id, line.product_id, line.quantity]);
      const local = rows(till.session.lines);
      till.client.connect(a);
      await f.settle();
      const onNode = rows(a.basketLines(till.session.basketId));
      return { local, onNode, shown: rows(till.session.lines), ready: till.session.ready };
    """)
    assert [line[1:] for line in outcome["local"]] == [["p1", 3], ["p3", 1]]
    assert outcome["onNode"] == outcome["local"] == outcome["shown"]  # same line ids too
    assert outcome["ready"] is True


def test_a_basket_that_diverged_on_the_node_is_fetched_again_and_the_scan_lands_in_it(
    page: ModulePage,
) -> None:
    outcome = page.scenario("""
      const a = new f.FakeNode('a');
      const till = await f.tillOn(a);
      await till.scan('111');
      // Another tab of this till voided that basket and opened another one on the node.
      a.answer('basket/clear', { basket_id: till.session.basketId });
      a.openBasket('other', [['p2', 2]]);
      await till.scan('333');
      return {
        basketId: till.session.basketId, resynced: till.eventsOf('resynced').length,
        lines: f.items(till.session.lines), onNode: f.items(a.basketLines('other')),
        errors: till.errorCodes(),
      };
    """)
    assert outcome["basketId"] == "other" and outcome["resynced"] == 1
    assert outcome["lines"] == outcome["onNode"] == [["p2", 2], ["p3", 1]]
    assert outcome["errors"] == []


def test_a_basket_voided_offline_is_voided_on_the_node_not_taken_up_again(page: ModulePage) -> None:
    outcome = page.scenario("""
      const a = new f.FakeNode('a');
      const till = await f.tillOn(a);
      await till.scan('111');
      const voided = till.session.basketId;
      await till.everyNodeDown();
      till.session.clearBasket();
      await f.settle();
      till.client.connect(a);
      await f.settle();
      const back = { voided: a.state.baskets.get(voided).status, lines: till.session.lines.length,
                     left: till.session.voidedOffline.length };
      await till.scan('222');
      const open = a.state.openBasketId;
      return { back, open: open === till.session.basketId && open !== voided,
               lines: f.items(a.basketLines(open)) };
    """)
    # Not taken up again from the node as the basket to sell: it was voided.
    assert outcome["back"] == {"voided": "voided", "lines": 0, "left": 0}
    assert outcome["open"] is True and outcome["lines"] == [["p2", 1]]


def test_basket_commands_wait_while_a_node_that_answered_is_brought_up_to_date(
    page: ModulePage,
) -> None:
    outcome = page.scenario("""
      const till = await f.tillOn(new f.FakeNode('a'));
      await till.everyNodeDown();
      await till.scan('111');  // offline: into the till's basket at once
      const b = new f.FakeNode('b');
      const release = b.hold('basket/get');  // reconcile is under way on b
      till.client.connect(b);
      await f.settle();
      await till.scan('222');
      const during = { pending: till.session.pendingLines().map((line) => line.label),
                       lines: till.session.lines.length, ready: till.session.ready };
      release();
      await f.settle();
      const onB = f.items(b.basketLines(till.session.basketId));
      return { during, onB, lines: f.items(till.session.lines), ready: till.session.ready };
    """)
    assert outcome["during"] == {"pending": ["222"], "lines": 1, "ready": False}
    assert outcome["lines"] == outcome["onB"] == [["p1", 1], ["p2", 1]]
    assert outcome["ready"] is True
