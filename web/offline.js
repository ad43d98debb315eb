// What the till keeps in the browser (IndexedDB): the outbox of sales made
// offline, every sale of the day it completed (the till is the source of
// truth for its own sales: a node may acknowledge one and die before passing
// it on) and the till's own receipt counter. The catalogue copy has its own
// database, written by its worker (catalogue-worker.js); versions 1 and 2
// kept one here, dropped by version 3.
// IndexedDB works on a shop's plain-http origin, where service workers and
// crypto.subtle do not.

import { committed, done, openDatabase } from './idb.js';

const DB_NAME = 'edge-till';
const DB_VERSION = 3;

function openTillDatabase() {
  return openDatabase(DB_NAME, DB_VERSION, (db, event, transaction) => {
    if (event.oldVersion < 1) {
      // Sales completed offline, in the order they were made (seq), each with the till it belongs to.
      db.createObjectStore('outbox', { keyPath: 'seq', autoIncrement: true }).createIndex('till', 'till');
      // Small values: the receipt counter of each till ("receipt:<store>/<till>").
      db.createObjectStore('meta', { keyPath: 'key' });
    }
    if (event.oldVersion < 2) {
      // Every sale of the day, online or offline, by sale id: {id, till, day, receipt_no, offline, sale}.
      const sales = db.createObjectStore('sales', { keyPath: 'id' });
      sales.createIndex('till', 'till');
      sales.createIndex('day', 'day'); // local date "YYYY-MM-DD", to drop older days
    }
    if (event.oldVersion >= 1 && event.oldVersion < 3) {
      // The old catalogue copy (all products in one transaction): catalogue-worker.js keeps it now.
      if (db.objectStoreNames.contains('products')) db.deleteObjectStore('products');
      transaction.objectStore('meta').delete('catalogue-extras');
    }
  }, 'the till database is held open by an older tab');
}

const receiptKey = (till) => `receipt:${till}`;
const TOKEN_PREFIX = 'token:';
const tokenKey = (till) => `${TOKEN_PREFIX}${till}`;

/**
 * `till` arguments are "<store id>/<till code>": receipt numbers belong to a
 * till of a store, so a browser paired again as another till starts afresh.
 */
export class TillStore {
  static async open() {
    return new TillStore(await openTillDatabase());
  }

  constructor(db) {
    this.db = db;
  }

  // --- the till's receipt counter ---

  async lastReceiptNo(till) {
    const transaction = this.db.transaction('meta');
    const row = await done(transaction.objectStore('meta').get(receiptKey(till)));
    return row?.value ?? 0;
  }

  /** Raises the counter to `receiptNo` (never lowers it). */
  async saveReceiptNo(till, receiptNo) {
    const transaction = this.db.transaction('meta', 'readwrite', { durability: 'strict' });
    raiseCounter(transaction, till, receiptNo);
    await committed(transaction);
  }

  // --- the outbox of offline sales ---

  /**
   * Keeps an offline sale (in the outbox and among the day's sales), and its
   * receipt number as used, in one transaction on disk: once this resolves,
   * the sale survives a crash or a closed tab.
   */
  async queueSale(till, sale, day) {
    const transaction = this.db.transaction(['outbox', 'sales', 'meta'], 'readwrite', { durability: 'strict' });
    transaction.objectStore('outbox').add({ till, sale });
    transaction.objectStore('sales').put(keptSale(till, sale, day, true));
    raiseCounter(transaction, till, sale.receipt_no);
    await committed(transaction);
  }

  /** The till's waiting sales, oldest first: [{seq, sale}]. */
  async waitingSales(till) {
    const transaction = this.db.transaction('outbox');
    return done(transaction.objectStore('outbox').index('till').getAll(till)).then((rows) =>
      rows.sort((a, b) => a.seq - b.seq),
    );
  }

  /**
   * Every sale waiting in the outbox, whatever till it was made as (`till` is
   * not a filter): a till paired again, or moved to another store, still holds
   * the sales it made as the till it was, and the cashier and store IT must see them.
   */
  async countWaitingSales(till) {
    const transaction = this.db.transaction('outbox');
    return done(transaction.objectStore('outbox').count());
  }

