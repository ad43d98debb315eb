// Today's sales (and refunds), newest first, a page at a time (sales/today):
// receipt number, time, total, how it was paid, whether its receipt printed
// and how many copies since. Any of them prints from here (printer/reprint):
// the original for a sale whose customer wanted no receipt, else a
// "DUPLICATA n° k". This till's sales by default, the whole store's at a tap.
// Read from the node: offline, the list waits for it.
//
// Its section is made here (appended to <main>); its button goes in the sell
// screen's actions row.
import { t, getLang, formatMoney } from './i18n.js';
import { $, el } from './dom.js';
import { sellActionsRow } from './screen-discount.js';

const PAGE = 20;

export function salesScreen(ui) {
  const { session } = ui;
  const state = { sales: [], next: null, loading: false, allTills: false, busy: new Set(), sequence: 0 };

  async function open() {
    if (!session.cashier) return;
    if (!session.ready || !ui.client.online) {
      ui.showError({ code: 'offline' });
      return;
    }
    ui.screens.parked?.close();
    ui.show('sales');
    await reload();
  }

  async function reload() {
    Object.assign(state, { sales: [], next: null });
    await loadPage(null);
  }

  async function loadPage(before) {
    const sequence = ++state.sequence;
    state.loading = true;
    render();
    const args = { limit: PAGE };
    if (!state.allTills && session.auth?.till?.code) args.till = session.auth.till.code;
    if (before) args.before = before;
    try {
      const page = await ui.client.call('sales/today', args);
      if (sequence !== state.sequence) return; // the filter changed meanwhile
      state.sales.push(...page.sales);
      state.next = page.next;
    } catch (error) {
      ui.showError(error);
    } finally {
      if (sequence === state.sequence) state.loading = false;
      render();
    }
  }

  async function print(saleId) {
    if (state.busy.has(saleId)) return;
    if (!session.ready) {
      ui.showError({ code: 'offline' });
      return;
    }
    state.busy.add(saleId);
    render();
    try {
      const result = await ui.client.call('printer/reprint', { sale_id: saleId });
      const sale = state.sales.find((row) => row.id === saleId);
      if (sale) {
        if (result.copy === 'original') sale.receipt = 'printed';
        else sale.copies = Math.max(sale.copies + 1, result.copy_number ?? 0);
      }
      const key = result.copy === 'original' ? 'sales.originalSent' : 'sales.duplicateSent';
      ui.printing.showNotice(t(key, { printer: result.printer ?? '', copy: result.copy_number ?? '' }));
    } catch (error) {
      ui.showError(error);
    } finally {
      state.busy.delete(saleId);
      render();
    }
  }

  function back() {
    ui.show('sell');
  }

  // --- rendering ---

  function time(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? '' : date.toLocaleTimeString(getLang(), { hour: '2-digit', minute: '2-digit' });
  }

  function receiptState(sale) {
    if (sale.receipt !== 'printed') return t('sales.notPrinted');
    return sale.copies ? t('sales.printedCopies', { count: sale.copies }) : t('sales.printed');
  }

  function row(sale) {
    const refund = sale.kind === 'refund';
    const original = sale.receipt !== 'printed';
    return el('li', { class: refund ? 'sales-row refund' : 'sales-row', dataset: { saleId: sale.id, receipt: sale.receipt } },
      el('span', { class: 'sales-number' }, el('strong', {}, sale.receipt_number),
        el('small', {}, [time(sale.time), refund ? t('sales.refund') : null, state.allTills ? sale.till : null].filter(Boolean).join(' · '))),
      el('span', { class: 'sales-methods' }, sale.methods.map((method) => t(`sales.method.${method}`)).join(' + ')),
      el('span', { class: 'sales-receipt', dataset: { copies: String(sale.copies) } }, receiptState(sale)),
      el('span', { class: 'money sales-total' }, formatMoney(sale.total)),
      el('button', { type: 'button', class: original ? 'sales-print primary' : 'sales-print', dataset: { print: sale.id }, disabled: state.busy.has(sale.id) },
        original ? t('sales.print') : t('sales.duplicate')));
  }

  function render() {
    const button = $('#sales-open');
    if (button) button.textContent = t('sales.open');
    if (ui.screen !== 'sales') return;
    $('#sales-title').textContent = t('sales.title');
    $('#sales-back-label').textContent = t('sales.back');
    const scope = $('#sales-scope');
    scope.setAttribute('aria-pressed', String(state.allTills));
    scope.textContent = state.allTills ? t('sales.allTills') : t('sales.thisTill');
    const rows = state.sales.map(row);
    if (!rows.length) rows.push(el('li', { class: 'no-results' }, state.loading ? t('parked.loading') : t('sales.none')));
    $('#sales-list').replaceChildren(...rows);
    const more = $('#sales-more');
    more.hidden = !state.next;
    more.disabled = state.loading;
    more.textContent = t('sales.more');
  }

  function onKey(event) {
    if (event.key !== 'Escape') return;
    event.preventDefault();
    back();
  }

  function wire() {
    const section = el('section', { id: 'screen-sales', class: 'screen', hidden: true },
      el('div', { class: 'sales-layout' },
        el('div', { class: 'sales-head' },
          el('h1', { id: 'sales-title' }),
          el('button', { id: 'sales-scope', type: 'button', class: 'ghost', 'aria-pressed': 'false' }),
          el('button', { id: 'sales-back', type: 'button', class: 'ghost' },
            el('span', { id: 'sales-back-label' }), el('kbd', { class: 'hint' }, 'Esc'))),
        el('ul', { id: 'sales-list', class: 'sales-list' }),
        el('button', { id: 'sales-more', type: 'button', class: 'ghost big', hidden: true })));
    $('main').append(section);
    $('#sales-back').addEventListener('click', back);
    $('#sales-scope').addEventListener('click', () => {
      state.allTills = !state.allTills;
      reload();
    });
    $('#sales-more').addEventListener('click', () => state.next && loadPage(state.next));
    $('#sales-list').addEventListener('click', (event) => {
      const button = event.target.closest('[data-print]');
      if (button) print(button.dataset.print);
    });
    sellActionsRow()?.append(el('button', { id: 'sales-open', type: 'button', class: 'ghost' }, t('sales.open')));
    $('#sales-open')?.addEventListener('click', open);
  }

  return {
    name: 'sales', wire, render, onKey, open,
    focus: () => $('#sales-back').focus(),
  };
}
