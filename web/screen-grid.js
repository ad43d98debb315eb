// The product grid beside the scan field: categories as tabs (favourites
// first), touch tiles (name, price, colour, image when the catalogue gives
// one). A tap adds one, through the same sell logic and command queue as a
// scan (a product sold by the kilo asks its weight, an open-price one its
// price), with no lookup first: the line shows as fast as a scanned one.
// Built from the till's copy of the catalogue (catalogue.js grid(), the
// node's rule: grid-layout.js), so it is the same with every node down.
// A panel inside the sell screen, not a screen of its own (see app.js).
import { t, formatMoney } from './i18n.js';
import { $, el } from './dom.js';

const REBUILD_DEBOUNCE_MS = 100; // a burst of product events redraws once
const NAMED_COLOURS = new Set(['red', 'orange', 'yellow', 'green', 'teal', 'blue', 'purple', 'pink', 'brown', 'grey']);
const FAVOURITES_TAB = '\u0000favourites'; // no category is named so (names are text a person typed)

/** A tile's image path on the node, or null: relative paths only, never another host. */
export function safeImagePath(image) {
  if (typeof image !== 'string' || !image) return null;
  if (!/^[A-Za-z0-9_./-]+$/.test(image) || image.startsWith('/') || image.includes('..') || image.includes('//')) return null;
  return `/${image}`;
}

function colourOf(tile) {
  const colour = tile.colour ?? '';
  if (NAMED_COLOURS.has(colour)) return { dataset: { colour } };
  if (/^#[0-9a-fA-F]{6}$/.test(colour)) return { style: `--tile-colour: ${colour}`, dataset: { colour: 'custom' } };
  return { dataset: {} };
}

export function gridPanel(ui) {
  const { session } = ui;
  const catalogue = session.catalogue;
  let selected = null; // the tab shown: a category's name, or FAVOURITES_TAB
  let timer = null;
  let drawn = null; // the grid last drawn, and the tab: redraw only on a change

  function panel() {
    let grid = $('#grid');
    if (!grid) {
      grid = el('div', { id: 'grid', class: 'grid-panel' },
        el('div', { id: 'grid-tabs', class: 'grid-tabs', role: 'tablist' }),
        el('div', { id: 'grid-tiles', class: 'grid-tiles' }));
      $('#screen-sell .sell-main').append(grid);
    }
    return grid;
  }

  function tabKey(category) {
    return category.favourites ? FAVOURITES_TAB : category.name;
  }

  function tabLabel(category) {
    if (category.favourites) return t('grid.favourites');
    return category.name || t('grid.others');
  }

  function priceLabel(tile) {
    if (tile.open_price) return t('grid.openPrice');
    if (tile.unit === 'kg') return t('sell.perKilo', { price: formatMoney(tile.price) });
    return formatMoney(tile.price);
  }

  function tileButton(tile, index) {
    const image = safeImagePath(tile.image);
    const { dataset, style } = colourOf(tile);
    return el('button', {
      type: 'button', class: 'grid-tile', style, dataset: { ...dataset, index: String(index), productId: tile.id },
    },
    image ? el('img', { src: image, alt: '', loading: 'lazy', draggable: 'false' }) : null,
    el('span', { class: 'tile-name' }, tile.name),
    el('span', { class: 'tile-price money' }, priceLabel(tile)));
  }

  function current(grid) {
    const categories = grid?.categories ?? [];
    return categories.find((category) => tabKey(category) === selected) ?? categories[0] ?? null;
  }

  function render() {
    const grid = catalogue.grid?.() ?? null;
    const shown = current(grid);
    const key = shown ? tabKey(shown) : '';
    if (drawn && drawn.grid === grid && drawn.key === key) return; // nothing changed: the tiles stay
    drawn = { grid, key };
    const root = panel();
    const categories = grid?.categories ?? [];
    $('#grid-tabs').replaceChildren(...categories.map((category) => el('button', {
      type: 'button', class: 'grid-tab', role: 'tab',
      'aria-selected': String(category === shown), dataset: { tab: tabKey(category) },
    }, tabLabel(category))));
    const tiles = shown?.tiles ?? [];
    const children = tiles.map(tileButton);
    if (shown?.more) children.push(el('p', { class: 'grid-more' }, t('grid.more')));
    if (!categories.length) children.push(el('p', { class: 'grid-empty' }, t('grid.empty')));
    $('#grid-tiles').replaceChildren(...children);
    root.dataset.tab = key;
  }

  function onTileTap(event) {
    const button = event.target.closest('.grid-tile');
    if (!button) return;
    const tile = current(catalogue.grid?.())?.tiles[Number(button.dataset.index)];
    if (tile && tile.id === button.dataset.productId) ui.screens.sell.addProduct(tile);
  }

  function onTabTap(event) {
    const tab = event.target.closest('.grid-tab');
    if (!tab) return;
    selected = tab.dataset.tab;
    render();
    $('#grid-tiles').scrollTop = 0;
  }

  function scheduleRender() {
    clearTimeout(timer);
    timer = setTimeout(render, REBUILD_DEBOUNCE_MS);
  }

  function wire() {
    const root = panel();
    root.querySelector('#grid-tiles').addEventListener('click', onTileTap);
    root.querySelector('#grid-tabs').addEventListener('click', onTabTap);
    catalogue.addEventListener('change', scheduleRender);
  }

  return {
    name: 'grid',
    wire,
    render() {
      drawn = null; // the language may have changed: draw the labels again
      render();
    },
  };
}
