// The refund screen: find a receipt by typing its number or scanning its QR
// code, pick lines and quantities up to what is left to refund, a reason, and
// confirm; the money goes back to the sale's tenders by default (cash for the
// rest), or all in cash: a manager approves (approval.js), and never for what
// meal vouchers paid, which goes back as meal vouchers. Without a receipt:
// products from the catalogue, and a manager approves. The rules and the node's commands are
// refunds.js's (RefundDesk); offline the refund goes to the ledger's outbox.
//
// What goes back to a card goes through the till's payment terminal when it
// has one (a refund, Caisse-AP's CD 1: screen-pay-card.js's dialog), before
// sale/refund records it with the payment's id; without a terminal (or it is
// unreachable) the cashier refunds on the terminal by hand, as before.
//
// Its section is made here (appended to <main>), so index.html stays as it is.
import { t, formatMoney, formatRate } from './i18n.js';
import { $, el } from './dom.js';
import { outcomeOf } from './approval.js';
import { tendersForSale } from './screen-pay-tenders.js';
import { sellActionsRow } from './screen-discount.js';
import {
  RefundDesk, defaultTenders, isWeighed, linesToRefund, productLinesToRefund, refundTotals,
} from './refunds.js';

const SEARCH_DEBOUNCE_MS = 150;
const MAX_PIECES = 9999;

