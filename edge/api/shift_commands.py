"""The till's shift and training commands: open a shift with its float, move cash in or
out, see its X report, close it with the counts, and a manager's switch to training mode.

docs/protocol.md ("Shifts and training") documents each one; the rules are
edge/fiscal/shifts.py's and edge/fiscal/training.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.api.approvals import Approval, approved_by
from edge.api.commands import client_id, seller_of
from edge.api.websocket_api import Connection, NoArgs, command
from edge.fiscal import shifts, training
from edge.journal.chain import utc_now
from edge.messages import INVALID_FIELD, EdgeError
from edge.schema import limits

MAX_CENTS = 100_000_000


@dataclass(frozen=True)
class OpenArgs:
    shift_id: str = client_id()
    float: int = field(metadata=limits(min=0, max=MAX_CENTS))  # cents counted into the drawer


@command("shift/open", OpenArgs)
async def shift_open(conn: Connection, args: OpenArgs) -> dict[str, Any]:
    seller = seller_of(conn)
    return await shifts.open_new(conn.node.journal, seller.till, seller.cashier, args.shift_id,
                                 args.float, conn.node.config.fiscal_day_cutoff)


@dataclass(frozen=True)
class CashMoveArgs:
    move_id: str = client_id()
    amount: int = field(metadata=limits(min=-MAX_CENTS, max=MAX_CENTS))  # + in, - out
    reason: str = field(metadata=limits(min=1, max_length=200))


@command("shift/cash_move", CashMoveArgs)
async def shift_cash_move(conn: Connection, args: CashMoveArgs) -> dict[str, Any]:
    if args.amount == 0:
        raise EdgeError(INVALID_FIELD, "'amount' is the cash paid in (+) or taken out (-), "
                        "never 0", {"field": "amount"})
    if not args.reason.strip():
        raise EdgeError(INVALID_FIELD, "'reason' must say why the cash moves",
                        {"field": "reason"})
    seller = seller_of(conn)
    return await shifts.move_cash(conn.node.journal, seller.till, seller.cashier, args.move_id,
                                  args.amount, args.reason.strip())


@dataclass(frozen=True)
class CloseArgs:
    counted: dict[str, Any]  # tender key -> cents counted (shifts.COUNTABLE)
    shift_id: str | None = field(default=None, metadata=limits(min=1, max_length=200))


@command("shift/close", CloseArgs)
async def shift_close(conn: Connection, args: CloseArgs) -> dict[str, Any]:
    seller = seller_of(conn)
    return await shifts.close(conn.node.journal, seller.till, seller.cashier,
                              shifts.checked_counts(args.counted), args.shift_id)


@dataclass(frozen=True)
class XArgs:
    shift_id: str | None = field(default=None, metadata=limits(min=1, max_length=200))


@command("shift/x", XArgs)
async def shift_x(conn: Connection, args: XArgs) -> dict[str, Any]:
    assert conn.cashier is not None
    return await shifts.report(conn.node.journal, seller_of(conn).till, args.shift_id,
                               any_till=conn.cashier["role"] == "manager")


@command("shift/current", NoArgs)
async def shift_current(conn: Connection, args: NoArgs) -> dict[str, Any]:
    """The till's open shift, whether the store requires one, its training mode, and the
    business day now (when it ends, when the till warns)."""
    till = seller_of(conn).till
    journal, config = conn.node.journal, conn.node.config
    day = shifts.day_of(utc_now(), config.fiscal_day_cutoff)
    return {"shift": await shifts.current(journal, till), "required": config.fiscal_shifts,
            "training": await training.training_of(journal, till),
            "business_day": day.label, "ends_at": day.ends_at, "warn_at": day.warn_at}


@dataclass(frozen=True)
class TrainingArgs:
    on: bool
    approval: Approval | None = None  # a manager's PIN, when the cashier is not one


@command("till/training", TrainingArgs)
async def till_training(conn: Connection, args: TrainingArgs) -> dict[str, Any]:
    manager = await approved_by(conn, args.approval, "training mode")
    till = seller_of(conn).till
    return {"training": await training.set_training(conn.node.journal, till, args.on, manager)}
