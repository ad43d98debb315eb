"""Every node ends with the same tables, whatever the order and repetition of arrival.

Hypothesis makes a store's history: several origins (three nodes, head
office, and a node that a restored one retired), each writing a proper hash
chain (`ChainHead.next`), signed and certified by its first event, of every
event type there is, with ids that collide
on purpose the way a store's do: a sale recorded through two nodes after a
failover, its receipt asked of one printer by both, a basket taken over by
two tills at once and sold by both, two old nodes both giving `T01`, a cashier and a product
changed on two origins. Each history is applied to fresh journals (as a peer
or head office would: `tx.apply`) in different interleavings that keep each
origin's own order, with events applied twice, in batches of any size; every
projection table must come out the same on all of them. Head office's
origin is taken once a node's record of its key has arrived (before that,
like a peer, the observer asks for it again later).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from signing_support import headoffice_key, headoffice_trusted, identity, store_ca

from edge.devices.print_jobs import derived_job_id
from edge.devices.store_printers import PrinterRef
from edge.journal.chain import ChainHead, Event
from edge.journal.event_types import registry
from edge.journal.signing import headoffice_certified_body, node_certified_body, sign
from edge.journal.store import Journal
from edge.journal.vouches import ca_vouch_body
from edge.replication.peers import apply_each_origin
from edge.selling.money import Line, basket_totals
from edge.selling.refund_rules import refund_totals

NODES = ("n1", "n2", "n3")
HEAD_OFFICE = "headoffice-1a2b3c"
# n3 continues n0 (restored from a backup): n0's events still reach the store.
# n4 ran n3's folder in between (the backup was restored twice): retired too.
RETIRED = "n0"
RETIRED_BETWEEN = "n4"
PRINTER = PrinterRef("n1", "comptoir")

# Not projections: the journal itself, and what each node keeps for itself.
NOT_PROJECTIONS = {"events", "meta", "origins", "pairing_codes", "headoffice_sync",
                   "till_last_seen"}
LOCAL_COLUMNS = {"products": {"rowid"}}  # the FTS index's row numbers, local by nature

# Few distinct times, so that ties (settled by hash) happen too.
TIMES = st.integers(0, 30).map(lambda s: f"2026-03-01T10:00:{s:02d}.000Z")

Step = tuple[str, str, dict[str, Any], str]  # origin, type, body, time


@st.composite
def catalogue(draw: st.DrawFn) -> list[Step]:
    """Head office (and a node loading a CSV) changing the same few products."""
    steps = []
    for index in range(draw(st.integers(2, 7))):
        origin = draw(st.sampled_from([HEAD_OFFICE, HEAD_OFFICE, "n1"]))
        product = draw(st.sampled_from(["p1", "p2", "p3"]))
        if index != 1 and (index == 0 or draw(st.integers(0, 3))):
            # A barcode or none: products share one, move away from it and back
            # (`former_barcodes` keeps what each named besides its latest listing).
            body = {"id": product,
                    "barcode": draw(st.sampled_from(["3000", "3001", "3002", None])),
                    "name": draw(st.sampled_from(["Pain", "Baguette"])),
                    "price": draw(st.sampled_from([100, 120])), "vat_rate": 550,
                    "category": ""}
            if draw(st.booleans()):  # a store's listing: how its till shows it (issue 10)
                body |= {"unit": draw(st.sampled_from(["piece", "kg"])),
                         "colour": draw(st.sampled_from(["", "brown", "#f5c542"])),
                         "image": "", "favourite": draw(st.integers(0, 2)),
                         "open_price": draw(st.booleans())}
            steps.append((origin, "product_upserted", body, draw(TIMES)))
        else:
            steps.append((origin, "product_delisted", {"id": product}, draw(TIMES)))
    # Head office's batches (edge/selling/catalogue_batches.py): the same few products,
    # several an event, one sometimes named twice (its first listing in the batch holds).
    listed = draw(st.lists(st.sampled_from(["p1", "p2", "p3"]), min_size=1, max_size=3))
    steps.insert(draw(st.integers(0, len(steps))), (HEAD_OFFICE, "products_listed", {
        "products": [{"id": product, "barcode": draw(st.sampled_from(["3000", "3001", None])),
                      "name": "Lot", "price": draw(st.sampled_from([100, 130])),
                      "vat_rate": 550, "category": ""} for product in listed]}, draw(TIMES)))
    steps.insert(draw(st.integers(0, len(steps))), (HEAD_OFFICE, "products_delisted", {
        "ids": draw(st.lists(st.sampled_from(["p1", "p2", "p3"]), min_size=1, max_size=2))},
        draw(TIMES)))
    # Promotions of the same few ids, listed, changed and ended by head office and a node.
    for index in range(draw(st.integers(2, 6))):
        origin = draw(st.sampled_from([HEAD_OFFICE, "n1", "n2"]))
        promotion = draw(st.sampled_from(["promo1", "promo2"]))
        if index != 1 and (index == 0 or draw(st.integers(0, 3))):
            body = draw(st.sampled_from([
                {"kind": "n_for_m", "n": 3, "m": 2},
                {"kind": "nth_percent", "n": 2, "percent": 5000},
                {"kind": "bundle", "n": 3, "price": 890, "starts": "2026-03-01",
                 "ends": "2026-03-31"}]))
            body = {"id": promotion, "name": draw(st.sampled_from(["3 pour 2", "Formule"])),
                    "products": draw(st.sampled_from([["p1"], ["p1", "p2"]])), **body}
            steps.append((origin, "promotion_upserted", body, draw(TIMES)))
        else:
            steps.append((origin, "promotion_ended", {"id": promotion}, draw(TIMES)))
    return steps


@st.composite
def cashiers(draw: st.DrawFn) -> list[Step]:
    """The same cashier added on two nodes (another PIN, another name), from before keyed
    PINs or after, then changed (a new PIN, disabled); logins locked on two nodes."""
    steps = []
    for origin in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=3)):
        n = draw(st.integers(1, 2))
        body = {"id": "c1", "name": f"Alice {n}", "role": "cashier"}
        if draw(st.booleans()):
            body |= {"pin_salt": f"{n:032x}", "pin_hash": f"{n:064x}"}
        else:
            body |= {"secret": {"pin_salt": f"{n:032x}", "pin_hash": f"{n:064x}",
                                "pin_key": "k1"}}
        steps.append((origin, "cashier_added", body, draw(TIMES)))
    for origin in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=2)):
        n = draw(st.integers(3, 4))
        body = {"id": "c1", "name": "Alice", "role": draw(st.sampled_from(["cashier", "manager"])),
                "disabled": draw(st.booleans()),
                "secret": {"pin_salt": f"{n:032x}", "pin_hash": f"{n:064x}", "pin_key": "k1"}}
        steps.append((origin, "cashier_changed", body, draw(TIMES)))
    for origin in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=3)):
        scope, subject = draw(st.sampled_from([("cashier", "c1"), ("till", "T02-n1")]))
        body = {"scope": scope, "subject": subject, "till": "T02-n1", "seconds": 30,
                "failures": 5, "until": draw(TIMES)}
        steps.append((origin, "login_locked", body, draw(TIMES)))
    # Wrong PINs and logins of one cashier on several nodes (every node counts them all).
    for origin in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=3)):
        kind = draw(st.sampled_from(["login_failed", "cashier_logged_in"]))
        steps.append((origin, kind, {"cashier": "c1", "till": "T02-n1"}, draw(TIMES)))
    steps.append((draw(st.sampled_from(NODES)), "login_failed",
                  {"cashier": "c1", "till": "T02-n2"}, draw(TIMES)))
    steps.append((draw(st.sampled_from(NODES)), "cashier_logged_in",
                  {"cashier": "c1", "till": "T02-n2"}, draw(TIMES)))
    return steps


@st.composite
def tills(draw: st.DrawFn) -> list[Step]:
    """Old nodes cut apart both giving `T01`; new codes carry their node."""
    steps = []
    for origin in draw(st.lists(st.sampled_from(NODES), unique=True, max_size=3)):
        steps.append((origin, "till_paired", {"code": "T01", "name": f"old {origin}",
                                              "token_sha256": f"old-{origin}"}, draw(TIMES)))
    for origin in NODES:
        for number in range(draw(st.integers(1 if origin == "n1" else 0, 2))):
            code = f"T{number + 2:02d}-{origin}"
            body = {"code": code, "name": code, "token_sha256": f"new-{code}"}
            if number and draw(st.booleans()):  # paired again: sends its earlier codes' sales
                body["takes_over"] = [f"T02-{origin}", "T01"]
            steps.append((origin, "till_paired", body, draw(TIMES)))
    # Store IT revoking T02-n1 on one or two nodes (twice), maybe before a node has
    # its pairing, and an old till revoked under the code it had there.
    for origin in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=2, unique=True)):
        steps.append((origin, "till_revoked", {"token_sha256": "new-T02-n1", "code": "T02-n1"},
                      draw(TIMES)))
    if draw(st.booleans()):
        steps.append((draw(st.sampled_from(NODES)), "till_revoked",
                      {"token_sha256": "old-n2", "code": "T01"}, draw(TIMES)))
    return steps


def _line(line_id: str, product: str, price: int, quantity: int) -> dict[str, Any]:
    return {"id": line_id, "product_id": product, "barcode": None, "name": product,
            "unit_price": price, "vat_rate": 550, "quantity": quantity}


def _sale(sale_id: str, basket: str | None, till: str, number: int,
          lines: list[dict[str, Any]]) -> dict[str, Any]:
    sold = [{**line, "total": line["unit_price"] * line["quantity"]} for line in lines]
    totals = basket_totals(Line(ln["unit_price"], ln["quantity"], ln["vat_rate"]) for ln in sold)
    body = {"id": sale_id, "till": till, "receipt_no": number,
            "receipt_number": f"{till}-{number:06d}", "cashier": "c1", "lines": sold,
            "totals": totals, "tenders": [{"method": "cash", "amount": totals["total"]}],
            "change": 0}
    return body if basket is None else {**body, "basket_id": basket}


@st.composite
def sales(draw: st.DrawFn) -> list[Step]:
    """Sales, some resent through another node after a failover; their receipts printing."""
    steps: list[Step] = []
    for number in range(1, draw(st.integers(2, 3)) + 1):
        first = number == 1  # holds every kind of event; the others, some
        basket, till = f"s{number}", draw(st.sampled_from(["T02-n1", "T02-n2"]))
        # A sale of a till of before sale ids had its basket's id, and no basket_id.
        older = not first and draw(st.booleans())
        sale_id = basket if older else f"{basket}@{till}"
        seller = draw(st.sampled_from(NODES))
        lines = [_line(f"{sale_id}-l{k}", "p1", draw(st.sampled_from([100, 120])),
                       draw(st.integers(1, 3)))
                 for k in range(2 if first else draw(st.integers(1, 2)))]
        for line in lines:
            body = {"basket_id": basket, "till": till, "cashier": "c1", "line_id": line["id"],
                    **{k: line[k] for k in ("product_id", "barcode", "name", "unit_price",
                                            "vat_rate", "quantity")}}
            steps.append((seller, "basket_line_added", body, draw(TIMES)))
            if draw(st.booleans()):  # the seller died; the till put the line back elsewhere
                again = {**body, "quantity": draw(st.integers(1, 3))}
                steps.append((draw(st.sampled_from(NODES)), "basket_line_added", again,
                              draw(TIMES)))
        if first or draw(st.booleans()):
            steps.append((seller, "basket_quantity_set", {
                "basket_id": basket, "line_id": lines[0]["id"], "quantity": 5}, draw(TIMES)))
            lines[0]["quantity"] = 5
        if len(lines) > 1 and (first or draw(st.booleans())):
            steps.append((seller, "basket_line_removed", {
                "basket_id": basket, "line_id": lines[1]["id"]}, draw(TIMES)))
            lines.pop()
        # Recorded by its seller, and maybe again through the node the till moved to.
        recorders = [seller, *draw(st.lists(st.sampled_from(NODES), max_size=2))]
        job = derived_job_id("receipt", sale_id, PRINTER)
        for recorder in recorders:
            body = _sale(sale_id, None if older else basket, till, number, lines)
            if recorder != seller:
                body["resent"] = True
            time = draw(TIMES)
            steps.append((recorder, "sale_completed", body, time))
            steps.append((recorder, "print_requested", {
                "job_id": job, "printer": PRINTER.name, "node": PRINTER.node, "kind": "receipt",
                "sale_id": sale_id, "open_drawer": True}, time))
        drawer = "drawer_opened" if first else "drawer_unknown"
        steps += draw(printing(job, sale_id, drawer, full=first))
        if first or draw(st.booleans()):  # a reprint "instead", elsewhere, calling this job off
            by = draw(st.sampled_from(NODES))
            steps.append((by, "print_job_cancelled", {
                "job_id": job, "printer": PRINTER.name, "node": PRINTER.node, "by": "c1"},
                draw(TIMES)))
            steps.append((by, "print_requested", {
                "job_id": f"{sale_id}-again-{by}", "printer": "caisse", "node": by,
                "kind": "receipt", "sale_id": sale_id, "open_drawer": False,
                "copy": "original", "replaces": [job]}, draw(TIMES)))
    return steps


@st.composite
def printing(draw: st.DrawFn, job: str, sale_id: str, drawer: str, full: bool) -> list[Step]:
    """What the printer's node records of one job, in its order (`full`: every kind of event:
    waiting for its sale, an attempt cut short after its cut, then one done)."""
    attempt = {"job_id": job, "printer": PRINTER.name, "copy": "original"}
    steps: list[Step] = []
    if full or draw(st.booleans()):
        steps.append((PRINTER.node, "print_job_waiting", {**attempt, "sale_id": sale_id},
                      draw(TIMES)))
    least = 1 if drawer == "drawer_unknown" else 0
    for attempt_no in range(2 if full else draw(st.integers(least, 2))):
        steps.append((PRINTER.node, "print_job_started", attempt, draw(TIMES)))
        if attempt_no == 0:
            steps.append((PRINTER.node, drawer, {
                "job_id": job, "printer": PRINTER.name, "reason": "cash sale",
                "sale_id": sale_id}, draw(TIMES)))
        if (full and attempt_no == 0) or draw(st.booleans()):
            steps.append((PRINTER.node, "print_job_cutting", attempt, draw(TIMES)))
        if (full and attempt_no == 0) or (not full and draw(st.booleans())):
            steps.append((PRINTER.node, "print_job_interrupted", {
                **attempt, "partial": draw(st.booleans()), "cut_sent": draw(st.booleans()),
                "reason": "unplugged"}, draw(TIMES)))
        else:
            steps.append((PRINTER.node, "print_job_done", {**attempt, "outcome": "done"},
                          draw(TIMES)))
            break
    return steps


@st.composite
def takeovers(draw: st.DrawFn) -> list[Step]:
    """A basket left on a dead till, taken over by two tills on nodes cut apart."""
    basket = "b-left"
    line = _line("b-l1", "p2", 100, 1)
    added = {"basket_id": basket, "till": "T03-n1", "cashier": "c1", "line_id": line["id"],
             **{k: line[k] for k in ("product_id", "barcode", "name", "unit_price", "vat_rate",
                                     "quantity")}}
    steps: list[Step] = [("n1", "basket_line_added", added, draw(TIMES))]
    takers = draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=3))
    for index, (node, generation) in enumerate(zip(takers, [1, 1, 2], strict=False)):
        till = f"T0{index + 4}-{node}"
        steps.append((node, "basket_taken_over", {
            "basket_id": basket, "from_till": "T03-n1", "till": till, "cashier": "c1",
            "generation": generation}, draw(TIMES)))
        if draw(st.booleans()):
            more = {**added, "till": till, "line_id": f"b-l{index + 2}"}
            steps.append((node, "basket_line_added", more, draw(TIMES)))
        if draw(st.booleans()):  # each holder sells it while cut apart: two sales, one basket
            sold = _sale(f"{basket}@{till}", basket, till, 50, [line])
            if draw(st.booleans()):  # recorded where another till held it open
                sold["closes_basket"] = False
            steps.append((node, "sale_completed", sold, draw(TIMES)))
    # Voided by a holder; or another basket, voided by its till as its line arrives elsewhere.
    voided = basket if draw(st.booleans()) else "b-void"
    if voided != basket:
        steps.append((draw(st.sampled_from(NODES)), "basket_line_added",
                      {**added, "basket_id": voided, "till": "T09-n1"}, draw(TIMES)))
    steps.append((draw(st.sampled_from(takers)), "basket_voided", {
        "basket_id": voided, "till": "T09-n1", "cashier": "c1", "lines": [], "total": 0},
        draw(TIMES)))
    return steps


DISCOUNTS = st.one_of(st.none(), st.fixed_dictionaries({
    "kind": st.sampled_from(["amount", "percent"]), "value": st.sampled_from([10, 500, 1000]),
    "reason": st.sampled_from(["abîmé", "fidélité"])}))


@st.composite
def discounts(draw: st.DrawFn) -> list[Step]:
    """A cashier's discounts on a line and on the basket, set again through another node
    after a failover (ties in time), perhaps before the line itself arrives, and a basket
    sold or voided with its discounts on."""
    basket, till = "b-disc", "T05-n1"
    line = _line("l-disc", "p1", 100, 2)
    steps: list[Step] = [("n1", "basket_line_added", {
        "basket_id": basket, "till": till, "cashier": "c1", "line_id": line["id"],
        "product_id": "p1", "barcode": None, "name": "Pain", "unit_price": 100,
        "vat_rate": 550, "quantity": 2, "unit": draw(st.sampled_from(["piece", "g"]))},
        draw(TIMES))]
    for index in range(draw(st.integers(2, 5))):
        node = draw(st.sampled_from(NODES))
        if index == 0 or (index > 1 and draw(st.booleans())):
            steps.append((node, "basket_line_discounted", {
                "basket_id": basket, "line_id": line["id"], "discount": draw(DISCOUNTS)},
                draw(TIMES)))
        else:
            steps.append((node, "basket_discounted", {
                "basket_id": basket, "discount": draw(DISCOUNTS)}, draw(TIMES)))
    if draw(st.booleans()):
        steps.append(("n2", "basket_voided", {"basket_id": basket, "till": till,
                                               "cashier": "c1", "lines": [], "total": 0},
                      draw(TIMES)))
    return steps


@st.composite
def parkings(draw: st.DrawFn) -> list[Step]:
    """A basket parked (the park resent through another node), resumed by two tills on nodes
    cut apart, parked again by a holder and maybe resumed again."""
    basket = "b-parked"
    line = _line("p-l1", "p1", 120, 2)
    added = {"basket_id": basket, "till": "T02-n1", "cashier": "c1", "line_id": line["id"],
             **{k: line[k] for k in ("product_id", "barcode", "name", "unit_price", "vat_rate",
                                     "quantity")}}
    steps: list[Step] = [("n1", "basket_line_added", added, draw(TIMES))]
    for origin in ["n1", *draw(st.lists(st.sampled_from(NODES), max_size=1))]:
        steps.append((origin, "basket_parked", {
            "basket_id": basket, "till": "T02-n1", "cashier": "c1",
            "name": draw(st.sampled_from(["Paul", "Mme Dupont"])), "generation": 0},
            draw(TIMES)))
    takers = draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=2))
    for index, node in enumerate(takers):
        till = f"T0{index + 5}-{node}"
        steps.append((node, "basket_taken_over", {
            "basket_id": basket, "from_till": "T02-n1", "till": till, "cashier": "c1",
            "generation": 1, "resumed": True}, draw(TIMES)))
        if draw(st.booleans()):  # its holder parks it again (as it believes it holds it)
            steps.append((node, "basket_parked", {
                "basket_id": basket, "till": till, "cashier": "c1", "name": f"again {index}",
                "generation": 1}, draw(TIMES)))
            if draw(st.booleans()):
                steps.append((draw(st.sampled_from(NODES)), "basket_taken_over", {
                    "basket_id": basket, "from_till": till, "till": "T09-n3", "cashier": "c1",
                    "generation": 2, "resumed": True}, draw(TIMES)))
    return steps


@st.composite
def refunds(draw: st.DrawFn) -> list[Step]:
    """Refunds of one sale: resent through another node (maybe with other flags, so another
    hash), the last unit refunded by nodes cut apart, one without a receipt, one of a sale
    that never reaches some nodes in time (it arrives after its refund)."""
    sale_id, till = "s-refunded@T02-n1", "T02-n1"
    lines = [_line("r-l1", "p1", 120, 2), _line("r-l2", "p2", 100, 1)]
    seller = draw(st.sampled_from(NODES))
    steps: list[Step] = [(seller, "sale_completed", _sale(sale_id, "s-refunded", till, 60, lines),
                          draw(TIMES))]
    for number in range(draw(st.integers(1, 4))):
        refunded = [{"line_id": line["id"], "product_id": line["product_id"],
                     "name": line["name"], "vat_rate": 550, "unit_price": line["unit_price"],
                     "quantity": 1, "amount": line["unit_price"],
                     "total": -line["unit_price"]}
                    for line in draw(st.lists(st.sampled_from(lines), min_size=1, max_size=2,
                                              unique_by=lambda line: line["id"]))]
        without_receipt = number == 3
        body = {"id": f"r{number}@{till}#refund", "refund_of": None if without_receipt else sale_id,
                "till": till, "receipt_no": 61 + number,
                "receipt_number": f"{till}-{61 + number:06d}", "cashier": "c1",
                "lines": refunded, "totals": refund_totals(refunded),
                "tenders": [{"method": "cash",
                             "amount": -sum(line["amount"] for line in refunded)}],
                "change": 0, "reason": "rassis"}
        if without_receipt:
            body["approved_by"] = "c1"
        # Recorded by one node (each side of a cut may take one of the last unit) and maybe
        # again through another, as a till resending it: flagged otherwise, so another hash.
        for index, origin in enumerate(draw(st.lists(st.sampled_from(NODES), min_size=1,
                                                     max_size=2))):
            again = body if index == 0 else {**body, "resent": True, "flags": ["over_refunded"]}
            steps.append((origin, "sale_refunded", again, draw(TIMES)))
    return steps


@st.composite
def printers(draw: st.DrawFn) -> list[Step]:
    """Each node announces its printers (again when they change); n0's were n3's past."""
    steps = []
    for node in (*NODES, RETIRED, RETIRED_BETWEEN):
        for _ in range(draw(st.integers(0 if node in NODES else 1, 2))):
            tills = draw(st.lists(st.sampled_from(["T02-n1", "T02-n2", "T04-n2"]),
                                  unique=True, max_size=2))
            body = {"node": node, "printers": [{"name": "comptoir", "kind": "file",
                                                "tills": tills}]}
            steps.append((node, "printers_announced", body, draw(TIMES)))
    return steps


@st.composite
def card_payments(draw: st.DrawFn) -> list[Step]:
    """Terminals announced (n0's were n3's past); payments asked through two nodes (a
    resend across a partition, or an id reused for another amount), dialled and answered
    by their terminal's node, an unknown one settled from the slip on two nodes."""
    steps = []
    for node in (*NODES, RETIRED):
        for _ in range(draw(st.integers(0 if node in NODES else 1, 2))):
            tills = draw(st.lists(st.sampled_from(["T02-n1", "T02-n2"]), unique=True,
                                  max_size=2))
            steps.append((node, "terminals_announced",
                          {"node": node, "terminals": [{"name": "tpe-1", "tills": tills}]},
                          draw(TIMES)))
    for index, payment in enumerate(("pay1", "pay2")):
        dialler = draw(st.sampled_from(["n1", "n2"]))
        ids = {"payment_id": payment, "node": dialler, "terminal": "tpe-1"}
        for origin in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=3)):
            steps.append((origin, "card_payment_requested", {
                **ids, "till": "T02-n1", "cashier": "c1", "basket_id": "b-card",
                "amount": draw(st.sampled_from([500, 500, 300])),
                "refund": draw(st.booleans()), "requested_at": draw(TIMES)}, draw(TIMES)))
        if index == 0 or draw(st.booleans()):
            steps.append((dialler, "card_payment_started", ids, draw(TIMES)))
            status = draw(st.sampled_from(["approved", "declined", "unreachable", "unknown"]))
            result = {**ids, "status": status, "code": None if status == "approved" else "04",
                      "reason": "refused" if status == "declined" else None}
            if status == "approved":
                result |= {"authorised": draw(st.sampled_from([500, 250])),
                           "authorisation": "123456", "last4": "1234",
                           "card": "4970XXXXXXXX1234", "application": "CB",
                           "read_mode": "C", "transaction": "ab12cd34ef56ab78"}
            steps.append((dialler, "card_payment_result", result, draw(TIMES)))
        for origin in draw(st.lists(st.sampled_from(NODES), min_size=1 - index, max_size=2)):
            steps.append((origin, "card_payment_settled", {
                "payment_id": payment, "approved": draw(st.booleans()),
                "reference": draw(st.sampled_from(["slip-1", "slip-2"])), "amount": 500,
                "cashier": "c1"}, draw(TIMES)))
    return steps


