// The till's own record of its sales: its receipt numbering (the till is the
// source of truth for it) and the outbox of sales made while no node
// answered, kept until a node has them. Storage is offline.js (IndexedDB);
// without it the till still numbers its receipts, but cannot sell offline.

import { CommandError } from './client.js';

// A node closes the socket on a message over 64 KiB (docs/protocol.md).
const MAX_MESSAGE_BYTES = 64 * 1024;

function tooLargeToSend(sale) {
  const message = JSON.stringify({ id: Number.MAX_SAFE_INTEGER, type: 'sale/record', sale });
  return new TextEncoder().encode(message).length > MAX_MESSAGE_BYTES;
}

export class TillLedger extends EventTarget {
  constructor() {
    super();
    this.store = null; // TillStore, once the browser gave us one
    this.key = null; // "<store id>/<till code>": numbering belongs to a till of a store
    this.lastReceiptNo = 0; // the highest number this till used or a node reported
    this.waitingSales = 0; // sales in the outbox
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
      if (this.store) {
        try {
          const saved = await this.store.lastReceiptNo(key);
          this.lastReceiptNo = Math.max(this.lastReceiptNo, saved); // a newer auth may have raised it meanwhile
          this.waitingSales = await this.store.countWaitingSales(key);
        } catch {
          // Unreadable storage: the node's number below still keeps numbers from repeating.
        }
      }
    }
    // The node may know sales this till made through another node, or before the browser was reset.
    await this.remember(auth.last_receipt_no ?? 0);
    this.changed();
  }

  /** A number is used (a node confirmed a sale): never hand it out again. */
  async remember(receiptNo) {
    if (!(receiptNo > this.lastReceiptNo)) return;
    this.lastReceiptNo = receiptNo;
    await this.store?.saveReceiptNo(this.key, receiptNo).catch(() => {});
  }

  /** Keeps a sale made offline, on disk, with its number; resolves once it would survive a crash. */
  async keepOfflineSale(sale) {
    if (!this.store || !this.key) throw new CommandError('no_offline_storage');
    await this.store.queueSale(this.key, sale);
    this.lastReceiptNo = Math.max(this.lastReceiptNo, sale.receipt_no);
    this.waitingSales++;
    this.changed();
  }

  /**
   * Sends the waiting sales, oldest first, with `record(sale)` (sale/record on
   * a node). A sale leaves the outbox only once recorded: a resend after a
   * lost answer is harmless (same sale id), a sale dropped unsent is not.
   * A sale the node refuses stays, is reported to `onRefused`, and does not
   * hold up the others. Throws when the connection is lost (the next
   * connection sends the rest).
   */
  flush(record, onRefused) {
    const previous = this.flushRun ?? Promise.resolve();
    this.flushRun = previous.catch(() => {}).then(() => this.sendWaitingSales(record, onRefused));
    return this.flushRun;
  }

  async sendWaitingSales(record, onRefused) {
    if (!this.store || !this.key) return;
    for (const { seq, sale } of await this.store.waitingSales(this.key)) {
      if (tooLargeToSend(sale)) {
        // The node would close the socket (1009) at each try: the till would never get back online.
        onRefused(sale, new CommandError('sale_too_large', 'too many lines for one message'));
        continue;
      }
      try {
        await record(sale);
      } catch (error) {
        if (error.code === 'disconnected') throw error;
        onRefused(sale, error); // the money was taken: keep the sale, and say so
        continue;
      }
      await this.store.removeSale(seq);
      this.waitingSales = await this.store.countWaitingSales(this.key);
      this.changed();
    }
  }

  changed() {
    this.dispatchEvent(new Event('change'));
  }
}
