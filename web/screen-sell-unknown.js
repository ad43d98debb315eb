// A scanned barcode no product has: said above the basket (not over it),
// with what the cashier can do instead: search the product by name, or ring
// it up at a typed price on an open-price product ("Divers", one per VAT
// rate). It goes as soon as the next thing the cashier does works.
import { t, formatRate } from './i18n.js';
import { $, el } from './dom.js';

const MAX_OPEN_PRICE_CHOICES = 4;

export function unknownBarcodeOffer(ui, { searchFor, addProduct }) {
  let barcode = null;

  /** The catalogue's open-price products, from the till's copy (it answers offline too): kept on the page. */
  function openPriceProducts() {
    return (ui.session.catalogue.openPriceProducts?.() ?? []).slice(0, MAX_OPEN_PRICE_CHOICES);
  }

  function panel() {
    let offer = $('#unknown-offer');
    if (!offer) {
      offer = el('div', { id: 'unknown-offer', class: 'unknown-offer', role: 'status', hidden: true });
      $('#basket').before(offer);
      offer.addEventListener('click', onClick);
    }
    return offer;
  }

  function show(code) {
    barcode = code ?? '';
    render();
  }

  function hide() {
    if (barcode === null) return;
    barcode = null;
    render();
  }

  function render() {
    const offer = panel();
    offer.hidden = barcode === null;
    if (barcode === null) return offer.replaceChildren();
    const choices = openPriceProducts().map((product) => el('button', {
      type: 'button', class: 'offer-open-price', dataset: { productId: product.id },
      title: t('unknown.openPrice', { name: product.name, rate: formatRate(product.vat_rate) }),
    }, product.name));
    offer.replaceChildren(
      el('strong', { class: 'offer-text' }, t('unknown.text', { barcode })),
      el('div', { class: 'offer-actions' },
        el('button', { type: 'button', class: 'offer-search', dataset: { offer: 'search' } }, t('unknown.search')),
        choices.length ? el('span', { class: 'offer-label' }, t('unknown.openPriceLabel')) : null,
        ...choices,
        el('button', { type: 'button', class: 'offer-close ghost', dataset: { offer: 'close' }, title: t('unknown.close') }, '×')),
    );
  }

  function onClick(event) {
    const button = event.target.closest('button');
    if (!button) return;
    event.stopPropagation(); // not the sell screen's "tap outside: scan field" handler
    if (button.dataset.offer === 'search') {
      hide();
      searchFor('');
    } else if (button.dataset.offer === 'close') {
      hide();
      ui.screens.sell.refocusScan();
    } else if (button.dataset.productId) {
      const product = openPriceProducts().find((choice) => choice.id === button.dataset.productId);
      hide();
      if (product) addProduct(product);
    }
  }

  return { show, hide, render, get isOpen() { return barcode !== null; } };
}