@st.composite
def shifts(draw: st.DrawFn) -> list[Step]:
    """A shift opened, moved and closed through several nodes (a retry elsewhere), a till
    switched to training and back on two nodes, and the technical journal's records."""
    steps: list[Step] = []
    shift = {"shift_id": "sh1@T02-n1", "till": "T02-n1", "business_day": "2026-03-01",
             "ends_at": "2026-03-02T03:00:00.000Z"}
    for origin in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=2)):
        steps.append((origin, "shift_opened", {**shift, "cashier": "c1",
                                               "float": draw(st.sampled_from([0, 15000]))},
                      draw(TIMES)))
    for origin in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=2)):
        steps.append((origin, "cash_moved", {
            "move_id": "m1@T02-n1", "shift_id": shift["shift_id"], "till": "T02-n1",
            "cashier": "c1", "amount": draw(st.sampled_from([-5000, 2000])),
            "reason": "banque"}, draw(TIMES)))
    for origin in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=2)):
        counted = draw(st.sampled_from([9000, 10000]))
        steps.append((origin, "shift_closed", {
            "shift_id": shift["shift_id"], "till": "T02-n1", "cashier": "c1",
            "counted": {"cash": counted}, "expected": {"cash": 10000},
            "difference": {"cash": counted - 10000}}, draw(TIMES)))
    for origin in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=3)):
        steps.append((origin, "till_training_set", {"till": "T02-n1", "on": draw(st.booleans()),
                                                    "by": "c1"}, draw(TIMES)))
    node = draw(st.sampled_from(NODES))
    steps += [(node, "node_started", {"version": "0.1.0", "config_digest": "ab" * 32},
               draw(TIMES)),
              (node, "cashier_logged_out", {"till": "T02-n1", "cashier": "c1"}, draw(TIMES)),
              (node, "till_offline", {"till": "T02-n1", "first": "2026-03-01T10:00:00.000Z",
                                      "last": "2026-03-01T10:05:00.000Z", "sales": 2},
               draw(TIMES)),
              (node, "clock_jumped", {"from": "2026-03-01T10:00:00.000Z",
                                      "to": "2026-03-01T09:50:00.000Z", "seconds": -600},
               draw(TIMES)),
              (node, "node_stopped", {"version": "0.1.0", "why": "stopped"}, draw(TIMES))]
    return steps


