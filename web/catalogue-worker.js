// The till's offline copy of the catalogue, in IndexedDB, owned by this
// module Web Worker so that writing a million products never holds the page's
// main thread (a scan answered meanwhile stays quick). catalogue.js posts it
// the pages of `catalogue/changes` and asks it lookups, finds and searches;
// it answers with request ids, and posts its small state (version, size,
// grid, open-price products, promotions and layouts) after every change.
//
// Its own database (not offline.js's "edge-till"): the sales outbox, which is
// money, never waits on a catalogue schema upgrade. IndexedDB's cost is per
// record, so products are kept in CHUNKS (catalogue-chunks.js): one record
// per few dozen products, keyed by the first id it may hold; and what finds
// them is small records too: barcode buckets (barcode -> id), the words'
// blocks (word -> the regions of ids holding it, for search), the grid's
// side records. Two sets of these stores, slots "a" and "b": the meta row
// "copy" names the slot in use and its version. A full copy fills the other
// slot, one transaction per page (its side records, built in memory meanwhile,
// with its last page), and that last transaction names it in use with its
// version: a till reloaded in the middle of a full copy still has its
// previous complete copy. A delta rewrites only the chunks and side records
// it touches, in the slot in use, one transaction per page; its version goes
// with its last page (a run cut short is sent again from the old version).
// The meta row also names the store the copy came from: `forget` empties
// everything when the till is paired again or meets another store's node.
import { buildGrid } from './grid-layout.js';
import { pageRows, searchWords } from './catalogue.js';
import {
  BARCODE, CATEGORY, ID, TEXT,
  FullCopyBuilder, KEYS, SLOTS, applyDelta, bucketOf, chunkIndex, chunkRows, holderIn, idKey, keepFor, keyedOtherwise,
  productOf, rowsOf, slotStores,
} from './catalogue-chunks.js';
import { committed, done, openDatabase } from './idb.js';

const DB_NAME = 'edge-till-catalogue';
const DB_VERSION = 2; // 1: one record per product (products-a/b): dropped, a full copy follows
const MAX_QUERY_WORDS = 8;
// A search reads the regions (about a thousand products each) holding its longest
// word until it has this many matches or has read that many regions: a few ms.
const SEARCH_FOUND_ENOUGH = 60;
const SEARCH_REGIONS_READ = 8;
const OPEN_PRICE_CHOICES = 4;
const MAX_CATEGORIES = 41; // the grid looks at the first 40 (+1, to know there are more)
const RELAXED = { durability: 'relaxed' }; // a lost page is fetched again: no fsync per page

let db = null;
// `store`: the id of the store whose node sent the copy (auth's store.id): a till moved to
// another store forgets it (catalogue.js). null: not known (a copy saved before it was kept).
let copy = { slot: SLOTS[0], generation: 0, version: null, size: 0, store: null };
const NO_EXTRAS = { grid: null, promotions: [], embedded_barcodes: [] };
let extras = NO_EXTRAS;
const builders = new Map(); // run -> its FullCopyBuilder (a full copy under way in this worker)
const deltaRuns = new Map(); // run -> the generation of the copy it began on
const others = typeof BroadcastChannel === 'function' ? new BroadcastChannel(DB_NAME) : null;

function openCopyDatabase() {
  return openDatabase(DB_NAME, DB_VERSION, (database) => {
    for (const name of [...database.objectStoreNames]) database.deleteObjectStore(name);
    for (const slot of SLOTS) for (const name of slotStores(slot)) database.createObjectStore(name);
    database.createObjectStore('meta', { keyPath: 'key' });
  }, 'the catalogue database is held open by an older tab');
}

// A transaction of this worker's aborted with no error was superseded (another tab's run, a copy forgotten).
const SUPERSEDED = 'superseded';

// --- writing ---

/**
 * One page of a run, in one transaction. `full`: the page goes to the slot
 * not in use (the first page empties it first), and the last page puts it in
 * use and empties the old one. Otherwise into the slot in use. Another tab
 * of this till may sync too: a full copy it starts takes over the slot
 * being filled, and a full copy it ends stops a delta run begun on the copy
 * before; the run stopped (an error) goes again later, from the version saved.
 */
