// The till's offline copy of the catalogue, in IndexedDB, owned by this
// module Web Worker so that writing a million products never holds the page's
// main thread (a scan answered meanwhile stays quick). catalogue.js posts it
// the pages of `catalogue/changes` and asks it lookups, finds and searches;
// it answers with request ids, and posts its small state (version, size,
// grid, open-price products, promotions and layouts) after every change.
//
// Its own database (not offline.js's "edge-till"): the sales outbox, which is
// money, never waits on a catalogue schema upgrade, and the catalogue's
// schema moves on its own. Two product stores, "products-a" and
// "products-b": the meta row "copy" names the one in use and its version. A
// full copy fills the other one, one transaction per page, and the
// transaction of its last page names it in use with its version: a till
// reloaded in the middle of a full copy still has its previous complete copy.
// A delta is written into the store in use, and its version goes with its
// last page (a run cut short is sent again from the old version: harmless).
import { buildGrid } from './grid-layout.js';
import { searchWords, withTileFields } from './catalogue.js';

const DB_NAME = 'edge-till-catalogue';
const DB_VERSION = 1;
const STORES = ['products-a', 'products-b'];
const MAX_QUERY_WORDS = 8;
// A search reads at most this many index entries: a one-letter query on a
// million products stays a few milliseconds (the node, online, ranks them all).
const SEARCH_READ_LIMIT = 1000;
const OPEN_PRICE_CHOICES = 4;
const MAX_CATEGORIES = 41; // the grid looks at the first 40 (+1, to know there are more)
const RELAXED = { durability: 'relaxed' }; // a lost page is fetched again: no fsync per page

let db = null;
let copy = { key: 'copy', store: STORES[0], generation: 0, version: null, size: 0 };
let extras = { grid: null, promotions: [], embedded_barcodes: [] };
let state = null; // what the main thread was last told

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function committed(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error ?? new Error('superseded'));
  });
}

function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const database = request.result;
      for (const name of STORES) {
        const store = database.createObjectStore(name, { keyPath: 'id' });
        store.createIndex('barcode', 'barcode');
        store.createIndex('words', 'w', { multiEntry: true }); // search: every word of name and category
        // Sparse indexes (the field only where it applies): the grid and the open prices read a few rows.
        store.createIndex('category', 'c'); // [category, name]
        store.createIndex('favourite', 'f'); // [rank, name], rank > 0
        store.createIndex('open_price', 'o'); // [vat_rate, name]
      }
      database.createObjectStore('meta', { keyPath: 'key' });
    };
    request.onsuccess = () => {
      request.result.onversionchange = () => request.result.close();
      resolve(request.result);
    };
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('the catalogue database is held open by an older tab'));
  });
}

/** A row of `catalogue/changes` (in `columns` order) as the copy keeps it: with its index fields. */
function record(columns, row) {
  const product = withTileFields(Object.fromEntries(columns.map((column, i) => [column, row[i]])));
  product.open_price = Boolean(product.open_price);
  return indexed(product);
}

function indexed(product) {
  const kept = { ...product, w: [...new Set(searchWords(`${product.name} ${product.category ?? ''}`))] };
  if (typeof product.category === 'string') kept.c = [product.category, product.name];
  if (product.favourite > 0) kept.f = [product.favourite, product.name];
  if (product.open_price) kept.o = [product.vat_rate, product.name];
  if (kept.barcode == null) delete kept.barcode; // not indexed
  return kept;
}

/** A product as the till's code sees it (the node's product_json): without the index fields. */
function plain(kept) {
  if (!kept) return null;
  const { w, c, f, o, ...product } = kept;
  return { ...product, barcode: product.barcode ?? null };
}

// --- writing ---

/**
 * One page of a run, in one transaction. `full`: the page goes to the store
 * not in use (the first page empties it first), and the last page puts it in
 * use and empties the old one. Otherwise into the store in use. Another tab
 * of this till may sync too: a full copy it starts takes over the store
 * being filled, and a full copy it ends stops a delta run begun on the copy
 * before; the run stopped (an error) goes again later, from the version saved.
 */
