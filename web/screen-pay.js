// The pay screen: any number of tenders on one sale (cash, card, meal vouchers
// paper or card, cheque, gift voucher), added one by one with what is left
// to pay shown as they go, and the customer's receipt choice (none by
// default: France stopped printing every receipt in 2023; one key or tap
// prints it). The arithmetic is screen-pay-tenders.js's, the rule the node's
// (`settle`), so what this screen accepts the node accepts, online or not.
// Enter with an amount short of what is due adds that tender; Enter with
// enough pays (session.pay); the session then says "sold" (app.js shows the
// done screen) or "error".
//
// A scanner's keystrokes here are a scan, not an amount: they go to the sell
// logic (ui.scan) and the total grows; see looksLikeBarcode.
//
// Its form is made here (index.html's is replaced at wire()), keeping the
// ids tills and tests know: #cash-given, #card-reference, #card-amount,
// #confirm-payment, #pay-change.
//
// A card on a till a payment terminal serves goes to the terminal (the
// amount is never typed twice): screen-pay-card.js's dialog, card-terminal.js's
// logic. The slip reference field is then hidden, and shown again only as the
// fallback (no terminal for this till, the terminal unreachable, or no node
// answering): today's standalone slip entry, recorded as a plain card tender.
// A tender the terminal took cannot be removed here: the card was charged.
import { t, formatMoney, formatAmountForInput } from './i18n.js';
import { $, el } from './dom.js';
import {
  PAY_MODES, payMode, modeOf, parseAmount, looksLikeBarcode, makeTender, paidBy, leftToPay, settlement,
  MAX_REFERENCE, cardText, tendersForSale,
} from './screen-pay-tenders.js';
import { phaseOf, cardTender } from './card-terminal.js';

export { parseAmount } from './screen-pay-tenders.js';

const QUICK_CASH = [500, 1000, 2000, 5000];
const MODE_KEYS = { F8: 'cash', F9: 'card', F10: 'voucher_paper' };
const PRINT_KEY = 'F7';
// A scanner types a whole code within a few dozen milliseconds; a hand does not.
const SCANNER_KEY_GAP_MS = 40;

