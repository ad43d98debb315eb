"""Attacks on the catalogue at scale (issue 12, h68): what a stale or hostile till, a hostile
store or a catalogue file can make a node do. Each test failed before its fix.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from signing_support import SignedChain, headoffice_key, headoffice_trusted, identity

from edge.api import commands  # noqa: F401  (registers every projection)
from edge.journal.migrations import migrate
from edge.journal.signing import public_hex
from edge.journal.store import FIRST_SLICE, Journal
from edge.selling.catalogue_batches import MOST_IN_AN_EVENT, PRODUCTS_PER_EVENT, one_by_one
from edge.selling.catalogue_text import hidden_character
from edge.selling.catalogue_versions import FULL_COPY_EVENTS_MIN, FULL_COPY_MIN, touched
from edge.sync.client import apply_pulled

HEADOFFICE = "headoffice-1a2b3c"


@contextlib.contextmanager
def journal_tables() -> Iterator[sqlite3.Connection]:
    """A node's schema in memory: events and products written as rows, no chain."""
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as db:
        migrate(db)
        yield db


def add_event(db: sqlite3.Connection, origin: str, seq: int, type_: str, body: object) -> None:
    db.execute("INSERT INTO events (origin, seq, id, time, type, body, prev_hash, hash) "
               "VALUES (?, ?, ?, '2026-12-01T10:00:00.000Z', ?, ?, '', ?)",
               (origin, seq, f"{origin}-{seq}", type_, orjson.dumps(body).decode(),
                f"{origin}-{seq}"))


def test_a_range_of_batches_costs_no_more_than_the_same_changes_one_by_one() -> None:
    """touched() gives up on a range of more than FULL_COPY_EVENTS_MIN product events
    before reading one (a till sending an old or crafted `since` costs a bounded count).
    Head office's batches name up to MOST_IN_AN_EVENT products each: counted as events,
    the same changes written as batches had up to a thousand times as many products
    read, the bound gone. The same changes must get the same answer however packed."""
    with journal_tables() as db:
        ids = [f"p{number:04}" for number in range(FULL_COPY_MIN)]
        db.executemany("INSERT INTO products (id, name, price, vat_rate) VALUES (?, '', 0, 0)",
                       [(product_id,) for product_id in ids])
        # The same thousand prices changed again and again: 5,000 changes, 1,000 products.
        rounds = FULL_COPY_EVENTS_MIN // len(ids) + 1
        assert len(ids) <= MOST_IN_AN_EVENT
        seq = 0
        for _ in range(rounds):
            for product_id in ids:
                seq += 1
                add_event(db, "one-by-one", seq, "product_upserted",
                          {"id": product_id, "name": "x", "price": seq, "vat_rate": 550})
        for number in range(1, rounds + 1):
            add_event(db, "headoffice-batches", number, "products_listed", {"products": [
                {"id": product_id, "name": "x", "price": number, "vat_rate": 550}
                for product_id in ids]})
        singly = touched(db, {}, {"one-by-one": seq})
        packed = touched(db, {}, {"headoffice-batches": rounds})
    assert singly.full
    assert packed.full, "the batches' products were all read: the bound counts events only"


@pytest.mark.parametrize("hidden", [
    "\u00ad",  # soft hyphen: "Pa\u00adin" and "Pain" look the same
    "\u180e",  # Mongolian vowel separator (format, invisible)
    "\u034f",  # combining grapheme joiner (invisible)
    "\u3164",  # Hangul filler: a blank that is a letter
    "\U000e0041",  # a tag character ("ASCII smuggling": invisible text)
])
def test_invisible_characters_beyond_the_list_are_refused_too(hidden: str) -> None:
    """The CSV import refuses the invisible characters that make two ids or names look
    alike (edge/selling/catalogue_text.py); these are as invisible as a zero width space."""
    assert hidden_character(f"Pa{hidden}in") is not None


# The shift screen, with a node that answers shift/current and shift/x as stubs.
SHIFT_SCREEN_AFTER_ANOTHER_CASHIER = """async () => {
    const { shiftScreen } = await import('/screen-shift.js');
    document.body.append(document.createElement('main'));
    const session = new EventTarget();
    Object.assign(session, { cashier: { name: 'Alice', role: 'cashier' }, ready: true });
    const shift = { shift_id: 's1', cashier: 'Alice', opened_at: new Date().toISOString(),
                    business_day: '2026-12-01' };
    const report = { totals: { sales: { count: 0 }, refunds: { count: 0 }, net: { total: 0 } },
                     expected: {}, moves: [] };
    const ui = {
        session, screen: 'sell', screens: {},
        client: { online: true, call: async (type) => (type === 'shift/current'
                                                       ? { shift, training: false } : report) },
        showError: (error) => { throw error; },
        show(name) { this.screen = name; },
    };
    const screen = shiftScreen(ui);
    screen.wire();
    screen.open();
    await screen.refresh();
    document.querySelector('#shift-move-amount').value = '50,00';
    document.querySelector('#shift-move-reason').value = 'banque';
    ui.show('sell');
    session.dispatchEvent(new Event('ended'));  // Alice logs out, Bob logs in
    session.cashier = { name: 'Bob', role: 'cashier' };
    screen.open();
    await screen.refresh();
    return [document.querySelector('#shift-move-amount').value,
            document.querySelector('#shift-move-reason').value];
}"""


async def test_the_next_cashier_does_not_find_the_last_ones_cash_out_typed() -> None:
    """dom.redraw keeps what was typed in the shift screen across its redraws (so an
    amount typed before shift/x answers is not wiped). The screen stays in the page when
    the cashier logs out: the next one opening it found the amount and reason the last
    one had typed, a cash-out ready to go with one tap."""
    from test_pricing_vectors import served_web_page

    async with served_web_page() as page:
        left = await page.evaluate(SHIFT_SCREEN_AFTER_ANOTHER_CASHIER)
    assert left == ["", ""]


async def test_a_pull_of_batches_starts_with_a_slice_of_a_few_products(tmp_path: Path) -> None:
    """Journal.write_in_slices starts with FIRST_SLICE items, then sizes slices from their
    time. Its items were events: a pull's first slice of head office's batches was fifty
    of them, 5,000 products in one transaction (0.3 s on a small catalogue, more at a
    million), a till's scan waiting behind it at the start of every pull answer of a
    20,000-price change. Slices are weighed in products."""
    journal = Journal(tmp_path / "store.sqlite3", origin="node-a", trust=identity("node-a"))
    await journal.open()
    try:
        office = SignedChain(HEADOFFICE)
        for batch in range(FIRST_SLICE):
            office.add("products_listed", {"products": [
                {"id": f"p{batch}-{number}", "name": "Produit", "price": 100, "vat_rate": 550}
                for number in range(PRODUCTS_PER_EVENT)]})
        products_each_write: list[int] = []
        write = journal.write

        async def counted(work: Any) -> Any:
            def counting(tx: Any) -> Any:
                result = work(tx)
                products_each_write.append(sum(len(one_by_one(event.type, event.body))
                                               for event in tx.events))
                return result
            return await write(counting)

        journal.write = counted  # type: ignore[method-assign]
        applied = await apply_pulled(journal, office.events,
                                     {public_hex(headoffice_key()): headoffice_trusted()["cert"]})
    finally:
        await journal.close()
    assert applied == FIRST_SLICE * PRODUCTS_PER_EVENT
    # The key's certificate first; then the first slice: one batch, not fifty.
    assert products_each_write[1] <= max(FIRST_SLICE, PRODUCTS_PER_EVENT)
