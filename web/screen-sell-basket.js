// The sell screen's basket: its lines (pieces, weighed lines in grams priced
// per kilo, price labels), the scans still on their way, and the totals with
// their VAT rows. Drawing only: what a tap on a line does is the session's
// (screen-sell.js wires it). Other panels decorate the lines after each
// drawing (screen-discount.js watches #basket), so a line keeps its shape:
// `.basket-line[data-line-id]` with `.line-name`, `.line-quantity`, `.line-total`.
import { t, getLang, formatMoney, formatRate } from './i18n.js';
import { $, el } from './dom.js';

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
    $('#total').textContent = formatMoney(totals?.total ?? 0);
    $('#item-count').textContent = t('sell.items', { count: totals?.items ?? 0 });
    $('#vat-rows').replaceChildren(
      ...(totals?.vat ?? []).map((row) =>
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

  function render() {
    const list = $('#basket');
    const rows = session.lines.map(basketRow);
    // While offline, show what was scanned so the cashier knows it was not lost.
    if (!session.ready) rows.push(...session.pendingLines().map(pendingRow));
    if (!rows.length) {
      rows.push(el('p', { class: 'basket-empty' }, t('sell.empty')));
      // An empty till can resume a basket left open on another one (a till that died, a queue moved).
      if (ui.client.online && session.ready && !session.queue.length) {
        rows.push(el('div', { class: 'parked-entry' },
          el('button', { type: 'button', id: 'parked-open', class: 'ghost' }, t('parked.open'))));
      }
    }
    list.replaceChildren(...rows);
    // Only right after an add, not when the cashier scrolled up to fix a line.
    if (scrolledForAdds !== session.addsApplied) {
      scrolledForAdds = session.addsApplied;
      list.querySelector('.basket-line.last')?.scrollIntoView({ block: 'nearest' });
    }
    renderTotals();
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
