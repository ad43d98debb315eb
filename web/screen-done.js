// The done screen: the receipt number, how it was paid and the change due,
// readable from across the counter, until the next customer (Enter, or their
// first scan). Change is shown only when cash was handed over (never "change
// due 0,00 €" for a card sale); paper meal vouchers' excess, which is not
// given back, is said. The receipt line (printed, or not and "print it"
// now, F7) is printing.js's.
import { t, formatMoney } from './i18n.js';
import { $, el } from './dom.js';
import { modeOf, cardText } from './screen-pay-tenders.js';

const PRINT_KEY = 'F7';

export function doneScreen(ui) {
  const { session } = ui;

  function newSale() {
    if (ui.screen !== 'done') return;
    session.newSale();
    ui.show('sell');
    ui.screens.login.askForPinIfWanted?.();
  }

  function render() {
    const sale = session.lastSale;
    if (!sale) return;
    $('#receipt-number').textContent = sale.receipt_number;
    $('#done-total').textContent = formatMoney(sale.totals.total);
    const tenders = sale.tenders ?? [];
    const cash = tenders.some((tender) => tender.method === 'cash');
    $('#change-due').textContent = formatMoney(sale.change ?? 0);
    document.querySelector('.done-change').hidden = !cash;
    // Anything but a plain cash sale: how it was paid, tender by tender (a card: its masked number
    // and authorisation, as the receipt prints them).
    const plainCash = tenders.length === 1 && cash;
    const list = $('#done-tenders');
    list.hidden = plainCash || !tenders.length;
    list.replaceChildren(...(plainCash ? [] : tenders.map((tender) => el('li', { class: 'done-tender' },
      el('span', {}, t(`pay.mode.${modeOf(tender).key}`),
        cardText(tender) ? el('small', { class: 'card-detail' }, ` ${cardText(tender)}`) : null,
        tender.reference ? el('small', {}, ` ${tender.reference}`) : null),
      el('span', { class: 'money' }, formatMoney(tender.amount))))));
    const excess = sale.voucher_excess ?? 0;
    $('#done-voucher-excess').hidden = !excess;
    $('#done-voucher-excess').textContent = excess ? t('done.voucherExcess', { amount: formatMoney(excess) }) : '';
    $('#done-offline').hidden = !sale.offline;
  }

  function onKey(event) {
    if (event.key === 'Enter') {
      event.preventDefault(); // not also a click on the focused button
      newSale();
    } else if (event.key === PRINT_KEY) {
      event.preventDefault();
      if (!$('#done-print').hidden && !$('#reprint').hidden) $('#reprint').click();
    } else if (/^\d$/.test(event.key)) {
      // The next customer's first scan: start the new sale, the digit lands in #scan.
      newSale();
    }
  }

  function wire() {
    // How it was paid, and vouchers' excess: under the total (index.html has neither).
    $('.done-total').after(
      el('ul', { id: 'done-tenders', class: 'done-tenders', hidden: true }),
      el('p', { id: 'done-voucher-excess', class: 'done-voucher-excess', role: 'status', hidden: true }));
    $('#new-sale').addEventListener('click', newSale);
  }

  return { name: 'done', wire, render, onKey, focus: () => $('#new-sale').focus() };
}
