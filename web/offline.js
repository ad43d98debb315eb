// What the till keeps in the browser (IndexedDB) to sell when no node answers:
// the outbox of sales made offline, the till's own receipt counter, and a copy
// of the catalogue. IndexedDB works on a shop's plain-http origin, where
// service workers and crypto.subtle do not.

const DB_NAME = 'edge-till';
const DB_VERSION = 1;

/** Wraps an IDBRequest in a promise. */
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Resolves when the transaction is committed (with 'strict' durability: on disk). */
function committed(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error ?? new Error('transaction aborted'));
  });
}

function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      // Sales completed offline, in the order they were made (seq), each with the till it belongs to.
      db.createObjectStore('outbox', { keyPath: 'seq', autoIncrement: true }).createIndex('till', 'till');
      // Small values: the receipt counter of each till ("receipt:<store>/<till>").
      db.createObjectStore('meta', { keyPath: 'key' });
      db.createObjectStore('products', { keyPath: 'id' });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('the till database is held open by an older tab'));
  });
}

const receiptKey = (till) => `receipt:${till}`;

/**
 * `till` arguments are "<store id>/<till code>": receipt numbers belong to a
 * till of a store, so a browser paired again as another till starts afresh.
 */
export class TillStore {
  static async open() {
    return new TillStore(await openDatabase());
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
   * Keeps an offline sale, and its receipt number as used, in one transaction
   * on disk: once this resolves, the sale survives a crash or a closed tab.
   */
  async queueSale(till, sale) {
    const transaction = this.db.transaction(['outbox', 'meta'], 'readwrite', { durability: 'strict' });
    transaction.objectStore('outbox').add({ till, sale });
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

  async countWaitingSales(till) {
    const transaction = this.db.transaction('outbox');
    return done(transaction.objectStore('outbox').index('till').count(till));
  }

  /** Only once a node has acknowledged the sale (a resend is harmless, a loss is not). */
  async removeSale(seq) {
    const transaction = this.db.transaction('outbox', 'readwrite', { durability: 'strict' });
    transaction.objectStore('outbox').delete(seq);
    await committed(transaction);
  }

  // --- the catalogue copy ---

  async loadProducts() {
    return done(this.db.transaction('products').objectStore('products').getAll());
  }

  async replaceProducts(products) {
    const transaction = this.db.transaction('products', 'readwrite');
    const store = transaction.objectStore('products');
    store.clear();
    for (const product of products) store.put(product);
    await committed(transaction);
  }

  async putProducts(products) {
    const transaction = this.db.transaction('products', 'readwrite');
    const store = transaction.objectStore('products');
    for (const product of products) store.put(product);
    await committed(transaction);
  }

  async deleteProduct(id) {
    const transaction = this.db.transaction('products', 'readwrite');
    transaction.objectStore('products').delete(id);
    await committed(transaction);
  }
}

function raiseCounter(transaction, till, receiptNo) {
  const meta = transaction.objectStore('meta');
  const request = meta.get(receiptKey(till));
  request.onsuccess = () => {
    if ((request.result?.value ?? 0) < receiptNo) meta.put({ key: receiptKey(till), value: receiptNo });
  };
}
