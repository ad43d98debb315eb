// How the till's offline copy lays its products out in IndexedDB (used by
// catalogue-worker.js). IndexedDB costs about the same per record whatever
// its size, and a million records take a minute to write: so a record holds
// a CHUNK of products (rows in `COLUMNS` order, by id), keyed by the first id
// it may hold (the first chunk by '': an id belongs to the chunk of the
// greatest key <= it, one key-range read away). Beside the chunks, small
// records only, per slot of the copy:
// - barcodes: buckets of [barcode, id, …] (a hash of the barcode picks the bucket);
// - words: blocks word -> the REGIONS holding it (a region: the ids from one
//   region start to the next, about a thousand products; the starts, fixed
//   at a full copy, are a side record): a search reads only the regions its
//   word is in, never an index entry per word per product;
// - side: 'chunk-keys' (every chunk's key, in order: a delta finds the chunk of an id
//   without reading the chunks' keys, a quarter of a second at 1M products per page),
//   'regions', 'counts' (products per category), 'favourites' and
//   'open' (the rows ranked as favourites, the open-price ones), and for
//   each category ['top', name] its first rows by name: the grid from a few
//   reads.
// Ids are ordered as the node orders them, by code point, and a chunk's key is
// `idKey` of its first id: IndexedDB orders strings by UTF-16 units, which differs
// where a character U+E000–U+FFFF meets one beyond U+FFFF.
// A chunk is stored as the JSON text of its rows: IndexedDB copies a string whole,
// where it walks an array of arrays value by value (a full copy's costliest step).
// A full copy builds the side records in memory as its pages go by and
// writes them with its last page; a delta rewrites the chunks and side
// records it touches (a read-modify-write in its page's transaction).
import { COLUMNS, searchWords } from './catalogue.js';

export const SLOTS = ['a', 'b'];
export const [ID, BARCODE, NAME, PRICE, VAT_RATE, CATEGORY, UNIT, COLOUR, IMAGE, FAVOURITE, OPEN_PRICE] =
  COLUMNS.map((_, index) => index);
export const TEXT = COLUMNS.length; // a stored row's last field: its search words, joined by spaces
// Small chunks: a 20,000-price change spread over a million products rewrites
// the chunks it touches, so their size is what it writes for each price.
const CHUNK_ROWS = 32;
const REGION_CHUNKS = 32; // a region: about 1,000 products, what a search reads at a time
const BUCKET_ROWS = 128; // barcodes in a bucket, on average, after a full copy
const BLOCK_ENTRIES = 4096; // words + region numbers in a block of the words' table
const DEFAULT_TILES = 48;
const MAX_TILES = 200;
const KEEP_MARGIN = 16; // first rows kept beyond the tiles shown: a few delisted need no refill

/** A chunk's rows from what its record holds (JSON text). */
export function chunkRows(value) {
  return typeof value === 'string' ? JSON.parse(value) : value ?? [];
}

export function slotStores(slot) {
  return ['chunks', 'barcodes', 'words', 'side'].map((kind) => `${kind}-${slot}`);
}

/** The first rows of a category kept for the grid: its tiles + 1 (to know there are more), and a margin. */
export function keepFor(tiles) {
  const shown = Number.isInteger(tiles) ? Math.max(1, Math.min(tiles, MAX_TILES)) : DEFAULT_TILES;
  return shown + 1 + KEEP_MARGIN;
}

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

// Search words by space-separated token, cached: names share most of their words,
// and searchWords (Unicode normalisation, then two Unicode regexes) is the
// costliest step of a full copy. Words never span a space, so word by token is the same.
const TOKEN_CACHE_LIMIT = 200_000;
let tokenWords = new Map();

function wordsOf(text) {
  const words = new Set();
  for (const token of text.split(' ')) {
    if (!token) continue;
    let found = tokenWords.get(token);
    if (found === undefined) {
      if (tokenWords.size >= TOKEN_CACHE_LIMIT) tokenWords = new Map();
      found = searchWords(token);
      tokenWords.set(token, found);
    }
    for (const word of found) words.add(word);
  }
  return [...words].join(' ');
}

