// Discounts on the sell screen: a line's (tap its name or its "%" chip) or the
// whole basket's ("Remise ticket"), an amount or a percent, with a reason
// picked from a short list or typed. Past the store's limit the node asks for
// a manager (approval.js). What each discount came to is shown on the basket
// lines and under the totals. The commands are the session's
// (basket/discount_line, basket/discount: docs/protocol.md); they run in the
// basket's queue, so offline the till applies them itself (command-queue.js).
//
// A panel over the sell screen, not a screen of its own: a <dialog> made here,
// and the marks on the sell screen's basket added after each of its renders.
import { t, formatMoney, formatRate, formatAmountForInput, getLang } from './i18n.js';
import { $, el, setText } from './dom.js';
import { discountOff } from './pricing.js';

const MAX_PERCENT = 10000; // basis points

/** "10" → 1000, "12,5" → 1250 (basis points); null when it is not a percent from 0 to 100. */
export function parsePercent(text) {
  const match = /^(\d{1,3})(?:[.,](\d{0,2}))?$/.exec(String(text).replace(/[\s%]/g, ''));
  if (!match) return null;
  const value = Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
  return value <= MAX_PERCENT ? value : null;
}

/** "1,50" / "1.50 €" → 150 cents; null when it is not an amount. */
export function parseCents(text) {
  const match = /^(\d{1,7})(?:[.,](\d{0,2}))?$/.exec(String(text).replace(/[\s€]/g, ''));
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
}

/** How a discount spec reads: "−10 %" or "−1,50 €". */
export function discountLabel(discount) {
  return discount.kind === 'percent' ? `−${formatRate(discount.value)}` : `−${formatMoney(discount.value)}`;
}

/** The row of the sell screen's actions where the discount and refund buttons go, side by side. */
export function sellActionsRow() {
  const actions = document.querySelector('#screen-sell .actions');
  if (!actions) return null;
  let row = actions.querySelector('.more-actions');
  if (!row) {
    row = el('div', { class: 'more-actions' });
    actions.append(row);
  }
  return row;
}

