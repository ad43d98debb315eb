// Refunds on the till, with no DOM: the rules of edge/selling/refund_rules.py
// (what a refund gives back: for a sale that took promotions, what was paid
// less what the customer keeps would cost; else each line prorated; the
// totals; where the money goes by default, and which tenders need a manager),
// line by line the same (tests/test_refunds.py runs both on generated sales),
// and the RefundDesk that finds a receipt and records a refund,
// on a node (sale/find_for_refund, sale/refund) or, while no node answers,
// from the till's own sales of the day into the ledger's outbox, recorded
// with sale/record_refund once a node answers (ledger.js). The screen is
// screen-refund.js. Integer cents throughout.

import { CommandError, newUuid } from './client.js';
import { cumulativeFloorShares, lineGross, priceBasket, vatOfGross } from './pricing.js';

/** Marks a refund among the ledger's sales: sent with sale/record_refund, not sale/record. */
export const REFUND_KIND = 'refund';
// A receipt's QR code holds the sale's journal hash: 64 hex digits.
const QR_PATTERN = /^[0-9a-f]{64}$/i;

export function isWeighed(line) {
  return line.unit === 'g';
}

/** What the typed or scanned text names: {qr} for a receipt's QR code, else {receipt_number}. */
export function receiptQuery(text) {
  const cleaned = String(text).trim();
  return QR_PATTERN.test(cleaned) ? { qr: cleaned.toLowerCase() } : { receipt_number: cleaned };
}

/** floor(a * b / d) for non-negative integers, exact whatever their size. */
function floorMulDiv(a, b, d) {
  return Number((BigInt(a) * BigInt(b)) / BigInt(d));
}

/** Cents given back for `refunding` more of a line (`total` for `quantity`), `already` refunded. */
export function lineRefundAmount(total, quantity, already, refunding) {
  return floorMulDiv(total, already + refunding, quantity) - floorMulDiv(total, already, quantity);
}

/** A sale whose refunds price what the customer keeps (it took promotions); any other prorates each line. */
export function keepsPromotions(sale) {
  return Array.isArray(sale.promotions) && sale.promotions.length > 0;
}

/** `kept` of a sold line, as the pricing function takes it: a fixed-amount line discount prorated (rounded down). */
function keptLine(line, kept) {
  const out = {
    id: line.id ?? null, product_id: line.product_id ?? null, unit_price: line.unit_price ?? null,
    vat_rate: line.vat_rate ?? null, quantity: kept, unit: line.unit || 'piece', price_embedded: Boolean(line.price_embedded),
  };
  let spec = line.discount;
  if (spec) {
    if (spec.kind === 'amount') {
      const taken = line.discount_amount ?? Math.min(spec.value, lineGross(line));
      spec = { ...spec, value: floorMulDiv(taken, kept, line.quantity) };
    }
    out.discount = spec;
  }
  return out;
}

/** What the customer keeps ({lineId: quantity}) costs, priced as the sale was (refund_rules.py kept_cost). */
export function keptCost(sale, kept) {
  const lines = sale.lines.filter((line) => (kept[line.id] ?? 0) > 0).map((line) => keptLine(line, kept[line.id]));
  const promotions = sale.promotions ?? [];
  let discount = sale.discount ?? null;
  if (discount && discount.kind === 'amount') {
    const before = priceBasket(lines, promotions, null).total;
    let sold = 0;
    for (const line of sale.lines) sold += line.total + (line.basket_share ?? 0);
    const taken = sale.totals?.discounts?.basket ?? Math.min(discount.value, sold);
    discount = { ...discount, value: sold ? floorMulDiv(taken, before, sold) : 0 };
  }
  return priceBasket(lines, promotions, discount).total;
}

/**
 * Cents given back for each [sold line, quantity] of `asked`, `refunded`
 * ({lineId: quantity}) and `givenBack` (cents) of the sale already refunded
 * (refund_rules.py refund_amounts).
 */
export function refundAmounts(sale, asked, refunded = {}, givenBack = 0) {
  if (!keepsPromotions(sale)) {
    return asked.map(([line, quantity]) => lineRefundAmount(line.total, line.quantity, refunded[line.id] ?? 0, quantity));
  }
  const taking = new Map(asked.map(([line, quantity]) => [line.id, quantity]));
  const kept = {};
  for (const line of sale.lines) {
    kept[line.id] = Math.max(line.quantity - (refunded[line.id] ?? 0) - (taking.get(line.id) ?? 0), 0);
  }
  // The refunded units' price before promotions and discounts: the most each gives back.
  const grosses = asked.map(([line, quantity]) => lineGross({ ...line, quantity }));
  const most = grosses.reduce((sum, gross) => sum + gross, 0);
  const left = sale.totals.total - givenBack;
  const back = Math.max(0, Math.min(left - keptCost(sale, kept), most));
  return cumulativeFloorShares(back, grosses);
}

