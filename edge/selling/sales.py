"""Sales: a sold basket, or a sale a till made offline, recorded as one event.

A sale carries the till's own receipt number (the till is the source of truth
for its numbering) and asks the till's printer for a receipt (and the drawer,
for cash) in the same transaction. Resending a sale records nothing twice,
through one node or several.

A sale's id is its basket's, qualified by the till that sold it
(`sale_id_for`): one till sending its sale again, through any node, makes one
sale; two tills that both sold one basket (taken over while the nodes were cut
apart) make two, both kept and shown as a basket sold twice, never one hiding
the other.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import orjson

from edge.devices import print_jobs, store_printers
from edge.devices.receipt import euros
from edge.journal.chain import Event
from edge.journal.event_types import event_type
from edge.journal.store import Journal, Tx
from edge.messages import EMPTY_BASKET, INVALID_FIELD, RECEIPT_NUMBER_USED, EdgeError
from edge.selling.baskets import Seller, close_basket, held_elsewhere, require_open_basket
from edge.selling.money import Line, basket_totals, change_due


def receipt_number(till: str, receipt_no: int) -> str:
    return f"{till}-{receipt_no:06d}"


def sale_id_for(till: str, basket_id: str) -> str:
    """The id of the sale of `basket_id` by `till` (web/basket.js makes the same)."""
    return f"{basket_id}@{till}"


def _this_tills_sale_of(tx: Tx, till: str, basket_id: str) -> dict[str, Any] | None:
    """This till's sale of that basket, whatever form its id took (resent, or from a till
    of before sale ids, whose sale id was the basket id)."""
    done = tx.fetchone("SELECT body, time, hash FROM sales WHERE basket_id = ? AND till = ? "
                       "ORDER BY hash LIMIT 1", (basket_id, till))
    return _sale_json(orjson.loads(done["body"]), done["time"], done["hash"]) if done else None


def _sold_by(tx: Tx, till: str, basket_id: str) -> dict[str, Any] | None:
    """This till's sale of that basket (a resend); refused if the basket was sold by another.

    A basket that another till's offline sale did not close (this till held
    it) is still this till's to sell.
    """
    done = _this_tills_sale_of(tx, till, basket_id)
    if done is not None:
        return done
    other = tx.fetchone(
        "SELECT sales.till FROM baskets JOIN sales ON sales.basket_id = baskets.id "
        "WHERE baskets.id = ? AND baskets.status = 'sold' ORDER BY sales.hash LIMIT 1",
        (basket_id,))
    if other is not None:
        raise held_elsewhere(other["till"], basket_id, how="was sold")
    return None


def _basket_of(till: str, sale: dict[str, Any]) -> str:
    """The basket an offline sale sold; refused unless its id is `<basket>@<this till>`.

    Every id with an `@` is of that form, `basket_id` given or not: a till
    cannot record a sale under another till's sale id (it would hide that
    sale). An id without one comes from a till of before sale ids: its
    basket's id.
    """
    basket_id = sale.get("basket_id") or sale["id"].rpartition("@")[0] or sale["id"]
    if "@" in sale["id"] and sale["id"] != sale_id_for(till, basket_id):
        raise EdgeError(INVALID_FIELD, f"sale.id must be {sale_id_for(till, basket_id)!r}: "
                        "a sale's id is its basket's id @ the till's code",
                        {"field": "sale.id"})
    if sale.get("basket_id") and "@" not in sale["id"]:
        raise EdgeError(INVALID_FIELD, f"sale.id must be {sale_id_for(till, basket_id)!r} "
                        "when basket_id is given", {"field": "sale.id"})
    return basket_id


def _sale_json(body: dict[str, Any], time: str, hash_: str) -> dict[str, Any]:
    return {**body, "time": time, "hash": hash_}


def _already_sold(tx: Tx, till: str, sale_id: str) -> dict[str, Any] | None:
    """The sale of that id if `till` made it (a resend); refused if another till did.

    A sale is only ever told to the till that made it: a till that lost its
    basket to another (taken over) must not take that till's sale for its own.
    """
    done = tx.fetchone("SELECT till, body, time, hash FROM sales WHERE id = ?", (sale_id,))
    if done is None:
        return None
    if done["till"] != till:
        raise held_elsewhere(done["till"], sale_id, how="was sold")
    return _sale_json(orjson.loads(done["body"]), done["time"], done["hash"])


def _refuse_used_number(tx: Tx, till: str, receipt_no: int) -> None:
    """Two online sales never share a fiscal number (two tabs of a till, a stale counter)."""
    if tx.fetchone("SELECT 1 FROM sales WHERE till = ? AND receipt_no = ?", (till, receipt_no)):
        following = _last_receipt_no(tx, till) + 1
        raise EdgeError(
            RECEIPT_NUMBER_USED,
            f"receipt {receipt_number(till, receipt_no)} is already used by another sale: "
            f"the next free number is {following}",
            {"till": till, "receipt_no": receipt_no, "next_receipt_no": following},
        )


async def complete_sale(
    journal: Journal,
    seller: Seller,
    basket_id: str,
    tenders: list[dict[str, Any]],
    receipt_no: int | None = None,
) -> dict[str, Any]:
    """Sell the till's open basket. `receipt_no` is the till's own numbering."""

    def work(tx: Tx) -> dict[str, Any]:
        done = _sold_by(tx, seller.till, basket_id)
        if done is not None:
            return done
        basket = require_open_basket(tx, seller.till, basket_id)
        if not basket["lines"]:
            raise EdgeError(EMPTY_BASKET, "the basket is empty")
        totals = basket["totals"]
        change = change_due(totals["total"], tenders)
        if receipt_no is not None:
            _refuse_used_number(tx, seller.till, receipt_no)
        number = receipt_no or _last_receipt_no(tx, seller.till) + 1
        body = {
            "id": sale_id_for(seller.till, basket_id),
            "basket_id": basket_id,
            "till": seller.till,
            "receipt_no": number,
            "receipt_number": receipt_number(seller.till, number),
            "cashier": seller.cashier,
            "lines": basket["lines"],
            "totals": totals,
            "tenders": [_tender(t) for t in tenders],
            "change": change,
        }
        event = tx.append("sale_completed", body)
        printer = store_printers.route(tx, seller.till)
        if printer is not None:
            cash = any(t["method"] == "cash" for t in tenders)
            print_jobs.request_receipt(tx, printer, body["id"], open_drawer=cash)
        return _sale_json(body, event.time, event.hash)

    return await journal.write(work)


async def record_offline_sale(
    journal: Journal, till: str, sale: dict[str, Any], offline: bool = True,
    logged_in: str | None = None,
) -> dict[str, Any]:
    """Record a sale the till completed offline: the money was taken, so never refuse it.

    The totals are worked out again here with the one pricing function; any
    difference from the till's is flagged, as are unit prices that are not the
    catalogue's and a receipt number the till already used. `offline=False`:
    a sale another node acknowledged, resent by the till because this node
    does not have it (that node died before passing it on).

    The sale closes its basket unless another till holds that basket open
    here: a till never closes another's basket (`basket_held_elsewhere`; the
    two sales of one basket are then shown, see `baskets_sold_twice`). This
    till's sale of that basket already here, under either form of id, is
    this one. Refused: an id that is not `<basket>@<this till>` (`_basket_of`),
    and an id that is another till's sale (from a till of before sale ids).

    `logged_in`: the cashier logged in on the till that sends it. A sale
    naming another cashier is still recorded (the money was taken, maybe by
    a cashier who logged out since) but flagged `cashier_differs`, with who
    was logged in; one naming a cashier the store does not know is flagged
    `unknown_cashier`.
    """

    def work(tx: Tx) -> dict[str, Any]:
        basket_id = _basket_of(till, sale)
        done = _already_sold(tx, till, sale["id"]) or _this_tills_sale_of(tx, till, basket_id)
        if done is not None:
            return done
        lines = [
            {**{k: line[k] for k in ("product_id", "barcode", "name", "unit_price", "vat_rate",
                                     "quantity")},
             "id": line["id"], "total": line["unit_price"] * line["quantity"]}
            for line in sale["lines"]
        ]
        totals = basket_totals(Line(ln["unit_price"], ln["quantity"], ln["vat_rate"])
                               for ln in lines)
        flags = []
        if totals != sale["totals"]:
            flags.append("totals_differ")
        for line in lines:
            row = tx.fetchone("SELECT price, vat_rate FROM products WHERE id = ?",
                              (line["product_id"],))
            if row is None or (row["price"], row["vat_rate"]) != (line["unit_price"],
                                                                   line["vat_rate"]):
                flags.append("price_differs")
                break
        if tx.fetchone("SELECT 1 FROM sales WHERE till = ? AND receipt_no = ?",
                       (till, sale["receipt_no"])):
            flags.append("receipt_number_reused")
        if logged_in is not None and sale["cashier"] != logged_in:
            flags.append("cashier_differs")
        if tx.fetchone("SELECT 1 FROM cashiers WHERE id = ?", (sale["cashier"],)) is None:
            flags.append("unknown_cashier")
        holder = tx.fetchone("SELECT till FROM baskets WHERE id = ? AND status = 'open'",
                             (basket_id,))
        closes_basket = holder is None or holder["till"] == till
        if not closes_basket:
            flags.append("basket_held_elsewhere")
        paid = sum(t["amount"] for t in sale["tenders"])
        body = {
            "id": sale["id"],
            "basket_id": basket_id,
            "till": till,
            "receipt_no": sale["receipt_no"],
            "receipt_number": receipt_number(till, sale["receipt_no"]),
            "cashier": sale["cashier"],
            "lines": lines,
            "totals": totals,
            "tenders": [_tender(t) for t in sale["tenders"]],
            "change": max(paid - totals["total"], 0),
            "offline": offline,
            "till_time": sale["time"],
            "flags": flags,
        }
        if not closes_basket:
            body["closes_basket"] = False
        if "totals_differ" in flags:
            body["till_totals"] = sale["totals"]
        if "cashier_differs" in flags:
            body["logged_in_cashier"] = logged_in
        if not offline:
            body["resent"] = True
        event = tx.append("sale_completed", body)
        return _sale_json(body, event.time, event.hash)

    return await journal.write(work)


async def held_receipt_numbers(journal: Journal, till: str, since: int) -> list[int]:
    """The receipt numbers of `till` from `since` on that this node holds."""
    rows = await journal.read_all(
        "SELECT DISTINCT receipt_no FROM sales WHERE till = ? AND receipt_no >= ? "
        "ORDER BY receipt_no LIMIT 5000",
        (till, since),
    )
    return [row["receipt_no"] for row in rows]


def baskets_sold_twice(db: sqlite3.Connection, limit: int = 20) -> dict[str, str]:
    """Baskets that more than one sale sold, in words: two tills each took the money.

    It happens when a basket is taken over while nodes are cut apart, or a
    till sells offline a basket another till took. Both sales are kept; a
    manager settles it with the customer.
    """
    rows = db.execute(
        """SELECT basket_id, json_extract(body, '$.receipt_number'), total FROM sales
        WHERE basket_id IN (
            SELECT basket_id FROM sales GROUP BY basket_id HAVING COUNT(*) > 1 LIMIT ?)
        ORDER BY basket_id, time""",
        (limit,),
    ).fetchall()
    sold: dict[str, list[str]] = {}
    for basket_id, number, total in rows:
        sold.setdefault(f"basket {basket_id}", []).append(f"{number} ({euros(total)} EUR)")
    return {basket: "sold more than once: " + ", ".join(sales) for basket, sales in sold.items()}


def _last_receipt_no(tx: Tx, till: str) -> int:
    row = tx.fetchone("SELECT MAX(receipt_no) AS n FROM sales WHERE till = ?", (till,))
    return (row["n"] if row else None) or 0


async def last_receipt_no(journal: Journal, till: str) -> int:
    row = await journal.read_one("SELECT MAX(receipt_no) AS n FROM sales WHERE till = ?", (till,))
    return (row["n"] if row else None) or 0


def _tender(tender: dict[str, Any]) -> dict[str, Any]:
    if tender["method"] == "card":
        return {"method": "card", "amount": tender["amount"], "reference": tender["reference"]}
    return {"method": tender["method"], "amount": tender["amount"]}


async def find_sale(journal: Journal, sale_id: str) -> dict[str, Any] | None:
    row = await journal.read_one("SELECT body, time, hash FROM sales WHERE id = ?", (sale_id,))
    return _sale_json(orjson.loads(row["body"]), row["time"], row["hash"]) if row else None


@dataclass(slots=True)
class SoldLine:
    id: str
    product_id: str
    name: str
    unit_price: int
    vat_rate: int
    quantity: int
    total: int
    barcode: str | None = None


@dataclass(slots=True)
class VatLine:
    rate: int
    base: int
    vat: int
    total: int


@dataclass(slots=True)
class SaleTotals:
    total: int
    items: int
    vat: list[VatLine]


@dataclass(slots=True)
class Tender:
    method: str
    amount: int
    reference: str | None = None


@dataclass(slots=True)
class SaleCompleted:
    id: str
    till: str
    receipt_no: int
    cashier: str
    lines: list[SoldLine]
    totals: SaleTotals
    tenders: list[Tender]
    receipt_number: str = ""
    basket_id: str = ""  # none in sales of before sale ids: their id was their basket's
    closes_basket: bool = True
    change: int = 0
    offline: bool = False
    resent: bool = False
    flags: list[str] = field(default_factory=list)


@event_type("sale_completed", schema=SaleCompleted,
            merge="one sale per id: the smaller event hash wins; its basket is sold unless "
                  "the sale says it was held by another till (decided when it was recorded)")
def _sale_completed(db: sqlite3.Connection, event: Event) -> None:
    body = event.body
    basket_id = body.get("basket_id") or body["id"]
    # The same sale recorded through two nodes (a till resending after a
    # failover) stays one sale; every node keeps the same one of the two.
    db.execute(
        """INSERT INTO sales (id, till, receipt_no, cashier, time, total, body, hash, basket_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET till = excluded.till, receipt_no = excluded.receipt_no,
            cashier = excluded.cashier, time = excluded.time, total = excluded.total,
            body = excluded.body, hash = excluded.hash, basket_id = excluded.basket_id
        WHERE excluded.hash < sales.hash""",
        (
            body["id"],
            body["till"],
            body["receipt_no"],
            body["cashier"],
            event.time,
            body["totals"]["total"],
            orjson.dumps(body).decode(),
            event.hash,
            basket_id,
        ),
    )
    if body.get("closes_basket", True):
        close_basket(db, event, basket_id, "sold")