/** A page's rows (in `columns` order) as the copy stores them: COLUMNS' order, the node's defaults, by id. */
export function rowsOf(columns, products) {
  const inOrder = columns.length === COLUMNS.length && columns.every((column, i) => column === COLUMNS[i]);
  const at = COLUMNS.map((column) => columns.indexOf(column));
  const rows = products.map((given) => {
    const row = inOrder ? given : at.map((index) => (index < 0 ? undefined : given[index]));
    row[BARCODE] ??= null;
    row[CATEGORY] ??= null;
    row[UNIT] ||= 'piece';
    row[COLOUR] ??= '';
    row[IMAGE] ??= '';
    row[FAVOURITE] ??= 0;
    row[OPEN_PRICE] = Boolean(row[OPEN_PRICE]);
    row[TEXT] = wordsOf(`${row[NAME]} ${row[CATEGORY] ?? ''}`);
    return row;
  });
  return inIdOrder(rows);
}

/** `rows` by id, each id once (the last given): the node sends them so, checked in one pass. */
function inIdOrder(rows) {
  const keys = rows.map((row) => idKey(row[ID]));
  if (keys.every((key, i) => i === 0 || keys[i - 1] < key)) return rows;
  const order = keys.map((_, i) => i)
    .sort((a, b) => (keys[a] < keys[b] ? -1 : keys[a] > keys[b] ? 1 : a - b));
  return order.filter((at, i) => keys[order[i + 1]] !== keys[at]).map((at) => rows[at]);
}

/** A stored row as the till's code sees a product (the node's product_json). */
export function productOf(row) {
  const product = {};
  COLUMNS.forEach((column, index) => { product[column] = row[index]; });
  return product;
}

/** The bucket of a barcode among `count`: FNV-1a. */
export function bucketOf(barcode, count) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < barcode.length; i++) hash = Math.imul(hash ^ barcode.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % count;
}

/** The copy's meta row says `keys: KEYS` when its chunks are keyed by `idKey`. */
export const KEYS = 'code-points';
const ABOVE_D7FF = /[\ud800-\uffff]/;

/**
 * The IndexedDB key of an id: ordered by UTF-16 units (as IndexedDB and `<` order
 * strings) as the ids are by code point. Surrogates (D800–DFFF) move above
 * E000–FFFF, which move down by 0x800; every other id is its own key.
 */
export function idKey(id) {
  if (!ABOVE_D7FF.test(id)) return id;
  let key = '';
  for (let i = 0; i < id.length; i++) {
    const unit = id.charCodeAt(i);
    key += String.fromCharCode(unit >= 0xe000 ? unit - 0x800 : unit >= 0xd800 ? unit + 0x2000 : unit);
  }
  return key;
}

/**
 * Whether a chunk saved before `idKey` holds an id that `idKey` changes: its rows, and
 * the chunks around it, may then be in IndexedDB's order rather than the node's.
 */
export function keyedOtherwise(value) {
  if (typeof value === 'string' && !ABOVE_D7FF.test(value)) return false; // (most chunks: one test)
  return chunkRows(value).some((row) => ABOVE_D7FF.test(row[ID]));
}

/** Keys as IndexedDB holds them: once each, in its order. */
function inKeyOrder(keys) {
  return [...new Set(keys)].sort(); // by UTF-16 code units, as IndexedDB orders strings
}

/** Strings as the node sorts them, by code point (`idKey` orders them so for `<`). */
function byCodePoints(a, b) {
  const left = idKey(a);
  const right = idKey(b);
  return left < right ? -1 : left > right ? 1 : 0;
}

function byId(a, b) {
  return byCodePoints(a[ID], b[ID]);
}

