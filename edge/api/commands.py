"""The till commands (docs/protocol.md documents each one).

Each handler is thin: its arguments are already checked, it calls the module
that owns the concept and returns what the till should see.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from edge import PROTOCOL_VERSION
from edge.api.approvals import Approval, approved_by
from edge.api.websocket_api import Connection, NoArgs, command
from edge.fiscal import jet
from edge.journal.chain import Event
from edge.messages import INVALID_FIELD, MANAGER_REQUIRED, EdgeError, event_message
from edge.schema import limits
from edge.selling import baskets, catalogue, logins, parking, sales, staff, tills
from edge.selling.catalogue_batches import one_product_each
from edge.selling.line_items import MAX_GRAMS, MAX_PIECES

log = logging.getLogger(__name__)


def client_id() -> Any:
    """An id the till made up (a UUID, in practice)."""
    return field(metadata=limits(min=1, max_length=64))


def sale_id_arg() -> Any:
    """A sale's id: its basket's id @ its till's code (edge/selling/sales.py)."""
    return field(metadata=limits(min=1, max_length=128))


# Pushed to subscribers. Credentials (till_paired, cashier_added) never are.
# The catalogue is pushed to any authenticated till (it keeps its own copy to
# sell offline, refreshed right after `auth`); what the store sold, holds and
# prints only while a cashier is logged in on the connection: a till token
# alone, stolen from a till, must not stream the store's sales (issue 9).
CATALOGUE_EVENT_TYPES = frozenset({"product_upserted", "product_delisted",
                                   "promotion_upserted", "promotion_ended"})
PUBLIC_EVENT_TYPES = CATALOGUE_EVENT_TYPES | frozenset({
    "basket_line_added", "basket_quantity_set", "basket_line_removed", "basket_voided",
    "basket_taken_over", "basket_parked", "basket_line_discounted", "basket_discounted",
    "sale_completed", "sale_refunded", "print_requested", "print_job_done", "drawer_opened",
    "print_job_started", "print_job_interrupted",
    "print_job_waiting", "print_job_cutting", "print_job_cancelled", "drawer_unknown",
})


def seller_of(conn: Connection) -> baskets.Seller:
    assert conn.till is not None and conn.cashier is not None
    return baskets.Seller(till=conn.till["code"], cashier=conn.cashier["id"])


def taken_over(conn: Connection) -> tuple[str, ...]:
    """The earlier codes this till sends the offline sales and refunds of (paired again)."""
    return tuple(conn.till.get("takes_over", ())) if conn.till else ()


# Every authenticated till connection (of any node in this process), so a
# takeover can tell a basket's holder is on screen here. Gone with the socket.
_TILL_CONNECTIONS: weakref.WeakSet[Connection] = weakref.WeakSet()


def connected_tills(conn: Connection) -> frozenset[str]:
    """The codes of the tills connected to this connection's node now."""
    return frozenset(
        other.till["code"] for other in list(_TILL_CONNECTIONS)
        if other.node is conn.node and other.till is not None and not other.ws.closed
    )


@command("ping", NoArgs, access="anyone")
async def ping(conn: Connection, args: NoArgs) -> str:
    """Lets a browser, which cannot see websocket pings, tell a live node from a frozen one."""
    return "pong"


@dataclass(frozen=True)
class AuthArgs:
    token: str = field(metadata=limits(min=1, max_length=200))


# When each till was last seen by a node (edge/selling/tills.py): one per node.
_LAST_SEEN: weakref.WeakKeyDictionary[Any, tills.LastSeen] = weakref.WeakKeyDictionary()
# Said to a till whose token store IT revoked while it was connected.
CLOSE_REVOKED = 4001


@command("auth", AuthArgs, access="anyone")
async def auth(conn: Connection, args: AuthArgs) -> dict[str, Any]:
    node = conn.node
    conn.till = None
    conn.cashier = None
    token_sha256 = tills.digest(args.token)
    # Watched before the check, so a revocation committed in between is not missed.
    _watch_revocation(conn, token_sha256)
    conn.till = await tills.authenticate(node.journal, args.token)
    _TILL_CONNECTIONS.add(conn)
    await _LAST_SEEN.setdefault(node, tills.LastSeen()).saw(node.journal, token_sha256)
    return {
        "protocol": PROTOCOL_VERSION,
        "store": {"id": node.config.store_id, "name": node.config.store_name, "currency": "EUR"},
        "node": {"id": node.node_id},
        "till": conn.till,
        # For the login screen, before anyone logs in: who, never a role or a PIN's hash.
        "cashiers": [{"id": cashier["id"], "name": cashier["name"]}
                     for cashier in await staff.list_cashiers(node.journal)],
        "nodes": node.store_nodes(),
        "last_receipt_no": await sales.last_receipt_no(node.journal, conn.till["code"]),
        "settings": {"scan_merges_lines": node.config.scan_merges_lines,
                     "idle_lock_minutes": node.config.idle_lock_minutes,
                     "meal_voucher_cap": node.config.meal_voucher_cap,
                     "discount_limit": node.config.discount_limit,
                     "open_price_limit": node.config.open_price_limit},
    }