const deltaRuns = new Map(); // run -> the generation of the copy it began on

async function writePage({ run, full, first, last, columns, products, delisted = [], version, pageExtras }) {
  const meta = await done(db.transaction('meta').objectStore('meta').get('copy')) ?? copy;
  if (!full && first) deltaRuns.set(run, meta.generation);
  const target = full ? STORES[1 - STORES.indexOf(meta.store)] : meta.store;
  const other = STORES[1 - STORES.indexOf(target)];
  const transaction = db.transaction([target, other, 'meta'], 'readwrite', RELAXED);
  const store = transaction.objectStore(target);
  const metaStore = transaction.objectStore('meta');
  let size = meta.size ?? 0;
  const finish = () => {
    const generation = meta.generation + (full && last ? 1 : 0);
    if (full && !last) {
      metaStore.put({ key: 'filling', run, size });
      return;
    }
    metaStore.put({ key: 'copy', store: target, generation, version: last ? version : meta.version, size });
    if (last && pageExtras) metaStore.put({ key: 'extras', value: pageExtras });
    if (full) {
      metaStore.delete('filling');
      transaction.objectStore(other).clear(); // the copy it replaces
    }
  };
  // This run still owns what it writes: the copy it fills (full) or the copy it began on (a delta).
  const check = metaStore.get(full ? 'filling' : 'copy');
  check.onsuccess = () => {
    const owner = check.result;
    const stolen = full ? !first && owner?.run !== run : owner && owner.generation !== deltaRuns.get(run);
    if (stolen) {
      transaction.abort();
      return;
    }
    if (full) {
      if (first) store.clear();
      for (const row of products) store.put(record(columns, row));
      size = (first ? 0 : owner.size) + products.length;
      finish();
      return;
    }
    writeDelta(store, columns, products, delisted, (change) => { size += change; }, finish);
  };
  try {
    await committed(transaction);
  } finally {
    if (last) deltaRuns.delete(run);
  }
  copy = { ...(await done(db.transaction('meta').objectStore('meta').get('copy')) ?? copy) };
  if (last && pageExtras) extras = pageExtras;
  return { size: copy.size };
}

/**
 * Rows as the node holds them now, and ids delisted, into the copy in use.
 * A barcode moved to a product leaves the one that had it (as on the node);
 * `counted(±1)` follows the size. `then` runs once every request is answered.
 */
function writeDelta(store, columns, products, delisted, counted, then) {
  let waiting = 0;
  const answered = () => {
    waiting--;
    if (waiting === 0) then();
  };
  const ask = (request, onAnswer) => {
    waiting++;
    request.onsuccess = () => {
      onAnswer(request.result);
      answered();
    };
  };
  waiting++; // until every request below is made
  for (const row of products) {
    const product = record(columns, row);
    ask(store.getKey(product.id), (key) => key === undefined && counted(1));
    if (product.barcode != null) {
      ask(store.index('barcode').getAll(product.barcode), (holders) => {
        for (const holder of holders) {
          if (holder.id !== product.id) store.put(indexed({ ...plain(holder), barcode: null }));
        }
      });
    }
    store.put(product);
  }
  for (const id of delisted) {
    ask(store.getKey(id), (key) => key !== undefined && counted(-1));
    store.delete(id);
  }
  answered();
}

// --- reading ---

function readStore() {
  return db.transaction(copy.store).objectStore(copy.store);
}

async function lookup(barcode) {
  if (typeof barcode !== 'string' || !barcode) return null;
  const [holder] = await done(readStore().index('barcode').getAll(barcode, 1));
  return plain(holder);
}

async function find(id) {
  if (typeof id !== 'string' || !id) return null;
  return plain(await done(readStore().get(id)));
}

