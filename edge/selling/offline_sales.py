"""A sale the till made while no node answered, recorded when one does.

The money was taken, so a well-formed offline sale is never refused: the node
prices it again with the one pricing function (the promotions running here,
the discounts it carries, its weights and labels) and records what it finds
as flags (docs/protocol.md, `sale/record`). A sale another node acknowledged
and died before passing on, resent by the till, comes the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from edge.config import Config
from edge.journal.store import Journal, Tx
from edge.messages import INVALID_FIELD, EdgeError
from edge.selling.barcodes import read_embedded
from edge.selling.baskets import applied_promotions, priced, today
from edge.selling.discounts import past_limit
from edge.selling.money import DEFAULT_MEAL_VOUCHER_CAP, settle
from edge.selling.promotions import active_promotions, promotions_running_at
from edge.selling.sales import (
    held_elsewhere,
    receipt_number,
    sale_id_for,
    sale_json,
    settled_extras,
    this_tills_sale_of,
)
from edge.selling.tenders import recorded_after_the_fact

SOLD_LINE_FIELDS = ("product_id", "barcode", "name", "unit_price", "vat_rate", "quantity")


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


def sold_by(till: str, sale: dict[str, Any], takes_over: Collection[str]) -> str:
    """The till whose sale this is: `till`, or an earlier code of it.

    A till paired again sends the offline sales it made under the codes it
    proved it had (its old tokens, at pairing: `till.takes_over`). Those are
    recorded as that code's sales, as they were made and numbered: exactly
    as the old till would have sent them, so a resend by either form of the
    till, through any node, is the one sale (the id settles it).
    """
    earlier = sale["id"].rpartition("@")[2] if "@" in sale["id"] else None
    return earlier if earlier in takes_over and earlier != till else till


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
    return sale_json(orjson.loads(done["body"]), done["time"], done["hash"])


@dataclass(frozen=True)
class StoreRules:
    """The store's settings an offline sale is checked against (edge/config.py)."""

    meal_voucher_cap: int = DEFAULT_MEAL_VOUCHER_CAP
    discount_limit: int = 10_000
    open_price_limit: int = 100_000_000
    layouts: tuple[dict[str, Any], ...] = ()

    @classmethod
    def of(cls, config: Config) -> StoreRules:
        return cls(config.meal_voucher_cap, config.discount_limit, config.open_price_limit,
                   tuple(config.embedded_barcodes))


def _label_differs(tx: Tx, line: dict[str, Any], layouts: Sequence[dict[str, Any]],
                   kind: str, value: int) -> bool:
    """A line that says its price (or its weight) came off a label: is that the label's,
    of this product?"""
    try:
        label = read_embedded(line.get("barcode") or "", layouts)
    except EdgeError:
        return True
    if label is None or label["kind"] != kind or label["value"] != value:
        return True
    owner = tx.fetchone("SELECT id FROM products WHERE barcode = ?", (label["lookup"],))
    return owner is None or owner["id"] != line["product_id"]


def _is_label(barcode: str | None, layouts: Sequence[dict[str, Any]]) -> bool:
    """A scanned label (not the product's own base code, whose value is 0: a typed weight)."""
    try:
        label = read_embedded(barcode or "", layouts)
    except EdgeError:
        return True  # a label's prefix with a wrong check digit: checked as a label
    return label is not None and label["value"] != 0


def _line_flags(tx: Tx, line: dict[str, Any], rules: StoreRules) -> set[str]:
    """What is wrong with one line of an offline sale, by the catalogue and the store's rules."""
    row = tx.fetchone("SELECT price, vat_rate, open_price, unit FROM products WHERE id = ?",
                      (line["product_id"],))
    if row is None or row["vat_rate"] != line["vat_rate"]:
        return {"price_differs"}
    if line["price_embedded"]:
        differs = _label_differs(tx, line, rules.layouts, "price", line["unit_price"])
        return {"price_differs"} if differs else set()
    if row["open_price"]:
        past = line["unit_price"] * line["quantity"] > rules.open_price_limit
        return {"open_price_past_limit"} if past and not line.get("approved_by") else set()
    if row["price"] != line["unit_price"] or (line["unit"] == "g") != (row["unit"] == "kg"):
        return {"price_differs"}
    if line["unit"] == "g" and _is_label(line.get("barcode"), rules.layouts) \
            and _label_differs(tx, line, rules.layouts, "weight", line["quantity"]):
        return {"price_differs"}
    return set()


# How far ahead of this node's clock a till's may be before its time is not believed
# (a till's clock drifts; a sale dated tomorrow, or next June, is not a drift).
CLOCK_SKEW = timedelta(hours=1)


