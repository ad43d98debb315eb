// The sell screen's basket: its lines (pieces, weighed lines in grams priced
// per kilo, price labels), the scans still on their way, and the totals with
// their VAT rows. Drawing only: what a tap on a line does is the session's
// (screen-sell.js wires it). Other panels decorate the lines after each
// drawing (screen-discount.js listens for #basket's 'drawn'), so a line keeps its shape:
// `.basket-line[data-line-id]` with `.line-name`, `.line-quantity`, `.line-total`.
import { t, getLang, formatMoney, formatRate } from './i18n.js';
import { $, el, place, setText } from './dom.js';

/** "450 g" / "1,250 kg": how a weighed line's quantity reads. */
export function formatGrams(grams) {
  if (grams < 1000) return `${grams} g`;
  const kilos = (grams / 1000).toFixed(3);
  return `${getLang() === 'fr' ? kilos.replace('.', ',') : kilos} kg`;
}

function isWeighed(line) {
  return line.unit === 'g';
}

function unitLabel(line) {
  if (isWeighed(line)) return t('sell.perKilo', { price: formatMoney(line.unit_price) });
  if (line.price_embedded) return t('sell.labelPrice');
  return t('sell.each', { price: formatMoney(line.unit_price) });
}

export function basketView(ui) {
  const { session } = ui;
  let scrolledForAdds = 0; // session.addsApplied when the basket last scrolled to its new line
  let vatShown = null; // what the VAT rows show (as drawn by renderTotals)

  function quantityCell(line) {
    // A weighed line's quantity is its weight: weighed again, not stepped by one.
    if (isWeighed(line)) {
      return el('div', { class: 'line-quantity weighed' }, el('span', { class: 'qty-value' }, formatGrams(line.quantity)));
    }
    return el(
      'div',
      { class: 'line-quantity' },
      el('button', { type: 'button', class: 'qty', dataset: { action: 'decrease' }, title: t('sell.decrease') }, '−'),
      el('span', { class: 'qty-value' }, String(line.quantity)),
      el('button', { type: 'button', class: 'qty', dataset: { action: 'increase' }, title: t('sell.increase') }, '+'),
    );
  }

  function basketRow(line) {
    const classes = ['basket-line'];
    if (line.id === session.lastAddedLineId) classes.push('last');
    if (isWeighed(line)) classes.push('weighed');
    return el(
      'div',
      { class: classes.join(' '), dataset: { lineId: line.id, unit: line.unit ?? 'piece' } },
      el('div', { class: 'line-name' }, el('strong', {}, line.name), el('small', {}, unitLabel(line))),
      quantityCell(line),
      el('div', { class: 'line-total money' }, formatMoney(line.total)),
      el('button', { type: 'button', class: 'line-remove', dataset: { action: 'remove' }, title: t('sell.remove') }, '×'),
    );
  }

  function pendingRow(preview) {
    return el(
      'div',
      { class: 'pending-line' },
      el('div', { class: 'line-name' }, el('strong', {}, preview.label), el('small', {}, t('sell.pendingLine'))),
      el('div', { class: 'line-quantity' }, el('span', { class: 'qty-value' }, `× ${preview.quantity}`)),
    );
  }

  function renderTotals() {
    const totals = session.basket?.totals;
    setText($('#total'), formatMoney(totals?.total ?? 0));
    setText($('#item-count'), t('sell.items', { count: totals?.items ?? 0 }));
    const vat = totals?.vat ?? [];
    const vatShows = JSON.stringify([getLang(), vat]);
    if (vatShows === vatShown) return;
    vatShown = vatShows;
    $('#vat-rows').replaceChildren(
      ...vat.map((row) =>
        el(
          'tr',
          {},
          el('td', {}, formatRate(row.rate)),
          el('td', { class: 'money' }, formatMoney(row.base)),
          el('td', { class: 'money' }, formatMoney(row.vat)),
          el('td', { class: 'money' }, formatMoney(row.total)),
        ),
      ),
    );
  }

  // What is on screen, by key. A row is drawn again only when its shape changed;
  // otherwise it stays in place and only its counts are set (a scan's answer lays
  // out one quantity and one total, not the basket).
  const shown = new Map(); // key -> {shape, node}

  function drawn(key, shape, draw, patch = () => {}) {
    const held = shown.get(key);
    if (held?.shape === shape) {
      patch(held.node);
      return held.node;
    }
    const node = draw();
    shown.set(key, { shape, node });
    return node;
  }

  /** A line: its counts (quantity, total) and whether it is the last added set in place. */
  function lineRow(lang, line) {
    const { quantity, total, gross, ...shape } = line; // (gross: quantity × price, not shown)
    return [`line ${line.id}`, JSON.stringify([lang, shape]), () => basketRow(line), (node) => {
      setText(node.querySelector('.qty-value'), isWeighed(line) ? formatGrams(quantity) : String(quantity));
      setText(node.querySelector('.line-total'), formatMoney(total));
      node.classList.toggle('last', line.id === session.lastAddedLineId);
    }];
  }

  function render() {
    const lang = getLang();
    const wanted = session.lines.map((line) => lineRow(lang, line));
    // While offline, show what was scanned so the cashier knows it was not lost.
    if (!session.ready) {
      wanted.push(...session.pendingLines().map((preview, i) => [
        `pending ${i}`, JSON.stringify([lang, preview]), () => pendingRow(preview)]));
    }
    if (!wanted.length) {
      wanted.push(['empty', lang, () => el('p', { class: 'basket-empty' }, t('sell.empty'))]);
      // An empty till can resume a basket left open on another one (a till that died, a queue moved).
      if (ui.client.online && session.ready && !session.queue.length) {
        wanted.push(['parked', lang, () => el('div', { class: 'parked-entry' },
          el('button', { type: 'button', id: 'parked-open', class: 'ghost' }, t('parked.open')))]);
      }
    }
    const keys = new Set(wanted.map(([key]) => key));
    for (const key of shown.keys()) if (!keys.has(key)) shown.delete(key);
    const list = $('#basket');
    place(list, wanted.map(([key, shape, draw, patch]) => drawn(key, shape, draw, patch)));
    // Only right after an add, not when the cashier scrolled up to fix a line.
    if (scrolledForAdds !== session.addsApplied) {
      scrolledForAdds = session.addsApplied;
      list.querySelector('.basket-line.last')?.scrollIntoView({ block: 'nearest' });
    }
    renderTotals();
    list.dispatchEvent(new Event('drawn')); // for the panels that decorate the lines
  }

  /** Taps on the lines: +, −, ×, and the parked baskets' entry. */
  function wire() {
    $('#basket').addEventListener('click', (event) => {
      if (event.target.closest('#parked-open')) return ui.screens.parked.open();
      const button = event.target.closest('[data-action]');
      const line = event.target.closest('.basket-line');
      if (!button || !line) return;
      const lineId = line.dataset.lineId;
      if (button.dataset.action === 'increase') session.changeQuantity(lineId, +1);
      else if (button.dataset.action === 'decrease') session.changeQuantity(lineId, -1);
      else if (button.dataset.action === 'remove') session.removeLine(lineId);
    });
  }

  return { render, wire };
}
