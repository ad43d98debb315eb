// The sell screen's product search: the field (F2), its results as you type
// (the node's ranking when it answers, the till's copy when not), arrows and
// Enter to pick, and a barcode typed by hand. Picking calls back into the
// sell screen (`addProduct`, `addBarcode`), which knows about weights and prices.
import { t, formatMoney } from './i18n.js';
import { $, el } from './dom.js';

const SEARCH_DEBOUNCE_MS = 150;

export function searchView(ui, { addProduct, addBarcode }) {
  const { session } = ui;
  const search = {
    timer: null,
    sequence: 0, // to drop answers to older queries
    query: '', // query the results belong to
    results: [],
    selected: 0,
  };

  function onInput() {
    clearTimeout(search.timer);
    const query = $('#search').value.trim();
    if (!query) {
      clearResults();
      return;
    }
    search.timer = setTimeout(() => runSearch(query).catch(ui.showError), SEARCH_DEBOUNCE_MS);
  }

  async function runSearch(query) {
    const sequence = ++search.sequence;
    const results = await session.searchProducts(query);
    if (sequence !== search.sequence) return; // a newer query was typed meanwhile
    search.query = query;
    search.results = results;
    search.selected = 0;
    render();
  }

  async function onKeydown(event) {
    switch (event.key) {
      case 'ArrowDown':
      case 'ArrowUp': {
        event.preventDefault();
        if (!search.results.length) return;
        const step = event.key === 'ArrowDown' ? 1 : -1;
        search.selected = (search.selected + step + search.results.length) % search.results.length;
        render();
        break;
      }
      case 'Enter': {
        event.preventDefault();
        const query = $('#search').value.trim();
        if (!query) return;
        const looksLikeBarcode = /\d/.test(query) && !/\s/.test(query);
        try {
          // Enter can come before the debounced search ran: search now.
          if (search.query !== query) {
            clearTimeout(search.timer);
            await runSearch(query);
          }
        } catch (error) {
          if (!looksLikeBarcode) {
            ui.showError(error);
            return;
          }
        }
        const product = search.query === query ? search.results[search.selected] : null;
        if (product) {
          pick(product);
        } else if (looksLikeBarcode) {
          // A barcode typed by hand (names never match digits-only codes).
          close();
          addBarcode(query);
        }
        break;
      }
      case 'Escape':
        event.preventDefault();
        close();
        break;
    }
  }

  function pick(product) {
    close();
    addProduct(product);
  }

  function clearResults() {
    clearTimeout(search.timer);
    search.sequence++;
    search.query = '';
    search.results = [];
    search.selected = 0;
    render();
  }

  function close() {
    $('#search').value = '';
    clearResults();
    if (ui.screen === 'sell') $('#scan').focus({ preventScroll: true });
  }

  /** Someone typing a product name: to the search field, with what was typed. */
  function start(text = '') {
    const field = $('#search');
    field.value = text;
    field.focus();
    if (text) onInput();
  }

  function render() {
    const container = $('#search-results');
    const query = $('#search').value.trim();
    if (!query || search.query !== query) {
      container.hidden = true;
      container.replaceChildren();
      return;
    }
    container.hidden = false;
    if (!search.results.length) {
      container.replaceChildren(el('p', { class: 'no-results' }, t('sell.noResults')));
      return;
    }
    container.replaceChildren(
      ...search.results.map((product, index) =>
        el(
          'button',
          {
            type: 'button',
            class: 'search-result',
            role: 'option',
            'aria-selected': String(index === search.selected),
            dataset: { index: String(index) },
          },
          el('span', { class: 'result-name' }, el('strong', {}, product.name), el('small', {}, product.category ?? '')),
          el('span', { class: 'money' }, product.unit === 'kg'
            ? t('sell.perKilo', { price: formatMoney(product.price) }) : formatMoney(product.price)),
        ),
      ),
    );
    container.querySelector('[aria-selected="true"]')?.scrollIntoView({ block: 'nearest' });
  }

  function wire() {
    $('#search').addEventListener('input', onInput);
    $('#search').addEventListener('keydown', onKeydown);
    $('#search-results').addEventListener('click', (event) => {
      const result = event.target.closest('.search-result');
      if (result) pick(search.results[Number(result.dataset.index)]);
    });
  }

  return { wire, render, close, start, get isOpen() { return Boolean($('#search').value); } };
}
