// A cashier's discounts on the till with no node answering, with no DOM: the
// node's rules (edge/selling/discounts.py, edge/api/discount_commands.py)
// and the basket priced again as the node prices it (pricing.js priceBasket),
// in the node's basket shape (docs/protocol.md, "A basket"). command-queue.js
// runs basket/discount_line and basket/discount through these while offline.

import { CommandError } from './client.js';
import { lineGross, priceBasket } from './pricing.js';

/** Is `discount`, taken off `discounted` cents, past the store's limit (basis points)? */
export function needsApproval(discount, discounted, limit) {
  if (discount.kind === 'percent') return discount.value > limit;
  return discount.value * 10000 > limit * Math.max(discounted, 0);
}

/**
 * The discount as the till records it offline: with the manager who approved
 * it. No node can check a PIN offline: the manager named (or the manager
 * logged in) is recorded, the PIN is not kept.
 */
export function approvedOffline(discount, discounted, { limit, approval, cashier }) {
  if (discount === null) return null;
  const spec = { kind: discount.kind, value: discount.value, reason: discount.reason };
  if (approval?.manager) return { ...spec, approved_by: approval.manager };
  if (!needsApproval(spec, discounted, limit ?? 0)) return spec;
  if (cashier?.role === 'manager') return { ...spec, approved_by: cashier.id };
  throw new CommandError('manager_required', 'a discount past the store\'s limit', { data: { approval: 'required' } });
}

/** The basket's lines and totals priced again, as the node answers a basket. */
export function repriced(basket, promotions = []) {
  const lines = basket.lines.map((line) => ({ ...line, discount: line.discount ?? null }));
  const priced = priceBasket(lines, promotions, basket.discount ?? null);
  return {
    ...basket,
    discount: basket.discount ?? null,
    lines: lines.map((line, i) => {
      const { gross, promotion, promotion_ids: promotionIds, discount, basket_share: share, total } = priced.lines[i];
      return {
        ...line, gross, promotion, promotion_ids: promotionIds, discount_amount: discount, basket_share: share, total,
      };
    }),
    totals: { total: priced.total, items: priced.items, vat: priced.vat, discounts: priced.discounts },
  };
}

/** What a line's discount is taken off: its full price (a discounted line takes no promotion). */
export function lineDiscounted(line) {
  return line.gross ?? lineGross(line);
}

/** What the basket's discount is taken off: its lines after their own discounts. */
export function basketDiscounted(basket) {
  let sum = 0;
  for (const line of basket.lines) sum += (line.total ?? lineGross(line)) + (line.basket_share ?? 0);
  return sum;
}

export function withLineDiscount(basket, lineId, discount, promotions = []) {
  const lines = basket.lines.map((line) => (line.id === lineId ? { ...line, discount } : line));
  return repriced({ ...basket, lines }, promotions);
}

export function withBasketDiscount(basket, discount, promotions = []) {
  return repriced({ ...basket, discount }, promotions);
}

function sameDiscount(a, b) {
  return (a?.kind ?? null) === (b?.kind ?? null) && (a?.value ?? null) === (b?.value ?? null)
    && (a?.reason ?? null) === (b?.reason ?? null);
}

/** A discount as a command sends it: who approved it is the node's to record. */
function asSent(discount) {
  return discount ? { kind: discount.kind, value: discount.value, reason: discount.reason } : null;
}

/**
 * After reconcileBasket pushed the till's basket to a node: the discounts the
 * till gave while no node answered go too (the till's basket is the truth).
 * A node that wants a manager for one (no PIN is kept) drops it: the cashier
 * is told, and asks again. Returns {basket, dropped: [what lost its discount]}.
 */
export async function reconcileDiscounts(call, local, remote) {
  if (!local || !remote || remote.id !== local.id) return { basket: remote, dropped: [] };
  let basket = remote;
  const dropped = [];
  const send = async (type, args, what) => {
    try {
      basket = await call(type, args);
    } catch (error) {
      if (error.code !== 'manager_required') throw error;
      dropped.push(what);
    }
  };
  for (const line of local.lines) {
    const there = basket.lines.find((candidate) => candidate.id === line.id);
    if (!there || sameDiscount(line.discount, there.discount)) continue;
    await send('basket/discount_line', { basket_id: local.id, line_id: line.id, discount: asSent(line.discount) }, line.name);
  }
  if (!sameDiscount(local.discount, basket.discount)) {
    await send('basket/discount', { basket_id: local.id, discount: asSent(local.discount) }, local.discount?.reason ?? '');
  }
  return { basket, dropped };
}