@st.composite
def histories(draw: st.DrawFn) -> dict[str, list[Event]]:
    """Each origin's chain, every event type in it."""
    steps = [step for story in (catalogue(), cashiers(), tills(), sales(), takeovers(),
                                parkings(), discounts(), refunds(), printers(),
                                card_payments(), shifts())
             for step in draw(story)]
    started = ("n3", "origin_started", {
        "predecessor": RETIRED, "reason": "restored_from_backup", "retires_predecessor": True,
        "cut": {"seq": 1, "hash": "0" * 64}, "backup": {"taken_at": "2026-03-01T09:00:00Z"},
        "also_retires": [RETIRED_BETWEEN]},
        draw(TIMES))
    # A node records head office's key (as its pull does) before head office's
    # origin can be taken anywhere.
    trusted = ("n1", "headoffice_key_trusted", headoffice_trusted(), draw(TIMES))
    # The store CA vouches for what was held from before signing (edge/journal/vouches.py);
    # its vouches reach peers through whichever node wrote them.
    vouched = [(node, "unsigned_heads_vouched", ca_vouch_body(
                [{"origin": "old1", "seq": draw(st.integers(1, 3)), "hash": "ab" * 32}],
                store_ca()[0]), draw(TIMES)) for node in ("n1", "n2")]
    chains: dict[str, list[Event]] = {}
    # n0, n4 and n3 ran one folder, so one tls/: one node name (a node retires only its own).
    signer = {RETIRED: "n3", RETIRED_BETWEEN: "n3"}
    # An archive's export is recorded (edge/fiscal/exports.py): nothing projected.
    exported = (draw(st.sampled_from(NODES)), "archive_exported", {
        "period": "2026-02", "manifest_sha256": "ab" * 32, "files": ["events.jsonl"]},
        draw(TIMES))
    # Two nodes close the same day at once (edge/fiscal/closures.py): one wins everywhere.
    closed = [(node, "closure_made", {
        "kind": "day", "period": "2026-03-01", "number": 1, "previous": None,
        "bounds": {"start": "2026-03-01T03:00:00.000Z", "end": "2026-03-02T03:00:00.000Z"},
        "covers": {"n1": {"seq": 1, "hash": "ab" * 32}}, "totals": {}, "late": {},
        "grand_total": draw(st.integers(0, 9)), "grand_total_abs": 0,
        "sales_digest": "cd" * 32, "made_by": "cli", "version": 1}, draw(TIMES))
        for node in draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=3))]
    for origin, type_, body, time in [started, trusted, *vouched, exported, *closed, *steps]:
        chain = chains.setdefault(origin, [])
        node = identity(signer.get(origin, origin))
        key = headoffice_key() if origin == HEAD_OFFICE else node.signing_key
        if not chain:  # every origin's first event certifies its key
            certified = headoffice_certified_body(key) if origin == HEAD_OFFICE \
                else node_certified_body(node)
            chain.append(_signed(ChainHead(), origin, "origin_certified", certified, time, key))
        head = ChainHead(chain[-1].seq, chain[-1].hash)
        chain.append(_signed(head, origin, type_, body, time, key))
    return chains


