// The card terminal's dialog: "Payment in progress on the terminal…" with the
// amount while the customer pays, then the outcome in plain words by its
// code. The till cannot cancel a payment (Caisse-AP has no such message: the
// terminal's red button does it), so the dialog has no cancel while waiting.
//  - approved: it closes, the pay screen adds the tender (its payment_id);
//  - declined: the reason, then the cashier picks another tender;
//  - unreachable (nothing was charged): today's slip entry, or another tender;
//  - unknown (nobody knows whether the card was charged): "Read the
//    terminal's slip: did it say approved?" yes → the slip's reference →
//    `payment/card_settle`, the tender; no → another tender. Never a retry.
// A <dialog> made once, outside the screens, so their keys leave it alone.
// The payment's logic is card-terminal.js's; this module only shows it.
import { t, formatMoney, errorText } from './i18n.js';
import { el } from './dom.js';
import { phaseOf, cardTender } from './card-terminal.js';

const MAX_REFERENCE = 64;

/** The outcome's words for a code: its own if the till knows it, else the phase's. */
function reasonText(phase, payment) {
  const code = payment?.code ?? '';
  const key = `card.code.${code}`;
  const known = t(key);
  if (code && known !== key) return known;
  return t(`card.reason.${phase}`);
}

export function cardDialog(ui, cards) {
  let dialog = null;
  // The payment shown: {record, resolve, step: 'ask' | 'reference' | null, busy}.
  let current = null;

  const $d = (selector) => dialog.querySelector(selector);

  function build() {
    if (dialog) return;
    dialog = el('dialog', { id: 'card-dialog', class: 'card card-dialog', 'aria-live': 'polite' },
      el('form', { id: 'card-dialog-form', autocomplete: 'off' },
        el('h1', { id: 'card-dialog-title' }),
        el('p', { id: 'card-dialog-amount', class: 'card-dialog-amount money' }),
        el('p', { id: 'card-dialog-text', class: 'card-dialog-text', role: 'status' }),
        el('p', { id: 'card-dialog-detail', class: 'help' }),
        el('label', { id: 'card-dialog-slip', hidden: true }, el('span', { id: 'card-dialog-slip-label' }),
          el('input', { id: 'card-dialog-reference', autocomplete: 'off', spellcheck: 'false', maxlength: String(MAX_REFERENCE) })),
        el('p', { id: 'card-dialog-error', class: 'dialog-error', role: 'alert', hidden: true }),
        el('div', { id: 'card-dialog-buttons', class: 'dialog-buttons' })));
    document.body.append(dialog);
    // The till's shortcuts and the scanner are for the screens, not this dialog.
    dialog.addEventListener('keydown', (event) => event.stopPropagation());
    // Esc never closes it: while waiting there is nothing the till can cancel, and an outcome needs an answer.
    dialog.addEventListener('cancel', (event) => event.preventDefault());
    dialog.addEventListener('click', (event) => {
      const action = event.target.closest('button[data-card-action]')?.dataset.cardAction;
      if (action) act(action);
    });
    $d('#card-dialog-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const primary = $d('#card-dialog-buttons button.primary');
      if (primary && !primary.disabled) act(primary.dataset.cardAction);
    });
    cards.addEventListener('change', (event) => {
      if (current && event.detail === current.record) render();
    });
  }

  /** Shows `record` until the cashier is done with it: resolves with what the pay screen does next. */
  function show(record) {
    build();
    current?.resolve({ kind: 'other' }); // one payment at a time: a new one replaces the shown one
    return new Promise((resolve) => {
      current = { record, resolve, step: null, busy: false };
      $d('#card-dialog-reference').value = '';
      render();
      if (!dialog.open) dialog.showModal();
    });
  }

  /**
   * Sends `amount` to the terminal and shows the payment: resolves with
   * {kind: 'approved', tender, record} | {kind: 'declined'} | {kind: 'slip', amount}
   * (unreachable: today's slip entry) | {kind: 'no_terminal'} | {kind: 'other'}.
   */
  async function pay({ basketId = null, refundId = null, saleId = null, amount, refund = false }) {
    build();
    let record;
    try {
      record = await cards.start({ basketId, refundId, saleId, amount, refund });
    } catch (error) {
      ui.showError(error.code === 'terminal_busy' ? { code: 'terminal_busy' } : error);
      return { kind: 'other', error };
    }
    if (record.fallback) return { kind: record.fallback, amount };
    return show(record);
  }

  function finish(outcome) {
    const pending = current;
    current = null;
    if (dialog?.open) dialog.close();
    pending?.resolve(outcome);
  }

  function button(action, label, primary = false) {
    return el('button', { type: primary ? 'submit' : 'button', class: primary ? 'primary big' : 'ghost big', dataset: { cardAction: action } }, label);
  }

  function render() {
    if (!dialog || !current) return;
    const { record } = current;
    const phase = phaseOf(record);
    const payment = record.state;
    if (phase === 'approved') {
      finish({ kind: 'approved', tender: cardTender(record), record });
      return;
    }
    dialog.dataset.phase = phase;
    $d('#card-dialog-amount').textContent = formatMoney(record.amount);
    $d('#card-dialog-error').hidden = true;
    const slip = current.step === 'reference';
    $d('#card-dialog-slip').hidden = !slip;
    $d('#card-dialog-slip-label').textContent = t('card.slipReference');
    let title;
    let text;
    let detail = '';
    let buttons = [];
    if (phase === 'waiting') {
      title = record.refund ? t('card.waitingRefund') : t('card.waiting');
      text = t('card.cancelOnTerminal');
      detail = payment ? '' : t('card.asking');
    } else if (phase === 'declined') {
      title = t('card.declined');
      text = reasonText('declined', payment);
      buttons = [button('other', t('card.otherTender'), true)];
    } else if (phase === 'unreachable') {
      title = t('card.unreachable');
      text = reasonText('unreachable', payment);
      detail = t('card.nothingCharged');
      buttons = [button('other', t('card.otherTender')), button('slip', t('card.useSlip'), true)];
    } else if (slip) {
      title = t('card.unknown');
      text = t('card.slipApprovedReference');
      buttons = [button('back', t('card.back')), button('settle-yes', t('card.settle'), true)];
    } else {
      title = t('card.unknown');
      text = t('card.readSlip');
      detail = reasonText('unknown', payment);
      buttons = [button('settle-no', t('card.slipNo')), button('ask-yes', t('card.slipYes'), true)];
    }
    $d('#card-dialog-title').textContent = title;
    $d('#card-dialog-text').textContent = text;
    $d('#card-dialog-detail').textContent = detail;
    $d('#card-dialog-detail').hidden = !detail;
    for (const each of buttons) each.disabled = current.busy;
    $d('#card-dialog-buttons').replaceChildren(...buttons);
    $d('#card-dialog-buttons').hidden = !buttons.length;
    if (slip) $d('#card-dialog-reference').focus();
    else $d('#card-dialog-buttons button.primary')?.focus();
  }

  async function act(action) {
    if (!current || current.busy) return;
    const { record } = current;
    if (action === 'other') {
      cards.forget(record.payment_id);
      finish({ kind: phaseOf(record) === 'declined' ? 'declined' : 'other' });
    } else if (action === 'slip') {
      cards.forget(record.payment_id);
      finish({ kind: 'slip', amount: record.amount });
    } else if (action === 'ask-yes') {
      current.step = 'reference';
      render();
    } else if (action === 'back') {
      current.step = null;
      render();
    } else if (action === 'settle-yes' || action === 'settle-no') {
      const approved = action === 'settle-yes';
      const reference = $d('#card-dialog-reference').value.trim().slice(0, MAX_REFERENCE);
      if (approved && !reference) {
        $d('#card-dialog-reference').focus();
        return;
      }
      current.busy = true;
      render();
      try {
        await cards.settle(record.payment_id, approved, reference);
      } catch (error) {
        if (!current || current.record !== record) return;
        current.busy = false;
        render();
        $d('#card-dialog-error').hidden = false;
        $d('#card-dialog-error').textContent = errorText(error);
        return;
      }
      if (!current || current.record !== record) return;
      current.busy = false;
      if (!record.state?.settled) {
        // Not settled: the node knew how it ended after all (a late answer), shown as it is.
        render();
        return;
      }
      if (!approved) {
        cards.forget(record.payment_id);
        finish({ kind: 'declined' });
      } else {
        render(); // settled approved: the tender
      }
    }
  }

  return {
    pay,
    show,
    render,
    get isOpen() { return Boolean(dialog?.open); },
    get shown() { return current?.record ?? null; },
  };
}