/** Every query word starts a word of the name or category (as on the node), sorted by name. */
async function search(query, limit) {
  const wanted = searchWords(query).slice(0, MAX_QUERY_WORDS);
  if (!wanted.length) return [];
  // The longest word narrows most: its index range is read, the others checked on each row.
  const key = wanted.reduce((longest, word) => (word.length > longest.length ? word : longest));
  const range = IDBKeyRange.bound(key, `${key}\uffff`);
  const rows = await done(readStore().index('words').getAll(range, SEARCH_READ_LIMIT));
  const found = new Map();
  for (const row of rows) {
    if (!found.has(row.id) && wanted.every((prefix) => row.w.some((word) => word.startsWith(prefix)))) {
      found.set(row.id, plain(row));
    }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name, 'fr')).slice(0, limit);
}

/**
 * The grid from a bounded read, never the whole copy: the store's
 * favourites, the ranked ones, and for the first categories by name (and the
 * store's own) their first tiles + 1 by name. grid-layout.js makes of these
 * the same grid as from every product (the rows left out are never shown).
 */
async function readGrid() {
  const settings = extras.grid;
  if (!settings) return null;
  const tiles = Math.max(1, Math.min(Number.isInteger(settings.tiles) ? settings.tiles : 48, 200));
  const store = readStore();
  const wantedIds = [...new Set(settings.favourites ?? [])].slice(0, tiles);
  const reads = wantedIds.map((id) => done(store.get(id)));
  reads.push(done(store.index('favourite').getAll(IDBKeyRange.lowerBound([0, []], true), tiles * 2)));
  const names = await firstCategories(store.index('category'));
  for (const name of new Set([...names, ...(settings.categories ?? []).slice(0, MAX_CATEGORIES - 1)])) {
    if (typeof name !== 'string') continue;
    reads.push(done(store.index('category').getAll(IDBKeyRange.bound([name, ''], [name, []]), tiles + 1)));
  }
  const products = new Map();
  for (const rows of await Promise.all(reads)) {
    for (const row of [rows].flat()) if (row) products.set(row.id, plain(row));
  }
  return buildGrid([...products.values()], settings);
}

/** The first MAX_CATEGORIES category names, one key-cursor jump per category. */
function firstCategories(index) {
  return new Promise((resolve, reject) => {
    const names = [];
    const cursor = index.openKeyCursor();
    cursor.onerror = () => reject(cursor.error);
    cursor.onsuccess = () => {
      const at = cursor.result;
      if (!at || names.length >= MAX_CATEGORIES) return resolve(names);
      names.push(at.key[0]);
      at.continue([at.key[0], []]); // past every name of this category
    };
  });
}

async function openPriceProducts() {
  const rows = await done(readStore().index('open_price').getAll(null, OPEN_PRICE_CHOICES));
  return rows.map(plain);
}

/** The small state the main thread keeps, read again after a change. */
async function tellState() {
  const [grid, openPrice] = await Promise.all([readGrid(), openPriceProducts()]);
  state = { version: copy.version, size: copy.size ?? 0, extras, grid, openPrice };
  postMessage({ type: 'state', state });
}

async function load() {
  db = await openDatabase();
  const meta = db.transaction('meta').objectStore('meta');
  const [saved, savedExtras] = await Promise.all([done(meta.get('copy')), done(meta.get('extras'))]);
  if (saved) copy = saved;
  if (savedExtras) extras = savedExtras.value;
}

const ready = load();

const OPERATIONS = {
  lookup: ({ barcode }) => lookup(barcode),
  find: ({ id }) => find(id),
  search: ({ query, limit }) => search(query, limit),
  page: async (page) => {
    const result = await writePage(page);
    if (page.last) await tellState();
    return result;
  },
};

self.onmessage = async ({ data }) => {
  const { id, op, args } = data;
  try {
    await ready;
    postMessage({ id, result: await OPERATIONS[op](args ?? {}) });
  } catch (error) {
    postMessage({ id, error: String(error?.message ?? error) });
  }
};

ready.then(tellState).catch((error) => postMessage({ type: 'broken', error: String(error?.message ?? error) }));
