// The till's copy of edge/selling/money.py, promotion_rules.py and
// rounding.py, for selling offline: totals, VAT, promotions, discounts and
// tenders in integer cents. It must give exactly what the node gives (the node
// re-checks every offline sale), so it is a line-by-line port, kept honest by
// tests/vectors/pricing.json (tests/test_pricing_vectors.py runs the vectors
// against both, tests/test_pricing_property.py generated baskets). Change them
// together or not at all. The rules in words: docs/architecture.md, "Money".

import { promotionDiscounts } from './promotion_rules.js';
import {
  checkSafe, cumulativeFloorShares, isInt, isPlainObject, roundHalfUp,
} from './rounding.js';

export { promotionProblem, takesPromotions } from './promotion_rules.js';
export { cumulativeFloorShares, roundHalfUp } from './rounding.js';

const BASIS_POINTS = 10000;
const GRAMS_PER_KILO = 1000;
const DISCOUNT_KINDS = ['amount', 'percent'];
const TENDER_METHODS = ['cash', 'card', 'meal_voucher', 'cheque', 'gift_voucher'];
const MEAL_VOUCHER_KINDS = ['paper', 'card'];
const MAX_TENDERS = 20;
export const DEFAULT_MEAL_VOUCHER_CAP = 2500;

/** Same codes as the node's errors (docs/protocol.md), so the app shows them alike. */
export class PricingError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** The VAT inside a VAT-inclusive amount, rounded half away from zero. */
export function vatOfGross(gross, rate) {
  return roundHalfUp(gross, rate, BASIS_POINTS + rate);
}

/** The VAT breakdown, one row per rate (sorted): base + vat = total on every row. */
function vatRows(grossByRate) {
  const rows = [];
  for (const rate of [...grossByRate.keys()].sort((a, b) => a - b)) {
    const gross = checkSafe(grossByRate.get(rate));
    const tax = vatOfGross(gross, rate);
    rows.push({ rate, base: gross - tax, vat: tax, total: gross });
  }
  return rows;
}

/** The old shape: lines {unit_price, quantity, vat_rate} at their unit price, no discount. */
export function basketTotals(lines) {
  const grossByRate = new Map();
  let items = 0;
  for (const line of lines) {
    const total = line.unit_price * line.quantity;
    grossByRate.set(line.vat_rate, (grossByRate.get(line.vat_rate) ?? 0) + total);
    items += line.quantity;
  }
  const vat = vatRows(grossByRate);
  let total = 0;
  for (const row of vat) total += row.total;
  return { total, items, vat };
}

function unitOf(line) {
  const unit = line.unit || 'piece';
  if (unit !== 'piece' && unit !== 'g') {
    throw new PricingError('invalid_field', `'unit' must be 'piece' or 'g', got ${JSON.stringify(unit)}`);
  }
  return unit;
}

/** Before any discount: pieces at their unit price; grams at the price per kilogram. */
export function lineGross(line) {
  if (unitOf(line) === 'g') return roundHalfUp(line.unit_price, line.quantity, GRAMS_PER_KILO);
  return checkSafe(line.unit_price * line.quantity);
}

/** What a cashier's discount {kind, value, reason, approved_by?} takes off `amount` (>= 0). */
export function discountOff(discount, amount) {
  if (discount === null || typeof discount !== 'object' || Array.isArray(discount)
      || !DISCOUNT_KINDS.includes(discount.kind)) {
    throw new PricingError('invalid_field', "a discount's 'kind' must be 'amount' or 'percent'");
  }
  const { value } = discount;
  if (discount.kind === 'amount') {
    if (!isInt(value) || value < 0) {
      throw new PricingError('invalid_field', "an amount discount's 'value' is cents, 0 or more");
    }
    return Math.min(value, amount);
  }
  if (!isInt(value) || value < 0 || value > BASIS_POINTS) {
    throw new PricingError('invalid_field', "a percent discount's 'value' is basis points, 0 to 10000");
  }
  return roundHalfUp(amount, value, BASIS_POINTS);
}

// ---- The pricing function (edge/selling/money.py price_basket) ----

