"""The embedded demo store: a bakery's catalogue, its promotions and three cashiers.

Loaded into an empty data folder when `edge serve` runs without a config, so a
newcomer can sell at once. The PINs are demo data, printed on start.
"""

from __future__ import annotations

import hashlib
import logging

from edge.journal.store import Journal, Tx
from edge.selling.catalogue import DEMO_CATALOGUE, import_products, parse_catalogue_csv
from edge.selling.catalogue_import import parse_promotions_csv
from edge.selling.staff import PinKey, cashier_added_body

log = logging.getLogger(__name__)

DEMO_PROMOTIONS = DEMO_CATALOGUE.with_name("demo_promotions.csv")

DEMO_CASHIERS = (
    ("alice", "Alice", "cashier", "1234"),
    ("bruno", "Bruno", "manager", "567890"),  # a manager's PIN has at least 6 digits
    ("chloe", "Chloé", "cashier", "2468"),
)


async def seed_demo_store(journal: Journal, key: PinKey) -> bool:
    """Fill an empty store; returns False if it already had a catalogue.

    `key`: the store's pin key (edge/selling/staff.py), which the PIN hashes are made with.
    """
    if await journal.read_one("SELECT 1 FROM products LIMIT 1"):
        return False
    products = parse_catalogue_csv(DEMO_CATALOGUE.read_text(encoding="utf-8"))
    count = await import_products(journal, products)

    promotions = parse_promotions_csv(DEMO_PROMOTIONS.read_text(encoding="utf-8"),
                                      {product["id"] for product in products})

    def add_cashiers(tx: Tx) -> None:
        for promotion in promotions:
            tx.append("promotion_upserted", promotion)
        for cashier_id, name, role, pin in DEMO_CASHIERS:
            # Fixed salts: every node seeding the demo store (one store key)
            # writes the same cashiers, so merged journals project the same table.
            salt = hashlib.sha256(f"demo:{cashier_id}".encode()).hexdigest()[:32]
            tx.append("cashier_added", cashier_added_body(cashier_id, name, role, pin, key, salt))

    await journal.write(add_cashiers)
    log.info("demo store created: %d products, %d promotions, %d cashiers", count,
             len(promotions), len(DEMO_CASHIERS))
    return True


def demo_cashier_lines() -> list[str]:
    return [f"  {name} ({role}): PIN {pin}" for _, name, role, pin in DEMO_CASHIERS]
