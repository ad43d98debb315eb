// Fakes for the till session's unit tests (tests/test_till_session.py): a
// clock that moves only when told, an in-memory TillStore, nodes that keep a
// store's baskets and sales the way edge does (docs/protocol.md), and a
// client that connects to one of them, loses it, or finds none. The session,
// the ledger, the catalogue and basket.js are the till's own, unchanged.
import { TillSession } from '/session.js';
import { TillLedger } from '/ledger.js';
import { LocalCatalogue } from '/catalogue.js';
import { CommandError } from '/client.js';
import { emptyBasket, addLine, setLineQuantity, removeLine, receiptNumber, saleIdFor } from '/basket.js';

export const TILL = 'T01-aaaaaa';
export const PIN = '1234';
export const PRODUCTS = [
  { id: 'p1', barcode: '111', name: 'Baguette tradition', price: 120, vat_rate: 550, category: 'Pain' },
  { id: 'p2', barcode: '222', name: 'Croissant', price: 95, vat_rate: 550, category: 'Viennoiserie' },
  { id: 'p3', barcode: '333', name: 'Jus de pomme', price: 250, vat_rate: 2000, category: 'Boissons' },
];

/** Lines as [product id, quantity], easy to compare. */
export const items = (lines) => lines.map((line) => [line.product_id, line.quantity]);

/** One macrotask turn: every promise chain that waits on nothing else has run. */
function turn() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

export async function settle() {
  for (let i = 0; i < 5; i++) await turn();
}

/** Time moves only in advance(): timers due by then fire in order, each followed by what it set off. */
export class FakeClock {
  constructor(time = new Date(2026, 0, 15, 10, 0).getTime()) {
    this.time = time;
    this.timers = new Map();
    this.nextId = 1;
  }

  now() {
    return this.time;
  }

  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, fn });
    return id;
  }

  clearTimeout(id) {
    this.timers.delete(id);
  }

  async advance(ms) {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, timer]) => timer.at <= end).sort((a, b) => a[1].at - b[1].at);
      if (!due.length) break;
      const [id, timer] = due[0];
      this.timers.delete(id);
      this.time = timer.at;
      timer.fn();
      await settle();
    }
    this.time = end;
    await settle();
  }
}

/** offline.js's TillStore, in memory. */
export class MemoryStore {
  constructor() {
    this.counters = new Map();
    this.outbox = []; // {seq, till, sale}
    this.sales = new Map(); // id -> {id, till, day, receipt_no, offline, sale}
    this.seq = 0;
  }

  raise(till, receiptNo) {
    if ((this.counters.get(till) ?? 0) < receiptNo) this.counters.set(till, receiptNo);
  }

  async lastReceiptNo(till) { return this.counters.get(till) ?? 0; }
  async saveReceiptNo(till, receiptNo) { this.raise(till, receiptNo); }

  async queueSale(till, sale, day) {
    this.outbox.push({ seq: ++this.seq, till, sale });
    this.sales.set(sale.id, { id: sale.id, till, day, receipt_no: sale.receipt_no, offline: true, sale });
    this.raise(till, sale.receipt_no);
  }

  async waitingSales(till) { return this.outbox.filter((row) => row.till === till); }
  async countWaitingSales(till) { return this.outbox.filter((row) => row.till === till).length; }
  async removeSale(seq) { this.outbox = this.outbox.filter((row) => row.seq !== seq); }

  async keepSale(till, sale, day) {
    this.sales.set(sale.id, { id: sale.id, till, day, receipt_no: sale.receipt_no, offline: false, sale });
    this.raise(till, sale.receipt_no);
  }

  async keptSales(till) {
    return [...this.sales.values()].filter((row) => row.till === till).sort((a, b) => a.receipt_no - b.receipt_no);
  }

  async countKeptSales(till) { return (await this.keptSales(till)).length; }
  async dropSalesBefore() {}
}

/** What nodes that replicate to each other share: the till's baskets and sales. */
export class StoreState {
  constructor() {
    this.baskets = new Map(); // id -> {basket, status: 'open' | 'sold' | 'voided', holder}
    this.openBasketId = null; // this till's open basket
    this.sales = new Map(); // sale id -> sale
  }
}

/**
 * A node of the store, for one till. `dieOn`: a command type that the node
 * carries out and then never answers (it died before replying); the test then
 * calls client.lose().
 */
export class FakeNode {
  constructor(id, state = new StoreState()) {
    this.id = id;
    this.state = state;
    this.dieOn = null;
    this.held = new Map(); // command type -> promise the next such command waits for
  }

  /** The next `type` command waits until the returned function is called. */
  hold(type) {
    let release;
    this.held.set(type, new Promise((resolve) => { release = resolve; }));
    return release;
  }