function byName(a, b) {
  return byCodePoints(a[NAME], b[NAME]) || byId(a, b);
}

/** The index of the greatest of the sorted `keys` <= `key` (0 when none: the first chunk is ''). */
function floorIndex(keys, key) {
  let low = 0;
  let high = keys.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (keys[middle] <= key) low = middle;
    else high = middle - 1;
  }
  return low;
}

/** Where `id` is, or would go, in `rows` (by id). */
function lowerBound(rows, id) {
  const key = idKey(id);
  let low = 0;
  let high = rows.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (idKey(rows[middle][ID]) < key) low = middle + 1;
    else high = middle;
  }
  return low;
}

export const chunkIndex = {
  compareNames: byCodePoints,
  /** The index of the row of `id` in a chunk, -1 if none. */
  find(rows, id) {
    const at = lowerBound(rows, id);
    return rows[at]?.[ID] === id ? at : -1;
  },
  firstByName(rows, keep) {
    return rows.sort(byName).slice(0, keep);
  },
};

/** `row` into `list` (sorted by name, at most `keep`): returns the row that left it, if one did. */
function insertTop(list, row, keep) {
  if (list.length >= keep && byName(row, list[list.length - 1]) >= 0) return row;
  let low = 0;
  let high = list.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (byName(list[middle], row) < 0) low = middle + 1;
    else high = middle;
  }
  list.splice(low, 0, row);
  return list.length > keep ? list.pop() : undefined;
}

function byRateThenName(a, b) {
  return a[VAT_RATE] - b[VAT_RATE] || byName(a, b);
}

/** The grid's side records, in memory: what a full copy builds and a delta reads, changes and writes. */
class Summary {
  constructor(keep, counts = {}, favourites = [], open = []) {
    this.keep = keep;
    this.counts = counts;
    this.favourites = favourites;
    this.open = open;
    this.tops = new Map(); // category -> its first rows by name (those loaded)
    // category -> a row every row not kept sorts at or after (none: every row is kept, or
    // every row is seen, as in a full copy): a row after it may not go in at the end.
    this.limits = new Map();
  }

  /** A category's first rows as saved, before a delta changes them. */
  loadTop(category, rows) {
    this.tops.set(category, rows);
    if (rows.length && rows.length < (this.counts[category] ?? 0)) this.limits.set(category, rows.at(-1));
  }

  add(row) {
    const category = row[CATEGORY];
    if (typeof category === 'string') {
      this.counts[category] = (this.counts[category] ?? 0) + 1;
      if (!this.tops.has(category)) this.tops.set(category, []);
      // (Not after the limit: a row not kept may come before it, as when a product among
      // the first is renamed after all the others. The list is short then, and refilled.)
      const limit = this.limits.get(category);
      if (!limit || byName(row, limit) <= 0) {
        const left = insertTop(this.tops.get(category), row, this.keep);
        if (left && (!limit || byName(left, limit) < 0)) this.limits.set(category, left); // not kept now
      }
    }
    if (row[FAVOURITE] > 0) this.favourites.push(row);
    if (row[OPEN_PRICE]) this.open.push(row);
  }

  remove(row) {
    const category = row[CATEGORY];
    if (typeof category === 'string') {
      this.counts[category] -= 1;
      if (!(this.counts[category] > 0)) delete this.counts[category];
      const top = this.tops.get(category);
      const at = top?.findIndex((kept) => kept[ID] === row[ID]) ?? -1;
      if (at >= 0) top.splice(at, 1);
    }
    if (row[FAVOURITE] > 0) this.favourites = this.favourites.filter((kept) => kept[ID] !== row[ID]);
    if (row[OPEN_PRICE]) this.open = this.open.filter((kept) => kept[ID] !== row[ID]);
  }

  /** Categories whose kept rows are fewer than they should be (some left): a refill from every chunk. */
  short() {
    return [...this.tops].filter(([name, top]) => top.length < Math.min(this.counts[name] ?? 0, this.keep))
      .map(([name]) => name);
  }

