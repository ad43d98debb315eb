"""A till in Python: the protocol as the browser till speaks it, failover included.

Used by the simulated tills of tests and benchmarks, and usable by anything
that sells without a browser (a kiosk, an integration). It keeps the store's
node list from `auth`; when its node stops answering it moves to the next
one, logs the cashier back in, resends the sales of the day that node lacks
(its previous node may have died before passing them on), puts back any
basket lines that node lacks (same ids, so nothing is added twice) and
resends the command it was in.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import aiohttp

FAILOVER_ERRORS = (aiohttp.ClientError, ConnectionError, OSError, asyncio.TimeoutError)


class CommandFailed(Exception):
    def __init__(self, code: str, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.data = data or {}


class NoNodeAnswers(Exception):
    """Every node of the store was tried for `give_up_after` seconds."""


class TillClient:
    def __init__(
        self, urls: list[str], token: str, cashier: str, pin: str,
        *, timeout: float = 2.0, give_up_after: float = 30.0,
    ) -> None:
        self.urls = [url.rstrip("/") for url in urls]
        self.token = token
        self.cashier = cashier
        self.pin = pin
        self.timeout = timeout
        self.give_up_after = give_up_after
        self.node_url: str | None = None
        self.last_receipt_no = 0
        self.failovers = 0
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._basket_id: str | None = None
        self._lines: dict[str, dict[str, Any]] = {}
        # The till is the source of truth for its own sales: the day's, by number.
        self.sales: dict[int, dict[str, Any]] = {}

    async def __aenter__(self) -> TillClient:
        self._session = aiohttp.ClientSession()
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    async def call(self, type_: str, **args: Any) -> Any:
        """Send a command; on a dead node, fail over and send it again (it is idempotent)."""
        while True:
            try:
                return await self._call_here(type_, **args)
            except FAILOVER_ERRORS:
                self.failovers += 1
                await self._connect(skip_current=True)

    async def _call_here(self, type_: str, **args: Any) -> Any:
        if self._ws is None or self._ws.closed:
            raise ConnectionError("not connected")
        msg_id = next(self._ids)
        await self._ws.send_json({"id": msg_id, "type": type_, **args})
        while True:
            frame = await self._ws.receive(timeout=self.timeout)
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"node closed the connection ({frame.type!r})")
            reply = frame.json()
            if reply.get("type") == "result" and reply.get("id") == msg_id:
                break
        if not reply["success"]:
            error = reply["error"]
            raise CommandFailed(error["code"], error["message"], error.get("data"))
        return reply["result"]

    async def _connect(self, skip_current: bool = False) -> None:
        assert self._session is not None
        if self._ws is not None:
            await self._ws.close()
        start = self.urls.index(self.node_url) + 1 if skip_current and self.node_url else 0
        deadline = asyncio.get_running_loop().time() + self.give_up_after
        for attempt in itertools.count():
            url = self.urls[(start + attempt) % len(self.urls)]
            try:
                self._ws = await self._session.ws_connect(
                    f"{url}/api/ws", timeout=aiohttp.ClientWSTimeout(ws_close=self.timeout)
                )
                self.node_url = url
                await self._resume()
                return
            except (*FAILOVER_ERRORS, CommandFailed) as error:
                # A node that does not know the till yet (its pairing has not
                # reached it) is as good as down; any other refusal is real.
                if isinstance(error, CommandFailed) and error.code != "invalid_token":
                    raise
                if asyncio.get_running_loop().time() > deadline:
                    raise NoNodeAnswers(
                        f"no node of {self.urls} answered (last: {error!r})"
                    ) from None
                if (attempt + 1) % len(self.urls) == 0:
                    await asyncio.sleep(0.2)

    async def _resume(self) -> None:
        auth = await self._call_here("auth", token=self.token)
        for node in auth["nodes"]:
            if node["url"] not in self.urls:
                self.urls.append(node["url"])
        self.last_receipt_no = max(self.last_receipt_no, auth["last_receipt_no"])
        await self._call_here("login", cashier_id=self.cashier, pin=self.pin)
        await self._resend_missing_sales()
        if self._basket_id is None:
            return
        basket = await self._call_here("basket/get")
        if basket is not None and basket["id"] != self._basket_id:
            # One we gave up on elsewhere whose voiding never reached this node.
            await self._call_here("basket/clear", basket_id=basket["id"])
            basket = None
        held = {line["id"] for line in basket["lines"]} if basket else set()
        try:
            for line_id, line in self._lines.items():
                if line_id not in held:
                    await self._call_here("basket/add", basket_id=self._basket_id,
                                          line_id=line_id, **line)
        except CommandFailed as refused:
            if refused.code == "basket_held":
                # A manager gave our basket to another till while we were away:
                # it is that till's now; we start afresh, as the browser till does.
                self._basket_id, self._lines = None, {}
            elif refused.code != "basket_mismatch":
                raise
            # basket_mismatch: already sold here: the old node finished our
            # `sale/complete` and passed it on before dying. Resending it returns that sale.

    async def _resend_missing_sales(self) -> None:
        if not self.sales:
            return
        held = await self._call_here("sale/held", since=min(self.sales))
        for number in sorted(self.sales.keys() - set(held["receipt_nos"])):
            await self._call_here("sale/record", sale=self.sales[number], offline=False)

    async def add(self, barcode: str, quantity: int = 1) -> dict[str, Any]:
        if self._basket_id is None:
            self._basket_id = str(uuid.uuid4())
        line_id = str(uuid.uuid4())
        self._lines[line_id] = {"barcode": barcode, "quantity": quantity}
        try:
            return await self.call("basket/add", basket_id=self._basket_id, line_id=line_id,
                                   barcode=barcode, quantity=quantity)
        except CommandFailed as refused:
            self._lines.pop(line_id)
            if refused.code == "basket_held":
                self._basket_id, self._lines = None, {}  # another till's now: start afresh
            raise

    async def pay(self, tenders: list[dict[str, Any]]) -> dict[str, Any]:
        """Complete the basket with this till's next receipt number."""
        assert self._basket_id is not None
        try:
            sale = await self.call("sale/complete", basket_id=self._basket_id,
                                   receipt_no=self.last_receipt_no + 1, tenders=tenders)
        except CommandFailed as refused:
            if refused.code == "basket_held":
                self._basket_id, self._lines = None, {}  # another till's now: start afresh
            if refused.code != "receipt_number_used":
                raise
            # The node holds sales of this till we did not know of (its
            # numbering reached the node after our `auth`): adopt its next number.
            sale = await self.call("sale/complete", basket_id=self._basket_id,
                                   receipt_no=refused.data["next_receipt_no"], tenders=tenders)
        self.last_receipt_no = sale["receipt_no"]
        self.sales[sale["receipt_no"]] = as_record(sale)
        self._basket_id, self._lines = None, {}
        return sale

    async def sell(self, barcodes: list[str], cash: int) -> dict[str, Any]:
        for barcode in barcodes:
            await self.add(barcode)
        return await self.pay([{"method": "cash", "amount": cash}])


def as_record(sale: dict[str, Any]) -> dict[str, Any]:
    """A completed sale as `sale/record` takes it, to resend it to another node."""
    fields = ("id", "product_id", "barcode", "name", "unit_price", "vat_rate", "quantity")
    return {
        "id": sale["id"],
        "basket_id": sale.get("basket_id"),
        "receipt_no": sale["receipt_no"],
        "cashier": sale["cashier"],
        "time": sale["time"],
        "lines": [{key: line[key] for key in fields} for line in sale["lines"]],
        "tenders": sale["tenders"],
        "totals": sale["totals"],
        "change": sale["change"],
    }
