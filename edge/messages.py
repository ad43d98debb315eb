"""Websocket message builders and the error codes every reply draws from.

Handlers raise `EdgeError`; the connection turns it into an error reply in
one place. Codes are part of the protocol (docs/protocol.md): add, never
rename.
"""

from __future__ import annotations

from typing import Any

INVALID_JSON = "invalid_json"
INVALID_MESSAGE = "invalid_message"
UNKNOWN_COMMAND = "unknown_command"
MISSING_FIELD = "missing_field"
INVALID_FIELD = "invalid_field"
UNAUTHORIZED = "unauthorized"
INVALID_TOKEN = "invalid_token"
NOT_LOGGED_IN = "not_logged_in"
INVALID_PIN = "invalid_pin"
TOO_MANY_ATTEMPTS = "too_many_attempts"
UNKNOWN_BARCODE = "unknown_barcode"
UNKNOWN_PRODUCT = "unknown_product"
NO_OPEN_BASKET = "no_open_basket"
BASKET_MISMATCH = "basket_mismatch"
UNKNOWN_LINE = "unknown_line"
EMPTY_BASKET = "empty_basket"
PAYMENT_SHORT = "payment_short"
CARD_OVERPAY = "card_overpay"
MISSING_REFERENCE = "missing_reference"
INVALID_PAIRING_CODE = "invalid_pairing_code"
INVALID_JOIN_CODE = "invalid_join_code"
NOT_THE_CA_NODE = "not_the_ca_node"
NAME_TAKEN = "name_taken"  # a joining node asked for another node's name or address
INVALID_REQUEST = "invalid_request"
UNKNOWN_PRINTER = "unknown_printer"
INTERNAL_ERROR = "internal_error"
UNKNOWN_SALE = "unknown_sale"
NO_PRINTER = "no_printer"
MANAGER_REQUIRED = "manager_required"
BASKET_HELD = "basket_held"
RECEIPT_NUMBER_USED = "receipt_number_used"
DRAWER_NOT_IN_DOUBT = "drawer_not_in_doubt"
DRAWER_ALREADY_REQUESTED = "drawer_already_requested"
# The node's disk is full: the command was not recorded (issue 9, store IT).
DISK_FULL = "disk_full"
# Refunds (edge/selling/refunds.py).
REFUND_EXCEEDS_SALE = "refund_exceeds_sale"
REFUND_OF_REFUND = "refund_of_refund"
REFUND_WHOLE_LINE = "refund_whole_line"
REFUND_TENDERS_MISMATCH = "refund_tenders_mismatch"
# Tenders and embedded-price barcodes (edge/selling/money.py, edge/selling/barcodes.py).
MEAL_VOUCHER_CAP = "meal_voucher_cap"
TENDER_OVERPAY = "tender_overpay"
INVALID_BARCODE = "invalid_barcode"
# What a scan or a tile puts on a line (edge/selling/line_items.py).
WEIGHT_REQUIRED = "weight_required"
PRICE_REQUIRED = "price_required"
# A change that would take a cashier's discounts past the store's limit (edge/selling/discounts.py).
DISCOUNT_PAST_LIMIT = "discount_past_limit"
# The meal-voucher part of a sale goes back as a meal voucher (edge/selling/refund_rules.py).
REFUND_MEAL_VOUCHER = "refund_meal_voucher"
# Card payments through the store's terminals (edge/devices/card_payments.py).
NO_TERMINAL = "no_terminal"
TERMINAL_UNREACHABLE = "terminal_unreachable"
TERMINAL_BUSY = "terminal_busy"
PAYMENT_ID_REUSED = "payment_id_reused"
UNKNOWN_PAYMENT = "unknown_payment"
PAYMENT_NOT_UNKNOWN = "payment_not_unknown"
PAYMENT_ALREADY_SETTLED = "payment_already_settled"
CARD_PAYMENT_TOO_MUCH = "card_payment_too_much"
CARD_PAYMENT_MISMATCH = "card_payment_mismatch"
CARD_PAYMENT_NOT_APPROVED = "card_payment_not_approved"
CARD_PAYMENT_PENDING = "card_payment_pending"
CARD_PAYMENT_TAKEN = "card_payment_taken"
# Shifts and training mode (edge/fiscal/shifts.py, edge/fiscal/training.py).
NO_SHIFT = "no_shift"
SHIFT_OPEN = "shift_open"
SHIFT_ENDED = "shift_ended"
TRAINING_MISMATCH = "training_mismatch"
# Closures (edge/fiscal/closing.py).
PERIOD_CLOSED = "period_closed"
PERIOD_NOT_OVER = "period_not_over"
CLOSURE_OUT_OF_ORDER = "closure_out_of_order"
PERIOD_INCOMPLETE = "period_incomplete"
NOTHING_TO_CLOSE = "nothing_to_close"
NOT_CAUGHT_UP = "not_caught_up"
COVERS_BACKWARDS = "covers_backwards"


class EdgeError(Exception):
    """A command that cannot be carried out, with the code the till will see.

    `data`: what a till needs to act on the refusal without parsing the
    message (the till holding a basket, the next free receipt number).
    """

    def __init__(self, code: str, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def result_message(msg_id: int, result: Any) -> dict[str, Any]:
    return {"id": msg_id, "type": "result", "success": True, "result": result}


def error_message(
    msg_id: int | None, code: str, message: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"id": msg_id, "type": "result", "success": False, "error": error}


def event_message(subscription_id: int, event: Any) -> dict[str, Any]:
    return {"id": subscription_id, "type": "event", "event": event}
# A till holds at most MAX_SUBSCRIPTIONS pushes at once (edge/api/websocket_api.py).
TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
