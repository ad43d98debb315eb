"""The till's parked-basket commands: park, list, resume (docs/protocol.md).

Thin, as the other command modules: edge/selling/parking.py owns the concept.
(`logout` parks too: edge/api/commands.py.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.api.commands import client_id, seller_of
from edge.api.websocket_api import Connection, NoArgs, command
from edge.schema import limits
from edge.selling import parking


@dataclass(frozen=True)
class ParkArgs:
    basket_id: str = client_id()
    # Trimmed and cut to parking.MAX_NAME; blank or absent: the cashier's name.
    name: str | None = field(default=None, metadata=limits(max_length=100))


@command("basket/park", ParkArgs)
async def basket_park(conn: Connection, args: ParkArgs) -> dict[str, Any]:
    assert conn.cashier is not None
    name = parking.clean_name(args.name, default=conn.cashier["name"])
    return await parking.park(conn.node.journal, seller_of(conn), args.basket_id, name)


@command("basket/list_parked")
async def basket_list_parked(conn: Connection, args: NoArgs) -> list[dict[str, Any]]:
    return await parking.list_parked(conn.node.journal)


@dataclass(frozen=True)
class ResumeArgs:
    basket_id: str = client_id()


@command("basket/resume", ResumeArgs)
async def basket_resume(conn: Connection, args: ResumeArgs) -> dict[str, Any]:
    return await parking.resume(conn.node.journal, seller_of(conn), args.basket_id)
