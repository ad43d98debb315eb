// Refunds on the till, with no DOM: the rules of edge/selling/refund_rules.py
// (what refunding part of a line gives back, the totals, where the money goes
// by default), and the RefundDesk that finds a receipt and records a refund,
// on a node (sale/find_for_refund, sale/refund) or, while no node answers,
// from the till's own sales of the day into the ledger's outbox, recorded
// with sale/record_refund once a node answers (ledger.js). The screen is
// screen-refund.js. Integer cents throughout.

import { CommandError, newUuid } from './client.js';
import { priceBasket, vatOfGross } from './pricing.js';

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

/** Cents given back for `refunding` more of a line (`total` for `quantity`), `already` refunded. */
export function lineRefundAmount(total, quantity, already, refunding) {
  return Math.floor((total * (already + refunding)) / quantity) - Math.floor((total * already) / quantity);
}

/** What is left to refund of a sold line, `refunded` of it already given back. */
export function leftToRefund(line, refunded) {
  const done = Math.min(refunded, line.quantity);
  return {
    refunded,
    refundable: line.quantity - done,
    refundable_amount: line.total - Math.floor((line.total * done) / line.quantity),
  };
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

/**
 * The refund's lines for `asked` ({lineId: quantity}) of a found sale (its
 * lines carry `refunded` and `total`): each amount by the cumulative floor.
 */
export function linesToRefund(sale, asked) {
  const lines = [];
  for (const line of sale.lines) {
    const quantity = asked[line.id] ?? 0;
    if (quantity <= 0) continue;
    lines.push(refundLine(line, quantity, lineRefundAmount(line.total, line.quantity, line.refunded ?? 0, quantity)));
  }
  return lines;
}

/** Products refunded without a receipt ([{product, quantity}]), at the catalogue's price. */
export function productLinesToRefund(items) {
  return items.map(({ product, quantity }) => refundLine(
    { product_id: product.id, name: product.name, vat_rate: product.vat_rate, unit_price: product.price },
    quantity, product.price * quantity,
  ));
}

/** A sale's line totals as sold: the node's when kept, else priced again by the till. */
function soldLineTotals(sale) {
  if (sale.lines.every((line) => Number.isInteger(line.total))) return sale.lines.map((line) => line.total);
  const priced = priceBasket(sale.lines, [], sale.discount ?? null);
  return priced.lines.map((line) => line.total);
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
    for (const refund of refunds) {
      for (const line of refund.lines) refunded[line.line_id] = (refunded[line.line_id] ?? 0) + line.quantity;
    }
    const totals = soldLineTotals(sale);
    const lines = sale.lines.map((line, i) => {
      const sold = { ...line, total: totals[i] };
      return { ...sold, ...leftToRefund(sold, refunded[line.id] ?? 0) };
    });
    const number = (no) => `${auth.till.code}-${String(no).padStart(6, '0')}`;
    return {
      sale: { ...sale, receipt_number: number(sale.receipt_no), till: auth.till.code, lines },
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
        // Kept before "done": a node that dies before passing it on gets it from the till.
        await ledger.keepSale(keptRefund(ask.refundId, refund, this.session.cashier?.id));
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
    return this.refundOnTill(ask);
  }

  /** With no node: the refund goes to the outbox, on disk, before the cashier gives the money back. */
  async refundOnTill(ask) {
    const { session } = this;
    const totals = refundTotals(ask.lines);
    const earlier = ask.sale ? (ask.earlierTenders ?? []) : [];
    const tenders = ask.tenders ?? defaultTenders(totals.total, ask.sale?.tenders ?? [], earlier);
    const refund = {
      id: ask.refundId, receipt_no: ask.receiptNo, cashier: session.cashier.id,
      time: new Date(session.clock.now()).toISOString(), reason: ask.reason, lines: ask.lines, tenders, totals,
    };
    if (ask.sale) refund.sale_id = ask.sale.id;
    if (!ask.sale) {
      // No node can check a PIN: the manager named is recorded, and the node flags it unverified.
      const manager = ask.approval?.manager ?? (session.cashier.role === 'manager' ? session.cashier.id : null);
      if (!manager) throw new CommandError('manager_required', 'a refund without receipt', { data: { approval: 'required' } });
      refund.approved_by = manager;
    }
    await session.ledger.keepOfflineSale({ kind: REFUND_KIND, ...refund });
    const receiptNumber = `${session.auth.till.code}-${String(ask.receiptNo).padStart(6, '0')}`;
    return {
      ...refund, id: `${ask.refundId}@${session.auth.till.code}`, refund_of: ask.sale?.id ?? null,
      refund_of_receipt: ask.sale?.receipt_number, receipt_number: receiptNumber,
      lines: ask.lines.map((line) => ({ ...line, total: -line.amount })), offline: true,
    };
  }
}
