// The till's printer as the cashier sees it: its state in the top bar
// (discreet while it prints, loud when it cannot), the done screen's receipt
// line (reprint, or another printer when the till's own is on a node that
// does not answer), the manager's "no sale" drawer opening, and the question
// "did the drawer open?" for a cash sale whose pulse the node cannot vouch for,
// and "does the customer have a receipt?" for a sale whose receipt was left
// unfinished by a node since restored from a backup (a DUPLICATA is offered).
//
// The printer is on a node, not on the till: everything here goes through
// `printer/subscribe`, `printer/status`, `printer/reprint`, `drawer/open` and
// `drawer/open_for_sale` (docs/protocol.md).

import { t, errorText } from './i18n.js';
import { $, el } from './dom.js';

const NOTICE_HIDE_MS = 4000;
// A printer on another node pushes nothing to us, and whether its node answers
// is only known by asking: ask this often while the till's printer is there.
const REMOTE_PRINTER_REFRESH_MS = 10000;

/**
 * The till's printer in a `printer/status` reply: {state, name, node, detail,
 * paperNearEnd}, or null when there is no reply to read.
 *
 * The reply names the till's printer (`printer`) and its node
 * (`printer_node`); every node has its own printers, often with the same
 * name ("receipt"). An older node gives no `printer_node`: the node is then
 * found in `store_printers` as it routed receipts: a printer listing this
 * till first, else one on this node. Its state is known only when it is on
 * this node (`printers`); on another node we only know whether that node
 * answers (`reachable`). `store_printers` may be missing (an older node):
 * then the printer is taken to be on this node.
 */
export function tillPrinterOf(reply, tillCode, hereNode) {
  if (!reply) return null;
  const name = reply.printer;
  if (!name) return { state: 'none' };
  const local = () => {
    const status = (reply.printers ?? []).find((printer) => printer.name === name);
    return status
      ? { state: status.state, name, node: hereNode, detail: status.detail, paperNearEnd: Boolean(status.paper_near_end) }
      : { state: 'remote', name, node: null };
  };
  if (!Array.isArray(reply.store_printers)) return local();
  const named = reply.store_printers.filter((printer) => printer.name === name);
  const entry = named.find((printer) => reply.printer_node && printer.node === reply.printer_node)
    ?? named.find((printer) => printer.tills?.includes(tillCode))
    ?? named.find((printer) => printer.node === hereNode)
    ?? named[0];
  if (!entry || entry.node === hereNode) return local();
  return { state: entry.reachable ? 'remote' : 'unreachable', name, node: entry.node, remote: true };
}

/** How loud a printer view is: 'ok' (nothing to do), 'warn' (soon), 'alert' (receipts are waiting). */
export function printerLevel(view) {
  if (view.state === 'ready') return view.paperNearEnd ? 'warn' : 'ok';
  if (view.state === 'remote') return 'ok';
  if (view.state === 'starting') return 'warn';
  return 'alert';
}

function stateLabel(view) {
  if (view.state === 'ready' && view.paperNearEnd) return t('printer.nearEnd');
  if (view.state === 'remote') return t('printer.remote', { name: view.name, node: view.node ?? '?' });
  const key = `printer.state.${view.state}`;
  const label = t(key) === key ? t('printer.state.other', { state: view.state }) : t(key);
  return view.remote ? `${label} ${t('printer.onNode', { node: view.node })}` : label;
}

function helpText(view) {
  if (view.remote) return `${t('printer.help.nodeDown', { node: view.node })} ${t('printer.help.waiting')}`;
  const key = `printer.help.${view.state}`;
  const help = t(key) === key ? '' : t(key);
  return view.state === 'none' ? help : `${help} ${t('printer.help.waiting')}`.trim();
}

export class TillPrinting {
  /**
   * `client`: the TillClient. `session()`: {cashier, ready}, ready when
   * commands needing a logged-in cashier can go to the node now.
   * `showError(error)`: the app's error banner. `onDialogClosed()`: give the
   * focus back (to the scan field).
   */
  constructor({ client, session, showError, onDialogClosed }) {
    this.client = client;
    this.session = session;
    this.showError = showError;
    this.onDialogClosed = onDialogClosed;
    this.status = null; // the last printer/subscribe (or printer/status) reply of this connection
    this.tillCode = null;
    this.hereNode = null;
    this.connection = 0; // bumped at each auth and loss, so a late answer for an old connection is dropped
    this.done = null; // the done screen's receipt: {saleId, where, note, choices, busy}
    this.noticeTimer = null;
    this.refreshTimer = null;
    this.doubtsAnswered = new Set(); // sales whose drawer the cashier saw open: asked no more
    this.receiptsAnswered = new Set(); // sales whose receipt the customer has (or was reprinted)
    this.doubtBusy = false;
  }