def _signed(head: ChainHead, origin: str, type_: str, body: dict[str, Any], time: str,
            key: Any) -> Event:
    # Its clock says `time`; its id, like its content, comes from the history alone.
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{origin}/{head.seq + 1}")
    with mock.patch("edge.journal.chain.utc_now", return_value=time), \
            mock.patch("edge.journal.chain.uuid.uuid4", return_value=event_id):
        return sign(head.next(origin, type_, body), key)


@st.composite
def arrivals(draw: st.DrawFn, chains: dict[str, list[Event]]) -> list[list[Event]]:
    """One node's arrival: any interleaving keeping each origin's order, some events twice,
    in batches of any size."""
    # A uniform shuffle (hypothesis's own permutations stay close to the identity).
    labels = [o for o, chain in chains.items() for _ in chain]
    random.Random(draw(st.integers(0, 2**32))).shuffle(labels)
    cursors = dict.fromkeys(chains, 0)
    order = []
    for origin in labels:
        order.append(chains[origin][cursors[origin]])
        cursors[origin] += 1
    for _ in range(draw(st.integers(0, 6))):
        index = draw(st.integers(0, len(order) - 1))
        where = draw(st.integers(index + 1, len(order)))
        order.insert(where, order[index])  # again, after it first came
    batches, start = [], 0
    while start < len(order):
        size = draw(st.integers(1, 40))
        batches.append(order[start:start + size])
        start += size
    return batches