// Past this many lines, a sale with promotions leaves each line's refundable amount out
// (null): each prices the whole sale once (refund_rules.py MAX_PRICED_LINES).
const MAX_PRICED_LINES = 50;

/** What is left to refund of each line of `sale` (quantity, and cents for the rest of that line alone). */
export function leftToRefund(sale, refunded = {}, givenBack = 0) {
  const priced = !keepsPromotions(sale) || sale.lines.length <= MAX_PRICED_LINES;
  return sale.lines.map((line) => {
    const done = Math.min(refunded[line.id] ?? 0, line.quantity);
    const left = line.quantity - done;
    let amount = null;
    if (priced) amount = left ? refundAmounts(sale, [[line, left]], refunded, givenBack)[0] : 0;
    return { refunded: refunded[line.id] ?? 0, refundable: left, refundable_amount: amount };
  });
}

/** One line of a refund, shaped as sale/record_refund takes it. */
export function refundLine(sold, quantity, amount) {
  const line = {
    line_id: sold.id ?? null, product_id: sold.product_id, name: sold.name,
    vat_rate: sold.vat_rate, unit_price: sold.unit_price, quantity, amount,
  };
  if (line.line_id === null) delete line.line_id;
  if (isWeighed(sold)) line.unit = 'g';
  return line;
}

/** The refund's totals: negative, VAT per rate as a sale's (refund_rules.py refund_totals). */
export function refundTotals(lines) {
  const grossByRate = new Map();
  let items = 0;
  for (const line of lines) {
    grossByRate.set(line.vat_rate, (grossByRate.get(line.vat_rate) ?? 0) - line.amount);
    items += isWeighed(line) ? 1 : line.quantity;
  }
  const vat = [...grossByRate.keys()].sort((a, b) => a - b).map((rate) => {
    const gross = grossByRate.get(rate);
    const tax = vatOfGross(gross, rate);
    return { rate, base: gross - tax, vat: tax, total: gross };
  });
  return { total: vat.reduce((sum, row) => sum + row.total, 0), items, vat };
}

/**
 * How `-total` goes back by default (refund_rules.py default_tenders): to the
 * original's tenders other than cash, in order, each up to what it paid less
 * what earlier refunds gave back by its method; the rest in cash.
 */
export function defaultTenders(total, original = [], earlier = []) {
  const returned = new Map();
  for (const tender of earlier) returned.set(tender.method, (returned.get(tender.method) ?? 0) - tender.amount);
  let left = -total;
  const tenders = [];
  for (const tender of original) {
    const { method } = tender;
    if (method === 'cash' || left <= 0) continue;
    const taken = Math.min(tender.amount, returned.get(method) ?? 0);
    returned.set(method, (returned.get(method) ?? 0) - taken);
    const share = Math.min(tender.amount - taken, left);
    if (share > 0) {
      const back = { method, amount: -share };
      if (tender.kind) back.kind = tender.kind;
      tenders.push(back);
      left -= share;
    }
  }
  if (left > 0) tenders.push({ method: 'cash', amount: -left });
  return tenders;
}

