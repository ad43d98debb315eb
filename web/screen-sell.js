// The sell screen: the scan field, the product grid beside it
// (screen-grid.js), the search (screen-sell-search.js), the basket and its
// totals (screen-sell-basket.js), and the buttons to pay or void. What a scan
// or a tap does is decided here: a product sold by the kilo asks its weight,
// an open-price one its price (screen-sell-keypad.js; past the store's limit a
// manager approves, approval.js), an unknown barcode offers search and an
// open price (screen-sell-unknown.js). The basket itself is the session's
// (session.js). A code scanned on another screen (the pay screen) comes here
// too (ui.scan). See app.js for the `ui` every screen is given.
import { t, formatMoney } from './i18n.js';
import { MAX_QUANTITY } from './session.js';
import { $, setText } from './dom.js';
import { basketView } from './screen-sell-basket.js';
import { searchView } from './screen-sell-search.js';
import { SellKeypad } from './screen-sell-keypad.js';
import { unknownBarcodeOffer } from './screen-sell-unknown.js';

const CLEAR_CONFIRM_MS = 4000;

function isPrintableKey(event) {
  return event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey;
}

/** "3017620422003" → {barcode, quantity: 1}; "6*3017620422003" → six of them. */
export function parseScan(text) {
  const match = /^(\d{1,4})\s*[*xX]\s*(\S+)$/.exec(text);
  if (match && Number(match[1]) >= 1) return { barcode: match[2], quantity: Math.min(Number(match[1]), MAX_QUANTITY) };
  return { barcode: text, quantity: 1 };
}