async function writePage(page) {
  const { run, full, first, last, columns, products, delisted = [], version, pageExtras, tiles, store = null } = pageRows(page);
  const meta = await done(db.transaction('meta').objectStore('meta').get('copy')) ?? copy;
  if (!full && first) deltaRuns.set(run, meta.generation);
  const target = full ? SLOTS[1 - SLOTS.indexOf(meta.slot)] : meta.slot;
  const other = SLOTS[1 - SLOTS.indexOf(target)];
  const names = [...slotStores(target), ...(full && last ? slotStores(other) : []), 'meta'];
  const rows = rowsOf(columns, products);
  await unpaused();
  const transaction = db.transaction(names, 'readwrite', RELAXED);
  const stores = Object.fromEntries(slotStores(target).map((name) => [name.split('-')[0], transaction.objectStore(name)]));
  const metaStore = transaction.objectStore('meta');
  const writing = (async () => {
    // This run still owns what it writes: the slot it fills (full) or the copy it began on (a delta).
    const owner = await done(metaStore.get(full ? 'filling' : 'copy'));
    const stolen = full ? !first && owner?.run !== run : owner && owner.generation !== deltaRuns.get(run);
    if (stolen || (full && !first && !builders.has(run))) {
      transaction.abort();
      return;
    }
    if (full) {
      if (first) {
        for (const store of Object.values(stores)) store.clear();
        builders.clear(); // a full copy this one took over, or one cut short: never finished now
        builders.set(run, new FullCopyBuilder(tiles));
      }
      const builder = builders.get(run);
      builder.add(stores.chunks, rows);
      if (!last) {
        metaStore.put({ key: 'filling', run, size: builder.size });
        return;
      }
      const { size, buckets, keep, keys } = builder.finish(stores);
      metaStore.put({ key: 'copy', slot: target, generation: meta.generation + 1, version, size, buckets, keep, store, keys });
      metaStore.delete('filling');
      for (const name of slotStores(other)) transaction.objectStore(name).clear(); // the copy it replaces
    } else {
      const held = owner ?? meta; // the copy as this transaction sees it (another tab may have written)
      const changed = await applyDelta(stores, held, rows, delisted);
      const size = (held.size ?? 0) + changed.size;
      // A copy saved with no store (before stores were kept) takes that of the node that brought it up to date.
      const heldStore = last && store ? store : held.store ?? null;
      metaStore.put({ ...held, key: 'copy', version: last ? version : held.version, size, store: heldStore });
      if (changed.stale.size) scheduleRefill(changed.stale);
    }
    if (last && pageExtras) metaStore.put({ key: 'extras', value: pageExtras });
  })();
  writing.catch(() => {
    try {
      transaction.abort();
    } catch { /* already over */ }
  });
  try {
    await Promise.all([writing, committed(transaction, SUPERSEDED)]);
  } catch (error) {
    builders.delete(run);
    throw error;
  } finally {
    if (last) {
      deltaRuns.delete(run);
      builders.delete(run);
    }
  }
  await readCopyMeta();
  if (last && pageExtras) extras = pageExtras;
  if (last) others?.postMessage('changed');
  return { size: copy.size };
}

/**
 * The copy emptied, version, store and first-page extras too (the till was paired
 * again, or its node belongs to another store): in one transaction, queued
 * behind the pages posted before. A new generation: a run under way fails at
 * its next page (a delta began on another copy, a full copy's slot is no
 * longer being filled), so nothing of the old store comes back.
 */
async function forget() {
  const names = [...SLOTS.flatMap(slotStores), 'meta'];
  const transaction = db.transaction(names, 'readwrite');
  const metaStore = transaction.objectStore('meta');
  const writing = done(metaStore.get('copy')).then((held) => {
    for (const name of names) transaction.objectStore(name).clear();
    const { slot, generation } = held ?? copy;
    metaStore.put({ key: 'copy', slot, generation: (generation ?? 0) + 1, version: null, size: 0, store: null, keys: KEYS });
    metaStore.put({ key: 'extras', value: NO_EXTRAS });
  });
  await Promise.all([writing, committed(transaction)]);
  builders.clear();
  deltaRuns.clear();
  toRefill.clear();
  await readCopyMeta();
  others?.postMessage('changed');
  await tellState(); // before the answer: the page's catalogue has the empty state once told
}

