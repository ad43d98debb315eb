// The till's own copy of the catalogue, so barcodes and names still find
// products when no node answers (docs/protocol.md, `catalogue/changes`).
// The till keeps the catalogue version it holds and asks the node only for
// the changes since it: on every `auth`, and when the node pushes
// `catalogue_changed` (`catalogue/follow`); a full copy for a new till or
// after a long gap. The products live in IndexedDB, written and read by a
// Web Worker (catalogue-worker.js): the page never holds them all, and a
// million of them written never delays a scan. This module, on the page's
// side, keeps what is small: the version, the size, the grid (built by the
// worker from a bounded read), the open-price products, and what every
// first page carries for selling offline: the store's grid settings, the
// promotions not ended (those running today price the basket as the node
// does) and the in-store barcode layouts (barcodes.js readEmbedded). Online
// the till asks the node for everything, as ever; the copy answers offline.
// Without a worker or IndexedDB (and in unit tests) the copy is in memory.

import { buildGrid } from './grid-layout.js';

const utf8 = new TextDecoder();
export const COLUMNS = ['id', 'barcode', 'name', 'price', 'vat_rate', 'category', 'unit',
  'colour', 'image', 'favourite', 'open_price'];
// About 0.2 MB of JSON, decoded and parsed by the worker. The worker
// pauses between pages while a scan waits, not within one, so on a till of one core a
// page's size bounds that wait (but for a full copy's last page, which also indexes the
// whole copy's barcodes and words): at 1M products, 5,000 a page let scans reach
// 111-130 ms while the copy loaded, 2,000 kept them under 90 ms; the copy took 23-25 s
// instead of 22 (docs/benchmarks.md, "A till's start").
const PAGE_ROWS = 2000;
// A run's first page is read here (it says whether the run is full, and brings the grid,
// promotions and layouts): a small one, not 0.2 MB parsed and copied on the main thread,
// but one that holds a small shop's whole catalogue (with 200, the demo store's 347 took
// a second page and transaction at every till start: the browser tests ran 5% slower).
const FIRST_PAGE_ROWS = 500;
const EXPORT_PAGE = 2000; // an older node's catalogue/export
const OPEN_PRICE_CHOICES = 4;
const PAGES_AHEAD = 2; // about 0.4 MB of page text waiting in the worker, at most
const QUIET_WAIT_MS = 500; // a node that never answers a command is left by client.js
const DEFAULT_GRID = { categories: [], favourites: [], tiles: 48 }; // an older node's first page has none

/** Today in the till's local time, "YYYY-MM-DD" (promotions' dates are the store's days). */
export function localDay(date = new Date()) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** A product event written before tiles existed lacks their fields: the node reads them so. */
export function withTileFields(product) {
  return {
    unit: 'piece', colour: '', image: '', favourite: 0, open_price: false,
    ...product,
    ...(product.unit ? {} : { unit: 'piece' }),
  };
}
const MAX_QUERY_WORDS = 8;

/**
 * Words as the node's search sees them (edge/catalogue.py fts_query): accents
 * dropped, lower case, letters and digits.
 */
export function searchWords(text) {
  const plain = String(text ?? '').normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
  return plain.match(/[\p{L}\p{N}_]+/gu) ?? [];
}


/** What a first page carries besides products: kept whole, replaced by every run. */
function extrasOf(page) {
  return { grid: page.grid ?? DEFAULT_GRID, promotions: page.promotions ?? [], embedded_barcodes: page.embedded_barcodes ?? [] };
}

/**
 * A page of `catalogue/changes` given as JSON text (client.js callBytes, an older node): what the
 * run needs of it read from its head and tail ({full, behind, next, text}), its
 * rows left to the worker to parse. A small page, or one laid out otherwise, parsed whole.
 */
export function pageFromText(text) {
  if (text.length < 16_384) return JSON.parse(text);
  const at = text.indexOf(',"columns":');
  const ends = at < 0 ? null : pageEnds(text.slice(0, at), text.slice(-1024));
  return ends ? { ...ends, text } : JSON.parse(text);
}

/**
 * A page of `catalogue/changes` given as bytes (client.js callBytes: {buffer, start}):
 * as pageFromText, only its head (up to its columns) and tail decoded; its rows, as `bytes`, left to
 * the worker (the buffer is handed over, not copied).
 */
