// The login screen: pick a cashier tile, type the PIN (a node checks it:
// session.login). Also asks the PIN again of a cashier whose session came
// back from a reload, once a node answers (not over a sale's change due).
import { t } from './i18n.js';
import { $, el } from './dom.js';

export function loginScreen(ui) {
  const { session } = ui;
  const login = {
    name: 'login',
    selectedCashierId: null,
    pinWanted: false, // a node answered after a reload: ask the PIN once the change due is read
    wire,
    render,
    onKey,
    select,
    askForPin,
    askForPinIfWanted,
    signedIn,
  };

  function select(cashierId) {
    login.selectedCashierId = cashierId;
    $('#pin').value = '';
    render();
  }

  function onPinKey(key) {
    const pin = $('#pin');
    if (key === 'clear') pin.value = '';
    else if (key === 'back') pin.value = pin.value.slice(0, -1);
    else if (pin.value.length < pin.maxLength) pin.value += key;
  }

  async function submit() {
    const cashierId = login.selectedCashierId;
    const pin = $('#pin').value;
    if (!cashierId) return ui.showError({ code: 'choose_cashier' });
    // The till keeps no PINs: a cashier already logged in stays so offline, nobody new logs in.
    if (!ui.client.online) return ui.showError({ code: 'login_offline' });
    const button = $('#login-submit');
    button.disabled = true;
    try {
      await session.login(cashierId, pin); // "signed-in" (below) comes before the node is brought up to date
    } catch (error) {
      $('#pin').value = '';
      ui.showError(error);
      button.disabled = false;
      return;
    }
    ui.show('sell');
  }

  /** The node accepted the PIN. */
  function signedIn() {
    login.pinWanted = false;
    $('#pin').value = '';
    ui.hideError();
    $('#login-submit').disabled = false;
  }

  /** Asks the signed-in cashier's PIN again (after a reload); not over the change due of a sale. */
  function askForPin() {
    if (ui.screen === 'done' || session.paying) {
      login.pinWanted = true; // the done screen's "new sale" or the pay screen's "back" asks
      return;
    }
    login.pinWanted = false;
    login.selectedCashierId = session.cashier.id;
    $('#pin').value = '';
    ui.show('login');
  }

  function askForPinIfWanted() {
    if (login.pinWanted && ui.client.online) askForPin();
  }

  function render() {
    const cashiers = session.auth?.cashiers ?? [];
    // One cashier only: nothing to choose.
    if (cashiers.length === 1 && !login.selectedCashierId) login.selectedCashierId = cashiers[0].id;
    $('#login-connecting').hidden = Boolean(session.auth) && ui.client.online;
    $('#cashier-list').replaceChildren(
      ...cashiers.map((cashier) =>
        el(
          'button',
          {
            type: 'button',
            class: 'cashier-tile',
            dataset: { cashierId: cashier.id },
            'aria-pressed': String(cashier.id === login.selectedCashierId),
          },
          el('span', { class: 'avatar' }, (cashier.name || '?').slice(0, 1).toUpperCase()),
          el('span', { class: 'cashier-tile-name' }, cashier.name),
        ),
      ),
    );
    const selected = cashiers.find((cashier) => cashier.id === login.selectedCashierId);
    $('#login-who').textContent = selected ? t('login.who', { name: selected.name }) : t('login.chooseCashier');
  }

  function onKey(event) {
    if (event.target === $('#pin')) {
      if (event.key === 'Escape') $('#pin').value = '';
      return; // the form's submit handles Enter
    }
    if (/^\d$/.test(event.key)) onPinKey(event.key);
    else if (event.key === 'Backspace') onPinKey('back');
    else if (event.key === 'Escape') onPinKey('clear');
    // Enter on a focused cashier tile selects it; anywhere else (even on a PIN-pad key just tapped) it signs in.
    else if (event.key === 'Enter' && !event.target.closest('[data-cashier-id]')) submit();
    else return;
    event.preventDefault();
  }

  function wire() {
    $('#cashier-list').addEventListener('click', (event) => {
      const tile = event.target.closest('[data-cashier-id]');
      if (tile) select(tile.dataset.cashierId);
    });
    $('#pinpad').addEventListener('click', (event) => {
      const key = event.target.closest('[data-pin-key]');
      if (key) onPinKey(key.dataset.pinKey);
    });
    $('#login-form').addEventListener('submit', (event) => {
      event.preventDefault();
      submit();
    });
  }

  // login: no focus on #pin, so a tablet keeps its on-screen keyboard closed; keys are routed there anyway.
  return login;
}