  authResult() {
    const held = [...this.state.sales.values()].map((sale) => sale.receipt_no);
    return {
      store: { id: 'store-1', name: 'Boulangerie test' },
      till: { code: TILL, name: 'Caisse 1' },
      node: { id: this.id },
      nodes: [],
      cashiers: [{ id: 'alice', name: 'Alice', role: 'cashier' }],
      last_receipt_no: Math.max(0, ...held),
    };
  }

  /** The lines of one of the till's baskets on this node. */
  basketLines(basketId) {
    return this.state.baskets.get(basketId).basket.lines;
  }

  /** The till's sales this node holds, as [receipt number, recorded as offline]. */
  salesHeld() {
    return [...this.state.sales.values()].map((sale) => [sale.receipt_no, Boolean(sale.offline)]);
  }

  /** Opens `basketId` with lines of `products` ([id, quantity]), as if another tab or node did. */
  openBasket(basketId, products) {
    let basket = emptyBasket(basketId);
    products.forEach(([productId, quantity], index) => {
      basket = addLine(basket, { lineId: `${basketId}-l${index}`, product: product(productId), quantity });
    });
    this.state.baskets.set(basketId, { basket, status: 'open', holder: TILL });
    this.state.openBasketId = basketId;
    return basket;
  }

  async handle(type, args) {
    const held = this.held.get(type);
    if (held) {
      this.held.delete(type);
      await held;
    }
    const result = structuredClone(this.answer(type, args));
    if (this.dieOn === type) return new Promise(() => {}); // done, and never answered
    return result;
  }

  answer(type, args) {
    const state = this.state;
    switch (type) {
      case 'login':
        if (args.pin !== PIN) throw new CommandError('invalid_pin');
        return { cashier: { id: args.cashier_id, name: 'Alice', role: 'cashier' } };
      case 'logout':
      case 'subscribe_events':
      case 'ping':
        return null;
      case 'catalogue/export':
        return { products: PRODUCTS, next: null };
      case 'basket/get':
        return this.openBasket_()?.basket ?? null;
      case 'basket/add': {
        const found = args.product_id ? PRODUCTS.find((p) => p.id === args.product_id)
          : PRODUCTS.find((p) => p.barcode === args.barcode);
        if (!found) throw new CommandError(args.product_id ? 'unknown_product' : 'unknown_barcode');
        const known = state.baskets.get(args.basket_id);
        if ((known && known.status !== 'open') || (state.openBasketId && state.openBasketId !== args.basket_id)) {
          throw new CommandError('basket_mismatch');
        }
        if (!known) {
          state.baskets.set(args.basket_id, { basket: emptyBasket(args.basket_id), status: 'open', holder: TILL });
          state.openBasketId = args.basket_id;
        }
        const entry = state.baskets.get(args.basket_id);
        if (!entry.basket.lines.some((line) => line.id === args.line_id)) {
          entry.basket = addLine(entry.basket, { lineId: args.line_id, product: found, quantity: args.quantity ?? 1 });
        }
        return entry.basket;
      }
      case 'basket/set_quantity': {
        const entry = this.openFor(args.basket_id);
        if (!entry.basket.lines.some((line) => line.id === args.line_id)) throw new CommandError('unknown_line');
        entry.basket = setLineQuantity(entry.basket, args.line_id, args.quantity);
        return entry.basket;
      }
      case 'basket/remove_line': {
        const entry = this.openFor(args.basket_id);
        entry.basket = removeLine(entry.basket, args.line_id);
        return entry.basket;
      }
      case 'basket/clear': {
        const entry = state.baskets.get(args.basket_id);
        if (entry?.status === 'open') entry.status = 'voided';
        if (state.openBasketId === args.basket_id) state.openBasketId = null;
        return null;
      }
      case 'sale/complete':
        return this.complete(args);
      case 'sale/record': {
        if (!state.sales.has(args.sale.id)) state.sales.set(args.sale.id, { ...args.sale, offline: args.offline });
        return state.sales.get(args.sale.id);
      }
      case 'sale/held': {
        const held = [...state.sales.values()].map((sale) => sale.receipt_no).filter((no) => no >= args.since);
        return { till: TILL, receipt_nos: held.sort((a, b) => a - b) };
      }
      default:
        throw new CommandError('unknown_command', type);
    }
  }

  openBasket_() {
    return this.state.openBasketId ? this.state.baskets.get(this.state.openBasketId) : null;
  }

  openFor(basketId) {
    const open = this.openBasket_();
    if (!open) throw new CommandError('no_open_basket');
    if (open.basket.id !== basketId) throw new CommandError('basket_mismatch');
    return open;
  }