export function pageFromBytes({ buffer, start }) {
  const bytes = new Uint8Array(buffer, start, buffer.byteLength - start - 1); // the result's JSON
  const at = indexOfBytes(bytes, COLUMNS_KEY);
  const ends = at < 0 ? null
    : pageEnds(utf8.decode(bytes.subarray(0, at)), utf8.decode(bytes.subarray(Math.max(0, bytes.length - 1024))));
  return ends ? { ...ends, bytes } : JSON.parse(utf8.decode(bytes));
}

/** {full, behind, next} from a page's head (its JSON up to its columns) and its last KB; null if laid out otherwise. */
function pageEnds(head, tail) {
  const nextAt = tail.lastIndexOf('"next":');
  if (nextAt < 0) return null;
  try {
    const { full, behind } = JSON.parse(`${head}}`);
    const next = JSON.parse(tail.slice(nextAt + 7, -1));
    if (typeof full === 'boolean' && typeof behind === 'boolean' && (next === null || typeof next === 'string')) {
      return { full, behind, next };
    }
  } catch { /* another layout */ }
  return null;
}

const COLUMNS_KEY = new TextEncoder().encode(',"columns":');

/** Where `pattern` first starts in `bytes`, or -1. */
function indexOfBytes(bytes, pattern) {
  for (let at = bytes.indexOf(pattern[0]); at >= 0; at = bytes.indexOf(pattern[0], at + 1)) {
    if (pattern.every((byte, i) => bytes[at + i] === byte)) return at;
  }
  return -1;
}

/** A page as callBytes gave it (text: an older node's answer). */
export function pageFromAnswer(answer) {
  return typeof answer === 'string' ? pageFromText(answer) : pageFromBytes(answer);
}

/** A page's products, delisted ids and columns, from its text or bytes if it came so. */
export function pageRows(args) {
  const text = args.bytes ? utf8.decode(args.bytes) : args.text;
  if (typeof text !== 'string') return args;
  const { columns, products, delisted } = JSON.parse(text);
  return { ...args, columns: columns ?? COLUMNS, products: products ?? [], delisted: delisted ?? [] };
}

/** Every query word starts a word of `words` (the node's rule). */
function matches(wanted, words) {
  return wanted.every((prefix) => words.some((word) => word.startsWith(prefix)));
}

/** A page's rows (in `columns` order) as products. */
export function productsOf(columns, rows) {
  return rows.map((row) => withTileFields(Object.fromEntries(columns.map((column, i) => [column, row[i]]))));
}

/**
 * The copy in memory, with the worker's requests and answers: for a browser
 * with no worker or no IndexedDB (nothing outlives a reload), and for unit tests.
 */
export class MemoryCopy {
  constructor() {
    this.byId = new Map();
    this.version = null;
    this.store = null; // the store whose node sent the copy
    this.extras = { grid: null, promotions: [], embedded_barcodes: [] };
    this.onState = null;
  }

  /** Products straight in (tests). */
  replace(products) {
    this.byId = new Map(products.map((product) => [product.id, withTileFields(product)]));
  }

  holderOf(barcode) {
    for (const product of this.byId.values()) if (product.barcode === barcode) return product;
    return null;
  }

  async request(op, args) {
    if (op === 'lookup') return this.holderOf(args.barcode);
    if (op === 'find') return this.byId.get(args.id) ?? null;
    if (op === 'search') {
      const wanted = searchWords(args.query).slice(0, MAX_QUERY_WORDS);
      if (!wanted.length) return [];
      const found = [...this.byId.values()].filter((product) =>
        matches(wanted, searchWords(`${product.name} ${product.category ?? ''}`)));
      return found.sort((a, b) => a.name.localeCompare(b.name, 'fr')).slice(0, args.limit);
    }
    if (op === 'forget') {
      this.incoming = null;
      this.byId = new Map();
      Object.assign(this, { version: null, store: null, extras: { grid: null, promotions: [], embedded_barcodes: [] } });
      this.onState?.(this.state());
      return null;
    }
    if (op !== 'page') throw new Error(`unknown request ${op}`);
    const { full, first, last, columns, products, delisted = [], version, pageExtras, store = null } = pageRows(args);
    if (full && first) this.incoming = new Map();
    if (full && !this.incoming) throw new Error('superseded'); // forgotten meanwhile
    const target = full ? this.incoming : this.byId;
    for (const product of productsOf(columns, products)) {
      // A barcode moved to this product leaves its old holder, as on the node.
      const holder = product.barcode ? this.holderOf(product.barcode) : null;
      if (!full && holder && holder.id !== product.id) target.set(holder.id, { ...holder, barcode: null });
      target.set(product.id, product);
    }
    for (const id of delisted) target.delete(id);
    if (last) {
      if (full) this.byId = this.incoming;
      this.version = version;
      this.store = full ? store : store ?? this.store;
      if (pageExtras) this.extras = pageExtras;
      this.onState?.(this.state());
    }
    return { size: this.byId.size };
  }