  /** How many sales wait under each till ("<store id>/<till code>"): {till: count}. */
  async waitingTills() {
    const transaction = this.db.transaction('outbox');
    const counts = {};
    const cursor = transaction.objectStore('outbox').index('till').openKeyCursor();
    cursor.onsuccess = () => {
      if (!cursor.result) return;
      counts[cursor.result.key] = (counts[cursor.result.key] ?? 0) + 1;
      cursor.result.continue();
    };
    await committed(transaction);
    return counts;
  }

  // --- the tokens of the tills this browser was (its proof when paired again) ---

  /** The token the till had as `till` ("<store id>/<till code>"), kept while it may be needed. */
  async saveTillToken(till, token) {
    const transaction = this.db.transaction('meta', 'readwrite', { durability: 'strict' });
    transaction.objectStore('meta').put({ key: tokenKey(till), value: token });
    await committed(transaction);
  }

  /** {till: token} of every till this browser kept a token of. */
  async tillTokens() {
    const transaction = this.db.transaction('meta');
    const rows = await done(transaction.objectStore('meta').getAll(IDBKeyRange.bound(TOKEN_PREFIX, `${TOKEN_PREFIX}\uffff`)));
    return Object.fromEntries(rows.map((row) => [row.key.slice(TOKEN_PREFIX.length), row.value]));
  }

  /** Forgets the tokens of the tills not in `keep` (a Set of "<store id>/<till code>"). */
  async forgetTillTokensBut(keep) {
    const tokens = await this.tillTokens();
    const transaction = this.db.transaction('meta', 'readwrite');
    for (const till of Object.keys(tokens)) if (!keep.has(till)) transaction.objectStore('meta').delete(tokenKey(till));
    await committed(transaction);
  }

  /** Only once a node has acknowledged the sale (a resend is harmless, a loss is not). */
  async removeSale(seq) {
    const transaction = this.db.transaction('outbox', 'readwrite', { durability: 'strict' });
    transaction.objectStore('outbox').delete(seq);
    await committed(transaction);
  }

  // --- the day's sales ---

  /** Keeps a sale a node acknowledged, and its receipt number as used, in one transaction on disk. */
  async keepSale(till, sale, day) {
    const transaction = this.db.transaction(['sales', 'meta'], 'readwrite', { durability: 'strict' });
    transaction.objectStore('sales').put(keptSale(till, sale, day, false));
    raiseCounter(transaction, till, sale.receipt_no);
    await committed(transaction);
  }

  /** The till's kept sales, by receipt number: [{id, till, day, receipt_no, offline, sale}]. */
  async keptSales(till) {
    const transaction = this.db.transaction('sales');
    const rows = await done(transaction.objectStore('sales').index('till').getAll(till));
    return rows.sort((a, b) => a.receipt_no - b.receipt_no);
  }

  async countKeptSales(till) {
    const transaction = this.db.transaction('sales');
    return done(transaction.objectStore('sales').index('till').count(till));
  }

  /** Drops the sales of days before `day` ("YYYY-MM-DD"); the outbox keeps any still unsent. */
  async dropSalesBefore(day) {
    const transaction = this.db.transaction('sales', 'readwrite');
    const older = transaction.objectStore('sales').index('day').openKeyCursor(IDBKeyRange.upperBound(day, true));
    older.onsuccess = () => {
      const cursor = older.result;
      if (!cursor) return;
      transaction.objectStore('sales').delete(cursor.primaryKey);
      cursor.continue();
    };
    await committed(transaction);
  }
}

function keptSale(till, sale, day, offline) {
  return { id: sale.id, till, day, receipt_no: sale.receipt_no, offline, sale };
}

function raiseCounter(transaction, till, receiptNo) {
  const meta = transaction.objectStore('meta');
  const request = meta.get(receiptKey(till));
  request.onsuccess = () => {
    if ((request.result?.value ?? 0) < receiptNo) meta.put({ key: receiptKey(till), value: receiptNo });
  };
}