export function discountPanel(ui) {
  const { session } = ui;
  let dialog = null;
  // What the open dialog discounts: {lineId} or {basket: true}; and its kind.
  let target = null;
  let kind = 'percent';

  // --- what is discounted ---

  function targetLine() {
    return target?.lineId ? session.findLine(target.lineId) : null;
  }

  /** What the discount is taken off, as the node counts it (edge/api/discount_commands.py). */
  function discountedAmount() {
    if (target?.lineId) return targetLine()?.gross ?? 0;
    return session.lines.reduce((sum, line) => sum + (line.total ?? 0) + (line.basket_share ?? 0), 0);
  }

  function currentDiscount() {
    return target?.lineId ? targetLine()?.discount ?? null : session.basket?.discount ?? null;
  }

  // --- the dialog ---

  function openLine(lineId) {
    if (!session.findLine(lineId) || session.paying) return;
    open({ lineId });
  }

  function openBasket() {
    if (!session.hasLines || session.paying) return;
    open({ basket: true });
  }

  function open(what) {
    build();
    target = what;
    const current = currentDiscount();
    kind = current?.kind ?? 'percent';
    $('#discount-value').value = current
      ? (current.kind === 'percent' ? String(current.value / 100).replace('.', ',') : formatAmountForInput(current.value))
      : '';
    $('#discount-reason').value = current?.reason ?? '';
    setError(null);
    render();
    if (!dialog.open) dialog.showModal();
    $('#discount-value').focus();
  }

  function close() {
    target = null;
    if (dialog?.open) dialog.close();
    ui.screens.sell?.refocusScan?.();
  }

  function setError(text) {
    const line = $('#discount-error');
    line.hidden = !text;
    line.textContent = text ?? '';
  }

  /** The discount the form says, or null (with the problem shown). */
  function readForm() {
    const text = $('#discount-value').value.trim();
    const value = kind === 'percent' ? parsePercent(text) : parseCents(text);
    const reason = $('#discount-reason').value.trim();
    return { value, reason, spec: value ? { kind, value, reason } : null };
  }

  async function apply() {
    const { value, reason, spec } = readForm();
    if (!value) return setError(t('discount.invalidValue'));
    if (!reason) {
      setError(t('discount.reasonNeeded'));
      return $('#discount-reason').focus();
    }
    await send(spec);
  }

  async function send(spec) {
    const what = target;
    if (!what) return;
    const applyButton = $('#discount-apply');
    applyButton.disabled = true;
    setError(null);
    const limit = session.auth?.settings?.discount_limit;
    const why = t('approval.whyDiscount', { limit: formatRate(limit ?? 0) });
    let outcome;
    try {
      outcome = await ui.approval.run((approval) => (what.lineId
        ? session.discountLine(what.lineId, spec, approval)
        : session.discountBasket(spec, approval)), why);
    } finally {
      applyButton.disabled = false;
    }
    if (outcome.cancelled) return; // the manager did not come: the cashier may change the discount
    close();
  }

  function render() {
    renderMarks();
    if (!dialog?.open || !target) return;
    const line = targetLine();
    if (target.lineId && !line) return close(); // the line left the basket meanwhile
    $('#discount-title').textContent = target.lineId ? t('discount.lineTitle') : t('discount.basketTitle');
    const base = discountedAmount();
    $('#discount-target').textContent = target.lineId
      ? `${line.name} — ${formatMoney(base)}`
      : t('discount.basketBase', { amount: formatMoney(base) });
    for (const button of dialog.querySelectorAll('[data-kind]')) {
      button.setAttribute('aria-pressed', String(button.dataset.kind === kind));
    }
    $('#discount-value-label').textContent = kind === 'percent' ? t('discount.percent') : t('discount.amount');
    $('#discount-quick').hidden = kind !== 'percent';
    const reasons = t('discount.reasons');
    $('#discount-reasons').replaceChildren(...(Array.isArray(reasons) ? reasons : []).map((reason) =>
      el('button', { type: 'button', class: 'reason-chip', dataset: { reason },
        'aria-pressed': String($('#discount-reason').value.trim() === reason) }, reason)));
    const { spec } = readForm();
    $('#discount-preview').textContent = spec
      ? t('discount.preview', { off: formatMoney(discountOff(spec, base)), left: formatMoney(base - discountOff(spec, base)) })
      : '';
    $('#discount-remove').hidden = !currentDiscount();
    for (const [id, key] of [['#discount-cancel', 'discount.cancel'], ['#discount-apply', 'discount.apply'],
      ['#discount-remove', 'discount.remove'], ['#discount-reason-label', 'discount.reason']]) {
      $(id).textContent = t(key);
    }
    $('#discount-reason').placeholder = t('discount.reasonPlaceholder');
  }

  function build() {
    if (dialog) return;
    dialog = el('dialog', { id: 'discount-dialog', class: 'card discount-dialog' },
      el('form', { id: 'discount-form', autocomplete: 'off', novalidate: true },
        el('h1', { id: 'discount-title' }),
        el('p', { id: 'discount-target', class: 'help' }),
        el('div', { class: 'discount-kinds' },
          el('button', { type: 'button', class: 'kind', dataset: { kind: 'percent' } }, '%'),
          el('button', { type: 'button', class: 'kind', dataset: { kind: 'amount' } }, '€')),
        el('label', {}, el('span', { id: 'discount-value-label' }),
          el('input', { id: 'discount-value', inputmode: 'decimal', autocomplete: 'off' })),
        el('div', { id: 'discount-quick', class: 'quick-cash' },
          ...[500, 1000, 2000, 5000].map((value) =>
            el('button', { type: 'button', dataset: { percent: String(value) } }, `${value / 100} %`))),
        el('p', { id: 'discount-reason-label', class: 'approval-label' }),
        el('div', { id: 'discount-reasons', class: 'reason-chips' }),
        el('input', { id: 'discount-reason', maxlength: '120', autocomplete: 'off' }),
        el('p', { id: 'discount-preview', class: 'discount-preview', role: 'status' }),
        el('p', { id: 'discount-error', class: 'dialog-error', role: 'alert', hidden: true }),
        el('div', { class: 'dialog-buttons' },
          el('button', { id: 'discount-remove', type: 'button', class: 'danger big' }),
          el('button', { id: 'discount-cancel', type: 'button', class: 'ghost big' }),
          el('button', { id: 'discount-apply', type: 'submit', class: 'primary big' }))));
    document.body.append(dialog);
    // The sell screen's shortcuts (F8 pays...) and the scanner's refocus stay out of the dialog.
    dialog.addEventListener('keydown', (event) => event.stopPropagation());
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      close();
    });
    dialog.addEventListener('input', render);
    dialog.addEventListener('click', (event) => {
      const button = event.target.closest('button');
      if (!button) return;
      if (button.dataset.kind) {
        kind = button.dataset.kind;
        $('#discount-value').value = '';
        render();
        $('#discount-value').focus();
      } else if (button.dataset.percent) {
        $('#discount-value').value = String(Number(button.dataset.percent) / 100);
        render();
      } else if (button.dataset.reason) {
        $('#discount-reason').value = button.dataset.reason;
        render();
      } else if (button.id === 'discount-cancel') {
        close();
      } else if (button.id === 'discount-remove') {
        send(null);
      }
    });
    dialog.querySelector('form').addEventListener('submit', (event) => {
      event.preventDefault();
      apply();
    });
  }

  // --- the marks on the sell screen ---

  /** Each discounted line says what it got; every line offers its discount; the totals say the discounts. */
  function renderMarks() {
    for (const row of document.querySelectorAll('#basket .basket-line[data-line-id]')) {
      const line = session.findLine(row.dataset.lineId);
      const name = row.querySelector('.line-name');
      if (!line || !name) continue;
      const discounted = line.discount_amount > 0 || line.discount;
      const text = discounted
        ? `${t('discount.mark', { off: discountLabel(line.discount), reason: line.discount.reason })} = −${formatMoney(line.discount_amount ?? 0)}`
        : '';
      const held = name.querySelector('.line-discount');
      // A line drawn before and unchanged keeps its mark: nothing laid out again.
      if (held && held.dataset.shows === `${getLang()} ${text}`) continue;
      held?.remove();
      const mark = el('small', { class: discounted ? 'line-discount active' : 'line-discount', dataset: { shows: `${getLang()} ${text}` } },
        text || null,
        el('button', { type: 'button', class: 'line-discount-open', dataset: { action: 'discount' }, title: t('discount.lineTitle') }, '%'));
      name.append(mark);
    }
    renderSummary();
    const button = $('#discount-basket');
    if (button) {
      button.disabled = !session.hasLines || session.paying;
      setText(button, t('discount.basketButton'));
    }
  }

  function renderSummary() {
    const totals = document.querySelector('#screen-sell .totals');
    const grand = totals?.querySelector('.grand-total');
    if (!grand) return;
    let summary = $('#discount-summary');
    if (!summary) {
      summary = el('div', { id: 'discount-summary', class: 'discount-summary' });
      grand.before(summary);
    }
    const off = session.basket?.totals?.discounts;
    const rows = [];
    if (off?.lines) rows.push([t('discount.linesTotal'), off.lines]);
    const basketDiscount = session.basket?.discount;
    if (off?.basket || basketDiscount) {
      const label = basketDiscount
        ? t('discount.basketMark', { off: discountLabel(basketDiscount), reason: basketDiscount.reason })
        : t('discount.basketTitle');
      rows.push([label, off?.basket ?? 0]);
    }
    summary.hidden = !rows.length;
    summary.replaceChildren(...rows.map(([label, amount]) =>
      el('div', { class: 'discount-row' }, el('span', {}, label), el('span', { class: 'money' }, `−${formatMoney(amount)}`))));
  }

  function wire() {
    // The sell screen draws the basket; the marks go on after each drawing ('drawn').
    $('#basket').addEventListener('drawn', () => renderMarks());
    $('#basket').addEventListener('click', (event) => {
      const row = event.target.closest('.basket-line[data-line-id]');
      if (!row) return;
      if (event.target.closest('[data-action="discount"]') || (event.target.closest('.line-name') && !event.target.closest('[data-action]'))) {
        openLine(row.dataset.lineId);
      }
    });
    sellActionsRow()?.append(el('button', { id: 'discount-basket', type: 'button', class: 'ghost', disabled: true }));
    $('#discount-basket')?.addEventListener('click', openBasket);
  }

  return { name: 'discount', wire, render, openLine, openBasket, close, get isOpen() { return Boolean(dialog?.open); } };
}
