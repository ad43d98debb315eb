// The till's own copy of the catalogue, so barcodes and names still find
// products when no node answers. Refreshed in full after every `auth`
// (`catalogue/export`), kept current by the node's product events, held in
// memory for instant lookups and in IndexedDB to outlive a reload. With the
// products, what the export's first page adds for selling offline: the
// store's grid settings (the grid is built here: grid-layout.js), the
// promotions not ended (those running today price the basket as the node
// does) and the in-store barcode layouts (barcodes.js readEmbedded).

import { buildGrid } from './grid-layout.js';

const EXPORT_PAGE = 2000;
const PRODUCT_EVENTS = ['product_upserted', 'product_delisted'];
const PROMOTION_EVENTS = ['promotion_upserted', 'promotion_ended'];
const CATALOGUE_EVENTS = [...PRODUCT_EVENTS, ...PROMOTION_EVENTS];

/** Today in the till's local time, "YYYY-MM-DD" (promotions' dates are the store's days). */
export function localDay(date = new Date()) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** A product event written before tiles existed lacks their fields: the node reads them so. */
function withTileFields(product) {
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

export class LocalCatalogue extends EventTarget {
  /** `store`: a TillStore, or null when IndexedDB is unavailable (then memory only). */
  constructor(store) {
    super();
    this.store = store;
    this.byId = new Map();
    this.byBarcode = new Map();
    this.words = new Map(); // product id -> its searchable words
    this.pendingEvents = null; // events that arrive while an export is under way
    this.syncRun = 0;
    this.gridSettings = null; // {categories, favourites, tiles}: null until a first export
    this.promotions = new Map(); // id -> promotion not ended
    this.embeddedBarcodes = []; // [{prefix, layout, value}]
    this.builtGrid = null; // the grid, built again after a change
  }

  get size() {
    return this.byId.size;
  }

  async loadSaved() {
    if (!this.store) return;
    const products = await this.store.loadProducts();
    if (this.byId.size === 0) this.replaceInMemory(products);
    const extras = await this.store.loadCatalogueExtras?.().catch(() => null);
    if (extras && this.gridSettings === null) this.adoptExtras(extras);
  }

  /** The promotions running on `day` ("YYYY-MM-DD", inclusive dates), by id: what pricing is given. */
  activePromotions(day = localDay()) {
    return [...this.promotions.values()]
      .filter((p) => (!p.starts || p.starts <= day) && (!p.ends || p.ends >= day))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The grid as catalogue/grid gives it, from this copy; null before a first export. */
  grid() {
    if (this.gridSettings === null) return null;
    this.builtGrid ??= buildGrid([...this.byId.values()], this.gridSettings);
    return this.builtGrid;
  }

  adoptExtras({ grid = null, promotions = [], embedded_barcodes: layouts = [] }) {
    this.gridSettings = grid ?? { categories: [], favourites: [], tiles: 48 };
    this.promotions = new Map(promotions.map((promotion) => [promotion.id, promotion]));
    this.embeddedBarcodes = Array.isArray(layouts) ? layouts : [];
    this.builtGrid = null;
  }

  extras() {
    return {
      grid: this.gridSettings, promotions: [...this.promotions.values()], embedded_barcodes: this.embeddedBarcodes,
    };
  }

  /**
   * Full refresh from the node just authenticated. The subscription comes
   * first, so no change falls between the export and the events; changes that
   * arrive during the export are applied after it.
   */
  async sync(call) {
    const run = ++this.syncRun;
    this.pendingEvents = [];
    try {
      await call('subscribe_events', { event_types: CATALOGUE_EVENTS });
      const products = [];
      let after = null;
      let extras = null;
      do {
        const page = await call('catalogue/export', after ? { after, limit: EXPORT_PAGE } : { limit: EXPORT_PAGE });
        products.push(...page.products);
        // The first page: grid settings, promotions, barcode layouts (absent from an older node).
        if (!after) extras = { grid: page.grid, promotions: page.promotions, embedded_barcodes: page.embedded_barcodes };
        after = page.next;
      } while (after);
      if (run !== this.syncRun) return; // a newer connection refreshes it
      this.replaceInMemory(products);
      if (extras) this.adoptExtras(extras);
      const events = this.pendingEvents;
      this.pendingEvents = null;
      for (const event of events) this.applyInMemory(event);
      if (this.store) {
        await this.store.replaceProducts([...this.byId.values()]);
        await this.store.saveCatalogueExtras?.(this.extras()).catch(() => {});
      }
      this.dispatchEvent(new Event('change'));
    } finally {
      if (run === this.syncRun) this.pendingEvents = null;
    }
  }

  /** A pushed event (subscribe_events); anything but product events is ignored. */
  onEvent(event) {
    if (!event || !CATALOGUE_EVENTS.includes(event.type)) return;
    if (this.pendingEvents) {
      this.pendingEvents.push(event);
      return;
    }
    const changed = this.applyInMemory(event);
    if (PROMOTION_EVENTS.includes(event.type)) {
      this.store?.saveCatalogueExtras?.(this.extras()).catch(() => {});
    } else if (this.store) {
      const saved = event.type === 'product_upserted'
        ? this.store.putProducts(changed)
        : this.store.deleteProduct(event.body.id);
      saved.catch(() => {}); // the memory copy is current; the next sync rewrites the saved one
    }
    this.dispatchEvent(new Event('change'));
  }

  lookup(barcode) {
    return this.byBarcode.get(barcode) ?? null;
  }

  find(productId) {
    return this.byId.get(productId) ?? null;
  }

  /** Every query word must start a word of the name or category, as on the node. Sorted by name. */
  search(query, limit) {
    const wanted = searchWords(query).slice(0, MAX_QUERY_WORDS);
    if (!wanted.length) return [];
    const found = [];
    for (const [id, words] of this.words) {
      if (wanted.every((prefix) => words.some((word) => word.startsWith(prefix)))) {
        found.push(this.byId.get(id));
      }
    }
    found.sort((a, b) => a.name.localeCompare(b.name, 'fr'));
    return found.slice(0, limit);
  }

  // --- internals ---

  replaceInMemory(products) {
    this.builtGrid = null;
    this.byId.clear();
    this.byBarcode.clear();
    this.words.clear();
    for (const product of products) this.putInMemory(product);
  }

  /** Returns the products it changed: this one, and the one whose barcode it took. */
  putInMemory(saved) {
    const product = withTileFields(saved);
    this.builtGrid = null;
    const changed = [product];
    const previous = this.byId.get(product.id);
    if (previous?.barcode && this.byBarcode.get(previous.barcode)?.id === product.id) {
      this.byBarcode.delete(previous.barcode);
    }
    this.byId.set(product.id, product);
    // A barcode moved to this product leaves its old one, as on the node.
    if (product.barcode) {
      const holder = this.byBarcode.get(product.barcode);
      if (holder && holder.id !== product.id) {
        const moved = { ...holder, barcode: null };
        this.byId.set(holder.id, moved);
        changed.push(moved);
      }
      this.byBarcode.set(product.barcode, product);
    }
    this.words.set(product.id, searchWords(`${product.name} ${product.category ?? ''}`));
    return changed;
  }

  applyInMemory(event) {
    if (event.type === 'promotion_upserted') {
      this.promotions.set(event.body.id, event.body);
      return [];
    }
    if (event.type === 'promotion_ended') {
      this.promotions.delete(event.body.id);
      return [];
    }
    if (event.type === 'product_upserted') {
      return this.putInMemory(event.body);
    }
    if (event.type === 'product_delisted') {
      const product = this.byId.get(event.body.id);
      if (!product) return [];
      this.byId.delete(product.id);
      this.builtGrid = null;
      this.words.delete(product.id);
      if (product.barcode && this.byBarcode.get(product.barcode)?.id === product.id) {
        this.byBarcode.delete(product.barcode);
      }
    }
    return [];
  }
}