async function readCopyMeta() {
  const meta = db.transaction('meta').objectStore('meta');
  const [saved, savedExtras] = await Promise.all([done(meta.get('copy')), done(meta.get('extras'))]);
  if (saved) copy = saved;
  if (savedExtras) extras = savedExtras.value;
}

// Categories whose first tiles a delta left short (their first products delisted or
// renamed away), or every one when the store shows more tiles than were kept:
// refilled from every chunk, in the background, a slice of chunks at a time.
const EVERY_CATEGORY = '\u0000every category';
const REFILL_SLICE = 256;
let refilling = null;
let refilledEvery = null; // the copy (generation/keep) last refilled whole: never twice in a row
const toRefill = new Set();

function scheduleRefill(categories) {
  for (const name of categories) toRefill.add(name);
  refilling ??= refill().catch((error) => console.warn('the grid refill failed', error))
    .finally(() => {
      refilling = null;
      if (toRefill.size) scheduleRefill([]);
      else tellState().catch(() => {});
    });
}

/** A slot's chunks (their stored values), a slice per transaction: a delta's page gets in between. */
async function* chunkSlices(chunksName) {
  let after = null;
  for (;;) {
    const range = after === null ? null : IDBKeyRange.lowerBound(after, true);
    const store = db.transaction(chunksName).objectStore(chunksName);
    const [keys, values] = await Promise.all([
      done(store.getAllKeys(range, REFILL_SLICE)), done(store.getAll(range, REFILL_SLICE))]);
    yield values;
    if (keys.length < REFILL_SLICE) return;
    after = keys.at(-1);
  }
}

async function refill() {
  const names = new Set(toRefill);
  toRefill.clear();
  const { slot, generation } = copy;
  const every = names.has(EVERY_CATEGORY);
  const keep = every ? keepFor(extras.grid?.tiles) : copy.keep ?? keepFor(null);
  const [chunksName, , , sideName] = slotStores(slot);
  const found = new Map([...names].filter((name) => name !== EVERY_CATEGORY).map((name) => [name, []]));
  for await (const values of chunkSlices(chunksName)) {
    for (const value of values) {
      for (const row of chunkRows(value)) {
        const name = row[CATEGORY];
        if (typeof name !== 'string') continue;
        if (every && !found.has(name)) found.set(name, []);
        found.get(name)?.push(row);
      }
    }
    for (const [name, rows] of found) found.set(name, chunkIndex.firstByName(rows, keep));
  }
  const transaction = db.transaction(['meta', sideName], 'readwrite', RELAXED);
  const metaStore = transaction.objectStore('meta');
  const meta = await done(metaStore.get('copy'));
  if (meta?.generation !== generation || meta.slot !== slot) return transaction.abort();
  for (const [name, rows] of found) transaction.objectStore(sideName).put(rows, ['top', name]);
  if (every) metaStore.put({ ...meta, keep });
  await committed(transaction, SUPERSEDED);
  await readCopyMeta();
}

// --- reading ---

function reading(...kinds) {
  const names = slotStores(copy.slot);
  const wanted = kinds.map((kind) => names.find((name) => name.startsWith(`${kind}-`)));
  const transaction = db.transaction(wanted);
  return wanted.map((name) => transaction.objectStore(name));
}

/** The row holding `id` in `chunks` (an object store or index-less read), or null. */
async function rowOf(chunks, id) {
  const cursor = await done(chunks.openCursor(IDBKeyRange.upperBound(idKey(id)), 'prev'));
  if (!cursor) return null;
  const rows = chunkRows(cursor.value);
  const at = chunkIndex.find(rows, id);
  return at < 0 ? null : rows[at];
}

async function lookup(barcode) {
  if (typeof barcode !== 'string' || !barcode || !copy.buckets) return null;
  const [barcodes, chunks] = reading('barcodes', 'chunks');
  const bucket = await done(barcodes.get(bucketOf(barcode, copy.buckets)));
  const id = holderIn(bucket, barcode);
  if (!id) return null;
  const row = await rowOf(chunks, id);
  return row && row[BARCODE] === barcode ? productOf(row) : null;
}

async function find(id) {
  if (typeof id !== 'string' || !id) return null;
  const [chunks] = reading('chunks');
  const row = await rowOf(chunks, id);
  return row ? productOf(row) : null;
}