  complete({ basket_id: basketId, receipt_no: receiptNo, tenders }) {
    const state = this.state;
    const id = saleIdFor(TILL, basketId);
    if (state.sales.has(id)) return state.sales.get(id); // the same sale again: recorded once
    const entry = this.openFor(basketId);
    if (!entry.basket.lines.length) throw new CommandError('empty_basket');
    const used = [...state.sales.values()].some((sale) => sale.receipt_no === receiptNo);
    if (used) {
      const next = Math.max(...[...state.sales.values()].map((sale) => sale.receipt_no)) + 1;
      throw new CommandError('receipt_number_used', 'used', { data: { receipt_no: receiptNo, next_receipt_no: next } });
    }
    const total = entry.basket.totals.total;
    const paid = tenders.reduce((sum, tender) => sum + tender.amount, 0);
    const sale = {
      id, basket_id: basketId, receipt_number: receiptNumber(TILL, receiptNo), receipt_no: receiptNo, till: TILL,
      cashier: 'alice', time: '2026-01-15T09:00:00.000Z', lines: entry.basket.lines, totals: entry.basket.totals,
      tenders, change: paid - total, print: null, node: this.id,
    };
    state.sales.set(id, sale);
    entry.status = 'sold';
    state.openBasketId = null;
    return sale;
  }
}

function product(id) {
  return PRODUCTS.find((candidate) => candidate.id === id);
}

/** client.js's TillClient as the session sees it: one node at a time, lost, or none at all. */
export class FakeClient extends EventTarget {
  constructor() {
    super();
    this.online = false;
    this.running = true;
    this.reachable = true;
    this.node = null;
    this.pending = new Set();
    this.calls = []; // [node id, type, args]
  }

  call(type, args = {}) {
    if (!this.online) return Promise.reject(new CommandError('disconnected', 'not connected'));
    const node = this.node;
    this.calls.push([node.id, type, structuredClone(args)]);
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      this.pending.add(waiter);
      node.handle(type, args).then(
        (result) => this.pending.delete(waiter) && resolve(result),
        (error) => this.pending.delete(waiter) && reject(error),
      );
    });
  }

  connect(node) {
    this.node = node;
    this.online = true;
    this.reachable = true;
    this.dispatchEvent(new CustomEvent('authed', { detail: node.authResult() }));
  }

  /** The node died: every command waiting fails, then "offline" (as client.js does). */
  lose() {
    this.online = false;
    const pending = [...this.pending];
    this.pending.clear();
    for (const waiter of pending) waiter.reject(new CommandError('disconnected', 'connection lost'));
    this.dispatchEvent(new Event('offline'));
  }

  /** A whole round of nodes failed. */
  giveUp() {
    this.reachable = false;
    this.dispatchEvent(new Event('unreachable'));
  }

  callsOf(type) {
    return this.calls.filter(([, calledType]) => calledType === type);
  }
}

/** A till session with the till's own ledger and catalogue, fakes around them, and every event it emits kept. */
export async function makeTill() {
  const clock = new FakeClock();
  const client = new FakeClient();
  const store = new MemoryStore();
  const ledger = new TillLedger();
  ledger.attach(store);
  const catalogue = new LocalCatalogue(null);
  catalogue.replaceInMemory(PRODUCTS);
  const shown = []; // printing.showSale calls
  const printing = { showSale: (sale) => shown.push(sale?.id ?? null), onAuthed() {}, onOffline() {} };
  let ids = 0;
  const session = new TillSession({
    client, ledger, catalogue, printing, clock, storage: null, newId: () => `id-${++ids}`,
  });
  const events = [];
  for (const type of ['sold', 'error', 'ready', 'offline', 'resynced', 'ended', 'pin-needed', 'signed-in']) {
    session.addEventListener(type, (event) => events.push({ type, detail: event.detail }));
  }
  const till = {
    session, client, clock, store, ledger, catalogue, shown, events,
    eventsOf: (type) => events.filter((event) => event.type === type).map((event) => event.detail),
    errorCodes: () => events.filter((event) => event.type === 'error').map((event) => event.detail.error.code),
    /** Connects to `node` and logs Alice in there. */
    async signIn(node) {
      client.connect(node);
      await settle();
      await session.login('alice', PIN);
      await settle();
    },
    /** The node is lost and the client finds no other: the till sells on its own. */
    async everyNodeDown() {
      client.lose();
      client.giveUp();
      await settle();
    },
    async scan(...barcodes) {
      for (const barcode of barcodes) session.addItem({ barcode });
      await settle();
    },
  };
  return till;
}

/** makeTill(), with Alice logged in on `node`. */
export async function tillOn(node) {
  const till = await makeTill();
  await till.signIn(node);
  return till;
}