/** A basket's every amount: per line, per VAT rate, and its discounts (see money.py). */
export function priceBasket(lines, promotions = [], basketDiscount = null) {
  const grosses = lines.map(lineGross);
  const promoted = promotionDiscounts(lines, promotions);
  const manual = lines.map((line, i) => (line.discount == null
    ? 0 : discountOff(line.discount, grosses[i] - promoted[i][0])));
  const afterLines = lines.map((line, i) => grosses[i] - promoted[i][0] - manual[i]);
  let subtotal = 0;
  for (const amount of afterLines) subtotal += amount;
  checkSafe(subtotal);
  const basketOff = basketDiscount == null ? 0 : discountOff(basketDiscount, subtotal);
  const shares = cumulativeFloorShares(basketOff, afterLines);
  const priced = [];
  const grossByRate = new Map();
  let items = 0;
  lines.forEach((line, i) => {
    const total = afterLines[i] - shares[i];
    priced.push({
      id: line.id, gross: grosses[i], promotion: promoted[i][0], promotion_ids: promoted[i][1],
      discount: manual[i], basket_share: shares[i], total,
    });
    grossByRate.set(line.vat_rate, (grossByRate.get(line.vat_rate) ?? 0) + total);
    items += unitOf(line) === 'g' ? 1 : line.quantity;
  });
  const vat = vatRows(grossByRate);
  let total = 0;
  for (const row of vat) total += row.total;
  let promotionsOff = 0;
  let linesOff = 0;
  for (let i = 0; i < lines.length; i += 1) {
    promotionsOff += promoted[i][0];
    linesOff += manual[i];
  }
  return {
    lines: priced, total, items, vat,
    discounts: { promotions: promotionsOff, lines: linesOff, basket: basketOff },
  };
}

// ---- Tenders (edge/selling/money.py settle) ----

function checkTender(tender, refund) {
  if (!isPlainObject(tender) || !TENDER_METHODS.includes(tender.method)) {
    throw new PricingError('invalid_field', `a tender's 'method' must be one of ${TENDER_METHODS.join(', ')}`);
  }
  const { amount } = tender;
  if (!isInt(amount) || (refund ? amount >= 0 : amount <= 0)) {
    const sign = refund ? 'negative' : 'positive';
    throw new PricingError('invalid_field', `a tender's 'amount' must be ${sign} whole cents`);
  }
  if (tender.method === 'meal_voucher' && !MEAL_VOUCHER_KINDS.includes(tender.kind)) {
    throw new PricingError('invalid_field', "a meal voucher's 'kind' must be 'paper' or 'card'");
  }
}

/** The sum of the tenders of `method` (and of `kind`, when given). */
function paid(tenders, method, kind = null) {
  let sum = 0;
  for (const t of tenders) {
    if (t.method === method && (kind === null || t.kind === kind)) sum += t.amount;
  }
  return sum;
}

/**
 * How tenders {method, amount, reference?, kind?} pay `total`: {change, voucher_excess}.
 * Throws a PricingError with the node's code when they cannot (see money.py settle).
 */
export function settle(total, tenders, mealVoucherCap = DEFAULT_MEAL_VOUCHER_CAP) {
  if (tenders.length > MAX_TENDERS) {
    throw new PricingError('invalid_field', `at most ${MAX_TENDERS} tenders on one sale`);
  }
  for (const tender of tenders) checkTender(tender, total < 0);
  if (total < 0) {
    let sum = 0;
    for (const t of tenders) sum += t.amount;
    if (sum !== total) {
      throw new PricingError('refund_tenders_mismatch',
        `the refund's tenders (${sum}) must add up to its total (${total})`);
    }
    return { change: 0, voucher_excess: 0 };
  }
  const vouchers = paid(tenders, 'meal_voucher');
  if (vouchers > mealVoucherCap) {
    throw new PricingError('meal_voucher_cap', `meal vouchers (${vouchers}) exceed the cap of ${mealVoucherCap}`);
  }
  const card = paid(tenders, 'card');
  if (card > total) {
    throw new PricingError('card_overpay', `card payments (${card}) exceed the amount due (${total})`);
  }
  const exact = card + paid(tenders, 'meal_voucher', 'card') + paid(tenders, 'cheque')
    + paid(tenders, 'gift_voucher');
  if (exact > total) {
    throw new PricingError('tender_overpay',
      `card, cheque and voucher payments (${exact}) exceed the amount due (${total})`);
  }
  let due = total - exact;
  const paper = paid(tenders, 'meal_voucher', 'paper');
  const voucherExcess = Math.max(0, paper - due);
  due -= paper - voucherExcess;
  const cash = paid(tenders, 'cash');
  if (cash < due) {
    let sum = 0;
    for (const t of tenders) sum += t.amount;
    throw new PricingError('payment_short', `payment of ${sum} is short of the total ${total}`);
  }
  return { change: cash - due, voucher_excess: voucherExcess };
}

// Python's str.strip() removes these; JavaScript's trim() differs (it keeps
// \x1c-\x1f and \x85, and removes \ufeff), so a reference of only those
// characters would be refused by one and accepted by the other.
const PYTHON_WHITESPACE = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

function isBlank(text) {
  return PYTHON_WHITESPACE.test(text);
}

/**
 * The change of a cash and card sale, the old way (a card still needs its slip
 * reference), for callers not yet moved to settle(). A tender of 0 counts for nothing.
 */
export function changeDue(total, tenders) {
  for (const tender of tenders) {
    if (tender.method === 'card' && isBlank(tender.reference || '')) {
      throw new PricingError('missing_reference', 'a card payment needs the terminal slip reference');
    }
  }
  return settle(total, tenders.filter((t) => t.amount !== 0)).change;
}
