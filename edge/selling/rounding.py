"""The two integer roundings every amount goes through: pure, exact, in cents.

Both are ported line by line to the till (web/pricing.js) and held identical
by tests/vectors/pricing.json: an amount is never decided by a float.
"""

from __future__ import annotations

from collections.abc import Sequence


def round_half_up(product: int, divisor: int) -> int:
    """`product / divisor` to the nearest integer, halves away from zero (`divisor` > 0).

    Callers pass the product itself (`round_half_up(price * percent, 10_000)`),
    so nothing is rounded twice.
    """
    rounded = (2 * abs(product) + divisor) // (2 * divisor)
    return rounded if product >= 0 else -rounded


def cumulative_floor_shares(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` (>= 0) over `weights` (>= 0), in their order.

    share_i = floor(amount * C_i / S) - floor(amount * C_(i-1) / S), C_i the
    running sum of the weights and S their total: the shares add up to
    `amount` exactly, none exceeds its weight when amount <= S, and no
    tie-breaking rule is needed (so Python and the till cannot disagree).
    With every weight 0 there is nothing to split over: the amount must be 0.
    """
    total_weight = sum(weights)
    if total_weight == 0:
        if amount:
            raise ValueError(f"cannot split {amount} over weights that are all 0")
        return [0] * len(weights)
    shares = []
    running = 0
    allocated = 0
    for weight in weights:
        running += weight
        upto = amount * running // total_weight
        shares.append(upto - allocated)
        allocated = upto
    return shares
