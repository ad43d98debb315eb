// The till's copy of edge/money.py, for selling offline: totals, VAT and
// change in integer cents. It must give exactly what the node gives (the node
// re-checks every offline sale), so it is a line-by-line port, kept honest by
// tests/vectors/pricing.json (tests/test_pricing_vectors.py runs the vectors
// against both). Change the two together or not at all.

const BASIS_POINTS = 10000;

/** Same codes as the node's errors (docs/protocol.md), so the app shows them alike. */
export class PricingError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * Integer division of two non-negative safe integers, without trusting a float
 * quotient: the remainder is exact, so the division of the difference is too.
 */
function floorDivide(numerator, divisor) {
  if (!Number.isSafeInteger(numerator)) {
    // Never a silently wrong amount: no basket comes near 2^53 cents.
    throw new RangeError(`amount out of range: ${numerator}`);
  }
  return (numerator - (numerator % divisor)) / divisor;
}

/** The VAT inside a VAT-inclusive amount, rounded half away from zero. */
export function vatOfGross(gross, rate) {
  const divisor = BASIS_POINTS + rate;
  const numerator = 2 * Math.abs(gross) * rate + divisor;
  const vat = floorDivide(numerator, 2 * divisor);
  return gross >= 0 ? vat : -vat;
}

/** Lines are {unit_price, quantity, vat_rate} (a basket line has those fields). */
export function basketTotals(lines) {
  const grossByRate = new Map();
  let items = 0;
  for (const line of lines) {
    const total = line.unit_price * line.quantity;
    grossByRate.set(line.vat_rate, (grossByRate.get(line.vat_rate) ?? 0) + total);
    items += line.quantity;
  }
  const vat = [];
  let total = 0;
  for (const rate of [...grossByRate.keys()].sort((a, b) => a - b)) {
    const gross = grossByRate.get(rate);
    const tax = vatOfGross(gross, rate);
    vat.push({ rate, base: gross - tax, vat: tax, total: gross });
    total += gross;
  }
  return { total, items, vat };
}

// Python's str.strip() removes these; JavaScript's trim() differs (it keeps
// \x1c-\x1f and \x85, and removes \ufeff), so a reference of only those
// characters would be refused by one and accepted by the other.
const PYTHON_WHITESPACE = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

function isBlank(text) {
  return PYTHON_WHITESPACE.test(text);
}

/** What goes back to the customer; throws a PricingError if the tenders can't settle `total`. */
export function changeDue(total, tenders) {
  let card = 0;
  let paid = 0;
  for (const tender of tenders) {
    if (tender.method === 'card') card += tender.amount;
    paid += tender.amount;
  }
  for (const tender of tenders) {
    if (tender.method === 'card' && isBlank(tender.reference || '')) {
      throw new PricingError('missing_reference', 'a card payment needs the terminal slip reference');
    }
  }
  if (card > total) {
    throw new PricingError('card_overpay', `card payments (${card}) exceed the amount due (${total})`);
  }
  if (paid < total) {
    throw new PricingError('payment_short', `payment of ${paid} is short of the total ${total}`);
  }
  return paid - total;
}