  state() {
    const products = [...this.byId.values()];
    const openPrice = products.filter((product) => product.open_price)
      .sort((a, b) => a.vat_rate - b.vat_rate || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .slice(0, OPEN_PRICE_CHOICES);
    const grid = this.extras.grid ? buildGrid(products, this.extras.grid) : null;
    return { version: this.version, store: this.store, size: this.byId.size, extras: this.extras, grid, openPrice };
  }
}

/** The copy in IndexedDB, in catalogue-worker.js: each request answered by its id. */
export class WorkerCopy {
  constructor(url = new URL('./catalogue-worker.js', import.meta.url)) {
    this.worker = new Worker(url, { type: 'module' });
    this.waiting = new Map(); // request id -> {resolve, reject}
    this.nextId = 1;
    this.onState = null;
    this.onBroken = null;
    this.worker.onmessage = ({ data }) => this.receive(data);
    this.worker.onerror = (event) => this.broken(event.message ?? 'the catalogue worker failed');
  }

  /** `transfer`: buffers handed over to the worker (a page's bytes), no longer usable here. */
  request(op, args, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  /** Pages wait (busy) or go on: no answer. */
  pause(busy) {
    this.worker.postMessage({ op: 'pause', args: { busy } });
  }

  receive(data) {
    if (data.type === 'state') return this.onState?.(data.state);
    if (data.type === 'broken') return this.broken(data.error);
    const waiter = this.waiting.get(data.id);
    if (!waiter) return;
    this.waiting.delete(data.id);
    if ('error' in data) waiter.reject(new Error(data.error));
    else waiter.resolve(data.result);
  }

  broken(message) {
    for (const waiter of this.waiting.values()) waiter.reject(new Error(message));
    this.waiting.clear();
    this.onBroken?.(message);
  }
}

/** The copy a till page uses: IndexedDB through the worker, or memory where the browser has neither. */
export function tillCopy() {
  try {
    if (typeof Worker === 'function' && typeof indexedDB === 'object' && indexedDB) return new WorkerCopy();
  } catch (error) {
    console.warn('no catalogue worker: the offline copy lives in memory', error);
  }
  return new MemoryCopy();
}

export class LocalCatalogue extends EventTarget {
  /** `copy`: a WorkerCopy or MemoryCopy (tillCopy()); by default (null) one in memory. */
  constructor(copy = null) {
    super();
    copy ??= new MemoryCopy();
    this.copy = copy;
    this.version = null; // the copy's catalogue version: {origin: seq}, null for none
    this.store = null; // the id of the store the copy came from; null: none (or not known)
    this.nodeStore = null; // the id of the store of the node the till talks to (auth's store.id)
    this.size = 0;
    this.gridSettings = null; // {categories, favourites, tiles}: null until a first copy
    this.promotions = new Map(); // id -> promotion not ended
    this.embeddedBarcodes = []; // [{prefix, layout, value}]
    this.builtGrid = null; // the grid, as the copy's worker built it
    this.openPrice = []; // the first open-price products, by VAT rate then name
    this.call = null; // the node's commands, once a connection is authenticated
    this.callBytes = null; // the same, answers as bytes (client.js callBytes): pages go to the worker undecoded
    this.busy = () => false; // a cashier's command waits for the node (client.js busy)
    this.quietWaiters = []; // quiet()'s, until no cashier's command waits
    this.running = null; // the run of catalogue/changes under way
    this.runAgain = false;
    // The copy's first state (the saved one): offline answers wait for it, nothing else does.
    this.loaded = new Promise((resolve) => {
      copy.onState = (state) => {
        this.adoptState(state);
        resolve();
      };
      copy.onBroken = () => resolve();
    });
    if (copy instanceof MemoryCopy) copy.onState(copy.state());
  }