/** Tenders summed by method (and meal voucher kind): references do not count. */
function byMethod(tenders) {
  const given = new Map();
  for (const tender of tenders) {
    const key = tender.method === 'meal_voucher' ? `meal_voucher/${tender.kind ?? ''}` : tender.method;
    given.set(key, (given.get(key) ?? 0) + tender.amount);
  }
  return [...given].filter(([, amount]) => amount !== 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Whether `tenders` give back by each method what the default would: anything else needs a manager. */
export function tendersAreDefault(tenders, defaults) {
  return JSON.stringify(byMethod(tenders)) === JSON.stringify(byMethod(defaults));
}

/** Whether what meal vouchers paid goes back as meal vouchers (never in cash, even with a manager). */
export function mealVouchersKeptAsVouchers(tenders, defaults) {
  const vouchers = (given) => -given.filter((t) => t.method === 'meal_voucher').reduce((sum, t) => sum + t.amount, 0);
  return vouchers(tenders) >= vouchers(defaults);
}

/**
 * The refund's lines for `asked` ({lineId: quantity}) of a found sale (its
 * lines carry `refunded` and `total`, the sale `refunded_amount`), in the
 * sale's order: amounts by refundAmounts.
 */
export function linesToRefund(sale, asked) {
  const chosen = sale.lines.filter((line) => (asked[line.id] ?? 0) > 0).map((line) => [line, asked[line.id]]);
  const refunded = Object.fromEntries(sale.lines.map((line) => [line.id, line.refunded ?? 0]));
  const amounts = refundAmounts(sale, chosen, refunded, sale.refunded_amount ?? 0);
  return chosen.map(([line, quantity], i) => refundLine(line, quantity, amounts[i]));
}

/** Products refunded without a receipt ([{product, quantity}]), at the catalogue's price. */
export function productLinesToRefund(items) {
  return items.map(({ product, quantity }) => refundLine(
    { product_id: product.id, name: product.name, vat_rate: product.vat_rate, unit_price: product.price },
    quantity, product.price * quantity,
  ));
}

/**
 * A sale as sold, for its refunds: the node's when it kept the priced lines,
 * else priced again by the till with `promotions` (today's, as it sold it),
 * keeping those its lines took part in and the basket discount's amount.
 */
export function saleAsSold(sale, promotions = []) {
  if (sale.lines.every((line) => Number.isInteger(line.total))) return sale;
  const priced = priceBasket(sale.lines, promotions, sale.discount ?? null);
  const lines = sale.lines.map((line, i) => {
    const { gross, promotion, promotion_ids, discount, basket_share, total } = priced.lines[i];
    return { ...line, gross, promotion, promotion_ids, discount_amount: discount, basket_share, total };
  });
  const used = new Set(priced.lines.flatMap((line) => line.promotion_ids));
  const taken = promotions.filter((promotion) => used.has(promotion.id));
  const totals = { ...sale.totals, discounts: priced.discounts };
  return { ...sale, lines, totals, ...(taken.length ? { promotions: taken } : {}) };
}

/** A refund as the ledger keeps it: what sale/record_refund takes, marked as a refund. */
export function keptRefund(refundId, refund, cashierId) {
  const kept = {
    kind: REFUND_KIND, id: refundId, receipt_no: refund.receipt_no, cashier: refund.cashier ?? cashierId,
    time: refund.time, reason: refund.reason, lines: refund.lines.map(({ total, ...line }) => line),
    tenders: refund.tenders, totals: { total: refund.totals.total, items: refund.totals.items, vat: refund.totals.vat },
  };
  if (refund.refund_of ?? refund.sale_id) kept.sale_id = refund.refund_of ?? refund.sale_id;
  if (refund.approved_by) kept.approved_by = refund.approved_by;
  return kept;
}

/**
 * Finds receipts and records refunds for a TillSession: on the node serving
 * the till when one does, else on the till alone (its own sales of the day,
 * the outbox). A refund keeps its id and receipt number from its first try,
 * so a node that recorded it before dying, or the outbox's resend, never
 * makes it twice.
 */
export class RefundDesk {
  constructor(session, newId = newUuid) {
    this.session = session;
    this.newId = newId;
  }

  /** A node answers: it finds and refunds (a refusal is its word, never done offline instead). */
  get online() {
    return this.session.client.online;
  }

  /** The sale of a receipt (number or QR code) with what is left of each line: find_for_refund's answer. */
  async find(text) {
    const query = receiptQuery(text);
    if (this.online) {
      try {
        return await this.session.call('sale/find_for_refund', query);
      } catch (error) {
        if (error.code !== 'disconnected') throw error;
      }
    }
    return this.findOnTill(query);
  }

  /** Offline: among this till's own sales of the day, what it refunded of them itself. */
  async findOnTill(query) {
    const { ledger, auth } = this.session;
    const kept = (await ledger.daySales()).map((row) => row.sale);
    let sale;
    if (query.qr) {
      sale = kept.find((candidate) => candidate.hash === query.qr && candidate.kind !== REFUND_KIND);
      if (!sale) throw new CommandError('refund_offline_qr', 'no node answers: type the receipt number');
    } else {
      const [, till, number] = /^(.*)-(\d+)$/.exec(query.receipt_number) ?? [];
      if (!till) throw new CommandError('invalid_field', 'not a receipt number');
      if (till !== auth?.till?.code) throw new CommandError('refund_offline_other_till');
      sale = kept.find((candidate) => candidate.receipt_no === Number(number));
      if (!sale) throw new CommandError('unknown_sale', 'not among this till\'s sales of the day');
      if (sale.kind === REFUND_KIND) throw new CommandError('refund_of_refund');
    }
    const refunds = kept.filter((row) => row.kind === REFUND_KIND && row.sale_id === sale.id);
    const refunded = {};
    let givenBack = 0;
    for (const refund of refunds) {
      for (const line of refund.lines) {
        refunded[line.line_id] = (refunded[line.line_id] ?? 0) + line.quantity;
        givenBack += line.amount;
      }
    }
    const sold = saleAsSold(sale, this.session.catalogue?.activePromotions?.() ?? []);
    const left = leftToRefund(sold, refunded, givenBack);
    const lines = sold.lines.map((line, i) => ({ ...line, ...left[i] }));
    const number = (no) => `${auth.till.code}-${String(no).padStart(6, '0')}`;
    return {
      sale: {
        ...sold, receipt_number: number(sale.receipt_no), till: auth.till.code, lines, refunded_amount: givenBack,
      },
      refunds: refunds.map((refund) => ({ id: refund.id, receipt_number: number(refund.receipt_no), total: refund.totals.total })),
      offline: true,
      earlierTenders: refunds.flatMap((refund) => refund.tenders),
    };
  }

  /** A new refund's id (kept for its resends: the approval prompt sends it again). */
  newRefundId() {
    return this.newId();
  }

  /**
   * Records a refund: `ask` {refundId, reason, sale (found) | null, lines
   * (refund lines), tenders | null, approval | null}. Resolves with the refund
   * as the node shapes it (offline: `offline: true`, not printed).
   */
  async refund(ask) {
    const { ledger } = this.session;
    let renumbered = 0;
    ask.receiptNo ??= ledger.nextReceiptNo;
    while (this.online) {
      const args = {
        refund_id: ask.refundId, reason: ask.reason, receipt_no: ask.receiptNo,
        lines: ask.sale
          ? ask.lines.map((line) => ({ line_id: line.line_id, quantity: line.quantity }))
          : ask.lines.map((line) => ({ product_id: line.product_id, quantity: line.quantity })),
      };
      if (ask.sale) args.sale_id = ask.sale.id;
      if (ask.tenders) args.tenders = ask.tenders;
      if (ask.approval) args.approval = ask.approval;
      try {
        const refund = await this.session.call('sale/refund', args);
        // Kept before "done": a node that dies before passing it on gets it from the till
        // (a training refund is the node's alone: never resent as a real one).
        if (!refund.training) await ledger.keepSale(keptRefund(ask.refundId, refund, this.session.cashier?.id));
        return refund;
      } catch (error) {
        if (error.code === 'receipt_number_used' && renumbered < 3 && (await ledger.adoptNextFree(error))) {
          renumbered++;
          ask.receiptNo = ledger.nextReceiptNo;
          continue;
        }
        if (error.code !== 'disconnected') throw error;
      }
    }
    if (this.session.training) throw new CommandError('training_offline');
    return this.refundOnTill(ask);
  }

  /** With no node: the refund goes to the outbox, on disk, before the cashier gives the money back. */
  async refundOnTill(ask) {
    const { session } = this;
    const totals = refundTotals(ask.lines);
    const earlier = ask.sale ? (ask.earlierTenders ?? []) : [];
    const defaults = defaultTenders(totals.total, ask.sale?.tenders ?? [], earlier);
    const tenders = ask.tenders ?? defaults;
    // The node's rules (refunds.py refund): meal vouchers go back as meal vouchers, whoever approves.
    if (!mealVouchersKeptAsVouchers(tenders, defaults)) {
      throw new CommandError('refund_meal_voucher', 'meal vouchers go back as meal vouchers, never in cash');
    }
    const refund = {
      id: ask.refundId, receipt_no: ask.receiptNo, cashier: session.cashier.id,
      time: new Date(session.clock.now()).toISOString(), reason: ask.reason, lines: ask.lines, tenders, totals,
    };
    if (ask.sale) refund.sale_id = ask.sale.id;
    if (!ask.sale || !tendersAreDefault(tenders, defaults)) {
      // No node can check a PIN: the manager named is recorded, and the node flags it unverified.
      const manager = ask.approval?.manager ?? (session.cashier.role === 'manager' ? session.cashier.id : null);
      if (!manager) {
        const why = ask.sale ? 'giving it back otherwise than the sale was paid' : 'a refund without receipt';
        throw new CommandError('manager_required', why, { data: { approval: 'required' } });
      }
      refund.approved_by = manager;
    }
    await session.ledger.keepOfflineSale({ kind: REFUND_KIND, ...refund });
    const receiptNumber = `${session.auth.till.code}-${String(ask.receiptNo).padStart(6, '0')}`;
    return {
      ...refund, id: `${ask.refundId}@${session.auth.till.code}#refund`, refund_of: ask.sale?.id ?? null,
      refund_of_receipt: ask.sale?.receipt_number, receipt_number: receiptNumber,
      lines: ask.lines.map((line) => ({ ...line, total: -line.amount })), offline: true,
    };
  }
}