def _watch_revocation(conn: Connection, token_sha256: str) -> None:
    """Hang up on this till as soon as this node learns its token was revoked."""

    def on_events(events: list[Event]) -> None:
        if token_sha256 in tills.revoked_tokens(events):
            log.warning("%s was revoked: its connection is closed", conn.who)
            conn.till = None
            conn.cashier = None
            conn.hang_up(CLOSE_REVOKED, b"till revoked")

    stop = conn.watches.pop("revocation", None)
    if stop is not None:
        stop()
    conn.watches["revocation"] = conn.node.journal.add_listener(on_events)


def till_connections(node: Any) -> dict[str, int]:
    """The tills connected to `node` now: code -> connections (for `edge tills list`)."""
    counts: dict[str, int] = {}
    for conn in list(_TILL_CONNECTIONS):
        if conn.node is node and conn.till is not None and not conn.ws.closed:
            counts[conn.till["code"]] = counts.get(conn.till["code"], 0) + 1
    return counts


@dataclass(frozen=True)
class LoginArgs:
    cashier_id: str = client_id()
    pin: str = field(metadata=limits(min=1, max_length=16))


@command("login", LoginArgs, access="till")
async def login(conn: Connection, args: LoginArgs) -> dict[str, Any]:
    assert conn.till is not None
    node = conn.node
    conn.cashier = await logins.login(
        node.journal, node.login_throttle, staff.pin_key(node.config), conn.till["code"],
        args.cashier_id, args.pin,
    )
    return {"cashier": conn.cashier}


@command("logout", NoArgs, access="till")
async def logout(conn: Connection, args: NoArgs) -> dict[str, Any]:
    """A basket left open with lines is parked under the cashier's name, never handed on."""
    try:
        parked = None if conn.cashier is None else await parking.park_open_basket(
            conn.node.journal, seller_of(conn), conn.cashier["name"])
        if conn.cashier is not None:  # the technical journal's record (edge/fiscal/jet.py)
            seller = seller_of(conn)
            await jet.cashier_logged_out(conn.node.journal, seller.till, seller.cashier)
    finally:
        conn.cashier = None  # logged out even if the basket could not be parked (disk full)
    return {"parked": parked}


@dataclass(frozen=True)
class LookupArgs:
    barcode: str = field(metadata=limits(min=1, max_length=32))


@command("catalogue/lookup", LookupArgs, access="till")
async def lookup(conn: Connection, args: LookupArgs) -> dict[str, Any]:
    return await catalogue.lookup(conn.node.journal, args.barcode)


@dataclass(frozen=True)
class SearchArgs:
    query: str = field(metadata=limits(max_length=100))
    limit: int = field(default=20, metadata=limits(min=1, max=50))


@command("catalogue/search", SearchArgs, access="till")
async def search(conn: Connection, args: SearchArgs) -> list[dict[str, Any]]:
    return await catalogue.search(conn.node.journal, args.query, args.limit)


@command("basket/get")
async def basket_get(conn: Connection, args: NoArgs) -> dict[str, Any] | None:
    return await baskets.open_basket(conn.node.journal, seller_of(conn).till)


@dataclass(frozen=True)
class AddArgs:
    basket_id: str = client_id()
    line_id: str = client_id()
    barcode: str | None = field(default=None, metadata=limits(min=1, max_length=32))
    product_id: str | None = field(default=None, metadata=limits(min=1, max_length=64))
    quantity: int = field(default=1, metadata=limits(min=1, max=MAX_PIECES))
    # A product sold by the kilo, weighed here (typed, or read from a scale).
    grams: int | None = field(default=None, metadata=limits(min=1, max=MAX_GRAMS))
    # An open-price product ("Divers"): the price the cashier typed, cents.
    price: int | None = field(default=None, metadata=limits(min=0, max=100_000_000))
    approval: Approval | None = None  # an open price past the store's limit