  write(side, categories = this.tops.keys()) {
    side.put(this.counts, 'counts');
    side.put(this.favourites, 'favourites');
    side.put(this.open.sort(byRateThenName), 'open');
    for (const name of categories) {
      if (this.counts[name]) side.put(this.tops.get(name), ['top', name]);
      else side.delete(['top', name]);
    }
  }
}

/** A full copy's side records, built in memory as its pages go by (a page's chunks are written at once). */
export class FullCopyBuilder {
  constructor(tiles) {
    this.summary = new Summary(keepFor(tiles));
    this.size = 0;
    this.chunks = []; // each chunk's key, in order
    this.regions = [];
    this.barcodes = new Map(); // barcode -> id
    this.vocabulary = new Map(); // word -> its regions, ascending
    this.lastKey = null; // the last page's last id's key
  }

  add(chunkStore, rows) {
    if (!rows.length) return;
    // Pages come by id: one that does not would overwrite chunks already written.
    if (this.lastKey !== null && idKey(rows[0][ID]) <= this.lastKey) {
      throw new Error('a page of the full copy does not follow the one before it');
    }
    this.lastKey = idKey(rows.at(-1)[ID]);
    for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
      const chunk = rows.slice(start, start + CHUNK_ROWS);
      const key = this.chunks.length === 0 ? '' : idKey(chunk[0][ID]);
      if (this.chunks.length % REGION_CHUNKS === 0) this.regions.push(key);
      this.chunks.push(key);
      chunkStore.put(JSON.stringify(chunk), key);
      const region = this.regions.length - 1;
      for (const row of chunk) {
        if (row[BARCODE] != null) this.barcodes.set(row[BARCODE], row[ID]);
        for (const word of row[TEXT].split(' ')) {
          if (!word) continue;
          const regions = this.vocabulary.get(word);
          if (!regions) this.vocabulary.set(word, [region]);
          else if (regions[regions.length - 1] !== region) regions.push(region);
        }
        this.summary.add(row);
      }
    }
    this.size += rows.length;
  }

  /** The side records into the slot's stores: {size, buckets, keep} for the copy's meta row. */
  finish(stores) {
    const buckets = 2 ** Math.ceil(Math.log2(Math.max(1, this.barcodes.size / BUCKET_ROWS)));
    const filled = new Map();
    for (const [barcode, id] of this.barcodes) {
      const bucket = bucketOf(barcode, buckets);
      if (!filled.has(bucket)) filled.set(bucket, []);
      filled.get(bucket).push(barcode, id);
    }
    for (const [bucket, holders] of filled) stores.barcodes.put(holders, bucket);
    writeBlocks(stores.words, '', [...this.vocabulary.keys()].sort(), this.vocabulary);
    stores.side.put(this.regions.length ? this.regions : [''], 'regions');
    stores.side.put(inKeyOrder(this.chunks), 'chunk-keys');
    this.summary.write(stores.side);
    return { size: this.size, buckets, keep: this.summary.keep, keys: KEYS };
  }
}

/** Sorted `words` (regions from `regionsOf`) into blocks of the words' table, the first keyed `firstKey`. */
function writeBlocks(store, firstKey, words, regionsOf) {
  let block = {};
  let entries = 0;
  let key = firstKey;
  for (const word of words) {
    const regions = regionsOf.get(word);
    if (entries && entries + regions.length + 1 > BLOCK_ENTRIES) {
      store.put(block, key);
      block = {};
      entries = 0;
      key = word;
    }
    block[word] = regions;
    entries += regions.length + 1;
  }
  store.put(block, key);
}

/**
 * A delta page into the slot in use (`stores`: its chunks, barcodes, words,
 * side), inside the page's transaction: the rows as the node holds them now,
 * the ids delisted. A barcode moved to a product leaves the one that had it
 * (as on the node). Reads only what the page touches. Returns {size: the
 * change in products, stale: categories whose first rows must be refilled}.
 */
