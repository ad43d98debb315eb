"""A manager's approval on the spot: a PIN typed on the till where it happens.

A command that may need one (a discount past the store's limit, an open
price, a refund without a receipt) takes an optional `approval` argument
({manager, pin}). `approved_by` checks it as a login checks a PIN (same
counters, same locks, store-wide) and returns the manager's id for the event
to record. The cashier stays logged in: nobody else is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.api.websocket_api import Connection
from edge.messages import MANAGER_REQUIRED, EdgeError
from edge.schema import limits
from edge.selling import logins, staff


@dataclass(frozen=True)
class Approval:
    manager: str = field(metadata=limits(min=1, max_length=64))
    pin: str = field(metadata=limits(min=1, max_length=16))


async def approved_by(conn: Connection, approval: Approval | None, why: str) -> str:
    """The id of the manager approving `why` here: the logged-in cashier if a manager,
    else the one whose PIN `approval` carries; MANAGER_REQUIRED without either."""
    assert conn.till is not None and conn.cashier is not None
    if approval is None:
        if conn.cashier["role"] == "manager":
            return conn.cashier["id"]
        raise EdgeError(MANAGER_REQUIRED, f"{why} needs a manager's approval",
                        {"approval": "required"})
    node = conn.node
    manager = await logins.approve_as_manager(
        node.journal, node.login_throttle, staff.pin_key(node.config), conn.till["code"],
        approval.manager, approval.pin)
    return manager["id"]