def _projections(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    db = sqlite3.connect(path)
    try:
        tables = [name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE 'products_fts%'") if name not in NOT_PROJECTIONS]
        dump = {}
        for table in tables:
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")
                       if row[1] not in LOCAL_COLUMNS.get(table, ())]
            rows = db.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            dump[table] = sorted(rows, key=repr)
        return dump
    finally:
        db.close()


async def _observe(path: Path, batches: list[list[Event]]) -> dict[str, list[tuple[Any, ...]]]:
    """Apply `batches` as a peer link does; an origin that cannot be taken yet (head office's,
    before a node's record of its key arrived) is taken again with the next batch."""
    observer = f"observer-{path.stem}"
    journal = Journal(path, origin=observer, trust=identity(observer))
    await journal.open()
    try:
        waiting: list[Event] = []
        for batch in [*batches, [], []]:
            todo = waiting + batch
            _, refused, gaps = await journal.write(
                lambda tx, todo=todo: apply_each_origin(tx, todo))
            assert refused == {}
            waiting = [event for event in todo if event.origin in gaps]
        assert waiting == []
    finally:
        await journal.close()
    return _projections(path)


_counter = itertools.count()


@contextmanager
def _folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"projections-{next(_counter)}-") as name:
        yield Path(name)


# About 4 s. No shrinking: each example opens three journals, and a failure
# already names the table that differs and shows the history that did it.
@settings(max_examples=20, deadline=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_every_node_projects_the_same_tables_whatever_the_order_of_arrival(
    data: st.DataObject,
) -> None:
    chains = data.draw(histories())
    types = {event.type for chain in chains.values() for event in chain}
    assert types == set(registry()), "the history must hold every event type"
    in_order = [[event for chain in chains.values() for event in chain]]
    orders = [in_order, data.draw(arrivals(chains)), data.draw(arrivals(chains))]

    async def observe_all() -> list[dict[str, list[tuple[Any, ...]]]]:
        with _folder() as folder:
            return [await _observe(folder / f"node{n}.sqlite3", batches)
                    for n, batches in enumerate(orders)]

    first, *others = asyncio.run(observe_all())
    assert first["sales"] and first["print_jobs"] and first["baskets"] and first["refund_lines"]
    assert first["card_payments"] and first["store_terminals"]
    assert first["shifts"] and first["till_modes"]
    for other in others:
        for table in first:
            assert other[table] == first[table], f"{table} differs by order of arrival"
