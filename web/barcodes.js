// The till's copy of edge/selling/barcodes.py: GTIN check digits, and in-store
// codes (prefix 02, 20-29) carrying a price or a weight, read with the store's
// layouts (`{prefix, layout: "PPIIIIIVVVVVC", value: "price"|"weight"}`; P the
// prefix, I the item code, X a check digit over the value, not checked, V the
// value, C the EAN-13 check digit). Kept identical by tests/vectors/pricing.json.

const IN_STORE_PREFIXES = ['02', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29'];
const VALUE_KINDS = ['price', 'weight'];

/** Same codes as the node's errors (docs/protocol.md). */
export class BarcodeError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function isDigits(text) {
  return typeof text === 'string' && /^[0-9]+$/.test(text);
}

/** The check digit for the GTIN whose other digits are `digits`. */
export function gtinCheckDigit(digits) {
  let total = 0;
  for (let position = 0; position < digits.length; position += 1) {
    const digit = Number(digits[digits.length - 1 - position]);
    total += digit * (position % 2 === 0 ? 3 : 1);
  }
  return (10 - (total % 10)) % 10;
}

export function isValidGtin(code) {
  if (!isDigits(code) || ![8, 12, 13, 14].includes(code.length)) return false;
  return gtinCheckDigit(code.slice(0, -1)) === Number(code[code.length - 1]);
}

/** Why a store's layout cannot be used (null when it can). */
export function layoutProblem(layout) {
  if (layout === null || typeof layout !== 'object' || Array.isArray(layout)) {
    return 'a layout is an object {prefix, layout, value}';
  }
  if (!IN_STORE_PREFIXES.includes(layout.prefix)) return "'prefix' must be 02 or 20 to 29";
  if (!VALUE_KINDS.includes(layout.value)) return "'value' must be 'price' or 'weight'";
  const pattern = layout.layout;
  if (typeof pattern !== 'string' || pattern.length !== 13) {
    return "'layout' must be 13 letters of P, I, X, V and C";
  }
  if (!/^PP[IXV]{10}C$/.test(pattern)) {
    return "'layout' is PP, then I, X and V, then C (e.g. PPIIIIIVVVVVC)";
  }
  if (!pattern.includes('V') || pattern.split('X').length - 1 > 1) {
    return "'layout' needs at least one V and at most one X";
  }
  return null;
}

/**
 * {lookup, value, kind} for an in-store code the store set a layout for, else
 * null. `lookup` is the product's barcode in the catalogue (the V and X digits
 * 0, the check digit worked out again). Throws a BarcodeError
 * `invalid_barcode` for such a code with a wrong check digit.
 */
export function readEmbedded(barcode, layouts) {
  if (typeof barcode !== 'string' || barcode.length !== 13 || !isDigits(barcode)) return null;
  const layout = layouts.find((candidate) => layoutProblem(candidate) === null
    && candidate.prefix === barcode.slice(0, 2));
  if (layout === undefined) return null;
  if (!isValidGtin(barcode)) {
    throw new BarcodeError('invalid_barcode', `${barcode} has a wrong check digit: scan it again`);
  }
  const pattern = layout.layout;
  let valueDigits = '';
  let body = '';
  for (let i = 0; i < 13; i += 1) {
    if (pattern[i] === 'V') valueDigits += barcode[i];
    if (i < 12) body += pattern[i] === 'V' || pattern[i] === 'X' ? '0' : barcode[i];
  }
  return { lookup: body + String(gtinCheckDigit(body)), value: Number(valueDigits), kind: layout.value };
}