  /**
   * The till's websocket client (client.js): pages of a run asked as bytes (the
   * worker decodes and parses them: a page's 0.2 MB never decoded on the page's main
   * thread, where the scans run), and the next page asked only once no other
   * command waits (a scan is never queued behind a page on the node's side of the socket).
   */
  useClient(client) {
    this.callBytes = (type, args) => client.callBytes(type, args);
    this.busy = () => client.busy;
    client.addEventListener('busy', ({ detail }) => this.busyChanged(detail));
  }

  /**
   * A cashier's command sent: the copy's worker pauses at once (on a till of one
   * core, a scan's answer otherwise waits for the CPU behind the copy). Answered:
   * the copy goes on a task later, once the page has shown the answer.
   */
  busyChanged(busy) {
    if (busy) {
      this.copy.pause?.(true);
      return;
    }
    setTimeout(() => {
      if (this.busy()) return;
      this.copy.pause?.(false);
      for (const resolve of this.quietWaiters.splice(0)) resolve();
    }, 0);
  }

  /** Until no cashier's command waits for the node (at most QUIET_WAIT_MS). */
  quiet() {
    if (!this.busy()) return Promise.resolve();
    return new Promise((resolve) => {
      this.quietWaiters.push(resolve);
      setTimeout(resolve, QUIET_WAIT_MS);
    });
  }

  /** Tests: products straight into an in-memory copy. */
  replaceInMemory(products) {
    this.copy.replace(products);
    this.adoptState(this.copy.state());
  }

  adoptState({ version, store, size, extras, grid, openPrice }) {
    this.version = version ?? null;
    this.store = store ?? null;
    this.size = size ?? 0;
    this.adoptExtras(extras ?? {});
    this.builtGrid = grid ?? null;
    this.openPrice = openPrice ?? [];
    this.dispatchEvent(new Event('change'));
  }

