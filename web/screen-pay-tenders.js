// The payment's arithmetic, with no DOM: the tenders a cashier adds one by one
// (cash, card, meal vouchers paper or card, cheque, gift voucher), what is left
// to pay, and what the node will say of them. The rule itself is pricing.js
// `settle` (edge/selling/money.py's, the same to the cent), so the pay screen
// refuses exactly what the node would, online or offline; and the sale the
// till records itself while no node answers (offlineSaleRecord).
import { settle, DEFAULT_MEAL_VOUCHER_CAP } from './pricing.js';

/**
 * The ways to pay, in the order of the pay screen's buttons. `key`: the
 * screen's name for it; `method`/`kind`: the tender's; `reference`: whether
 * it takes a reference (the card slip's, a cheque's or a voucher's number:
 * always optional); `exact`: it gives no change (anything but cash, and paper
 * vouchers, whose excess is kept).
 */
export const PAY_MODES = [
  { key: 'cash', method: 'cash', reference: false },
  { key: 'card', method: 'card', reference: true },
  { key: 'voucher_paper', method: 'meal_voucher', kind: 'paper', reference: false },
  { key: 'voucher_card', method: 'meal_voucher', kind: 'card', reference: false },
  { key: 'cheque', method: 'cheque', reference: true },
  { key: 'gift_voucher', method: 'gift_voucher', reference: true },
];

export const MAX_REFERENCE = 64; // as sale/complete takes it

export function payMode(key) {
  return PAY_MODES.find((mode) => mode.key === key) ?? PAY_MODES[0];
}

/** The pay mode a tender was made with (for its label). */
export function modeOf(tender) {
  return PAY_MODES.find((mode) => mode.method === tender.method && (mode.kind ?? null) === (tender.kind ?? null))
    ?? PAY_MODES.find((mode) => mode.method === tender.method) ?? PAY_MODES[0];
}

/** "5", "5,00", "5.00", "5 €" → 500 cents; null when it is not an amount. */
export function parseAmount(text) {
  const cleaned = String(text).replace(/[\s€]/g, '').replace(',', '.');
  const match = /^(\d{1,7})(?:\.(\d{0,2}))?$/.exec(cleaned);
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
}

/**
 * A barcode, not an amount: 8 digits or more with no separator (EAN-8,
 * UPC-A, EAN-13, GTIN-14). Nobody pays a million euros at a bakery, so a
 * scanner's keystrokes landing in an amount field are told apart this way.
 */
export function looksLikeBarcode(text) {
  return /^\d{8,14}$/.test(String(text).trim());
}

/** The store's cap on meal vouchers per sale (the auth answer's settings). */
export function mealVoucherCapOf(settings) {
  const cap = settings?.meal_voucher_cap;
  return Number.isInteger(cap) && cap >= 0 ? cap : DEFAULT_MEAL_VOUCHER_CAP;
}

/** A tender as sale/complete takes it: {method, amount, reference?, kind?}. */
export function makeTender(modeKey, amount, reference = '') {
  const mode = payMode(modeKey);
  const tender = { method: mode.method, amount };
  if (mode.kind) tender.kind = mode.kind;
  const ref = String(reference ?? '').trim().slice(0, MAX_REFERENCE);
  if (mode.reference && ref) tender.reference = ref;
  return tender;
}

export function paidBy(tenders) {
  return tenders.reduce((sum, tender) => sum + tender.amount, 0);
}

/** What is still to pay after `tenders` (never below 0). */
export function leftToPay(total, tenders) {
  return Math.max(0, total - paidBy(tenders));
}

/** The meal vouchers in `tenders`, and how much more the cap allows. */
export function voucherRoom(tenders, cap) {
  const vouchers = tenders.filter((tender) => tender.method === 'meal_voucher');
  return Math.max(0, cap - paidBy(vouchers));
}

/**
 * What the node would say of these tenders for `total`: {ok: true, change,
 * voucherExcess} when they pay it; {ok: false, code} otherwise, with the
 * node's error code (payment_short: add another tender).
 */
export function settlement(total, tenders, cap) {
  try {
    const { change, voucher_excess: voucherExcess } = settle(total, tenders, cap);
    return { ok: true, change, voucherExcess };
  } catch (error) {
    if (!error.code) throw error;
    return { ok: false, code: error.code };
  }
}

/**
 * Tenders as kept and resent (sale/record): the fields the node takes, nothing of the screen's.
 * A card the terminal took carries its `payment_id` (the node copies the authorisation from it).
 */
export function tendersForRecord(tenders) {
  return tenders.map(({ method, amount, reference, kind, payment_id: paymentId }) => {
    const tender = { method, amount };
    if (reference) tender.reference = reference;
    if (method === 'meal_voucher') tender.kind = kind;
    if (paymentId) tender.payment_id = paymentId;
    return tender;
  });
}

/** Tenders as sale/complete takes them: the same fields as a record. */
export const tendersForSale = tendersForRecord;

/**
 * A card tender's terminal details in a few characters: "**** 1234 · Auto 123456"
 * (the masked card and the authorisation number), or '' for any other tender.
 */
export function cardText(tender) {
  if (tender?.method !== 'card') return '';
  const parts = [];
  if (tender.last4) parts.push(`**** ${tender.last4}`);
  if (tender.authorisation) parts.push(`Auto ${tender.authorisation}`);
  return parts.join(' · ');
}

/** A basket line as sale/record takes it (docs/protocol.md): what the node prices again. */
function soldLine(line) {
  const sold = {
    id: line.id, product_id: line.product_id, barcode: line.barcode ?? null, name: line.name,
    unit_price: line.unit_price, vat_rate: line.vat_rate, quantity: line.quantity,
  };
  if (line.unit === 'g') sold.unit = 'g';
  if (line.price_embedded) sold.price_embedded = true;
  if (line.discount?.kind) sold.discount = line.discount;
  return sold;
}

/**
 * The sale the till records itself while no node answers, as `sale/record`
 * takes it, with the id the node would have given it. Its totals are the
 * basket's as the cashier saw them; the tenders must settle them by the
 * node's rule with the store's cap (a PricingError with the node's code
 * otherwise). `print`: the customer's choice, carried to the node (the
 * ledger sends it beside the sale, not in it).
 */
export function offlineSaleRecord({ basket, tillCode, receiptNo, cashierId, tenders, time, cap, print }) {
  const { total, items, vat } = basket.totals;
  const { change } = settle(total, tenders, cap);
  const sale = {
    id: `${basket.id}@${tillCode}`, basket_id: basket.id, receipt_no: receiptNo, cashier: cashierId, time,
    lines: basket.lines.map(soldLine), tenders: tendersForRecord(tenders), totals: { total, items, vat }, change,
  };
  if (basket.discount?.kind) sale.discount = basket.discount;
  if (print === false) sale.print = false;
  return sale;
}
