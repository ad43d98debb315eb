// Parked baskets, on the sell screen. "Mettre en attente" sets the basket
// aside on the node under a name (the cashier's by default: basket/park) and
// the till serves the next customer; the panel (when the basket is empty)
// lists the store's parked baskets, on every till, to resume one here
// (basket/resume), and the baskets left open on other tills (a till that
// died: basket/take_over). Logging out with an open basket parks it on the
// node: the notice says so (session "parked" event).
//
// Its button goes in the sell screen's actions row; its dialog is made here.
import { t, getLang, formatMoney } from './i18n.js';
import { $, el, setText } from './dom.js';
import { sellActionsRow } from './screen-discount.js';

const NAME_MAX = 40; // as basket/park keeps it

/** "à l'instant", "il y a 12 min", "il y a 2 h 05" for a parked basket. */
function ageOf(iso, now = Date.now()) {
  const since = now - new Date(iso).getTime();
  if (!Number.isFinite(since)) return '';
  const minutes = Math.max(0, Math.floor(since / 60000));
  if (minutes < 1) return t('parked.justNow');
  if (minutes < 60) return t('parked.minutesAgo', { minutes });
  return t('parked.hoursAgo', { hours: Math.floor(minutes / 60), minutes: String(minutes % 60).padStart(2, '0') });
}

export function parkedPanel(ui) {
  const { session } = ui;
  const parked = { open: false, loading: false, parked: [], others: [] };
  let dialog = null;

  async function open() {
    if (!ui.client.online || session.hasLines) return;
    Object.assign(parked, { open: true, loading: true, parked: [], others: [] });
    render();
    try {
      const found = await session.parkedBaskets();
      parked.parked = found.parked;
      parked.others = found.open;
    } catch (error) {
      close();
      ui.showError(error);
      return;
    } finally {
      parked.loading = false;
    }
    render();
  }

  function close() {
    parked.open = false;
    render();
  }

  function takeOver(basketId) {
    close();
    session.takeOver(basketId);
  }

  async function resume(basketId) {
    close();
    const outcome = await session.resume(basketId);
    if (outcome.ok) ui.hideError();
  }

  // --- parking the basket under a name ---

  function canPark() {
    return session.hasLines && !session.paying && session.ready && ui.client.online && !session.hasPendingAdds();
  }

  function askName() {
    if (!canPark()) {
      if (session.hasLines && !ui.client.online) ui.showError({ code: 'offline' });
      return;
    }
    buildDialog();
    $('#park-name').value = '';
    $('#park-name').placeholder = session.cashier?.name ?? '';
    dialog.showModal();
    $('#park-name').focus();
  }

  async function park() {
    const name = $('#park-name').value;
    dialog.close();
    const outcome = await session.park(name);
    if (outcome.ok) ui.hideError();
  }

  function buildDialog() {
    if (dialog) return;
    dialog = el('dialog', { id: 'park-dialog', class: 'card narrow' },
      el('form', { id: 'park-form', autocomplete: 'off' },
        el('h1', { dataset: { i18n: 'parked.parkTitle' } }, t('parked.parkTitle')),
        el('label', {}, el('span', { dataset: { i18n: 'parked.name' } }, t('parked.name')),
          el('input', { id: 'park-name', maxlength: String(NAME_MAX), autocomplete: 'off', spellcheck: 'false' })),
        el('p', { class: 'help', dataset: { i18n: 'parked.nameHelp' } }, t('parked.nameHelp')),
        el('div', { class: 'dialog-buttons' },
          el('button', { id: 'park-cancel', type: 'button', class: 'ghost big', dataset: { i18n: 'parked.cancel' } }, t('parked.cancel')),
          el('button', { id: 'park-confirm', type: 'submit', class: 'primary big', dataset: { i18n: 'parked.confirm' } }, t('parked.confirm')))));
    document.body.append(dialog);
    // The sell screen's shortcuts and the scanner's refocus stay out of the dialog.
    dialog.addEventListener('keydown', (event) => event.stopPropagation());
    dialog.addEventListener('close', () => ui.screens.sell.refocusScan());
    $('#park-cancel').addEventListener('click', () => dialog.close());
    $('#park-form').addEventListener('submit', (event) => {
      event.preventDefault();
      park();
    });
  }

  /** The basket went aside (parked here, or by the node at logout): tell the cashier under which name. */
  function onParked({ basket, atLogout, cashier }) {
    const name = basket?.name ?? cashier ?? '';
    ui.printing.showNotice(t(atLogout ? 'parked.atLogout' : 'parked.done', { name }));
  }

  // --- rendering ---

  function cashierName(id) {
    return session.auth?.cashiers?.find((cashier) => cashier.id === id)?.name ?? id;
  }

  function time(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString(getLang(), { hour: '2-digit', minute: '2-digit' });
  }

  function parkedRow(basket) {
    return el('button', { type: 'button', class: 'parked-basket named', dataset: { basketId: basket.id, action: 'resume' } },
      el('span', { class: 'result-name' },
        el('strong', {}, basket.name),
        el('small', {}, `${t('sell.items', { count: basket.items })} · ${ageOf(basket.parked_at)} · `
          + t('parked.by', { till: basket.till, cashier: cashierName(basket.cashier) }))),
      el('span', { class: 'money' }, formatMoney(basket.total)));
  }

  function openRow(basket) {
    return el('button', { type: 'button', class: 'parked-basket', dataset: { basketId: basket.id, action: 'take-over' } },
      el('span', { class: 'result-name' },
        el('strong', {}, t('parked.from', { till: basket.till, cashier: cashierName(basket.cashier) })),
        el('small', {}, `${t('sell.items', { count: basket.items })} · ${time(basket.opened_at)}`)),
      el('span', { class: 'money' }, formatMoney(basket.total)));
  }

  function renderButton() {
    const button = $('#park-basket');
    if (!button) return;
    button.disabled = !canPark();
    setText(button, t('parked.park'));
  }

  function render() {
    renderButton();
    const panel = $('#parked');
    panel.hidden = !parked.open || ui.screen !== 'sell' || session.hasLines;
    if (panel.hidden) return;
    let rows;
    if (parked.loading) rows = [el('p', { class: 'no-results' }, t('parked.loading'))];
    else if (!parked.parked.length && !parked.others.length) rows = [el('p', { class: 'no-results' }, t('parked.none'))];
    else {
      rows = [...parked.parked.map(parkedRow)];
      if (parked.others.length) {
        rows.push(el('p', { class: 'parked-group' }, t('parked.otherTills')), ...parked.others.map(openRow));
      }
    }
    $('#parked-list').replaceChildren(...rows);
  }

  function wire() {
    $('#parked-list').addEventListener('click', (event) => {
      const row = event.target.closest('[data-basket-id]');
      if (!row) return;
      if (row.dataset.action === 'resume') resume(row.dataset.basketId);
      else takeOver(row.dataset.basketId);
    });
    $('#parked-close').addEventListener('click', close);
    sellActionsRow()?.append(el('button', { id: 'park-basket', type: 'button', class: 'ghost', disabled: true }, t('parked.park')));
    $('#park-basket')?.addEventListener('click', askName);
    session.addEventListener('change', renderButton);
    session.addEventListener('parked', (event) => onParked(event.detail));
  }

  // A panel of the sell screen, not a screen of its own: no section, keys or focus.
  return { name: 'parked', wire, render, open, close, park: askName };
}