export function refundScreen(ui) {
  const { session } = ui;
  const desk = new RefundDesk(session);
  const fresh = () => ({
    mode: 'find', // 'find' | 'receipt' | 'products' | 'done'
    found: null, // sale/find_for_refund's answer
    asked: {}, // receipt: line id -> quantity to refund
    products: [], // without receipt: [{product, quantity}]
    results: [], // product search results
    query: '', // the search the results answer: shown only while the field still says it
    allCash: false,
    refundId: null, // kept for every try of one refund (approval, resend)
    ask: null,
    busy: false,
    result: null,
    message: null,
  });
  let state = fresh();
  let searchTimer = null;
  let searchSequence = 0;

  // --- what the cashier does ---

  function open() {
    if (!session.cashier) return;
    state = fresh();
    ui.hideError();
    ui.show('refund');
  }

  function back() {
    if (state.busy) return;
    state = fresh();
    ui.show('sell');
  }

  async function find() {
    const text = $('#refund-query').value.trim();
    if (!text || state.busy) return;
    state.busy = true;
    state.message = null;
    render();
    try {
      const found = await desk.find(text);
      Object.assign(state, { mode: 'receipt', found, asked: {}, refundId: desk.newRefundId(), ask: null, allCash: false });
      $('#refund-reason').value = '';
      ui.hideError();
    } catch (error) {
      ui.showError(error);
      $('#refund-query').select();
    } finally {
      state.busy = false;
    }
    render();
  }

  function withoutReceipt() {
    dropSearch();
    Object.assign(state, { mode: 'products', found: null, products: [], results: [], refundId: desk.newRefundId(), ask: null, allCash: false });
    $('#refund-reason').value = '';
    $('#refund-search').value = '';
    render();
    $('#refund-search').focus();
  }

  /** One step more or less of a sold line, never beyond what is left of it. */
  function step(lineId, delta) {
    const line = state.found?.sale.lines.find((candidate) => candidate.id === lineId);
    if (!line) return;
    const now = state.asked[lineId] ?? 0;
    // A weighed line goes back whole or not at all.
    let next = isWeighed(line) ? (delta > 0 ? line.refundable : 0) : now + delta;
    if (next > line.refundable) {
      next = line.refundable;
      state.message = t('refund.noMore', { name: line.name, count: line.refundable });
    } else {
      state.message = null;
    }
    state.asked[lineId] = Math.max(0, next);
    render();
  }

  function stepProduct(productId, delta) {
    const item = state.products.find((candidate) => candidate.product.id === productId);
    if (!item) return;
    item.quantity = Math.min(item.quantity + delta, MAX_PIECES);
    if (item.quantity < 1) state.products = state.products.filter((candidate) => candidate !== item);
    render();
  }

  function addProduct(product) {
    const item = state.products.find((candidate) => candidate.product.id === product.id);
    if (item) item.quantity = Math.min(item.quantity + 1, MAX_PIECES);
    else state.products.push({ product, quantity: 1 });
    $('#refund-search').value = '';
    dropSearch();
    render();
  }

  /** No results, and none to come from a search typed before (its timer, its answer). */
  function dropSearch() {
    clearTimeout(searchTimer);
    searchSequence++;
    state.results = [];
    state.query = '';
  }

  function onSearchInput() {
    const query = $('#refund-search').value.trim();
    dropSearch();
    // The results of what the field said before go at once: a tap on them now would
    // refund another product than the one typed (as the sell screen's search).
    render();
    if (!query) return;
    searchTimer = setTimeout(async () => {
      const sequence = ++searchSequence;
      try {
        const results = await session.searchProducts(query);
        if (sequence !== searchSequence) return;
        state.results = results.filter((product) => product.unit !== 'kg' && !product.open_price);
        state.query = query;
      } catch (error) {
        ui.showError(error);
      }
      render();
    }, SEARCH_DEBOUNCE_MS);
  }

  /** The refund's lines as the form says: with the amount each gives back. */
  function refundLines() {
    if (state.mode === 'receipt') return linesToRefund(state.found.sale, state.asked);
    if (state.mode === 'products') return productLinesToRefund(state.products);
    return [];
  }

  function defaultsFor(total) {
    return defaultTenders(total, state.found?.sale.tenders ?? [], state.found?.earlierTenders ?? []);
  }

  /** Meal vouchers paid part of what goes back: that part is never given in cash. */
  function vouchersGoBack(total) {
    return defaultsFor(total).some((tender) => tender.method === 'meal_voucher');
  }

  function tendersFor(total) {
    if ((state.allCash && !vouchersGoBack(total)) || state.mode === 'products') return [{ method: 'cash', amount: total }];
    return defaultsFor(total);
  }

  async function confirm() {
    if (state.busy) return;
    const lines = refundLines();
    const reason = $('#refund-reason').value.trim();
    if (!lines.length) return say(t('refund.nothing'));
    if (!reason) {
      say(t('refund.reasonNeeded'));
      return $('#refund-reason').focus();
    }
    // The same ask for every try (approval, renumbering): one refund id, one receipt number.
    if (state.allCash && vouchersGoBack(refundTotals(lines).total)) state.allCash = false;
    // Once the terminal gave money back to the card, this refund is that one: no second card refund.
    const sameAsk = state.ask && (state.ask.cardPaid || (JSON.stringify(state.ask.lines) === JSON.stringify(lines)
      && state.ask.reason === reason && state.ask.allCash === state.allCash));
    if (!sameAsk) {
      state.ask = {
        refundId: state.refundId, reason, lines, allCash: state.allCash,
        sale: state.found?.sale ?? null, earlierTenders: state.found?.earlierTenders,
        // Explicit only when the cashier chose (a manager approves it): otherwise the node
        // gives back as the sale was paid.
        tenders: state.allCash && refundTotals(lines).total < 0
          ? [{ method: 'cash', amount: refundTotals(lines).total }] : null,
      };
    }
    const ask = state.ask;
    state.busy = true;
    state.message = null;
    render();
    const why = state.mode === 'products' ? t('approval.whyRefund') : t('approval.whyRefundReceipt');
    let outcome;
    try {
      // The terminal refused the card, or the cashier chose otherwise: nothing recorded, the screen stays.
      outcome = !(await cardBack(ask)) ? { ok: false, cancelled: true } : await ui.approval.run((approval) => {
        ask.approval = approval ?? undefined;
        return outcomeOf(desk.refund(ask));
      }, why);
    } finally {
      state.busy = false;
    }
    if (outcome.ok) {
      ui.cards?.forgetFor({ refundId: state.refundId }); // the refund holds its card payment now
      Object.assign(state, { mode: 'done', result: outcome.result, ask: null, refundId: null });
      ui.hideError();
    } else if (!outcome.cancelled) {
      ui.showError(outcome.error);
      if (outcome.error?.code === 'refund_exceeds_sale') await refreshFound();
    }
    render();
  }

  /**
   * The card part of the refund, given back on the terminal once (the dialog shows it):
   * the ask's tenders then carry the payment (what the terminal did not give back goes
   * in cash). False: nothing to record now (declined, or the cashier chose another way).
   * No terminal, or unreachable: the cashier refunds on the terminal by hand, as before.
   */
  async function cardBack(ask) {
    if (ask.cardDone || !ui.cards || ui.cards.terminal === false || !ui.client.online) return true;
    const tenders = ask.tenders ?? tendersFor(refundTotals(ask.lines).total);
    const card = tenders.filter((tender) => tender.method === 'card' && !tender.payment_id);
    const amount = -card.reduce((sum, tender) => sum + tender.amount, 0);
    if (amount <= 0) {
      ask.cardDone = true;
      return true;
    }
    const outcome = await ui.cardDialog.pay({ refundId: ask.refundId, saleId: ask.sale?.id ?? null, amount, refund: true });
    if (outcome.kind === 'declined' || outcome.kind === 'other') return false;
    ask.cardDone = true;
    if (outcome.kind !== 'approved') return true; // no terminal, or unreachable: by hand
    ui.cards.take(outcome.record.payment_id);
    ask.cardPaid = true;
    const rest = amount + outcome.tender.amount; // what the terminal did not give back (its amount is negative)
    const others = tenders.filter((tender) => !card.includes(tender));
    const cash = others.find((tender) => tender.method === 'cash');
    if (rest > 0 && cash) cash.amount -= rest;
    else if (rest > 0) others.push({ method: 'cash', amount: -rest });
    ask.tenders = tendersForSale([...others, outcome.tender]);
    return true;
  }

  /** After a refusal for what another till refunded meanwhile: what is left now. */
  async function refreshFound() {
    try {
      state.found = await desk.find(state.found.sale.receipt_number);
      state.asked = {};
    } catch {
      // The banner already says why: the cashier can search again.
    }
  }

  function say(message) {
    state.message = message;
    render();
  }

  // --- rendering ---

  function quantityText(line, quantity) {
    return isWeighed(line) ? `${quantity} g` : String(quantity);
  }

  /** A sold line's row; `amounts`: what each line asked gives back (the refund as a whole decides). */
  function saleLineRow(line, amounts) {
    const asked = state.asked[line.id] ?? 0;
    const amount = asked ? (amounts.get(line.id) ?? 0) : 0;
    return el('div', { class: 'refund-line', dataset: { lineId: line.id } },
      el('div', { class: 'line-name' },
        el('strong', {}, line.name),
        el('small', {}, t('refund.lineInfo', {
          sold: quantityText(line, line.quantity), refunded: quantityText(line, line.refunded ?? 0),
          total: formatMoney(line.total),
        }))),
      el('div', { class: 'line-quantity' },
        el('button', { type: 'button', class: 'qty', dataset: { step: '-1' }, title: t('sell.decrease'), disabled: !asked }, '−'),
        el('span', { class: 'qty-value refund-qty' }, quantityText(line, asked)),
        // Not disabled at the most: a tap past it says how many are left.
        el('button', { type: 'button', class: 'qty', dataset: { step: '1' }, title: t('sell.increase'),
          disabled: line.refundable === 0 }, '+')),
      el('div', { class: 'line-total money' }, amount ? `−${formatMoney(amount)}` : ''));
  }

  function productRow({ product, quantity }) {
    return el('div', { class: 'refund-line', dataset: { productId: product.id } },
      el('div', { class: 'line-name' }, el('strong', {}, product.name),
        el('small', {}, t('sell.each', { price: formatMoney(product.price) }))),
      el('div', { class: 'line-quantity' },
        el('button', { type: 'button', class: 'qty', dataset: { step: '-1' } }, '−'),
        el('span', { class: 'qty-value refund-qty' }, String(quantity)),
        el('button', { type: 'button', class: 'qty', dataset: { step: '1' } }, '+')),
      el('div', { class: 'line-total money' }, `−${formatMoney(product.price * quantity)}`));
  }

  function tenderText(tender) {
    const method = t(`refund.method.${tender.method}`);
    return `${method} ${formatMoney(Math.abs(tender.amount))}`;
  }

  function render() {
    if (!$('#screen-refund')) return;
    $('#refund-title').textContent = t('refund.title');
    $('#refund-back-label').textContent = t('refund.back');
    $('#refund-query').placeholder = t('refund.queryPlaceholder');
    $('#refund-find-submit').textContent = t('refund.find');
    $('#refund-no-receipt').textContent = t('refund.noReceipt');
    $('#refund-search').placeholder = t('refund.searchPlaceholder');
    $('#refund-reason-label').textContent = t('refund.reason');
    $('#refund-reason').placeholder = t('refund.reasonPlaceholder');
    $('#refund-all-cash-label').textContent = t('refund.allCash');
    $('#refund-finish').textContent = t('refund.finish');
    const button = $('#refund-open');
    if (button) {
      button.textContent = t('refund.open');
      button.disabled = !session.cashier;
    }
    const { mode } = state;
    $('#refund-find').hidden = mode === 'done';
    $('#refund-find-submit').disabled = state.busy;
    $('#refund-body').hidden = mode !== 'receipt' && mode !== 'products';
    $('#refund-done').hidden = mode !== 'done';
    $('#refund-message').hidden = !state.message;
    $('#refund-message').textContent = state.message ?? '';
    if (mode === 'receipt' || mode === 'products') renderBody();
    if (mode === 'done') renderDone();
  }

  function renderBody() {
    const receipt = state.mode === 'receipt';
    const sale = state.found?.sale;
    $('#refund-sale-info').textContent = receipt
      ? t('refund.saleInfo', { receipt: sale.receipt_number, total: formatMoney(sale.totals.total) })
        + (state.found.refunds?.length ? ` · ${t('refund.earlier', { count: state.found.refunds.length })}` : '')
      : t('refund.withoutReceiptInfo');
    $('#refund-product-search').hidden = receipt;
    const results = !receipt && state.query === $('#refund-search').value.trim() ? state.results : [];
    $('#refund-search-results').replaceChildren(...results.map((product, index) =>
      el('button', { type: 'button', class: 'search-result', dataset: { index: String(index) } },
        el('span', { class: 'result-name' }, el('strong', {}, product.name)),
        el('span', { class: 'money' }, formatMoney(product.price)))));
    $('#refund-search-results').hidden = !results.length;
    const lines = refundLines();
    const amounts = new Map(lines.map((line) => [line.line_id, line.amount]));
    $('#refund-lines').replaceChildren(...(receipt
      ? sale.lines.map((line) => saleLineRow(line, amounts)) : state.products.map(productRow)));
    const reasons = t('refund.reasons');
    const typed = $('#refund-reason').value.trim();
    $('#refund-reasons').replaceChildren(...(Array.isArray(reasons) ? reasons : []).map((reason) =>
      el('button', { type: 'button', class: 'reason-chip', dataset: { reason }, 'aria-pressed': String(typed === reason) }, reason)));
    const totals = refundTotals(lines);
    $('#refund-total').textContent = formatMoney(totals.total);
    $('#refund-vat').textContent = totals.vat.map((row) => `${formatRate(row.rate)} ${formatMoney(row.total)}`).join(' · ');
    const vouchers = receipt && lines.length > 0 && vouchersGoBack(totals.total);
    $('#refund-all-cash').checked = (state.allCash && !vouchers) || !receipt;
    $('#refund-all-cash').disabled = !receipt || vouchers;
    $('#refund-tenders').textContent = lines.length
      ? t('refund.givenBack', { tenders: tendersFor(totals.total).map(tenderText).join(' + ') })
      : '';
    $('#refund-confirm').disabled = state.busy || !lines.length;
    $('#refund-confirm-label').textContent = state.busy ? t('refund.saving') : t('refund.confirm');
  }

  function renderDone() {
    const refund = state.result;
    $('#refund-number').textContent = refund.receipt_number;
    $('#refund-done-total').textContent = formatMoney(refund.totals.total);
    $('#refund-done-tenders').replaceChildren(...refund.tenders.map((tender) =>
      el('div', { class: tender.method === 'cash' ? 'refund-tender cash' : 'refund-tender', dataset: { method: tender.method } },
        el('span', {}, t(`refund.method.${tender.method}`)), el('strong', { class: 'money' }, formatMoney(Math.abs(tender.amount))))));
    $('#refund-done-offline').hidden = !refund.offline;
    $('#refund-done-offline').textContent = t('refund.offline');
  }

  // --- the section, keys and taps ---

  function build() {
    const section = el('section', { id: 'screen-refund', class: 'screen', hidden: true },
      el('div', { class: 'card refund-layout' },
        el('div', { class: 'refund-head' },
          el('h1', { id: 'refund-title' }),
          el('button', { id: 'refund-back', type: 'button', class: 'ghost' },
            el('span', { id: 'refund-back-label' }), el('kbd', { class: 'hint' }, 'Esc'))),
        el('form', { id: 'refund-find', class: 'refund-find', autocomplete: 'off' },
          el('input', { id: 'refund-query', autocomplete: 'off', spellcheck: 'false' }),
          el('button', { id: 'refund-find-submit', type: 'submit', class: 'primary' }),
          el('button', { id: 'refund-no-receipt', type: 'button', class: 'ghost' })),
        el('p', { id: 'refund-message', class: 'dialog-error', role: 'alert', hidden: true }),
        el('div', { id: 'refund-body', class: 'refund-body', hidden: true },
          el('p', { id: 'refund-sale-info', class: 'help' }),
          el('div', { id: 'refund-product-search', class: 'refund-product-search' },
            el('input', { id: 'refund-search', type: 'text', autocomplete: 'off', spellcheck: 'false' }),
            el('div', { id: 'refund-search-results', class: 'search-results', hidden: true })),
          el('div', { id: 'refund-lines', class: 'refund-lines' }),
          el('div', { class: 'refund-reason' },
            el('span', { id: 'refund-reason-label', class: 'approval-label' }),
            el('div', { id: 'refund-reasons', class: 'reason-chips' }),
            el('input', { id: 'refund-reason', maxlength: '200', autocomplete: 'off' })),
          el('div', { class: 'refund-foot' },
            el('div', { class: 'refund-sum' },
              el('label', { class: 'refund-cash-choice' },
                el('input', { id: 'refund-all-cash', type: 'checkbox' }), el('span', { id: 'refund-all-cash-label' })),
              el('p', { id: 'refund-tenders', class: 'help' }),
              el('small', { id: 'refund-vat', class: 'help' })),
            el('strong', { id: 'refund-total', class: 'money refund-total' }),
            el('button', { id: 'refund-confirm', type: 'button', class: 'primary big' },
              el('span', { id: 'refund-confirm-label' })))),
        el('div', { id: 'refund-done', class: 'refund-done', hidden: true },
          el('h2', {}, el('span', { dataset: { i18n: 'refund.doneTitle' } }, t('refund.doneTitle')), ' ',
            el('strong', { id: 'refund-number' })),
          el('div', { class: 'done-total' }, el('span', { dataset: { i18n: 'refund.total' } }, t('refund.total')),
            el('strong', { id: 'refund-done-total', class: 'money' })),
          el('div', { id: 'refund-done-tenders', class: 'refund-done-tenders' }),
          el('p', { id: 'refund-done-offline', class: 'done-offline', role: 'status', hidden: true }),
          el('button', { id: 'refund-finish', type: 'button', class: 'primary big' }))));
    $('main').append(section);
  }

  function wire() {
    build();
    $('#refund-find').addEventListener('submit', (event) => {
      event.preventDefault();
      find();
    });
    $('#refund-no-receipt').addEventListener('click', withoutReceipt);
    $('#refund-back').addEventListener('click', back);
    $('#refund-finish').addEventListener('click', back);
    $('#refund-confirm').addEventListener('click', confirm);
    $('#refund-search').addEventListener('input', onSearchInput);
    $('#refund-search-results').addEventListener('click', (event) => {
      const result = event.target.closest('[data-index]');
      if (result) addProduct(state.results[Number(result.dataset.index)]);
    });
    $('#refund-lines').addEventListener('click', (event) => {
      const button = event.target.closest('[data-step]');
      const row = event.target.closest('.refund-line');
      if (!button || !row) return;
      if (row.dataset.lineId) step(row.dataset.lineId, Number(button.dataset.step));
      else stepProduct(row.dataset.productId, Number(button.dataset.step));
    });
    $('#refund-reasons').addEventListener('click', (event) => {
      const chip = event.target.closest('[data-reason]');
      if (!chip) return;
      $('#refund-reason').value = chip.dataset.reason;
      render();
    });
    $('#refund-reason').addEventListener('input', render);
    $('#refund-all-cash').addEventListener('change', (event) => {
      state.allCash = event.target.checked;
      render();
    });
    // From the sell screen: a refund is another customer at the counter.
    sellActionsRow()?.append(el('button', { id: 'refund-open', type: 'button', class: 'ghost' }));
    $('#refund-open')?.addEventListener('click', open);
  }

  function onKey(event) {
    if (event.key !== 'Escape') return;
    event.preventDefault();
    back();
  }

  function focus() {
    if (state.mode === 'find') $('#refund-query').focus();
    else if (state.mode === 'done') $('#refund-finish').focus();
  }

  return {
    name: 'refund',
    wire,
    render,
    onKey,
    focus,
    open,
    onLeave() {
      if (!state.busy) state = fresh();
      if ($('#refund-query')) $('#refund-query').value = '';
    },
  };
}
