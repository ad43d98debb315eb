// The product grid built from the till's copy of the catalogue, with no DOM:
// the same categories and tiles, in the same order, as the node's
// `catalogue/grid` (edge/selling/catalogue_grid.py), so a till with no node
// answering shows the grid the cashier knows. The store's settings come with
// the catalogue export's first page (`grid`: categories, favourites, tiles).
import { compareCodePoints } from './promotion_rules.js';

export const MAX_CATEGORIES = 40;
export const MAX_TILES = 200;
const DEFAULT_TILES = 48;

/** A product as a tile shows it (catalogue/grid's tile). */
export function tileOf(product) {
  return {
    id: product.id,
    name: product.name,
    price: product.price,
    unit: product.unit || 'piece',
    colour: product.colour ?? '',
    image: product.image ?? '',
    open_price: Boolean(product.open_price),
  };
}

function tilesPerCategory(settings) {
  const wanted = Number.isInteger(settings?.tiles) ? settings.tiles : DEFAULT_TILES;
  return Math.max(1, Math.min(wanted, MAX_TILES));
}

/** By name, then id (as the node orders tiles: two products may share a name). */
function byName(a, b) {
  return compareCodePoints(a.name, b.name) || compareCodePoints(a.id, b.id);
}

/** The store's favourites (ids, in order), then the catalogue's (rank, then name). */
function favouriteTiles(products, byId, settings, tiles) {
  const shown = new Map();
  for (const id of [...new Set(settings?.favourites ?? [])].slice(0, tiles)) {
    const product = byId.get(id);
    if (product) shown.set(id, tileOf(product));
  }
  if (shown.size < tiles) {
    const ranked = products.filter((product) => (product.favourite ?? 0) > 0);
    ranked.sort((a, b) => (a.favourite - b.favourite) || byName(a, b));
    for (const product of ranked.slice(0, tiles + shown.size)) {
      if (!shown.has(product.id)) shown.set(product.id, tileOf(product));
    }
  }
  return [...shown.values()].slice(0, tiles);
}

/**
 * `catalogue/grid`'s answer from `products` (those on sale) and the store's
 * `settings`: {categories: [{name, favourites, tiles, more}], more_categories}.
 */
export function buildGrid(products, settings = {}) {
  const tiles = tilesPerCategory(settings);
  const byId = new Map(products.map((product) => [product.id, product]));
  const members = new Map(); // category -> its products
  for (const product of products) {
    const category = product.category;
    if (typeof category !== 'string') continue; // none (NULL on the node): in no category
    if (!members.has(category)) members.set(category, []);
    members.get(category).push(product);
  }
  // The node looks at the first MAX_CATEGORIES + 1 by name, and at the store's own.
  const present = [...members.keys()].sort(compareCodePoints);
  const listed = [...new Set(settings?.categories ?? [])].slice(0, MAX_CATEGORIES)
    .filter((name) => members.has(name));
  const found = new Set([...present.slice(0, MAX_CATEGORIES + 1), ...listed]);
  const rest = [...found].filter((name) => name && !listed.includes(name)).sort(compareCodePoints);
  const order = [...listed, ...rest, ...(found.has('') && !listed.includes('') ? [''] : [])];
  const answer = [];
  const favourites = favouriteTiles(products, byId, settings, tiles);
  if (favourites.length) answer.push({ name: '', favourites: true, tiles: favourites, more: false });
  for (const name of order.slice(0, MAX_CATEGORIES)) {
    const sorted = [...members.get(name)].sort(byName);
    answer.push({ name, favourites: false, tiles: sorted.slice(0, tiles).map(tileOf), more: sorted.length > tiles });
  }
  return { categories: answer, more_categories: order.length > MAX_CATEGORIES };
}