@command("basket/add", AddArgs)
async def basket_add(conn: Connection, args: AddArgs) -> dict[str, Any]:
    if (args.barcode is None) == (args.product_id is None):
        raise EdgeError(INVALID_FIELD, "give exactly one of 'barcode' or 'product_id'")
    config = conn.node.config
    manager = None
    # The limit is on what the line comes to, not on one article of it.
    if args.price is not None and (args.price * args.quantity > config.open_price_limit
                                   or args.approval is not None):
        manager = await approved_by(conn, args.approval, f"a typed price past "
                                    f"{config.open_price_limit / 100:.2f} EUR")
    return await baskets.add_line(
        conn.node.journal, seller_of(conn), args.basket_id, args.line_id, args.quantity,
        barcode=args.barcode, product_id=args.product_id, grams=args.grams, price=args.price,
        layouts=config.embedded_barcodes, approved_by=manager,
    )


@dataclass(frozen=True)
class QuantityArgs:
    basket_id: str = client_id()
    line_id: str = client_id()
    quantity: int = field(metadata=limits(min=1, max=9999))


@command("basket/set_quantity", QuantityArgs)
async def basket_set_quantity(conn: Connection, args: QuantityArgs) -> dict[str, Any]:
    return await baskets.set_quantity(
        conn.node.journal, seller_of(conn), args.basket_id, args.line_id, args.quantity,
        discount_limit=conn.node.config.discount_limit,
    )


@dataclass(frozen=True)
class LineArgs:
    basket_id: str = client_id()
    line_id: str = client_id()


@command("basket/remove_line", LineArgs)
async def basket_remove_line(conn: Connection, args: LineArgs) -> dict[str, Any]:
    return await baskets.remove_line(
        conn.node.journal, seller_of(conn), args.basket_id, args.line_id,
        discount_limit=conn.node.config.discount_limit,
    )


@dataclass(frozen=True)
class BasketArgs:
    basket_id: str = client_id()


@command("basket/clear", BasketArgs)
async def basket_clear(conn: Connection, args: BasketArgs) -> None:
    await baskets.void_basket(conn.node.journal, seller_of(conn), args.basket_id)


@command("basket/list_open")
async def basket_list_open(conn: Connection, args: NoArgs) -> list[dict[str, Any]]:
    return await baskets.list_open(conn.node.journal)


@dataclass(frozen=True)
class TakeOverArgs:
    basket_id: str = client_id()
    force: bool = False


@command("basket/take_over", TakeOverArgs)
async def basket_take_over(conn: Connection, args: TakeOverArgs) -> dict[str, Any]:
    assert conn.cashier is not None
    if args.force and conn.cashier["role"] != "manager":
        raise EdgeError(MANAGER_REQUIRED, "only a manager may take over a basket in use")
    return await baskets.take_over(
        conn.node.journal, seller_of(conn), args.basket_id, connected_tills(conn), args.force
    )


@dataclass(frozen=True)
class ExportArgs:
    after: str | None = field(default=None, metadata=limits(max_length=64))
    limit: int = field(default=500, metadata=limits(min=1, max=2000))


@command("catalogue/export", ExportArgs, access="till", aside=True)
async def catalogue_export(conn: Connection, args: ExportArgs) -> dict[str, Any]:
    products = await catalogue.export(conn.node.journal, args.after, args.limit)
    more = len(products) == args.limit
    answer = {"products": products, "next": products[-1]["id"] if more else None}
    if args.after is None:  # the first page: the grid, promotions, barcode layouts
        from edge.api.catalogue_commands import till_catalogue_settings

        answer |= await till_catalogue_settings(conn.node.journal, conn.node.config)
    return answer


@dataclass(frozen=True)
class SubscribeArgs:
    event_types: list[str] | None = field(default=None, metadata=limits(max_length=20))


@command("subscribe_events", SubscribeArgs, access="till")
async def subscribe_events(conn: Connection, args: SubscribeArgs) -> None:
    wanted = PUBLIC_EVENT_TYPES & set(args.event_types or PUBLIC_EVENT_TYPES)
    subscription = conn.current_id

    def push(events: list[Event]) -> None:
        logged_in = conn.cashier is not None  # looked at each time: logout stops the rest
        for event in one_product_each(events):  # head office's batches: a product each
            if event.type in wanted and (logged_in or event.type in CATALOGUE_EVENT_TYPES):
                conn.send(event_message(subscription, {
                    "origin": event.origin, "seq": event.seq, "type": event.type,
                    "time": event.time, "body": event.body,
                }))

    conn.subscribe(conn.node.journal.add_listener(push))


@dataclass(frozen=True)
class UnsubscribeArgs:
    subscription: int


@command("unsubscribe_events", UnsubscribeArgs, access="till")
async def unsubscribe_events(conn: Connection, args: UnsubscribeArgs) -> None:
    unsubscribe = conn.subscriptions.pop(args.subscription, None)
    if unsubscribe is None:
        raise EdgeError(INVALID_FIELD, f"no subscription {args.subscription} on this connection")
    unsubscribe()