export function sellScreen(ui) {
  const { session } = ui;
  const basket = basketView(ui);
  const keypad = new SellKeypad();
  const search = searchView(ui, { addProduct, addBarcode: (code) => scan(code) });
  const unknown = unknownBarcodeOffer(ui, { searchFor: (text) => search.start(text), addProduct });
  let clearArmedUntil = 0;

  // --- adding: scans, taps, search picks ---

  /** Every add goes through here: the banner and the offer of the last one go, the queue takes it. */
  async function addItem(item) {
    ui.hideError(); // the cashier has moved on to the next item
    unknown.hide();
    ui.screens.parked.close();
    const outcome = await session.addItem(item);
    if (!outcome.ok && !outcome.cancelled) await onAddRefused(outcome.error);
    return outcome;
  }

  /** The node (or the till offline) wants a weight or a price for this product: ask it. */
  async function onAddRefused(error) {
    const productId = error?.data?.product_id;
    if (error?.code === 'unknown_barcode') return; // the offer shows (session event)
    if (!productId || !['weight_required', 'price_required'].includes(error.code)) return;
    const product = (await session.catalogue.find(productId)) ?? { id: productId, name: productId, price: null };
    if (error.code === 'weight_required') await addWeighed({ ...product, unit: 'kg' });
    else await addOpenPrice({ ...product, open_price: true });
  }

  /** A tile, a search result or an offer: by product id, asking a weight or a price when it needs one. */
  async function addProduct(product) {
    if (product.unit === 'kg') return addWeighed(product);
    if (product.open_price) return addOpenPrice(product);
    return addItem({ productId: product.id, label: product.name });
  }

  async function addWeighed(product) {
    const grams = await keypad.askWeight(product);
    refocusScan();
    if (grams !== null) await addItem({ productId: product.id, grams, label: product.name });
  }

  async function addOpenPrice(product) {
    const price = await keypad.askPrice(product);
    refocusScan();
    if (price === null) return;
    const send = (approval) => addItem({ productId: product.id, price, approval, label: product.name });
    const limit = session.auth?.settings?.open_price_limit ?? 0;
    // Past the store's limit the node asks for a manager (approval.js asks one on the spot).
    if (ui.approval) await ui.approval.run(send, t('approval.whyOpenPrice', { limit: formatMoney(limit) }));
    else await send(null); // no prompt on this till: manager_required shows in the banner
    refocusScan();
  }

  /** Scanner (or hand) input, here or on another screen: "3017620422003" or "6*3017620422003". */
  function scan(text) {
    const code = String(text ?? '').trim();
    if (!code) return Promise.resolve(null);
    const { barcode, quantity } = parseScan(code);
    return addItem({ barcode, quantity });
  }

  function onScanKeydown(event) {
    if (event.key !== 'Enter') return;
    event.preventDefault();
    const field = $('#scan');
    const text = field.value.trim();
    field.value = '';
    scan(text);
  }

  /** Someone typing a product name into the scan box: move them to the search field. */
  function onScanInput() {
    const field = $('#scan');
    if (/^\p{L}/u.test(field.value)) {
      const text = field.value;
      field.value = '';
      search.start(text);
    }
  }

  // --- voiding ---

  function canClearBasket() {
    return session.hasLines || session.hasPendingAdds();
  }

  /** First press arms the button, a second press within a few seconds voids the basket. */
  function onClearBasketPressed() {
    if (!canClearBasket()) return;
    if (Date.now() < clearArmedUntil) {
      disarmClear();
      session.clearBasket();
    } else {
      clearArmedUntil = Date.now() + CLEAR_CONFIRM_MS;
      setTimeout(renderBasketButtons, CLEAR_CONFIRM_MS + 50);
      renderBasketButtons();
    }
  }

  function disarmClear() {
    clearArmedUntil = 0;
    renderBasketButtons();
  }

  /** The scanner types into whatever has focus: give it back to #scan unless a field is in use. */
  function refocusScan() {
    if (ui.screen !== 'sell' || keypad.isOpen) return;
    const active = document.activeElement;
    if (active && active !== $('#scan') && active.matches('input, textarea, select')) return;
    $('#scan').focus({ preventScroll: true });
  }

  // --- rendering ---

  function renderBasket() {
    basket.render();
    renderBasketButtons();
  }

  function renderBasketButtons() {
    const hasLines = session.hasLines;
    $('#pay-cash').disabled = !hasLines;
    $('#pay-card').disabled = !hasLines;
    const clearButton = $('#clear-basket');
    const armed = Date.now() < clearArmedUntil;
    clearButton.disabled = !canClearBasket();
    clearButton.classList.toggle('armed', armed);
    setText($('#clear-basket-label'), armed ? t('sell.clearConfirm') : t('sell.clear'));
  }

  // --- keys and taps ---

  function onKey(event) {
    switch (event.key) {
      case 'F2':
        $('#search').focus();
        $('#search').select();
        break;
      case 'F4':
        onClearBasketPressed();
        break;
      case 'F8':
        ui.screens.pay.open('cash');
        break;
      case 'F9':
        ui.screens.pay.open('card');
        break;
      case 'Escape':
        disarmClear();
        search.close();
        unknown.hide();
        ui.screens.parked.close();
        break;
      default:
        // A key typed while a button has focus belongs to the scanner: send it to #scan.
        if (isPrintableKey(event) && !event.target.matches('input, textarea, select')) $('#scan').focus();
        return;
    }
    event.preventDefault();
  }

  function wire() {
    $('#scan').addEventListener('keydown', onScanKeydown);
    $('#scan').addEventListener('input', onScanInput);
    $('#scan').addEventListener('blur', () => setTimeout(refocusScan, 0));
    search.wire();
    basket.wire();
    $('#pay-cash').addEventListener('click', () => ui.screens.pay.open('cash'));
    $('#pay-card').addEventListener('click', () => ui.screens.pay.open('card'));
    $('#clear-basket').addEventListener('click', onClearBasketPressed);
    $('#logout').addEventListener('click', ui.logout);
    // Any tap outside the search closes it, and the scan box gets the focus back.
    $('#screen-sell').addEventListener('click', (event) => {
      if (!event.target.closest('#search, #search-results') && $('#search').value) search.close();
      refocusScan();
    });
    session.addEventListener('unknown-barcode', (event) => unknown.show(event.detail.barcode));
    session.addEventListener('succeeded', () => unknown.hide());
  }

  return {
    name: 'sell',
    wire,
    render() {
      renderBasket();
      search.render();
      unknown.render();
    },
    renderBasket,
    onKey,
    focus: refocusScan,
    onLeave: disarmClear,
    disarmClear,
    closeSearch: () => search.close(),
    refocusScan,
    scan,
    addProduct,
  };
}