export async function applyDelta(stores, meta, rows, delisted) {
  const [savedKeys, regions, counts, favourites, open] = await Promise.all([
    done(stores.side.get('chunk-keys')), done(stores.side.get('regions')), done(stores.side.get('counts')),
    done(stores.side.get('favourites')), done(stores.side.get('open'))]);
  // (A copy saved before the keys were kept, or kept in the node's order: read or put in
  // IndexedDB's order once, and kept so from this page on.)
  const ascending = savedKeys?.every((key, i) => i === 0 || savedKeys[i - 1] < key);
  const keys = ascending ? savedKeys : savedKeys ? inKeyOrder(savedKeys) : await done(stores.chunks.getAllKeys());
  const keysChanged = keys !== savedKeys;
  if (keys[0] !== '') keys.unshift(''); // an empty copy: its first chunk
  const chunks = new Map(); // chunk key -> rows (those read, and changed)
  const chunkOf = (id) => keys[floorIndex(keys, idKey(id))];
  const readChunks = async (ids) => {
    const wanted = [...new Set(ids.map(chunkOf))].filter((key) => !chunks.has(key));
    const read = await Promise.all(wanted.map((key) => done(stores.chunks.get(key))));
    wanted.forEach((key, i) => chunks.set(key, chunkRows(read[i])));
  };
  await readChunks([...rows.map((row) => row[ID]), ...delisted]);

  const changes = []; // [the row before or null, the row now or null]
  let size = 0;
  for (const row of rows) {
    const chunk = chunks.get(chunkOf(row[ID]));
    const at = lowerBound(chunk, row[ID]);
    if (chunk[at]?.[ID] === row[ID]) {
      changes.push([chunk[at], row]);
      chunk[at] = row;
    } else {
      changes.push([null, row]);
      chunk.splice(at, 0, row);
      size++;
    }
  }
  for (const id of delisted) {
    const chunk = chunks.get(chunkOf(id));
    const at = chunkIndex.find(chunk, id);
    if (at < 0) continue;
    changes.push([chunk[at], null]);
    chunk.splice(at, 1);
    size--;
  }

  for (const [holder, barcode] of await moveBarcodes(stores.barcodes, meta.buckets || 1, changes)) {
    // Its barcode moved to a product of this page: the old holder keeps none.
    await readChunks([holder]);
    const chunk = chunks.get(chunkOf(holder));
    const at = chunkIndex.find(chunk, holder);
    if (at < 0 || chunk[at][BARCODE] !== barcode) continue;
    const stripped = [...chunk[at]];
    stripped[BARCODE] = null;
    changes.push([chunk[at], stripped]);
    chunk[at] = stripped;
  }
  await addWords(stores.words, regions ?? [''], changes);

  const summary = new Summary(meta.keep ?? keepFor(null), counts ?? {}, favourites ?? [], open ?? []);
  const categories = new Set(changes.flat().filter(Boolean).map((row) => row[CATEGORY])
    .filter((name) => typeof name === 'string'));
  const tops = await Promise.all([...categories].map((name) => done(stores.side.get(['top', name]))));
  [...categories].forEach((name, i) => summary.loadTop(name, tops[i] ?? []));
  for (const [before, now] of changes) {
    if (before) summary.remove(before);
    if (now) summary.add(now);
  }
  summary.write(stores.side, categories);

  const newKeys = [];
  for (const [key, chunk] of chunks) {
    // A chunk grown by new products is cut in two: a chunk stays a few dozen rows.
    for (let start = 0; start < chunk.length || start === 0; start += CHUNK_ROWS) {
      const piece = chunk.length > 2 * CHUNK_ROWS ? chunk.slice(start, start + CHUNK_ROWS) : chunk;
      const pieceKey = start === 0 ? key : idKey(piece[0][ID]);
      if (start > 0) newKeys.push(pieceKey);
      stores.chunks.put(JSON.stringify(piece), pieceKey);
      if (piece === chunk) break;
    }
  }
  if (newKeys.length || keysChanged) {
    stores.side.put(inKeyOrder([...keys, ...newKeys]), 'chunk-keys');
  }
  return { size, stale: new Set(summary.short()) };
}