  /** The promotions running on `day` ("YYYY-MM-DD", inclusive dates), by id: what pricing is given. */
  activePromotions(day = localDay()) {
    return [...this.promotions.values()]
      .filter((p) => (!p.starts || p.starts <= day) && (!p.ends || p.ends >= day))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The grid as catalogue/grid gives it, from this copy; null before a first copy. */
  grid() {
    return this.gridSettings === null ? null : this.builtGrid;
  }

  /** A few open-price products ("Divers", one per VAT rate), for an unknown barcode. */
  openPriceProducts() {
    return this.openPrice;
  }

  adoptExtras({ grid = null, promotions = [], embedded_barcodes: layouts = [] }) {
    this.gridSettings = grid ?? null;
    this.promotions = new Map((promotions ?? []).map((promotion) => [promotion.id, promotion]));
    this.embeddedBarcodes = Array.isArray(layouts) ? layouts : [];
  }

  // --- offline answers, from the copy (async: IndexedDB, in the worker) ---

  async lookup(barcode) {
    return this.ask('lookup', { barcode }, null);
  }

  async find(productId) {
    return this.ask('find', { id: productId }, null);
  }

  /** Every query word must start a word of the name or category, as on the node. Sorted by name. */
  async search(query, limit) {
    return this.ask('search', { query, limit }, []);
  }

  async ask(op, args, otherwise) {
    await this.loaded;
    try {
      return (await this.copy.request(op, args)) ?? otherwise;
    } catch (error) {
      console.warn('the catalogue copy did not answer', error);
      return otherwise;
    }
  }

  // --- keeping the copy current ---

  /**
   * A connection is authenticated (`call`: its commands; `store`: auth's
   * store.id): follow the node's catalogue changes, and ask for those since
   * the copy's version. A copy of another store's is forgotten first: its
   * version means nothing to this node (it would answer `behind` for ever),
   * and its products must not be sold offline here.
   */
  async sync(call, store = null) {
    this.call = call;
    this.nodeStore = store;
    await this.loaded;
    if (store && this.store && this.store !== store) {
      await this.forget().catch((error) => console.warn('the old store\'s catalogue copy was not emptied', error));
    }
    try {
      await call('catalogue/follow', {});
    } catch (error) {
      if (error.code !== 'unknown_command') throw error;
    }
    await this.requestRun();
  }

  /**
   * Empties the copy (products, version, store, grid, promotions, layouts): the
   * till was paired again, maybe to another store. A run under way fails at
   * its next page; the next run is a full copy.
   */
  async forget() {
    await this.loaded;
    try {
      await this.copy.request('forget', {});
    } finally {
      // Nothing of the old copy is used here, even one that could not be emptied: with no
      // version, the next run is a full copy, which replaces it whole.
      this.adoptState({});
    }
  }

  /** A push: `catalogue_changed` (catalogue/follow) asks for the changes again. */
  onEvent(event) {
    if (event?.type === 'catalogue_changed') this.requestRun().catch(() => {});
  }

  /** One run at a time; asked again meanwhile, one more run after it. */
  requestRun() {
    if (this.running) {
      this.runAgain = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.runAgain = false;
          try {
            await this.runChanges(this.call);
          } catch (error) {
            if (!this.runAgain) throw error; // (a run for a lost connection: the new one runs now)
          }
        } while (this.runAgain);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  async runChanges(call) {
    await this.loaded;
    const since = this.version;
    const store = this.nodeStore; // saved with the copy, with the run's last page
    let page;
    try {
      page = await call('catalogue/changes', { since, upto: null, after: null, limit: FIRST_PAGE_ROWS });
    } catch (error) {
      if (error.code === 'unknown_command') return this.copyExport(call); // an older node
      throw error;
    }
    if (page.behind) return; // a node catching up: the copy stays, asked again later
    const upto = page.version;
    const extras = extrasOf(page);
    this.adoptExtras(extras); // online pricing offline at once; the grid follows the products
    const callBytes = this.callBytes;
    const nextPage = callBytes
      ? (after) => callBytes('catalogue/changes', { since, upto, after, limit: PAGE_ROWS }).then(pageFromAnswer)
      : (after) => call('catalogue/changes', { since, upto, after, limit: PAGE_ROWS });
    await this.writePages(page.full ? 'full' : 'delta', page, nextPage, extras, store);
  }

  /**
   * Pages to the copy as they come: the next asked while the copy writes this
   * one, and posted to it as soon as it comes (the worker writes them in order),
   * at most PAGES_AHEAD pages waiting behind the one being written: the worker
   * never waits for the node.
   */
  async writePages(kind, page, nextPage, extras, store = null) {
    const run = `${Date.now()}-${Math.random()}`;
    const writing = []; // the pages posted to the copy, not known written yet
    let first = true;
    for (;;) {
      const last = !page.next;
      let rows = { columns: page.columns ?? COLUMNS, products: page.products, delisted: page.delisted ?? [] };
      if (typeof page.text === 'string') rows = { text: page.text };
      if (page.bytes) rows = { bytes: page.bytes };
      const written = this.copy.request('page', {
        run, full: kind === 'full', first, last, ...rows, version: page.version ?? null,
        pageExtras: last ? extras : null,
        store: last ? store : null,
        tiles: extras.grid?.tiles, // a full copy keeps each category's first tiles for the grid
      }, page.bytes ? [page.bytes.buffer] : []); // its bytes handed over to the worker, not copied
      written.catch(() => {}); // awaited below, in order
      writing.push(written);
      if (last) {
        for (const each of writing) await each;
        return;
      }
      await this.quiet();
      const next = nextPage(page.next);
      next.catch(() => {}); // if a write fails first, this answer is not awaited
      while (writing.length > PAGES_AHEAD) await writing.shift();
      const answer = await next;
      // Another node answered mid-run (a failover): one behind, or one that cuts this
      // version differently, ends the run; the version is saved only with a last page.
      if (answer.behind || (answer.full !== undefined && answer.full !== (kind === 'full'))) {
        throw new Error('the catalogue run was cut short by another node: asked again later');
      }
      page = { ...answer, version: page.version };
      first = false;
    }
  }

  /** An older node (no catalogue/changes): its whole export, as a full copy with no version. */
  async copyExport(call) {
    const ask = (after) => call('catalogue/export', after ? { after, limit: EXPORT_PAGE } : { limit: EXPORT_PAGE })
      .then((page) => ({ ...page, products: page.products.map((product) => COLUMNS.map((column) => product[column])) }));
    const store = this.nodeStore;
    const page = await ask(null);
    const extras = extrasOf(page);
    this.adoptExtras(extras);
    await this.writePages('full', { ...page, version: null }, ask, extras, store);
  }
}
