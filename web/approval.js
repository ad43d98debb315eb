// A manager's approval on the spot, for any command that may need one (a
// discount past the store's limit, an open price, a refund without receipt):
// the node answers `manager_required` with data.approval "required"; the till
// asks a manager to pick their name and type their PIN here, and sends the
// same command again with `approval: {manager, pin}` (docs/protocol.md). A
// wrong PIN or a cashier who is not a manager is said in the prompt, which
// stays open for another try; the PIN is never kept once the command is sent.
//
//   const outcome = await ui.approval.run((approval) => send(approval), t('approval.whyDiscount'));
//
// `send(approval)` (approval null the first time) resolves with the queue's
// outcome shape {ok, result} | {ok: false, error} | {ok: false, cancelled}.
import { t, errorText } from './i18n.js';
import { el } from './dom.js';

// Answers that belong to the prompt (the manager types again), not to the banner.
export const APPROVAL_ERRORS = new Set(['manager_required', 'invalid_pin', 'too_many_attempts', 'unknown_cashier']);

/** Does the node ask for a manager's approval on the spot? */
export function isApprovalRequest(error) {
  return error?.code === 'manager_required' && error?.data?.approval === 'required';
}

/** Wraps a promise-returning call into the queue's outcome shape. */
export async function outcomeOf(promise) {
  try {
    return { ok: true, result: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

export class ManagerApproval {
  constructor(ui) {
    this.ui = ui;
    this.dialog = null;
    this.pending = null; // {send, resolve}
    this.manager = null; // the picked cashier id
  }

  /**
   * Sends, and while the node asks for a manager, asks one and sends again.
   * Resolves with the last outcome; {ok: false, cancelled: true} if the prompt was closed.
   */
  async run(send, why) {
    const outcome = await send(null);
    if (outcome.ok || !isApprovalRequest(outcome.error)) return outcome;
    return this.ask(send, why);
  }

  get isOpen() {
    return Boolean(this.dialog?.open);
  }

  ask(send, why) {
    this.build();
    return new Promise((resolve) => {
      this.pending?.resolve({ ok: false, cancelled: true });
      this.pending = { send, resolve };
      this.manager = null;
      this.dialog.querySelector('#approval-why').textContent = why ?? '';
      this.render();
      this.setError(null);
      this.dialog.querySelector('#approval-pin').value = '';
      if (!this.dialog.open) this.dialog.showModal();
      this.dialog.querySelector('#approval-managers button')?.focus();
    });
  }

  /** The dialog, made once, outside the screens (their keys and focus leave it alone). */
  build() {
    if (this.dialog) return;
    const pinpad = el('div', { class: 'pinpad', id: 'approval-pinpad' },
      ...['1', '2', '3', '4', '5', '6', '7', '8', '9', 'clear', '0', 'back'].map((key) =>
        el('button', { type: 'button', dataset: { pinKey: key } }, key === 'clear' ? 'C' : key === 'back' ? '⌫' : key)));
    this.dialog = el('dialog', { id: 'approval-dialog', class: 'card approval-dialog' },
      el('form', { id: 'approval-form', autocomplete: 'off' },
        el('h1', { id: 'approval-title' }),
        el('p', { id: 'approval-why', class: 'help' }),
        el('p', { id: 'approval-pick', class: 'approval-label' }),
        el('div', { id: 'approval-managers', class: 'approval-managers' }),
        el('label', {}, el('span', { id: 'approval-pin-label' }),
          el('input', { id: 'approval-pin', type: 'password', inputmode: 'numeric', autocomplete: 'off', maxlength: '16' })),
        pinpad,
        el('p', { id: 'approval-error', class: 'dialog-error', role: 'alert', hidden: true }),
        el('div', { class: 'dialog-buttons' },
          el('button', { id: 'approval-cancel', type: 'button', class: 'ghost big' }),
          el('button', { id: 'approval-submit', type: 'submit', class: 'primary big' }))));
    document.body.append(this.dialog);
    const dialog = this.dialog;
    // The till's shortcuts and the scanner's refocus are for the screens, not this prompt.
    dialog.addEventListener('keydown', (event) => event.stopPropagation());
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault(); // Esc: our cancel, which resolves the pending promise
      this.cancel();
    });
    dialog.querySelector('#approval-cancel').addEventListener('click', () => this.cancel());
    dialog.querySelector('#approval-managers').addEventListener('click', (event) => {
      const tile = event.target.closest('[data-manager-id]');
      if (!tile) return;
      this.manager = tile.dataset.managerId;
      this.render();
      dialog.querySelector('#approval-pin').focus();
    });
    pinpad.addEventListener('click', (event) => {
      const key = event.target.closest('[data-pin-key]')?.dataset.pinKey;
      const pin = dialog.querySelector('#approval-pin');
      if (!key) return;
      if (key === 'clear') pin.value = '';
      else if (key === 'back') pin.value = pin.value.slice(0, -1);
      else pin.value += key;
    });
    dialog.querySelector('#approval-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  render() {
    if (!this.dialog) return;
    const d = this.dialog;
    d.querySelector('#approval-title').textContent = t('approval.title');
    d.querySelector('#approval-pick').textContent = t('approval.pick');
    d.querySelector('#approval-pin-label').textContent = t('approval.pin');
    d.querySelector('#approval-cancel').textContent = t('approval.cancel');
    d.querySelector('#approval-submit').textContent = t('approval.submit');
    // Every cashier of the store: the node says whether the one picked is a manager.
    const cashiers = this.ui.session.auth?.cashiers ?? [];
    d.querySelector('#approval-managers').replaceChildren(...cashiers.map((cashier) =>
      el('button', {
        type: 'button', class: 'cashier-tile approval-manager',
        'aria-pressed': String(cashier.id === this.manager), dataset: { managerId: cashier.id },
      }, cashier.name)));
  }

  setError(error) {
    const line = this.dialog.querySelector('#approval-error');
    line.hidden = !error;
    line.textContent = error ? (error.code === 'manager_required' ? t('approval.notManager') : errorText(error)) : '';
  }

  async submit() {
    const pending = this.pending;
    if (!pending) return;
    const pinField = this.dialog.querySelector('#approval-pin');
    const pin = pinField.value.trim();
    if (!this.manager) return this.setError({ message: t('approval.pick') });
    if (!pin) return pinField.focus();
    const submit = this.dialog.querySelector('#approval-submit');
    submit.disabled = true;
    this.setError(null);
    let outcome;
    try {
      outcome = await pending.send({ manager: this.manager, pin });
    } finally {
      submit.disabled = false;
      pinField.value = ''; // never kept: typed again for the next approval
    }
    if (pending !== this.pending) return; // cancelled meanwhile
    if (!outcome.ok && !outcome.cancelled && APPROVAL_ERRORS.has(outcome.error?.code)) {
      this.setError(outcome.error);
      pinField.focus();
      return;
    }
    this.close(outcome);
  }

  cancel() {
    this.close({ ok: false, cancelled: true });
  }

  close(outcome) {
    const pending = this.pending;
    this.pending = null;
    this.manager = null;
    if (this.dialog?.open) this.dialog.close();
    pending?.resolve(outcome);
  }
}