/** Every query word starts a word of the name or category (as on the node), sorted by name. */
async function search(query, limit) {
  const wanted = searchWords(query).slice(0, MAX_QUERY_WORDS);
  if (!wanted.length) return [];
  // The longest word narrows most: the regions holding a word it starts are read, each row checked.
  const key = wanted.reduce((longest, word) => (word.length > longest.length ? word : longest));
  const [words, chunks, side] = reading('words', 'chunks', 'side');
  const [regions, before, blocks] = await Promise.all([
    done(side.get('regions')),
    done(words.openCursor(IDBKeyRange.upperBound(key), 'prev')),
    done(words.getAll(IDBKeyRange.bound(key, `${key}\uffff`, true))),
  ]);
  if (!regions) return [];
  const holding = new Set();
  for (const block of [before?.value, ...blocks]) {
    for (const [word, ordinals] of Object.entries(block ?? {})) {
      if (word.startsWith(key)) for (const ordinal of ordinals) holding.add(ordinal);
    }
  }
  const prefixes = wanted.map((word) => ` ${word}`);
  const found = [];
  for (const ordinal of [...holding].sort((a, b) => a - b).slice(0, SEARCH_REGIONS_READ)) {
    const range = ordinal + 1 < regions.length
      ? IDBKeyRange.bound(regions[ordinal], regions[ordinal + 1], false, true)
      : IDBKeyRange.lowerBound(regions[ordinal]);
    for (const value of await done(chunks.getAll(range))) {
      for (const row of chunkRows(value)) {
        const text = ` ${row[TEXT]}`;
        if (prefixes.every((prefix) => text.includes(prefix))) found.push(row);
      }
    }
    if (found.length >= SEARCH_FOUND_ENOUGH) break;
  }
  return found.map(productOf).sort((a, b) => a.name.localeCompare(b.name, 'fr')).slice(0, limit);
}

/**
 * The grid from a bounded read, never the whole copy: the store's
 * favourites, the ranked ones, and for the first categories by name (and the
 * store's own) their first tiles + 1 by name, kept by the writes in side
 * records. grid-layout.js makes of these the same grid as from every product
 * (the rows left out are never shown).
 */
async function readGrid() {
  const settings = extras.grid;
  if (!settings) return null;
  const tiles = Math.max(1, Math.min(Number.isInteger(settings.tiles) ? settings.tiles : 48, 200));
  const kept = `${copy.generation}/${copy.keep}`;
  if (tiles + 1 > (copy.keep ?? 0) && copy.size && refilledEvery !== kept) {
    refilledEvery = kept; // the store shows more tiles than the copy kept
    scheduleRefill([EVERY_CATEGORY]);
  }
  const [side, chunks] = reading('side', 'chunks');
  const [counts, favourites] = await Promise.all([done(side.get('counts')), done(side.get('favourites'))]);
  const present = Object.keys(counts ?? {}).filter((name) => counts[name] > 0).sort(chunkIndex.compareNames);
  const names = new Set([...present.slice(0, MAX_CATEGORIES), ...(settings.categories ?? []).slice(0, MAX_CATEGORIES - 1)]);
  const reads = [...new Set(settings.favourites ?? [])].slice(0, tiles)
    .map((id) => rowOf(chunks, id).then((row) => (row ? [row] : [])));
  for (const name of names) {
    if (typeof name === 'string' && counts?.[name]) {
      reads.push(done(side.get(['top', name])).then((rows) => (rows ?? []).slice(0, tiles + 1)));
    }
  }
  const products = new Map();
  for (const row of [...(favourites ?? []), ...(await Promise.all(reads)).flat()]) {
    if (row) products.set(row[ID], productOf(row));
  }
  return buildGrid([...products.values()], settings);
}

async function openPriceProducts() {
  const [side] = reading('side');
  const rows = (await done(side.get('open'))) ?? [];
  return rows.slice(0, OPEN_PRICE_CHOICES).map(productOf);
}

/** The small state the main thread keeps, read again after a change. */
async function tellState() {
  const [grid, openPrice] = await Promise.all([readGrid(), openPriceProducts()]);
  postMessage({
    type: 'state', state: { version: copy.version, store: copy.store ?? null, size: copy.size ?? 0, extras, grid, openPrice },
  });
}

async function load() {
  db = await openCopyDatabase();
  await readCopyMeta();
}