  wire() {
    $('#reprint').addEventListener('click', () => this.reprint());
    $('#printer-choices').addEventListener('click', (event) => {
      const choice = event.target.closest('.printer-choice');
      if (choice) this.printElsewhere(choice.dataset.printer, choice.dataset.node);
    });
    $('#no-sale').addEventListener('click', () => this.openNoSale());
    $('#no-sale-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.confirmNoSale();
    });
    $('#no-sale-cancel').addEventListener('click', () => $('#no-sale-dialog').close());
    $('#no-sale-dialog').addEventListener('close', () => {
      $('#no-sale-reason').value = '';
      $('#no-sale-error').hidden = true;
      this.onDialogClosed();
    });
    $('#notice').addEventListener('click', () => this.hideNotice());
    this.doubtBanner().addEventListener('click', (event) => {
      const button = event.target.closest('button[data-sale]');
      if (!button) return;
      if (button.dataset.receipt) {
        this.answerReceipt(button.dataset.sale, button.dataset.receipt === 'reprint');
      } else if (button.dataset.answer === 'opened') {
        this.doubtsAnswered.add(button.dataset.sale);
        this.render();
      } else {
        this.openDrawerForSale(button.dataset.sale);
      }
    });
  }

  /** The banner asking about drawers in doubt, under the printer's help line (made once). */
  doubtBanner() {
    let banner = $('#drawer-doubt');
    if (!banner) {
      banner = el('div', { id: 'drawer-doubt', class: 'printer-help drawer-doubt', role: 'alert', hidden: true });
      $('#printer-help').after(banner);
    }
    return banner;
  }

  /** While the reason is being typed, the till's keyboard shortcuts stay out of the way. */
  get dialogOpen() {
    return $('#no-sale-dialog').open;
  }

  // --- the printer's state ---

  /** Each new connection: subscribe, so each change of the printer is pushed to us. */
  async onAuthed(auth) {
    const connection = ++this.connection;
    this.tillCode = auth.till?.code ?? null;
    this.hereNode = auth.node?.id ?? null;
    this.status = null;
    try {
      const status = await this.client.call('printer/subscribe');
      if (connection !== this.connection) return;
      this.status = status;
    } catch {
      // Lost the connection (the next one subscribes again) or an older node: no printer line.
    }
    this.render();
    clearInterval(this.refreshTimer);
    this.refreshTimer = setInterval(() => this.refreshRemote(connection), REMOTE_PRINTER_REFRESH_MS);
  }

  onOffline() {
    this.connection++;
    clearInterval(this.refreshTimer);
    this.status = null;
    this.render();
  }

  /** The till's printer is on another node: is that node still (or again) connected to ours? */
  async refreshRemote(connection) {
    const view = tillPrinterOf(this.status, this.tillCode, this.hereNode);
    if (connection !== this.connection || !this.client.online || !view?.remote) return;
    try {
      const status = await this.client.call('printer/status');
      if (connection !== this.connection) return;
      this.status = status;
      this.render();
    } catch {
      // The connection went: the next one subscribes afresh.
    }
  }

  /** A pushed event: a `printer_status` replaces that printer's status; anything else is not ours. */
  onEvent(message) {
    const event = message?.event;
    if (event?.type === 'drawers_changed') {
      this.refreshDrawers(this.connection);
      return;
    }
    if (event?.type !== 'printer_status' || !event.printer || !this.status) return;
    const printers = (this.status.printers ?? []).filter((printer) => printer.name !== event.printer.name);
    this.status = { ...this.status, printers: [...printers, event.printer] };
    this.render();
  }

  // --- the done screen ---

  /** The sale on the done screen (null: none). An offline sale printed nothing and is not on a node yet. */
  showSale(sale) {
    if (!sale || sale.offline) {
      this.done = null;
    } else if (sale.receipt === 'not_printed') {
      // The customer wanted no receipt: offer it now (printer/reprint prints the original).
      this.done = { saleId: sale.id, where: undefined, note: { kind: 'ok', keys: ['done.notPrinted'] }, choices: [], busy: false, notPrinted: true };
    } else {
      this.done = { saleId: sale.id, where: sale.print, note: null, choices: [], busy: false };
      this.noteWhere(sale.print, 'printed');
    }
    this.render();
  }

  /** Says where the receipt (or its copy) went; offers other printers when that one's node is down. */
  noteWhere(where, what) {
    const done = this.done;
    done.where = where;
    done.choices = [];
    if (where === undefined) {
      done.note = null; // an older node: it does not say
    } else if (where === null) {
      done.note = { kind: 'warn', keys: ['done.noPrinter'] };
    } else if (where.reachable === false) {
      done.note = { kind: 'alert', keys: ['done.printerUnreachable', 'done.printLater'], params: where };
      this.offerOtherPrinters(done);
    } else {
      const key = what === 'duplicate' ? 'done.duplicateSent' : 'done.printedOn';
      const onOtherNode = where.node && this.hereNode && where.node !== this.hereNode;
      done.note = { kind: 'ok', keys: [onOtherNode ? `${key}Node` : key], params: where };
    }
  }

  /** Every reachable printer of the store but the unreachable one, fresh from the node. */
  async offerOtherPrinters(done) {
    const connection = this.connection;
    let reply = this.status;
    try {
      reply = await this.client.call('printer/status');
      if (connection === this.connection) {
        this.status = reply; // the top bar says it too
        this.render();
      }
    } catch {
      // Keep what the subscription gave: better stale choices than none.
    }
    if (this.done !== done) return; // the cashier moved on
    const unreachable = done.where;
    done.choices = (reply?.store_printers ?? []).filter((printer) => printer.reachable
      && !(printer.name === unreachable?.printer && printer.node === unreachable?.node));
    this.render();
  }

  async reprint() {
    const done = this.done;
    if (!done || done.busy) return;
    await this.send(done, { sale_id: done.saleId }, 'duplicate');
  }

  async printElsewhere(printer, node) {
    const done = this.done;
    if (!done || done.busy) return;
    await this.send(done, { sale_id: done.saleId, printer, node }, 'duplicate');
  }

  async send(done, args, what) {
    if (!this.session().ready) {
      this.showError({ code: 'offline' });
      return;
    }
    done.busy = true;
    this.render();
    try {
      const result = await this.client.call('printer/reprint', args);
      // Sent instead of an original that never printed: it is the original.
      done.notPrinted = false;
      if (this.done === done) this.noteWhere(result, result?.copy === 'original' ? 'printed' : what);
    } catch (error) {
      this.showError(error);
    } finally {
      done.busy = false;
      this.render();
    }
  }

  // --- a cash sale whose drawer pulse is in doubt: the cashier says, or opens it (once) ---

  /** A drawer was found in doubt, or opened, somewhere in the store: ask the node again. */
  async refreshDrawers(connection) {
    if (connection !== this.connection || !this.client.online) return;
    try {
      const status = await this.client.call('printer/status');
      if (connection !== this.connection) return;
      this.status = status;
      this.render();
    } catch {
      // The connection went: the next one subscribes afresh.
    }
  }

  /** The drawers in doubt the cashier has not answered yet. */
  get doubts() {
    const doubts = this.client.online ? (this.status?.drawers_in_doubt ?? []) : [];
    return doubts.filter((doubt) => !this.doubtsAnswered.has(doubt.sale_id));
  }

  async openDrawerForSale(saleId) {
    if (this.doubtBusy) return;
    if (!this.session().ready) {
      this.showError({ code: 'offline' });
      return;
    }
    this.doubtBusy = true;
    this.render();
    try {
      const result = await this.client.call('drawer/open_for_sale', { sale_id: saleId });
      this.doubtsAnswered.add(saleId);
      this.showNotice(t('drawer.openSent', { printer: result?.printer ?? '' }));
    } catch (error) {
      if (error.code === 'drawer_already_requested' || error.code === 'drawer_not_in_doubt') {
        this.doubtsAnswered.add(saleId); // settled meanwhile (another till, another node)
      }
      this.showError(error);
    } finally {
      this.doubtBusy = false;
      this.render();
    }
  }

  /** Receipts that may not have printed (a restored node's unfinished jobs), not answered yet. */
  get receiptDoubts() {
    const doubts = this.client.online ? (this.status?.receipts_in_doubt ?? []) : [];
    return doubts.filter((doubt) => !this.receiptsAnswered.has(doubt.sale_id));
  }

  /** The customer has the receipt (asked no more), or a DUPLICATA goes to the till's printer. */
  async answerReceipt(saleId, reprint) {
    if (!reprint) {
      this.receiptsAnswered.add(saleId);
      this.render();
      return;
    }
    if (this.doubtBusy) return;
    if (!this.session().ready) {
      this.showError({ code: 'offline' });
      return;
    }
    this.doubtBusy = true;
    this.render();
    try {
      const result = await this.client.call('printer/reprint', { sale_id: saleId });
      this.receiptsAnswered.add(saleId);
      this.showNotice(t('receiptDoubt.sent', { printer: result?.printer ?? '' }));
    } catch (error) {
      this.showError(error);
    } finally {
      this.doubtBusy = false;
      this.render();
    }
  }

  renderDoubts() {
    const banner = this.doubtBanner();
    const doubts = this.doubts;
    const receipts = this.receiptDoubts;
    banner.hidden = !doubts.length && !receipts.length;
    const receiptRows = receipts.slice(0, 3).map((doubt) => el(
      'div',
      { class: 'drawer-doubt-sale', dataset: { sale: doubt.sale_id } },
      el('span', {}, t('receiptDoubt.text', { receipt: doubt.receipt_number })),
      ' ',
      el('button', { type: 'button', dataset: { sale: doubt.sale_id, receipt: 'reprint' }, disabled: this.doubtBusy },
        t('receiptDoubt.reprint')),
      ' ',
      el('button', { type: 'button', dataset: { sale: doubt.sale_id, receipt: 'has-it' } },
        t('receiptDoubt.hasIt')),
    ));
    banner.replaceChildren(...receiptRows, ...doubts.slice(0, 3).map((doubt) => el(
      'div',
      { class: 'drawer-doubt-sale', dataset: { sale: doubt.sale_id } },
      el('span', {}, t('drawer.doubt', { receipt: doubt.receipt_number })),
      ' ',
      el('button', { type: 'button', class: 'drawer-open', dataset: { sale: doubt.sale_id }, disabled: this.doubtBusy },
        t('drawer.openForSale')),
      ' ',
      el('button', { type: 'button', class: 'drawer-was-open', dataset: { sale: doubt.sale_id, answer: 'opened' } },
        t('drawer.wasOpen')),
    )));
  }

  // --- no sale: a manager opens the drawer, with a reason ---

  openNoSale() {
    if (this.session().cashier?.role !== 'manager') return;
    if (!this.session().ready) {
      this.showError({ code: 'offline' });
      return;
    }
    $('#no-sale-error').hidden = true;
    $('#no-sale-dialog').showModal();
    $('#no-sale-reason').focus();
  }

  async confirmNoSale() {
    const reason = $('#no-sale-reason').value.trim();
    if (!reason) return this.dialogError({ code: 'reason_required' });
    const button = $('#no-sale-confirm');
    button.disabled = true;
    try {
      const result = await this.client.call('drawer/open', { reason });
      $('#no-sale-dialog').close();
      this.showNotice(t('noSale.done', { printer: result?.printer ?? '' }));
    } catch (error) {
      this.dialogError(error); // the dialog is above the error banner: say it there
    } finally {
      button.disabled = false;
    }
  }

  dialogError(error) {
    const message = $('#no-sale-error');
    message.textContent = errorText(error);
    message.hidden = false;
    $('#no-sale-reason').focus();
  }

  showNotice(text) {
    const notice = $('#notice');
    notice.textContent = text;
    notice.hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => this.hideNotice(), NOTICE_HIDE_MS);
  }

  hideNotice() {
    clearTimeout(this.noticeTimer);
    $('#notice').hidden = true;
  }

  // --- rendering ---

  render() {
    this.renderState();
    this.renderDoubts();
    this.renderDone();
    const { cashier } = this.session();
    $('#no-sale').hidden = cashier?.role !== 'manager';
  }

  renderState() {
    const badge = $('#printer-status');
    const help = $('#printer-help');
    const view = this.client.online ? tillPrinterOf(this.status, this.tillCode, this.hereNode) : null;
    if (!view) {
      // No node, no printer: the connection status says it all.
      badge.hidden = true;
      badge.removeAttribute('data-state');
      help.hidden = true;
      return;
    }
    const level = printerLevel(view);
    badge.hidden = false;
    badge.dataset.state = view.state;
    badge.dataset.level = level;
    badge.textContent = stateLabel(view);
    badge.title = view.detail ?? '';
    help.hidden = level !== 'alert';
    help.textContent = level === 'alert' ? helpText(view) : '';
  }

  renderDone() {
    const section = $('#done-print');
    const done = this.done;
    section.hidden = !done;
    if (!done) return;
    const note = $('#print-note');
    note.hidden = !done.note;
    if (done.note) {
      note.dataset.kind = done.note.kind;
      note.replaceChildren(...done.note.keys.map((key) => el('span', {}, t(key, done.note.params))));
    }
    const choices = $('#printer-choices');
    choices.hidden = !done.choices.length;
    choices.replaceChildren(
      ...(done.choices.length ? [el('span', { class: 'choices-label' }, t('done.chooseOther'))] : []),
      ...done.choices.map((printer) => el(
        'button',
        { type: 'button', class: 'printer-choice', dataset: { printer: printer.name, node: printer.node }, disabled: done.busy },
        t('done.choice', { printer: printer.name, node: printer.node }),
      )),
    );
    const reprint = $('#reprint');
    reprint.hidden = done.where === null; // no printer for this till: nothing to reprint on
    reprint.textContent = t(done.notPrinted ? 'done.printReceipt' : 'done.reprint');
    reprint.disabled = done.busy;
  }
}