def _promotions_when_sold(tx: Tx, till_time: str) -> tuple[list[dict[str, Any]], bool]:
    """The promotions running when the till says it sold, and whether that is believable:
    a time ahead of the node's (h42: a sale dated next June took June's promotion) is
    not; then today's promotions, and the sale is flagged."""
    try:
        moment = datetime.fromisoformat(till_time.replace("Z", "+00:00"))
        if moment.tzinfo is None or moment > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError(till_time)
        return promotions_running_at(tx.db, till_time), True
    except ValueError:
        return active_promotions(tx.db, today()), False


async def record_offline_sale(
    journal: Journal, till: str, sale: dict[str, Any], offline: bool = True,
    logged_in: str | None = None, print_receipt: bool = True,
    rules: StoreRules = StoreRules(), takes_over: Collection[str] = (),
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

    `takes_over`: the earlier codes of this till (paired again): a sale whose
    id names one of them is recorded as that till's (`sold_by`), with
    `sent_by` naming the till that sent it.
    """
    sender, till = till, sold_by(till, sale, takes_over)

    def work(tx: Tx) -> dict[str, Any]:
        basket_id = _basket_of(till, sale)
        done = _already_sold(tx, till, sale["id"]) or this_tills_sale_of(tx, till, basket_id)
        if done is not None:
            return done
        # Priced again by the one pricing function, with the promotions that ran
        # when the till sold it (a sale of last night reaching the node this
        # morning keeps last night's promotions: h41).
        promotions, believable = _promotions_when_sold(tx, sale["time"])
        lines, totals = priced(
            [{**{k: line[k] for k in SOLD_LINE_FIELDS}, "id": line["id"],
              "unit": line.get("unit", "piece"),
              "price_embedded": bool(line.get("price_embedded", False)),
              "discount": line.get("discount"),
              **({"approved_by": line["approved_by"]} if line.get("approved_by") else {})}
             for line in sale["lines"]],
            sale.get("discount"), promotions)
        flags = [] if believable else ["till_time_implausible"]
        if any(totals[key] != sale["totals"].get(key) for key in ("total", "items", "vat")):
            flags.append("totals_differ")
        flags += sorted(set().union(*(_line_flags(tx, line, rules) for line in lines)))
        if past_limit({"lines": lines, "discount": sale.get("discount")}, rules.discount_limit):
            flags.append("discount_past_limit")
        # A manager named offline: no node could check the PIN then.
        if any((d or {}).get("approved_by") for d in [sale.get("discount"), *lines,
                                                       *(ln["discount"] for ln in lines)]):
            flags.append("approval_unverified")
        try:
            settled = settle(totals["total"], sale["tenders"], rules.meal_voucher_cap)
        except EdgeError:
            flags.append("tenders_differ")  # taken all the same: the money changed hands
            paid = sum(t["amount"] for t in sale["tenders"])
            settled = {"change": max(paid - totals["total"], 0), "voucher_excess": 0}
        if tx.fetchone("SELECT 1 FROM sales WHERE till = ? AND receipt_no = ?",
                       (till, sale["receipt_no"])):
            flags.append("receipt_number_reused")
        if logged_in is not None and sale["cashier"] != logged_in:
            flags.append("cashier_differs")
        if tx.fetchone("SELECT 1 FROM cashiers WHERE id = ?", (sale["cashier"],)) is None:
            flags.append("unknown_cashier")
        tenders, unverified = recorded_after_the_fact(tx, till, basket_id, sale["tenders"])
        if unverified:
            flags.append("card_payment_unverified")
        holder = tx.fetchone("SELECT till FROM baskets WHERE id = ? AND status = 'open'",
                             (basket_id,))
        closes_basket = holder is None or holder["till"] == till
        if not closes_basket:
            flags.append("basket_held_elsewhere")
        body = {
            "id": sale["id"],
            "basket_id": basket_id,
            "till": till,
            "receipt_no": sale["receipt_no"],
            "receipt_number": receipt_number(till, sale["receipt_no"]),
            "cashier": sale["cashier"],
            "lines": lines,
            "totals": totals,
            "tenders": tenders,
            "change": settled["change"],
            **settled_extras(sale.get("discount"), settled),
            **({"promotions": applied} if (applied := applied_promotions(lines, promotions))
               else {}),
            "offline": offline,
            "till_time": sale["time"],
            "flags": flags,
            # The cashier's choice; the node prints nothing for a sale recorded afterwards.
            "receipt": "printed" if print_receipt else "not_printed",
        }
        if not closes_basket:
            body["closes_basket"] = False
        if "totals_differ" in flags:
            body["till_totals"] = sale["totals"]
        if "cashier_differs" in flags:
            body["logged_in_cashier"] = logged_in
        if not offline:
            body["resent"] = True
        if sender != till:
            body["sent_by"] = sender
        event = tx.append("sale_completed", body)
        return sale_json(body, event.time, event.hash)

    return await journal.write(work)
