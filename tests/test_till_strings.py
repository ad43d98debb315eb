"""A till's strings hold no control character: a NUL in a sale id jammed head office (PostgreSQL).

A cashier's till (or a stolen token plus any cashier's PIN) names its basket
with a NUL character, which the node takes (a basket id is any string up to 64)
and head office copies into `sales.id`, a PostgreSQL TEXT column, which cannot
hold NUL: every push carrying that sale fails, so no later sale of the node
ever reaches head office.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest
from headoffice_support import CertificateAuthority, HeadOffice, store_node, wait_for
from test_sync_outage import BAGUETTE

STORE = "demo-boulangerie"


async def sell(till, basket: str) -> dict:
    await till.call("basket/add", basket_id=basket, line_id=str(uuid.uuid4()),
                    barcode=BAGUETTE)
    return await till.call("sale/complete", basket_id=basket,
                           tenders=[{"method": "cash", "amount": 500}])


@pytest.mark.parametrize("headoffice_db", ["postgresql"], indirect=True)
async def test_a_nul_in_a_basket_id_does_not_stop_later_sales_reaching_head_office(
    tmp_path: Path, headoffice_db: str, ca: CertificateAuthority
) -> None:
    headoffice = HeadOffice(headoffice_db, ca)
    server = await headoffice.start()
    try:
        token = await server.storage.add_store(STORE)
        async with store_node(tmp_path / "a", headoffice.url, token, ca) as node, \
                node.till() as till:
            with contextlib.suppress(Exception):  # refused at the till: a fix too
                await sell(till, "evil\u0000basket")
            honest = await sell(till, str(uuid.uuid4()))

            async def arrived() -> bool:
                held = await server.storage.events(STORE)
                return any(event.type == "sale_completed" and event.body["id"] == honest["id"]
                           for event in held)

            await wait_for(arrived, 20, "the honest sale to reach head office")
    finally:
        await headoffice.stop()