export function payScreen(ui) {
  const { session } = ui;
  const state = {
    basketId: null, // the basket the tenders below are for
    tenders: [], // added so far (a card already went through the terminal: kept across "back")
    mode: 'cash',
    print: false, // the customer's choice: no receipt unless asked
    slipEntry: false, // the card tender is typed from a standalone terminal's slip (the fallback)
    cardBusy: false, // a payment is on the terminal
  };
  const cards = ui.cards;
  const keys = { buffer: '', times: [] }; // keystrokes outside the fields, and the fields' timing

  // --- what the screen reads ---

  const total = () => session.basket?.totals.total ?? 0;
  const isCash = () => state.mode === 'cash';
  const amountField = () => (isCash() ? $('#cash-given') : $('#card-amount'));
  const busy = () => session.paying || state.cardBusy;

  /** This card goes to the terminal (not known to be absent, a node answers, no slip typed). */
  function viaTerminal() {
    return state.mode === 'card' && !state.slipEntry && cards?.terminal !== false
      && ui.client.online && session.ready && !$('#card-reference').value.trim();
  }

  /** The slip reference is asked unless the terminal is known to take this card. */
  function asksReference(mode) {
    if (!mode.reference) return false;
    return mode.key !== 'card' || state.slipEntry || cards?.terminal !== true || !ui.client.online;
  }

  /** The tender being typed: {amount} (null: not an amount; empty means what is left). */
  function entry() {
    const text = amountField().value.trim();
    const amount = text === '' ? leftToPay(total(), state.tenders) : parseAmount(text);
    const tender = amount ? makeTender(state.mode, amount, payMode(state.mode).reference ? $('#card-reference').value : '') : null;
    return { text, amount, tender };
  }

  /** The tenders if the one being typed were added. */
  function projected() {
    const { tender } = entry();
    return tender ? [...state.tenders, tender] : [...state.tenders];
  }

  // --- what the cashier does ---

  function open(mode = 'cash') {
    if (!session.hasLines) return;
    ui.screens.sell.disarmClear?.();
    if (state.basketId !== session.basketId) {
      // Another basket: nothing paid yet, and no receipt unless asked.
      Object.assign(state, { basketId: session.basketId, tenders: [], print: false });
    }
    // What the terminal approved for this basket and the screen lacks (a reload, a reconnect).
    for (const tender of takenByTerminal()) {
      if (!state.tenders.some((each) => each.payment_id === tender.payment_id)) state.tenders.push(tender);
    }
    session.paying = false;
    setMode(mode);
    ui.show('pay');
    resumeCard();
  }

  /** Card payments of this basket the terminal approved (kept across a reload). */
  function takenByTerminal() {
    if (!cards) return [];
    return cards.of({ basketId: session.basketId }).filter((record) => phaseOf(record) === 'approved')
      .map((record) => {
        cards.take(record.payment_id);
        return cardTender(record);
      });
  }

  /** A payment of this basket still on the terminal, or unknown (a reload, a reconnect): its dialog again. */
  function resumeCard() {
    if (!cards || state.cardBusy) return;
    const open = cards.of({ basketId: session.basketId })
      .find((record) => !record.taken && ['waiting', 'unknown'].includes(phaseOf(record)));
    if (open) followCard(ui.cardDialog.show(open), open.amount);
  }

  function setMode(mode) {
    state.mode = payMode(mode).key;
    state.slipEntry = false;
    $('#cash-given').value = '';
    $('#card-amount').value = ''; // empty means what is left, which may still grow while scans are pending
    $('#card-reference').value = '';
  }

  function switchMode(mode) {
    if (busy()) return;
    setMode(mode);
    render();
    focus();
  }

  function confirm() {
    const field = amountField();
    if (looksLikeBarcode(field.value)) return scanned(field);
    if (!session.canPay || state.cardBusy) return;
    const { amount, tender } = entry();
    if (amount === null) return reject('invalid_amount', field);
    const tenders = projected();
    if (!tenders.length) return reject('payment_short', field);
    const outcome = settlement(total(), tenders, session.mealVoucherCap);
    if (tender && viaTerminal() && (outcome.ok || outcome.code === 'payment_short')) {
      payOnTerminal(tender);
      return;
    }
    take(tender, outcome);
  }

  /** Adds `tender` (checked: `outcome`), paying the sale when it is enough. */
  function take(tender, outcome) {
    const field = amountField();
    if (tender?.payment_id) {
      // The terminal took it: the card was charged, so the tender stays whatever comes next.
      state.tenders.push(tender);
      if (outcome.ok && session.pay(tendersForSale(state.tenders), { print: state.print })) return;
      setMode('cash');
      render();
      focus();
      return;
    }
    if (outcome.ok) {
      session.pay(tendersForSale(projectedWith(tender)), { print: state.print });
      return;
    }
    if (outcome.code === 'payment_short' && tender) {
      // Short of the total: this tender is taken, the rest comes next (cash, most often).
      state.tenders.push(tender);
      setMode('cash');
      render();
      focus();
      return;
    }
    reject(outcome.code, field);
  }

  function projectedWith(tender) {
    return tender ? [...state.tenders, tender] : [...state.tenders];
  }

  // --- the card terminal ---

  function payOnTerminal(tender) {
    const basketId = session.basketId;
    state.cardBusy = true;
    render();
    followCard(ui.cardDialog.pay({ basketId, amount: tender.amount }), tender.amount, tender);
  }

  /** What the dialog ended with: the tender, the slip entry, or another tender. */
  async function followCard(shown, asked, typed = null) {
    state.cardBusy = true;
    let outcome;
    try {
      outcome = await shown;
    } finally {
      state.cardBusy = false;
    }
    if (ui.screen !== 'pay' || state.basketId !== session.basketId) return render();
    if (outcome.kind === 'approved') {
      cards.take(outcome.record.payment_id);
      const tender = outcome.tender;
      if (tender.amount < asked) {
        ui.showError({ code: 'card_partial', amount: formatMoney(tender.amount), asked: formatMoney(asked) });
      }
      setMode('card');
      take(tender, settlement(total(), projectedWith(tender), session.mealVoucherCap));
      return;
    }
    if (outcome.kind === 'no_terminal' && typed) {
      // No terminal serves this till: the card is today's standalone slip entry (reference optional).
      take(typed, settlement(total(), projectedWith(typed), session.mealVoucherCap));
      return;
    }
    if (outcome.kind === 'slip') {
      // The terminal could not be reached: the cashier takes the card on it by hand and types its slip.
      setMode('card');
      state.slipEntry = true;
      $('#card-amount').value = formatAmountForInput(outcome.amount);
      render();
      $('#card-reference').focus();
      return;
    }
    render(); // declined, or the cashier chose: another tender
    focus();
  }

  /**
   * The node refused the sale without a card payment of this basket the till lost track
   * of (its dialog given up on, another tab of the till, a late answer): it is followed
   * again, its approved amount becomes a tender here, a waiting one shows its dialog.
   */
  async function adoptRefused(error) {
    const paymentId = error?.data?.payment_id;
    if (!cards || !paymentId || !['card_payment_taken', 'card_payment_pending'].includes(error.code)) return;
    const basketId = session.basketId;
    if (error.data.basket_id && error.data.basket_id !== basketId) return;
    await cards.adopt(paymentId, basketId).catch(() => null);
    if (ui.screen === 'pay' && session.basketId === basketId && session.hasLines) open('card');
  }

  function removeTender(index) {
    if (busy() || state.tenders[index]?.payment_id) return; // a card the terminal took was charged
    state.tenders.splice(index, 1);
    render();
    focus();
  }

  function togglePrint() {
    if (busy()) return;
    state.print = !state.print;
    render();
  }

  function reject(code, field) {
    ui.showError({ code, cap: formatMoney(session.mealVoucherCap) });
    field.focus();
    field.select();
  }

  function onQuickCash(value) {
    if (!isCash()) setMode('cash');
    const left = leftToPay(total(), state.tenders);
    $('#cash-given').value = formatAmountForInput(value === 'exact' ? left : Number(value));
    render();
    $('#confirm-payment').focus(); // Enter now confirms
  }

  function back() {
    if (busy()) return;
    ui.show('sell');
    ui.screens.login.askForPinIfWanted?.(); // the sale failed: the PIN now
  }

  /** A code scanned into a field: the customer adds an item; the sell logic takes it. */
  function scanned(field) {
    const code = field.value.trim();
    field.value = '';
    scan(code);
  }

  function scan(code) {
    ui.scan(code);
    render();
  }

  // --- rendering ---

  function tenderRow(tender, index) {
    const mode = modeOf(tender);
    const card = cardText(tender);
    return el('li', { class: 'pay-tender', dataset: { method: tender.method, paymentId: tender.payment_id } },
      el('span', { class: 'pay-tender-name' }, t(`pay.mode.${mode.key}`),
        card ? el('small', { class: 'card-detail' }, ` ${card}`) : tender.reference ? el('small', {}, ` ${tender.reference}`) : null),
      el('span', { class: 'money' }, formatMoney(tender.amount)),
      tender.payment_id ? el('span', { class: 'pay-tender-remove', 'aria-hidden': 'true' })
        : el('button', { type: 'button', class: 'pay-tender-remove', dataset: { remove: String(index) }, title: t('pay.removeTender') }, '×'));
  }

  /** What the tenders come to, in words: change, vouchers kept, what is short, or why it cannot be. */
  function outcomeLine() {
    const { amount } = entry();
    if (amount === null) return { kind: 'short', text: t('pay.invalidAmount') };
    const tenders = projected();
    const outcome = settlement(total(), tenders, session.mealVoucherCap);
    if (outcome.ok) {
      const parts = [];
      // Only cash gives change: a card-only sale has no "change 0,00 €".
      if (tenders.some((tender) => tender.method === 'cash')) parts.push(t('pay.change', { amount: formatMoney(outcome.change) }));
      if (outcome.voucherExcess) parts.push(t('pay.voucherExcess', { amount: formatMoney(outcome.voucherExcess) }));
      return { kind: outcome.voucherExcess && !outcome.change ? 'warn' : 'change', text: parts.join(' · ') };
    }
    if (outcome.code === 'payment_short') {
      return { kind: 'short', text: t('pay.left', { amount: formatMoney(leftToPay(total(), tenders)) }) };
    }
    return { kind: 'short', text: t(`error.${outcome.code}`, { cap: formatMoney(session.mealVoucherCap) }) };
  }

  function render() {
    if (ui.screen !== 'pay') return;
    const mode = payMode(state.mode);
    const due = total();
    const left = leftToPay(due, state.tenders);
    $('#pay-title').textContent = t('pay.title');
    $('#pay-due').textContent = formatMoney(due);
    for (const button of document.querySelectorAll('[data-pay-mode]')) {
      button.setAttribute('aria-pressed', String(button.dataset.payMode === mode.key));
      button.disabled = busy();
    }
    $('#cash-section').hidden = !isCash();
    $('#card-section').hidden = isCash();
    $('#card-amount-label').textContent = t(`pay.amount.${mode.key}`);
    $('#card-reference-label').hidden = !asksReference(mode);
    $('#card-reference-text').textContent = t(`pay.reference.${mode.key}`);
    // Where this card goes: the terminal, or (the fallback) the slip typed by hand.
    const onTerminal = mode.key === 'card' && !asksReference(mode);
    $('#card-terminal-note').hidden = !onTerminal && !(mode.key === 'card' && state.slipEntry);
    $('#card-terminal-note').textContent = onTerminal ? t('pay.cardOnTerminal') : t('pay.cardSlipEntry');
    $('#cash-given').placeholder = formatAmountForInput(left);
    $('#card-amount').placeholder = formatAmountForInput(left);
    for (const button of document.querySelectorAll('[data-cash-quick]')) {
      const value = button.dataset.cashQuick;
      if (value === 'exact') continue;
      button.textContent = formatMoney(Number(value));
      button.disabled = Number(value) < left;
    }
    $('#pay-tenders').replaceChildren(...state.tenders.map(tenderRow));
    $('#pay-tenders').hidden = !state.tenders.length;
    $('#pay-paid-row').hidden = !state.tenders.length;
    $('#pay-paid').textContent = formatMoney(paidBy(state.tenders));
    $('#pay-left').textContent = formatMoney(left);
    const line = outcomeLine();
    const change = $('#pay-change');
    change.textContent = line.text;
    change.dataset.kind = line.kind;
    const print = $('#print-receipt');
    print.setAttribute('aria-pressed', String(state.print));
    print.disabled = busy();
    $('#print-receipt-label').textContent = state.print ? t('pay.printYes') : t('pay.printNo');
    // Scans still waiting for the connection would change the total: pay once they are in.
    const confirmButton = $('#confirm-payment');
    confirmButton.disabled = busy() || session.hasPendingAdds();
    $('#pay-back').disabled = busy();
    const adds = line.kind === 'short' && entry().tender && settlement(due, projected(), session.mealVoucherCap).code === 'payment_short';
    $('#confirm-payment-label').textContent = session.paying ? t('pay.saving') : state.cardBusy ? t('pay.onTerminal')
      : mode.key === 'card' && viaTerminal() ? t('pay.sendToTerminal') : adds ? t('pay.addTender') : t('pay.confirm');
  }

  function focus() {
    amountField().focus();
  }

  // --- keys: shortcuts, and a scanner's keystrokes wherever the focus is ---

  function onKey(event) {
    if (event.key === 'Escape') back();
    else if (MODE_KEYS[event.key]) {
      // The meal voucher key twice: from paper to card (and back).
      const mode = MODE_KEYS[event.key];
      switchMode(mode === 'voucher_paper' && state.mode === 'voucher_paper' ? 'voucher_card' : mode);
    }
    else if (event.key === PRINT_KEY) togglePrint();
    else return onTyping(event);
    event.preventDefault();
  }

  /**
   * Digits typed with no field focused (a button has it after a quick-cash tap)
   * are kept: a whole code then Enter is a scan; a few digits go to the amount.
   */
  function onTyping(event) {
    const inField = event.target.matches?.('input, textarea, select');
    if (inField) return;
    if (/^\d$/.test(event.key) && !event.ctrlKey && !event.metaKey && !event.altKey) {
      keys.buffer += event.key;
      event.preventDefault();
    } else if (event.key === 'Enter' && keys.buffer) {
      event.preventDefault(); // not a click on the focused button
      const typed = keys.buffer;
      keys.buffer = '';
      if (looksLikeBarcode(typed)) {
        scan(typed);
      } else {
        amountField().value = typed;
        render();
        focus();
      }
    } else if (event.key.length === 1 || event.key === 'Backspace') {
      keys.buffer = '';
    }
  }

  /** In the reference field a long code typed at a scanner's pace is a scan too. */
  function onReferenceKeydown(event) {
    const now = performance.now();
    if (event.key.length === 1) {
      keys.times.push(now);
      return;
    }
    if (event.key !== 'Enter') {
      keys.times = [];
      return;
    }
    const field = event.target;
    const gaps = keys.times.slice(1).map((time, i) => time - keys.times[i]);
    keys.times = [];
    if (looksLikeBarcode(field.value) && gaps.length >= 7 && gaps.every((gap) => gap < SCANNER_KEY_GAP_MS)) {
      event.preventDefault();
      scanned(field);
    }
  }

  function build() {
    const modes = PAY_MODES.map((mode) => {
      const key = Object.keys(MODE_KEYS).find((name) => MODE_KEYS[name] === mode.key);
      return el('button', { type: 'button', class: `pay-mode ${mode.key}`, dataset: { payMode: mode.key } },
        el('span', { dataset: { i18n: `pay.mode.${mode.key}` } }, t(`pay.mode.${mode.key}`)),
        key ? el('kbd', { class: 'hint' }, key) : null);
    });
    const form = el('form', { id: 'pay-form', class: 'card pay-card', autocomplete: 'off', novalidate: true },
      el('div', { class: 'pay-head' },
        el('h1', { id: 'pay-title' }),
        el('div', { class: 'due' }, el('span', { dataset: { i18n: 'pay.due' } }), el('span', { id: 'pay-due', class: 'money' }))),
      el('div', { class: 'pay-body' },
        el('div', { class: 'pay-entry' },
          el('div', { class: 'pay-modes', role: 'group' }, ...modes),
          el('div', { id: 'cash-section' },
            el('label', {}, el('span', { dataset: { i18n: 'pay.cashGiven' } }),
              el('input', { id: 'cash-given', inputmode: 'decimal', autocomplete: 'off' })),
            el('div', { class: 'quick-cash' },
              el('button', { type: 'button', dataset: { cashQuick: 'exact', i18n: 'pay.exact' } }),
              ...QUICK_CASH.map((value) => el('button', { type: 'button', dataset: { cashQuick: String(value) } })))),
          el('div', { id: 'card-section', hidden: true },
            el('label', {}, el('span', { id: 'card-amount-label' }),
              el('input', { id: 'card-amount', inputmode: 'decimal', autocomplete: 'off' })),
            el('label', { id: 'card-reference-label' }, el('span', { id: 'card-reference-text' }),
              el('input', { id: 'card-reference', autocomplete: 'off', spellcheck: 'false', maxlength: String(MAX_REFERENCE) })),
            el('p', { id: 'card-terminal-note', class: 'help', hidden: true }))),
        el('div', { class: 'pay-summary' },
          el('ul', { id: 'pay-tenders', class: 'pay-tenders', hidden: true }),
          el('div', { id: 'pay-paid-row', class: 'pay-row', hidden: true },
            el('span', { dataset: { i18n: 'pay.paid' } }), el('strong', { id: 'pay-paid', class: 'money' })),
          el('div', { class: 'pay-row pay-left-row' },
            el('span', { dataset: { i18n: 'pay.leftLabel' } }), el('strong', { id: 'pay-left', class: 'money' })),
          el('div', { id: 'pay-change', class: 'pay-change', role: 'status' }),
          el('button', { id: 'print-receipt', type: 'button', class: 'print-receipt', 'aria-pressed': 'false' },
            el('span', { id: 'print-receipt-label' }), el('kbd', { class: 'hint' }, PRINT_KEY)),
          el('div', { class: 'pay-buttons' },
            el('button', { id: 'pay-back', type: 'button', class: 'ghost big' },
              el('span', { dataset: { i18n: 'pay.back' } }), el('kbd', { class: 'hint' }, 'Esc')),
            el('button', { id: 'confirm-payment', type: 'submit', class: 'primary big' },
              el('span', { id: 'confirm-payment-label' }), el('kbd', { class: 'hint' }, '↵'))))));
    for (const node of form.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    $('#screen-pay').replaceChildren(form);
  }

  function wire() {
    build();
    session.addEventListener('error', (event) => adoptRefused(event.detail?.error));
    $('#pay-form').addEventListener('submit', (event) => {
      event.preventDefault();
      confirm();
    });
    $('#pay-form').addEventListener('input', render);
    $('#pay-back').addEventListener('click', back);
    $('#print-receipt').addEventListener('click', togglePrint);
    $('#card-reference').addEventListener('keydown', onReferenceKeydown);
    $('#pay-form').addEventListener('click', (event) => {
      const button = event.target.closest('button');
      if (!button) return;
      if (button.dataset.payMode) switchMode(button.dataset.payMode);
      else if (button.dataset.cashQuick) onQuickCash(button.dataset.cashQuick);
      else if (button.dataset.remove) removeTender(Number(button.dataset.remove));
    });
  }

  return {
    name: 'pay', wire, render, focus, onKey, open,
    get tenders() { return [...state.tenders]; },
    get printChosen() { return state.print; },
  };
}
