// The pairing screen: shown while this browser has no till token. A code
// (typed, or from a `#pair=CODE` link) gets one from the node (/api/pair).
import { CommandError } from './client.js';
import { $ } from './dom.js';
import { forgetTokensNoLongerNeeded, proofForPairing } from './earlier-tills.js';

export const TOKEN_KEY = 'edge.till_token';
const DEFAULT_TILL_NAME = 'Caisse';

/** A `#pair=CODE` link pairs this till straight away; the code leaves the URL at once. */
function takePairCodeFromUrl() {
  const match = /[#&]pair=([^&]*)/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return decodeURIComponent(match[1]);
}

/** protocol.md gives the statuses of /api/pair errors, not their body: accept the likely shapes. */
function pairingError(status, body) {
  const fallbackCode = { 400: 'invalid_request', 403: 'invalid_pairing_code', 429: 'too_many_attempts' }[status];
  const error = body?.error;
  if (error && typeof error === 'object') return new CommandError(error.code ?? fallbackCode, error.message);
  if (typeof error === 'string') return new CommandError(error, body.message);
  return new CommandError(body?.code ?? fallbackCode ?? 'network', body?.message ?? `HTTP ${status}`);
}

/** `ui.startConnection()` is called once the till has its token. */
export function pairScreen(ui) {
  /**
   * Paired again, maybe in another store: the catalogue copy and the nodes known
   * belong to the till it was. Its sales stay (offline.js keeps them under that
   * store and till): sent by the new till when it showed that till's token at
   * pairing (same store), else shown as waiting for their store's node.
   */
  async function forgetThePreviousTill() {
    ui.client.forgetNodes();
    await ui.session.catalogue.forget().catch((error) => console.warn('the catalogue copy was not emptied', error));
    await forgetTokensNoLongerNeeded(ui.session.ledger.store).catch(() => {});
  }

  /**
   * The tokens of the tills this browser was in the node's store whose sales still
   * wait here: with them the new till sends those sales (earlier-tills.js). The node's
   * store comes from /healthz first, so no token ever goes to another store's node.
   */
  async function proofOfEarlierTills() {
    try {
      const store = ui.session.ledger.store;
      if (!store) return [];
      const health = await fetch('/healthz').then((response) => (response.ok ? response.json() : null));
      return await proofForPairing(store, health?.store_id, localStorage.getItem(TOKEN_KEY));
    } catch (error) {
      console.warn('no proof of the earlier tills: their sales stay on this till', error);
      return [];
    }
  }

  async function pair(code, name) {
    const button = $('#pair-submit');
    button.disabled = true;
    try {
      const previous = await proofOfEarlierTills();
      let response;
      try {
        response = await fetch('/api/pair', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ code, name, ...(previous.length ? { previous } : {}) }),
        });
      } catch {
        throw new CommandError('network', 'server unreachable');
      }
      const body = await response.json().catch(() => null);
      if (!response.ok) throw pairingError(response.status, body);
      await forgetThePreviousTill();
      localStorage.setItem(TOKEN_KEY, body.token);
      $('#pair-code').value = '';
      ui.hideError();
      ui.startConnection();
    } catch (error) {
      ui.show('pair');
      ui.showError(error);
    } finally {
      button.disabled = false;
    }
  }

  /** At start: pairs at once from a `#pair=` link; false when there is none. */
  function pairFromLink() {
    const code = takePairCodeFromUrl();
    if (!code) return false;
    $('#pair-code').value = code;
    ui.show('pair');
    pair(code, DEFAULT_TILL_NAME);
    return true;
  }

  function wire() {
    $('#pair-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const code = $('#pair-code').value.trim();
      if (!code) return $('#pair-code').focus();
      pair(code, $('#pair-name').value.trim() || DEFAULT_TILL_NAME);
    });
  }

  return {
    name: 'pair',
    wire,
    render() {},
    focus: () => ($('#pair-code').value ? $('#pair-name') : $('#pair-code')).focus(),
    pairFromLink,
  };
}
