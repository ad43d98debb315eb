// The till's drawer: its shift (cash session) and the manager's day.
//  - open a shift with the float counted into the drawer (shift/open);
//  - cash paid in or taken out, with a reason (shift/cash_move);
//  - the X report: what the shift sold, and what the drawer should hold (shift/x);
//  - close it with a count per tender, the difference shown (shift/close);
//  - a manager: training mode on or off (till/training), and "close the day"
//    (closure/close), the Z shown and printed.
// The state comes from shift/current after each login: a store that requires a
// shift shows this screen until one is open; 15 minutes before the business day
// ends, a banner says so on the sell screen. In training mode a banner says
// "MODE ÉCOLE" over every screen.
//
// Its section is made here (appended to <main>); its button goes in the sell
// screen's actions row. Read from the node: offline, it waits for one.
import { t, formatMoney, formatAmountForInput } from './i18n.js';
import { $, el, redraw } from './dom.js';
import { sellActionsRow } from './screen-discount.js';
import { parseAmount } from './screen-pay-tenders.js';
import { newUuid } from './client.js';
import { outcomeOf } from './approval.js';

const WARN_CHECK_MS = 30_000;

export function shiftScreen(ui) {
  const { session } = ui;
  const state = {
    current: null, // shift/current's answer
    report: null, // the X report shown, or the report at close
    closing: false, // the count form is shown
    z: null, // the closure made, shown
    busy: false,
    moveId: null, // a cash move being sent (its id kept for a resend)
  };
  let warnTimer = null;

  const isManager = () => session.cashier?.role === 'manager';
  const shift = () => state.current?.shift ?? null;

  async function refresh() {
    if (!session.cashier || !session.ready) return;
    try {
      state.current = await ui.client.call('shift/current', {});
      session.training = Boolean(state.current.training);
      if (shift()) state.report = await ui.client.call('shift/x', {});
      else if (!state.closing) state.report = null;
    } catch (error) {
      ui.showError(error);
    }
    render();
    if (state.current?.required && !shift() && ui.screen === 'sell') open();
  }

  function open() {
    if (!session.cashier) return;
    if (!session.ready || !ui.client.online) {
      ui.showError({ code: 'offline' });
      return;
    }
    ui.screens.parked?.close();
    state.z = null;
    ui.show('shift');
    refresh();
  }

  async function run(type, args, after) {
    if (state.busy) return;
    state.busy = true;
    render();
    try {
      const result = await ui.client.call(type, args);
      await after?.(result);
    } catch (error) {
      ui.showError(error);
    } finally {
      state.busy = false;
      render();
    }
  }

  function amountOf(selector) {
    const cents = parseAmount($(selector).value);
    if (cents === null) ui.showError({ code: 'invalid_amount' });
    return cents;
  }

  function openShift() {
    const cents = amountOf('#shift-float');
    if (cents === null) return;
    run('shift/open', { shift_id: newUuid(), float: cents }, () => refresh());
  }

  function moveCash(direction) {
    const cents = amountOf('#shift-move-amount');
    const reason = $('#shift-move-reason').value.trim();
    if (cents === null || cents === 0) return;
    if (!reason) {
      ui.showError({ code: 'shift_reason_needed' });
      return;
    }
    state.moveId ??= newUuid();
    run('shift/cash_move', { move_id: state.moveId, amount: direction * cents, reason }, () => {
      state.moveId = null;
      $('#shift-move-amount').value = '';
      $('#shift-move-reason').value = '';
      return refresh();
    });
  }

  function tendersToCount() {
    const keys = new Set(['cash', ...Object.keys(state.report?.expected ?? {})]);
    return [...keys];
  }

  function closeShift() {
    const counted = {};
    for (const key of tendersToCount()) {
      const cents = parseAmount($(`[data-count="${key}"]`)?.value ?? '');
      if (cents === null) {
        ui.showError({ code: 'invalid_amount' });
        return;
      }
      counted[key] = cents;
    }
    run('shift/close', { counted, shift_id: shift()?.shift_id }, async (closed) => {
      state.closing = false;
      state.report = closed;
      state.current = { ...state.current, shift: null };
      render();
    });
  }

  /** A manager switches it, or names themself with their PIN (approval.js). */
  async function toggleTraining() {
    const args = { on: !state.current?.training };
    const outcome = await ui.approval.run((approval) => outcomeOf(
      ui.client.call('till/training', approval ? { ...args, approval } : args)), t('shift.trainingWhy'));
    if (!outcome.ok && !outcome.cancelled) ui.showError(outcome.error);
    await refresh();
  }

  function closeDay() {
    run('closure/close', { kind: 'day' }, (closure) => {
      state.z = closure;
    });
  }

  function back() {
    if (state.current?.required && !shift() && !state.report?.close) {
      ui.showError({ code: 'no_shift' });
      return;
    }
    state.report = shift() ? state.report : null;
    ui.show('sell');
  }

  // --- rendering ---

  function tenderLabel(key) {
    const name = `shift.tender.${key.replace('/', '_')}`;
    const text = t(name);
    return text === name ? key : text;
  }

  function amountRows(amounts, { signed = false } = {}) {
    return Object.entries(amounts ?? {}).map(([key, cents]) => el('li', { dataset: { tender: key } },
      el('span', {}, tenderLabel(key)),
      el('span', { class: signed && cents !== 0 ? 'money shift-difference' : 'money' },
        signed && cents > 0 ? `+${formatMoney(cents)}` : formatMoney(cents))));
  }

  function reportView(report) {
    const totals = report.totals;
    const parts = [
      el('h2', {}, report.close ? t('shift.closedTitle') : t('shift.xTitle')),
      el('p', { id: 'shift-x-sales' }, t('shift.xSales', {
        sales: totals.sales.count, refunds: totals.refunds.count, net: formatMoney(totals.net.total),
      })),
    ];
    if (report.moves?.length) {
      parts.push(el('ul', { class: 'shift-moves' }, ...report.moves.map((move) => el('li', {},
        el('span', {}, move.reason), el('span', { class: 'money' }, formatMoney(move.amount))))));
    }
    if (report.close) {
      parts.push(el('h3', {}, t('shift.difference')),
        el('ul', { id: 'shift-difference', class: 'shift-amounts' }, ...amountRows(report.close.difference, { signed: true })));
    } else {
      parts.push(el('h3', {}, t('shift.expected')),
        el('ul', { id: 'shift-expected', class: 'shift-amounts' }, ...amountRows(report.expected)));
    }
    return el('div', { class: 'shift-report' }, ...parts);
  }

  function zView(closure) {
    const totals = closure.totals ?? {};
    return el('div', { id: 'shift-z', class: 'shift-report' },
      el('h2', {}, t('shift.zTitle', { number: closure.number ?? '', period: closure.period ?? '' })),
      el('p', {}, t('shift.xSales', {
        sales: totals.sales?.count ?? 0, refunds: totals.refunds?.count ?? 0, net: formatMoney(totals.net?.total ?? 0),
      })),
      el('ul', { class: 'shift-amounts' }, ...amountRows(totals.net?.by_tender)),
      el('p', { id: 'shift-z-gt' }, t('shift.zGrandTotal', { gt: formatMoney(closure.grand_total ?? 0) })));
  }

  function body() {
    const parts = [];
    const current = state.current;
    if (current?.training) parts.push(el('p', { class: 'shift-training' }, t('shift.trainingOn')));
    if (state.z) parts.push(zView(state.z));
    if (!shift()) {
      if (state.report?.close) parts.push(reportView(state.report));
      parts.push(el('form', { id: 'shift-open-form', class: 'shift-form' },
        el('label', { for: 'shift-float' }, t('shift.float')),
        el('input', { id: 'shift-float', inputmode: 'decimal', autocomplete: 'off', value: formatAmountForInput(0) }),
        el('button', { id: 'shift-open-submit', type: 'submit', class: 'primary big', disabled: state.busy }, t('shift.open'))));
    } else {
      const open = shift();
      const ended = current?.ends_at && open.ends_at <= new Date().toISOString();
      parts.push(el('p', { id: 'shift-since' }, t('shift.since', {
        cashier: open.cashier, time: new Date(open.opened_at).toLocaleTimeString(), day: open.business_day,
      })));
      if (ended) parts.push(el('p', { class: 'shift-warning' }, t('shift.ended')));
      if (state.report) parts.push(reportView(state.report));
      if (!ended) {
        parts.push(el('div', { class: 'shift-form' },
          el('label', { for: 'shift-move-amount' }, t('shift.move')),
          el('input', { id: 'shift-move-amount', inputmode: 'decimal', autocomplete: 'off' }),
          el('input', { id: 'shift-move-reason', autocomplete: 'off', placeholder: t('shift.moveReason'), maxlength: '200' }),
          el('button', { id: 'shift-cash-in', type: 'button', disabled: state.busy }, t('shift.cashIn')),
          el('button', { id: 'shift-cash-out', type: 'button', disabled: state.busy }, t('shift.cashOut'))));
      }
      if (state.closing) {
        parts.push(el('form', { id: 'shift-close-form', class: 'shift-form' },
          el('p', {}, t('shift.countHelp')),
          ...tendersToCount().map((key) => el('label', {}, tenderLabel(key),
            el('input', { dataset: { count: key }, inputmode: 'decimal', autocomplete: 'off' }))),
          el('button', { id: 'shift-close-submit', type: 'submit', class: 'primary big', disabled: state.busy }, t('shift.closeConfirm'))));
      } else {
        parts.push(el('button', { id: 'shift-close', type: 'button', class: 'big' }, t('shift.close')));
      }
    }
    const manager = el('div', { class: 'shift-manager' },
      el('button', { id: 'shift-training', type: 'button', 'aria-pressed': String(Boolean(current?.training)), disabled: state.busy },
        current?.training ? t('shift.trainingStop') : t('shift.trainingStart')));
    if (isManager()) {
      manager.append(el('button', { id: 'shift-close-day', type: 'button', class: 'danger', disabled: state.busy }, t('shift.closeDay')));
    }
    parts.push(manager);
    return parts;
  }

  function renderBanners() {
    const training = Boolean(state.current?.training) && Boolean(session.cashier);
    document.body.classList.toggle('training', training);
    const mark = $('#training-mark');
    if (mark) {
      mark.hidden = !training;
      mark.textContent = t('shift.trainingMark');
    }
    const banner = $('#shift-banner');
    if (banner) {
      const current = state.current;
      const now = new Date().toISOString();
      const warn = Boolean(session.cashier && shift() && current?.warn_at && now >= current.warn_at);
      banner.hidden = !warn;
      if (warn) {
        const ends = new Date(shift().ends_at);
        banner.textContent = ends.toISOString() <= now ? t('shift.ended')
          : t('shift.endsSoon', { time: ends.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) });
      }
    }
  }

  function render() {
    const button = $('#shift-open');
    if (button) button.textContent = t('shift.button');
    renderBanners();
    if (ui.screen !== 'shift') return;
    $('#shift-title').textContent = t('shift.title');
    $('#shift-back-label').textContent = t('shift.back');
    redraw($('#shift-body'), body());
  }

  function onKey(event) {
    if (event.key !== 'Escape') return;
    event.preventDefault();
    back();
  }

  function wire() {
    const section = el('section', { id: 'screen-shift', class: 'screen', hidden: true },
      el('div', { class: 'sales-layout' },
        el('div', { class: 'sales-head' },
          el('h1', { id: 'shift-title' }),
          el('button', { id: 'shift-back', type: 'button', class: 'ghost' },
            el('span', { id: 'shift-back-label' }), el('kbd', { class: 'hint' }, 'Esc'))),
        el('div', { id: 'shift-body' })));
    $('main').append(section);
    $('#screen-sell')?.prepend(el('div', { id: 'shift-banner', class: 'shift-banner', role: 'status', hidden: true }));
    $('.topbar .store')?.append(el('strong', { id: 'training-mark', class: 'training-mark', hidden: true }));
    $('#shift-back').addEventListener('click', back);
    const body = $('#shift-body');
    body.addEventListener('submit', (event) => {
      event.preventDefault();
      if (event.target.id === 'shift-open-form') openShift();
      if (event.target.id === 'shift-close-form') closeShift();
    });
    body.addEventListener('click', (event) => {
      const id = event.target.closest('button')?.id;
      if (id === 'shift-cash-in') moveCash(1);
      else if (id === 'shift-cash-out') moveCash(-1);
      else if (id === 'shift-close') {
        state.closing = true;
        render();
      } else if (id === 'shift-training') {
        toggleTraining();
      } else if (id === 'shift-close-day') closeDay();
    });
    sellActionsRow()?.append(el('button', { id: 'shift-open', type: 'button', class: 'ghost' }, t('shift.button')));
    $('#shift-open')?.addEventListener('click', open);
    session.addEventListener('ready', () => refresh());
    session.addEventListener('ended', () => {
      Object.assign(state, { current: null, report: null, closing: false, z: null, moveId: null });
      session.training = false;
      // What this cashier typed is not the next one's (dom.redraw keeps typed inputs).
      body.replaceChildren();
      renderBanners();
    });
    clearInterval(warnTimer);
    warnTimer = setInterval(renderBanners, WARN_CHECK_MS);
  }

  return {
    name: 'shift', wire, render, onKey, open, refresh,
    focus: () => ($('#shift-float') ?? $('#shift-back')).focus(),
  };
}
