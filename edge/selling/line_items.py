"""What a scan or a tap puts on a basket line: pieces, a weight, or a price.

Most products are sold by the piece at the catalogue's price. A product sold
by the kilo (`unit` kg) goes on a line of grams priced per kilo: its weight
comes from an in-store label (a weight-embedded barcode, read with the
store's layouts) or is typed or read from a scale (`grams`). A price-embedded
label carries the price of that one article. An open-price product
("Divers") takes the price the cashier types (`price`). Pure: the caller
finds the product and records the line.
"""

from __future__ import annotations

from typing import Any

from edge.messages import INVALID_BARCODE, INVALID_FIELD, PRICE_REQUIRED, WEIGHT_REQUIRED, EdgeError

MAX_GRAMS = 100_000  # one weighed line: 100 kg
MAX_PIECES = 9999


def line_fields(product: dict[str, Any], quantity: int, *, embedded: dict[str, Any] | None = None,
                grams: int | None = None, price: int | None = None) -> dict[str, Any]:
    """`unit_price`, `quantity`, `unit` and `price_embedded` of a new line of `product`."""
    by_weight = product.get("unit") == "kg"
    if embedded is not None and embedded["kind"] == "weight":
        if not by_weight:
            raise EdgeError(INVALID_BARCODE, f"{product['name']} is not sold by weight: "
                            "this label is not for it")
        grams = embedded["value"]
        if grams <= 0:
            raise EdgeError(INVALID_BARCODE, "this label says 0 g: weigh the article again")
    if grams is not None and not by_weight:
        raise EdgeError(INVALID_FIELD, f"{product['name']} is sold by the piece, not by weight",
                        {"field": "grams"})
    if price is not None and not product.get("open_price"):
        raise EdgeError(INVALID_FIELD, f"{product['name']} has a set price",
                        {"field": "price"})
    if embedded is not None and embedded["kind"] == "price":
        if embedded["value"] <= 0:
            raise EdgeError(INVALID_BARCODE, "this label says 0,00: weigh or price the article "
                            "again, or type its price")
        return {"unit_price": embedded["value"], "quantity": quantity, "unit": "piece",
                "price_embedded": True}
    if by_weight:
        if not grams:
            raise EdgeError(WEIGHT_REQUIRED, f"{product['name']} is sold by the kilo: "
                            "weigh it", {"product_id": product["id"]})
        return {"unit_price": product["price"], "quantity": grams, "unit": "g",
                "price_embedded": False}
    if product.get("open_price"):
        if price is None:
            raise EdgeError(PRICE_REQUIRED, f"{product['name']} has no set price: type it",
                            {"product_id": product["id"]})
        return {"unit_price": price, "quantity": quantity, "unit": "piece",
                "price_embedded": False}
    return {"unit_price": product["price"], "quantity": quantity, "unit": "piece",
            "price_embedded": False}
