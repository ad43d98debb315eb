// The sell screen's numeric keypad: the weight of a product sold by the kilo
// (grams, or kilograms with a decimal comma), or the price of an open-price
// product ("Divers"). Touch (the keys) and keyboard (typed into the field,
// Enter, Escape) alike. A <dialog> made once, outside the screens, so their
// keys, taps and the scanner's refocus leave it alone.
//
//   const grams = await keypad.askWeight(product);   // null: cancelled
//   const cents = await keypad.askPrice(product);
import { t, formatMoney } from './i18n.js';
import { el } from './dom.js';
import { lineGross } from './pricing.js';
import { MAX_GRAMS } from './basket.js';

const MAX_PRICE = 100_000_000; // cents, as basket/add takes a typed price

/** "450" (g) → 450; "0,45" or "0.450" → 450 (a separator means kilograms); "1,2" kg → 1200. Null if not a weight. */
export function parseWeight(text, unit = 'g') {
  const spaced = String(text).replace(/\s/g, '');
  // A unit typed after the number wins over the keypad's ("1kg" is a kilo, not a gram).
  if (/kg$/i.test(spaced)) unit = 'kg';
  else if (/g$/i.test(spaced)) unit = 'g';
  const cleaned = spaced.replace(/k?g$/i, '');
  const decimal = /^(\d{1,3})[.,](\d{0,3})$/.exec(cleaned);
  let grams = null;
  if (decimal) grams = Number(decimal[1]) * 1000 + Number(decimal[2].padEnd(3, '0'));
  else if (/^\d{1,6}$/.test(cleaned)) grams = unit === 'kg' ? Number(cleaned) * 1000 : Number(cleaned);
  return grams !== null && grams >= 1 && grams <= MAX_GRAMS ? grams : null;
}

/** "3,50", "3.5", "3 €" → 350 cents; null if not a price. */
export function parsePrice(text) {
  const cleaned = String(text).replace(/[\s€]/g, '');
  const match = /^(\d{1,7})(?:[.,](\d{0,2}))?$/.exec(cleaned);
  if (!match) return null;
  const cents = Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
  return cents <= MAX_PRICE ? cents : null;
}

export class SellKeypad {
  constructor() {
    this.dialog = null;
    this.pending = null; // {kind: 'weight'|'price', product, resolve}
    this.unit = 'g';
  }

  get isOpen() {
    return Boolean(this.dialog?.open);
  }

  askWeight(product) {
    this.unit = 'g';
    return this.ask({ kind: 'weight', product });
  }

  askPrice(product) {
    return this.ask({ kind: 'price', product });
  }

  ask({ kind, product }) {
    this.build();
    this.pending?.resolve(null);
    return new Promise((resolve) => {
      this.pending = { kind, product, resolve };
      this.field.value = '';
      this.render();
      if (!this.dialog.open) this.dialog.showModal();
      this.field.focus();
    });
  }

  /** What the field says, or null when it is not a weight (grams) or a price (cents). */
  value() {
    if (!this.pending) return null;
    return this.pending.kind === 'weight' ? parseWeight(this.field.value, this.unit) : parsePrice(this.field.value);
  }

  build() {
    if (this.dialog) return;
    const keys = ['7', '8', '9', '4', '5', '6', '1', '2', '3', ',', '0', 'back'];
    this.dialog = el('dialog', { id: 'keypad-dialog', class: 'card keypad-dialog' },
      el('form', { id: 'keypad-form', autocomplete: 'off' },
        el('h1', { id: 'keypad-title' }),
        el('p', { id: 'keypad-help', class: 'help' }),
        el('div', { class: 'keypad-entry' },
          el('input', { id: 'keypad-value', inputmode: 'decimal', autocomplete: 'off', maxlength: '12' }),
          el('div', { id: 'keypad-units', class: 'keypad-units' },
            el('button', { type: 'button', dataset: { unit: 'g' } }, 'g'),
            el('button', { type: 'button', dataset: { unit: 'kg' } }, 'kg'))),
        el('p', { id: 'keypad-preview', class: 'keypad-preview', role: 'status' }),
        el('div', { class: 'pinpad keypad-keys' },
          ...keys.map((key) => el('button', { type: 'button', dataset: { key } }, key === 'back' ? '⌫' : key))),
        el('div', { class: 'dialog-buttons' },
          el('button', { id: 'keypad-cancel', type: 'button', class: 'ghost big' }),
          el('button', { id: 'keypad-submit', type: 'submit', class: 'primary big' }))));
    document.body.append(this.dialog);
    this.field = this.dialog.querySelector('#keypad-value');
    const dialog = this.dialog;
    dialog.addEventListener('keydown', (event) => event.stopPropagation()); // not the till's shortcuts
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault(); // Esc: resolve with nothing
      this.close(null);
    });
    this.field.addEventListener('input', () => this.render());
    dialog.querySelector('#keypad-cancel').addEventListener('click', () => this.close(null));
    dialog.querySelector('#keypad-units').addEventListener('click', (event) => {
      const unit = event.target.closest('[data-unit]')?.dataset.unit;
      if (!unit) return;
      this.unit = unit;
      this.render();
      this.field.focus();
    });
    dialog.querySelector('.keypad-keys').addEventListener('click', (event) => {
      const key = event.target.closest('[data-key]')?.dataset.key;
      if (!key) return;
      this.field.value = key === 'back' ? this.field.value.slice(0, -1) : this.field.value + key;
      this.render();
    });
    dialog.querySelector('#keypad-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const value = this.value();
      if (value === null) {
        this.field.focus();
        this.field.select();
        return;
      }
      this.close(value);
    });
  }

  render() {
    if (!this.dialog || !this.pending) return;
    const { kind, product } = this.pending;
    const weight = kind === 'weight';
    const d = this.dialog;
    d.dataset.kind = kind;
    d.querySelector('#keypad-title').textContent = product.name;
    d.querySelector('#keypad-help').textContent = weight
      ? t('keypad.weightHelp', { price: formatMoney(product.price ?? 0) })
      : t('keypad.priceHelp');
    d.querySelector('#keypad-units').hidden = !weight;
    for (const button of d.querySelectorAll('[data-unit]')) {
      button.setAttribute('aria-pressed', String(button.dataset.unit === this.unit));
    }
    this.field.placeholder = weight ? t(this.unit === 'g' ? 'keypad.grams' : 'keypad.kilograms') : t('keypad.amount');
    d.querySelector('#keypad-cancel').textContent = t('keypad.cancel');
    d.querySelector('#keypad-submit').textContent = t('keypad.add');
    const value = this.value();
    let preview = '';
    if (value !== null && weight && Number.isInteger(product.price)) {
      const price = lineGross({ unit: 'g', unit_price: product.price, quantity: value });
      preview = t('keypad.weightPreview', { grams: value, price: formatMoney(price) });
    } else if (value !== null && !weight) {
      preview = formatMoney(value);
    } else if (this.field.value.trim()) {
      preview = t(weight ? 'keypad.badWeight' : 'keypad.badPrice');
    }
    d.querySelector('#keypad-preview').textContent = preview;
    d.querySelector('#keypad-submit').disabled = value === null;
  }

  close(value) {
    const pending = this.pending;
    this.pending = null;
    if (this.dialog?.open) this.dialog.close();
    pending?.resolve(value);
  }
}
