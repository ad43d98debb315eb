// The till's own record of its sales: its receipt numbering (the till is the
// source of truth for it), the outbox of sales made while no node answered,
// kept until a node has them, and every sale of the day, so that a node the
// till moves to gets any sale it lacks (the node that acknowledged it may
// have died before passing it on). Storage is offline.js (IndexedDB); without
// it the till still numbers its receipts, but cannot sell offline.

import { CommandError } from './client.js';

// A node closes the socket on a message over 1 MiB (docs/protocol.md).
const MAX_MESSAGE_BYTES = 1024 * 1024;

function tooLargeToSend(sale) {
  const message = JSON.stringify({ id: Number.MAX_SAFE_INTEGER, type: 'sale/record', sale });
  return new TextEncoder().encode(message).length > MAX_MESSAGE_BYTES;
}

/** The local calendar day of `date`, "YYYY-MM-DD": the till's day, not UTC's. */
export function localDay(date = new Date()) {
  const pad = (number) => String(number).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

// How long after a node last checked the cashier's PIN a reload may sell on
// without one (a page reloaded with every node down): within the shift, never
// the next day (a browser restoring yesterday's tabs).
export const SESSION_HOURS = 12;

/** May a session kept for a reload be taken up now? Only the day its PIN was checked, within SESSION_HOURS. */
export function sessionStillValid(saved, now = new Date()) {
  const checked = Number(saved?.pinCheckedAt);
  if (!Number.isFinite(checked) || checked > now.getTime()) return false;
  return now.getTime() - checked < SESSION_HOURS * 3600 * 1000 && localDay(new Date(checked)) === localDay(now);
}

export class TillLedger extends EventTarget {
  constructor() {
    super();
    this.store = null; // TillStore, once the browser gave us one
    this.key = null; // "<store id>/<till code>": numbering belongs to a till of a store
    this.lastReceiptNo = 0; // the highest number this till used or a node reported
    this.waitingSales = 0; // sales in the outbox
    this.keptSales = 0; // sales of the day kept on the till
    this.flushRun = null; // the flush under way, so two never interleave
  }

  attach(store) {
    this.store = store;
  }

  get nextReceiptNo() {
    return this.lastReceiptNo + 1;
  }

  /** After each `auth`: which till this is, and the node's `last_receipt_no` (max of the two wins). */
  async adopt(auth) {
    const key = `${auth.store?.id}/${auth.till?.code}`;
    if (key !== this.key) {
      this.key = key;
      this.lastReceiptNo = 0;
      this.waitingSales = 0;
      this.keptSales = 0;
      if (this.store) {
        try {
          const saved = await this.store.lastReceiptNo(key);
          this.lastReceiptNo = Math.max(this.lastReceiptNo, saved); // a newer auth may have raised it meanwhile
          this.waitingSales = await this.store.countWaitingSales(key);
          this.keptSales = await this.store.countKeptSales(key);
        } catch {
          // Unreadable storage: the node's number below still keeps numbers from repeating.
        }
      }
    }
    // The node may know sales this till made through another node, or before the browser was reset.
    await this.remember(auth.last_receipt_no ?? 0);
    this.changed();
  }

  /**
   * The node refused a sale's number (`receipt_number_used`: another tab of
   * this till, or a stale counter, used it): take up the next free number it
   * gives. False when the refusal says none, so the caller does not retry blindly.
   */
  async adoptNextFree(error) {
    const next = error?.data?.next_receipt_no;
    if (!Number.isInteger(next) || next < 1) return false;
    await this.remember(next - 1);
    return true;
  }

  /** A number is used (a node confirmed a sale): never hand it out again. */
  async remember(receiptNo) {
    if (!(receiptNo > this.lastReceiptNo)) return;
    this.lastReceiptNo = receiptNo;
    await this.store?.saveReceiptNo(this.key, receiptNo).catch(() => {});
  }

  /**
   * Keeps a sale a node acknowledged (shaped for `sale/record`, see
   * basket.js recordedSale), with its number. Without storage only the number
   * is remembered: the sale itself was acknowledged, so it is not lost, only
   * not resendable.
   */
  async keepSale(sale) {
    if (this.store && this.key) {
      try {
        await this.store.keepSale(this.key, sale, localDay());
        this.keptSales = await this.store.countKeptSales(this.key);
      } catch {
        // Storage full or gone: the node has the sale; the till just cannot resend it.
      }
    }
    await this.remember(sale.receipt_no);
    this.changed();
  }

  /** Keeps a sale made offline, on disk, with its number; resolves once it would survive a crash. */
  async keepOfflineSale(sale) {
    if (!this.store || !this.key) throw new CommandError('no_offline_storage');
    await this.store.queueSale(this.key, sale, localDay());
    this.lastReceiptNo = Math.max(this.lastReceiptNo, sale.receipt_no);
    this.waitingSales++;
    this.keptSales = await this.store.countKeptSales(this.key).catch(() => this.keptSales + 1);
    this.changed();
  }

  /** At start: the day's sales are what a node may lack; older ones are the nodes' business. */
  async dropOlderDays() {
    if (!this.store) return;
    await this.store.dropSalesBefore(localDay());
    if (this.key) {
      this.keptSales = await this.store.countKeptSales(this.key);
      this.changed();
    }
  }

  /**
   * Brings a node up to date with the till's sales, with `call(type, args)`
   * on it: first the outbox (`sale/record`, oldest first), then every sale of
   * the day the node does not hold (`sale/held`), resent with `sale/record`.
   * A sale leaves the outbox only once recorded: a resend after a lost answer
   * is harmless (same sale id), a sale dropped unsent is not. A sale the node
   * refuses stays, is reported to `onRefused`, and does not hold up the
   * others. Throws when the connection is lost (the next connection sends
   * the rest). Two runs never interleave.
   */
  flush(call, onRefused) {
    const previous = this.flushRun ?? Promise.resolve();
    this.flushRun = previous.catch(() => {}).then(async () => {
      const tried = new Set(); // ids sent (or refused) from the outbox: not sent twice in one run
      await this.sendWaitingSales(call, onRefused, tried);
      await this.resendMissingSales(call, onRefused, tried);
    });
    return this.flushRun;
  }

  async sendWaitingSales(call, onRefused, tried) {
    if (!this.store || !this.key) return;
    for (const { seq, sale } of await this.store.waitingSales(this.key)) {
      tried.add(sale.id);
      if (!(await this.record(call, sale, { offline: true }, onRefused))) continue;
      await this.store.removeSale(seq);
      this.waitingSales = await this.store.countWaitingSales(this.key);
      this.changed();
    }
  }

  /**
   * The node says which receipt numbers of this till it holds from the
   * lowest one kept on; each kept sale whose number is not among them is
   * sent again, as it was made (offline or acknowledged by another node).
   */
  async resendMissingSales(call, onRefused, tried) {
    if (!this.store || !this.key) return;
    const kept = await this.store.keptSales(this.key);
    if (!kept.length) return;
    let held;
    try {
      ({ receipt_nos: held } = await call('sale/held', { since: kept[0].receipt_no }));
    } catch (error) {
      if (error.code === 'disconnected') throw error;
      // A node that cannot say what it holds: selling matters more than resending now.
      console.warn('sale/held failed; sales not checked on this node', error);
      return;
    }
    const heldNumbers = new Set(held);
    for (const { sale, offline } of kept) {
      if (heldNumbers.has(sale.receipt_no) || tried.has(sale.id)) continue;
      await this.record(call, sale, { offline }, onRefused);
    }
  }

  /**
   * One `sale/record` (or `sale/record_refund`); true once the node has the sale.
   * `till`: the earlier code this till made it as (paired again since), for a refund,
   * whose id does not name its till as a sale's does.
   */
  async record(call, sale, { offline, till = null }, onRefused) {
    if (tooLargeToSend(sale)) {
      // The node would close the socket (1009) at each try: the till would never get back online.
      onRefused(sale, new CommandError('sale_too_large', 'too many lines for one message'), till);
      return false;
    }
    try {
      if (sale.kind === 'refund') {
        // A refund (refunds.js): its own command; the mark stays on the till.
        const { kind, ...refund } = sale;
        await call('sale/record_refund', { refund, offline, ...(till ? { till } : {}) });
      } else {
        // The customer's receipt choice is kept with the sale and sent beside it (sale/record's `print`).
        const { print, ...recorded } = sale;
        await call('sale/record', { sale: recorded, offline, ...(print === false ? { print: false } : {}) });
      }
      return true;
    } catch (error) {
      if (error.code === 'disconnected') throw error;
      onRefused(sale, error, till); // the money was taken: keep the sale, and say so
      return false;
    }
  }

  /** The till's sales (and refunds) of the day, by receipt number: [{sale, offline}]; none without storage. */
  async daySales() {
    if (!this.store || !this.key) return [];
    return this.store.keptSales(this.key);
  }

  changed() {
    this.dispatchEvent(new Event('change'));
  }
}