/**
 * A copy saved before its chunks were keyed by `idKey` (no `keys` in its meta row) is
 * read once, in the background: marked so if no id in it is changed by `idKey` (ids
 * below U+D800: nearly every store), else its version is dropped, so that the next
 * sync brings a full copy in its place (its rows may be in another order than the
 * node's). Until then it is used as it is, as before.
 */
async function upgradeKeys() {
  const { slot, generation, keys, size } = copy;
  if (keys === KEYS || !generation) return;
  let otherwise = false;
  if (size) {
    for await (const values of chunkSlices(slotStores(slot)[0])) {
      otherwise = values.some(keyedOtherwise);
      if (otherwise) break;
    }
  }
  const transaction = db.transaction('meta', 'readwrite');
  const metaStore = transaction.objectStore('meta');
  const marking = done(metaStore.get('copy')).then((meta) => {
    if (!meta || meta.generation !== generation || meta.slot !== slot || meta.keys === KEYS) return;
    metaStore.put(otherwise ? { ...meta, version: null } : { ...meta, keys: KEYS });
  });
  await Promise.all([marking, committed(transaction)]);
  await readCopyMeta();
  if (otherwise) {
    others?.postMessage('changed');
    await tellState();
  }
}

const ready = load();

// Another tab's worker changed the copy: its slot, version and grid are read again.
if (others) {
  others.onmessage = () => ready.then(readCopyMeta).then(tellState).catch(() => {});
}

// Pages are written one after the other, in the order posted: the till posts the
// next page while this one is written. A page that failed fails the rest of its run,
// so a run's version is never saved with a page missing.
let pages = Promise.resolve();
const failedRuns = new Set();

// While the till waits for the node (a scan: catalogue.js says so the moment it is sent),
// pages wait too, at most PAUSE_MAX_MS before a page and again before its transaction:
// the cores go to the scan, not to the copy.
const PAUSE_MAX_MS = 300;
let paused = false;
let resume = () => {};

function unpaused() {
  if (!paused) return null;
  return new Promise((resolve) => {
    resume = resolve;
    setTimeout(resolve, PAUSE_MAX_MS);
  });
}

// While a cashier is at work (a command in the last ACTIVE_MS), the copy leaves the core
// idle after each page as long as that page kept it: on a till of one core, a scan finds
// it half free rather than full (at 1M, the longest scan while the copy loads 79-100 ms
// against 141-160; the copy twice as long while the cashier scans; docs/benchmarks.md).
const ACTIVE_MS = 2000;
let lastCommandAt = -Infinity;
let restUntil = 0;

async function rested() {
  const rest = restUntil - performance.now();
  if (rest > 0 && performance.now() - lastCommandAt < ACTIVE_MS) {
    await new Promise((resolve) => setTimeout(resolve, rest));
  }
}

function queuePage(page) {
  const writing = pages.then(async () => {
    await rested();
    await unpaused();
    if (failedRuns.has(page.run)) throw new Error('an earlier page of this run was not saved');
    try {
      const began = performance.now();
      const result = await writePage(page);
      if (page.last) await tellState();
      const ended = performance.now();
      restUntil = ended + (ended - began);
      return result;
    } catch (error) {
      failedRuns.add(page.run);
      throw error;
    } finally {
      if (page.last) failedRuns.delete(page.run);
    }
  });
  pages = writing.catch(() => {});
  return writing;
}

/** Forgetting waits for the pages posted before it, as a page does. */
function queueForget() {
  const forgetting = pages.then(forget);
  pages = forgetting.catch(() => {});
  return forgetting;
}

const OPERATIONS = {
  lookup: ({ barcode }) => lookup(barcode),
  find: ({ id }) => find(id),
  search: ({ query, limit }) => search(query, limit),
  page: queuePage,
  forget: queueForget,
};

self.onmessage = async ({ data }) => {
  const { id, op, args } = data;
  if (op === 'pause') { // no answer
    paused = Boolean(args?.busy);
    lastCommandAt = performance.now();
    if (!paused) resume();
    return;
  }
  try {
    await ready;
    postMessage({ id, result: await OPERATIONS[op](args ?? {}) });
  } catch (error) {
    postMessage({ id, error: String(error?.message ?? error) });
  }
};

ready.then(tellState).catch((error) => postMessage({ type: 'broken', error: String(error?.message ?? error) }));
ready.then(upgradeKeys).catch((error) => console.warn('the copy saved before this version was not checked', error));