/**
 * The barcode buckets after `changes`: a barcode's old holder forgotten,
 * its new one noted. Returns [id, barcode] of the products that held a
 * barcode now another's (not in this page): they lose it.
 */
async function moveBarcodes(store, buckets, changes) {
  const moved = changes.filter(([before, now]) => (before?.[BARCODE] ?? null) !== (now?.[BARCODE] ?? null));
  const wanted = new Set();
  for (const [before, now] of moved) {
    for (const row of [before, now]) if (row?.[BARCODE] != null) wanted.add(bucketOf(row[BARCODE], buckets));
  }
  const keys = [...wanted];
  const read = await Promise.all(keys.map((key) => done(store.get(key))));
  const holders = new Map(keys.map((key, i) => [key, Object.fromEntries(pairs(read[i] ?? []))]));
  const bucket = (barcode) => holders.get(bucketOf(barcode, buckets));
  for (const [before] of moved) {
    const barcode = before?.[BARCODE];
    if (barcode != null && bucket(barcode)[barcode] === before[ID]) delete bucket(barcode)[barcode];
  }
  const losers = [];
  for (const [, now] of moved) {
    const barcode = now?.[BARCODE];
    if (barcode == null) continue;
    const holder = bucket(barcode)[barcode];
    if (holder && holder !== now[ID]) losers.push([holder, barcode]);
    bucket(barcode)[barcode] = now[ID];
  }
  for (const [key, value] of holders) store.put(Object.entries(value).flat(), key);
  return losers;
}

/** A bucket's [barcode, id, barcode, id, …] as [barcode, id] pairs. */
function pairs(bucket) {
  const found = [];
  for (let i = 0; i < bucket.length; i += 2) found.push([bucket[i], bucket[i + 1]]);
  return found;
}

/** The id holding `barcode` in its bucket, or undefined. */
export function holderIn(bucket, barcode) {
  for (let i = 0; i < (bucket?.length ?? 0); i += 2) if (bucket[i] === barcode) return bucket[i + 1];
  return undefined;
}

/** Each new or renamed product's words point at its region (a word left behind costs a row checked). */
async function addWords(store, regions, changes) {
  const wanted = new Map(); // word -> regions to add
  for (const [before, now] of changes) {
    if (!now || before?.[TEXT] === now[TEXT]) continue;
    const region = floorIndex(regions, idKey(now[ID]));
    for (const word of now[TEXT].split(' ')) {
      if (!word) continue;
      if (!wanted.has(word)) wanted.set(word, new Set());
      wanted.get(word).add(region);
    }
  }
  if (!wanted.size) return;
  const keys = await done(store.getAllKeys());
  if (keys[0] !== '') keys.unshift('');
  const blockKeys = [...new Set([...wanted.keys()].map((word) => keys[floorIndex(keys, word)]))];
  const read = await Promise.all(blockKeys.map((key) => done(store.get(key))));
  const blocks = new Map(blockKeys.map((key, i) => [key, read[i] ?? {}]));
  for (const [word, added] of wanted) {
    const block = blocks.get(keys[floorIndex(keys, word)]);
    const list = block[word] ?? [];
    for (const region of added) if (!list.includes(region)) list.push(region);
    block[word] = list.sort((a, b) => a - b);
  }
  for (const [key, block] of blocks) {
    const words = Object.keys(block).sort();
    const entries = words.reduce((sum, word) => sum + block[word].length + 1, 0);
    if (entries > 2 * BLOCK_ENTRIES) writeBlocks(store, key, words, new Map(Object.entries(block)));
    else store.put(block, key);
  }
}
