// Every string the till shows, in French and English, plus money and VAT formatting.
// A value is either a string with {placeholders} or a function of the params (for plurals).

const STRINGS = {
  fr: {
    'app.title': 'Caisse',
    'lang.toggle': 'EN',
    'lang.toggleTitle': 'Switch to English',

    'status.online': 'Connecté',
    'status.offline': 'Hors ligne — reconnexion…',
    'status.unpaired': 'Caisse non appairée',
    'status.pending': ({ count }) => `${count} en attente`,
    'status.offlineWaiting': ({ count }) =>
      `Hors ligne — ${count} ${count <= 1 ? 'vente' : 'ventes'} en attente`,
    'status.salesToSend': ({ count }) => `${count} ${count <= 1 ? 'vente' : 'ventes'} à envoyer`,
    'status.servedBy': 'Caisse servie par le serveur {node} ({url})',
    'status.node': 'serveur {node}',

    'pair.title': 'Appairer cette caisse',
    'pair.help': 'Saisissez le code d’appairage donné par le responsable informatique du magasin.',
    'pair.code': 'Code d’appairage',
    'pair.name': 'Nom de la caisse',
    'pair.namePlaceholder': 'Caisse',
    'pair.submit': 'Appairer',
    'pair.defaultName': 'Caisse',

    'login.title': 'Qui encaisse ?',
    'login.connecting': 'Connexion au serveur…',
    'login.pin': 'Code PIN',
    'login.chooseCashier': 'Touchez votre nom',
    'login.who': ({ name }) => `Bonjour ${name}, votre code :`,
    'login.submit': 'Valider',
    'login.clearPin': 'Effacer',
    'login.backspace': 'Effacer le dernier chiffre',

    'sell.scanPlaceholder': 'Scanner un article…',
    'sell.searchPlaceholder': 'Rechercher un produit',
    'sell.empty': 'Ticket vide — scannez un article',
    'sell.noResults': 'Aucun produit trouvé',
    'sell.pendingLine': 'en attente de connexion…',
    'sell.decrease': 'Diminuer la quantité',
    'sell.increase': 'Augmenter la quantité',
    'sell.remove': 'Retirer la ligne',
    'sell.each': ({ price }) => `${price} l’unité`,
    'sell.items': ({ count }) => (count <= 1 ? `${count} article` : `${count} articles`),
    'sell.total': 'Total',
    'sell.payCash': 'Espèces',
    'sell.payCard': 'Carte',
    'sell.clear': 'Annuler le ticket',
    'sell.clearConfirm': 'Confirmer l’annulation ?',
    'sell.logout': 'Déconnexion',

    'parked.open': 'Paniers en attente',
    'parked.title': 'Paniers ouverts sur d’autres caisses',
    'parked.close': 'Fermer',
    'parked.loading': 'Chargement…',
    'parked.none': 'Aucun panier en attente sur les autres caisses',
    'parked.from': ({ till, cashier }) => `Caisse ${till} — ${cashier}`,

    'vat.rate': 'Taux',
    'vat.base': 'HT',
    'vat.vat': 'TVA',
    'vat.total': 'TTC',

    'pay.titleCash': 'Paiement en espèces',
    'pay.titleCard': 'Paiement par carte',
    'pay.due': 'À payer',
    'pay.cashGiven': 'Montant remis',
    'pay.cashRest': ({ amount }) => `Reste ${amount} en espèces — montant remis`,
    'pay.exact': 'Exact',
    'pay.cardReference': 'Référence du ticket TPE',
    'pay.cardAmount': 'Montant carte',
    'pay.change': ({ amount }) => `Rendu : ${amount}`,
    'pay.short': ({ amount }) => `Manque ${amount}`,
    'pay.back': 'Retour',
    'pay.confirm': 'Valider le paiement',
    'pay.saving': 'Enregistrement…',
    'pay.invalidAmount': 'Montant invalide',

    'done.title': 'Vente enregistrée',
    'done.receipt': 'Ticket n°',
    'done.total': 'Total',
    'done.change': 'Rendu monnaie',
    'done.newSale': 'Nouvelle vente',
    'done.offline': 'Hors ligne — la vente est gardée sur cette caisse et sera envoyée au serveur dès son retour.',
    'done.noReceipt': 'Aucun ticket imprimé : pas d’imprimante hors ligne.',
    'done.printedOn': 'Ticket envoyé à l’imprimante {printer}',
    'done.printedOnNode': 'Ticket envoyé à l’imprimante {printer} (nœud {node})',
    'done.duplicateSent': 'Duplicata envoyé à l’imprimante {printer}',
    'done.duplicateSentNode': 'Duplicata envoyé à l’imprimante {printer} (nœud {node})',
    'done.printerUnreachable': 'Imprimante {printer} injoignable (nœud {node})',
    'done.printLater': 'Le ticket s’imprimera à son retour.',
    'done.chooseOther': 'Ou imprimez-le sur :',
    'done.choice': ({ printer, node }) => `${printer} — nœud ${node}`,
    'done.noPrinter': 'Aucune imprimante pour cette caisse : pas de ticket imprimé.',
    'done.reprint': 'Réimprimer',

    // The till's printer (docs/protocol.md, printer/status): its state, then what to do.
    'printer.state.ready': 'Imprimante prête',
    'printer.state.paper_out': 'Imprimante : plus de papier',
    'printer.state.cover_open': 'Imprimante : capot ouvert',
    'printer.state.error': 'Imprimante : en erreur',
    'printer.state.offline': 'Imprimante : hors ligne',
    'printer.state.unplugged': 'Imprimante : débranchée',
    'printer.state.unreachable': 'Imprimante : injoignable',
    'printer.state.not_found': 'Imprimante : introuvable',
    'printer.state.permission_denied': 'Imprimante : accès refusé',
    'printer.state.busy': 'Imprimante : prise par un autre programme',
    'printer.state.no_backend': 'Imprimante : pilote USB absent',
    'printer.state.starting': 'Imprimante : démarrage…',
    'printer.state.none': 'Aucune imprimante pour cette caisse',
    'printer.state.other': 'Imprimante : {state}',
    'printer.nearEnd': 'Imprimante : bientôt plus de papier',
    'printer.remote': 'Imprimante {name} (nœud {node})',
    'printer.onNode': '(nœud {node})',
    'printer.help.paper_out': 'Mettez un rouleau neuf.',
    'printer.help.cover_open': 'Fermez le capot de l’imprimante.',
    'printer.help.error': 'Éteignez puis rallumez l’imprimante ; si cela continue, prévenez le responsable.',
    'printer.help.offline': 'Vérifiez le papier et le capot de l’imprimante.',
    'printer.help.unplugged': 'Rebranchez le câble de l’imprimante et allumez-la.',
    'printer.help.unreachable': 'Vérifiez que l’imprimante est allumée et branchée au réseau.',
    'printer.help.not_found': 'Branchez et allumez l’imprimante.',
    'printer.help.permission_denied': 'Prévenez le responsable informatique : le serveur n’a pas le droit d’utiliser l’imprimante.',
    'printer.help.busy': 'Prévenez le responsable informatique : un autre programme utilise l’imprimante.',
    'printer.help.no_backend': 'Prévenez le responsable informatique : le pilote USB n’est pas installé.',
    'printer.help.none': 'Prévenez le responsable informatique : aucune imprimante n’est prévue pour cette caisse.',
    'printer.help.nodeDown': 'Le nœud {node}, où elle est branchée, ne répond pas.',
    'printer.help.waiting': 'Les tickets attendent et s’imprimeront dans l’ordre dès qu’elle sera prête.',

    // "No sale": a manager opens the drawer without a sale.
    'noSale.open': 'Ouvrir le tiroir',
    'noSale.title': 'Ouvrir le tiroir sans vente',
    'noSale.reason': 'Motif',
    'noSale.reasonPlaceholder': 'ex. : monnaie pour le marché',
    'noSale.confirm': 'Ouvrir le tiroir',
    'noSale.cancel': 'Annuler',
    'noSale.done': ({ printer }) => `Ouverture du tiroir envoyée à l’imprimante ${printer}`,

    // A cash sale whose drawer pulse the server cannot vouch for (the printing was cut short).
    'drawer.doubt': ({ receipt }) =>
      `Ticket ${receipt} : le tiroir s’est-il ouvert ? L’impression a été interrompue, le serveur ne peut pas le savoir.`,
    'drawer.openForSale': 'Ouvrir le tiroir',
    'drawer.wasOpen': 'Il s’est ouvert',
    'drawer.openSent': ({ printer }) => `Ouverture du tiroir envoyée à l’imprimante ${printer}`,
    // A receipt a node restored from a backup may or may not have printed before.
    'receiptDoubt.text': ({ receipt }) =>
      `Ticket ${receipt} : peut-être pas imprimé (serveur restauré d’une sauvegarde). Le client l’a-t-il ?`,
    'receiptDoubt.reprint': 'Imprimer un duplicata',
    'receiptDoubt.hasIt': 'Il l’a',
    'receiptDoubt.sent': ({ printer }) => `Duplicata envoyé à l’imprimante ${printer}`,

    // Error codes: the server's ones (docs/protocol.md) and a few of the till's own.
    'error.unknown_barcode': ({ barcode }) => `CODE-BARRES INCONNU : ${barcode || '?'}`,
    'error.unknown_product': 'Produit inconnu',
    'error.invalid_pin': 'Code PIN incorrect',
    'error.too_many_attempts': 'Trop d’essais : patientez un moment avant de réessayer',
    'error.disk_full': 'Disque du serveur plein : vente non enregistrée, rien n’a été modifié. Prévenez le support.',
    'error.invalid_token': 'Cette caisse n’est plus reconnue : appairez-la à nouveau',
    'error.invalid_pairing_code': 'Code d’appairage incorrect, déjà utilisé ou expiré',
    'error.invalid_request': 'Demande invalide',
    'error.not_logged_in': 'Aucun caissier connecté',
    'error.unauthorized': 'Caisse non authentifiée',
    'error.no_open_basket': 'Aucun ticket ouvert : ticket resynchronisé',
    'error.basket_mismatch': 'Un autre ticket était ouvert sur cette caisse : il a été repris',
    'error.basket_held': ({ data }) => `Ce ticket est tenu par la caisse ${data?.till ?? '?'}`,
    'error.receipt_number_used': 'Numéro de ticket déjà utilisé : validez à nouveau',
    'error.unknown_line': 'Cette ligne n’existe plus',
    'error.empty_basket': 'Le ticket est vide',
    'error.payment_short': 'Le paiement ne couvre pas le total',
    'error.card_overpay': 'Le montant carte dépasse le total',
    'error.missing_reference': 'Saisissez la référence du ticket TPE',
    'error.internal_error': 'Erreur interne du serveur : rien n’a été modifié',
    'error.disconnected': 'Connexion au serveur perdue',
    'error.offline': 'Hors ligne : impossible pour le moment',
    'error.network': 'Serveur injoignable',
    'error.choose_cashier': 'Touchez d’abord votre nom',
    'error.invalid_amount': 'Montant invalide',
    'error.login_offline':
      'Hors ligne : aucun serveur ne répond, personne ne peut se connecter pour le moment. Un caissier déjà connecté peut continuer à vendre.',
    'error.no_offline_storage': 'Ce navigateur ne peut pas garder de vente hors ligne : attendez le retour du serveur',
    'error.sale_not_sent': ({ receipt, detail }) =>
      `Le serveur refuse la vente ${receipt} (${detail}) : elle reste gardée sur cette caisse, prévenez le responsable`,
    'error.basket_closed_elsewhere': 'Ce ticket a été repris ou terminé sur une autre caisse',
    'error.lines_dropped': ({ names }) => `Retiré du ticket, plus en vente : ${names}`,
    'error.manager_required': 'Réservé à un responsable',
    'error.no_printer': 'Aucune imprimante n’est prévue pour cette caisse',
    'error.unknown_sale': 'Le serveur ne connaît pas cette vente',
    'error.unknown_printer': 'Cette imprimante n’existe plus dans le magasin',
    'error.drawer_not_in_doubt': 'Le serveur sait déjà si le tiroir s’est ouvert pour cette vente',
    'error.drawer_already_requested': 'Le tiroir a déjà été ouvert pour cette vente',
    'error.reason_required': 'Indiquez le motif',
    'error.sale_too_large': 'Vente trop longue pour être envoyée en une fois',
  },

  en: {
    'app.title': 'Till',
    'lang.toggle': 'FR',
    'lang.toggleTitle': 'Passer en français',

    'status.online': 'Connected',
    'status.offline': 'Offline — reconnecting…',
    'status.unpaired': 'Till not paired',
    'status.pending': ({ count }) => `${count} pending`,
    'status.offlineWaiting': ({ count }) => `Offline — ${count} ${count === 1 ? 'sale' : 'sales'} waiting`,
    'status.salesToSend': ({ count }) => `${count} ${count === 1 ? 'sale' : 'sales'} to send`,
    'status.servedBy': 'Till served by node {node} ({url})',
    'status.node': 'node {node}',

    'pair.title': 'Pair this till',
    'pair.help': 'Type the pairing code given by the store’s IT person.',
    'pair.code': 'Pairing code',
    'pair.name': 'Till name',
    'pair.namePlaceholder': 'Caisse',
    'pair.submit': 'Pair',
    'pair.defaultName': 'Caisse',

    'login.title': 'Who is selling?',
    'login.connecting': 'Connecting to the server…',
    'login.pin': 'PIN',
    'login.chooseCashier': 'Tap your name',
    'login.who': ({ name }) => `Hello ${name}, your PIN:`,
    'login.submit': 'Sign in',
    'login.clearPin': 'Clear',
    'login.backspace': 'Delete last digit',

    'sell.scanPlaceholder': 'Scan an item…',
    'sell.searchPlaceholder': 'Search a product',
    'sell.empty': 'Empty basket — scan an item',
    'sell.noResults': 'No product found',
    'sell.pendingLine': 'waiting for the connection…',
    'sell.decrease': 'Decrease quantity',
    'sell.increase': 'Increase quantity',
    'sell.remove': 'Remove line',
    'sell.each': ({ price }) => `${price} each`,
    'sell.items': ({ count }) => (count === 1 ? '1 item' : `${count} items`),
    'sell.total': 'Total',
    'sell.payCash': 'Cash',
    'sell.payCard': 'Card',
    'sell.clear': 'Void basket',
    'sell.clearConfirm': 'Confirm void?',
    'sell.logout': 'Log out',

    'parked.open': 'Parked baskets',
    'parked.title': 'Baskets open on other tills',
    'parked.close': 'Close',
    'parked.loading': 'Loading…',
    'parked.none': 'No basket waiting on the other tills',
    'parked.from': ({ till, cashier }) => `Till ${till} — ${cashier}`,

    'vat.rate': 'Rate',
    'vat.base': 'Net',
    'vat.vat': 'VAT',
    'vat.total': 'Gross',

    'pay.titleCash': 'Cash payment',
    'pay.titleCard': 'Card payment',
    'pay.due': 'Amount due',
    'pay.cashGiven': 'Amount tendered',
    'pay.cashRest': ({ amount }) => `${amount} left in cash — amount tendered`,
    'pay.exact': 'Exact',
    'pay.cardReference': 'Card slip reference',
    'pay.cardAmount': 'Card amount',
    'pay.change': ({ amount }) => `Change: ${amount}`,
    'pay.short': ({ amount }) => `${amount} short`,
    'pay.back': 'Back',
    'pay.confirm': 'Confirm payment',
    'pay.saving': 'Saving…',
    'pay.invalidAmount': 'Invalid amount',

    'done.title': 'Sale recorded',
    'done.receipt': 'Receipt no.',
    'done.total': 'Total',
    'done.change': 'Change due',
    'done.newSale': 'New sale',
    'done.offline': 'Offline — the sale is kept on this till and will be sent to the server when it is back.',
    'done.noReceipt': 'No receipt printed: no printer while offline.',
    'done.printedOn': 'Receipt sent to printer {printer}',
    'done.printedOnNode': 'Receipt sent to printer {printer} (node {node})',
    'done.duplicateSent': 'Copy sent to printer {printer}',
    'done.duplicateSentNode': 'Copy sent to printer {printer} (node {node})',
    'done.printerUnreachable': 'Printer {printer} unreachable (node {node})',
    'done.printLater': 'The receipt will print when it is back.',
    'done.chooseOther': 'Or print it on:',
    'done.choice': ({ printer, node }) => `${printer} — node ${node}`,
    'done.noPrinter': 'No printer for this till: no receipt printed.',
    'done.reprint': 'Reprint',

    'printer.state.ready': 'Printer ready',
    'printer.state.paper_out': 'Printer: paper out',
    'printer.state.cover_open': 'Printer: cover open',
    'printer.state.error': 'Printer: error',
    'printer.state.offline': 'Printer: offline',
    'printer.state.unplugged': 'Printer: unplugged',
    'printer.state.unreachable': 'Printer: unreachable',
    'printer.state.not_found': 'Printer: not found',
    'printer.state.permission_denied': 'Printer: access denied',
    'printer.state.busy': 'Printer: held by another program',
    'printer.state.no_backend': 'Printer: USB driver missing',
    'printer.state.starting': 'Printer: starting…',
    'printer.state.none': 'No printer for this till',
    'printer.state.other': 'Printer: {state}',
    'printer.nearEnd': 'Printer: paper running low',
    'printer.remote': 'Printer {name} (node {node})',
    'printer.onNode': '(node {node})',
    'printer.help.paper_out': 'Put in a new roll.',
    'printer.help.cover_open': 'Close the printer’s cover.',
    'printer.help.error': 'Switch the printer off and on again; if it goes on, tell your manager.',
    'printer.help.offline': 'Check the printer’s paper and cover.',
    'printer.help.unplugged': 'Plug the printer’s cable back in and switch it on.',
    'printer.help.unreachable': 'Check that the printer is switched on and on the network.',
    'printer.help.not_found': 'Plug the printer in and switch it on.',
    'printer.help.permission_denied': 'Tell store IT: the server may not use the printer.',
    'printer.help.busy': 'Tell store IT: another program is using the printer.',
    'printer.help.no_backend': 'Tell store IT: the USB driver is not installed.',
    'printer.help.none': 'Tell store IT: no printer is set up for this till.',
    'printer.help.nodeDown': 'Node {node}, where it is plugged in, does not answer.',
    'printer.help.waiting': 'Receipts wait and print in order once it is ready.',

    'noSale.open': 'No sale',
    'noSale.title': 'Open the drawer with no sale',
    'noSale.reason': 'Reason',
    'noSale.reasonPlaceholder': 'e.g. change for the market stall',
    'noSale.confirm': 'Open the drawer',
    'noSale.cancel': 'Cancel',
    'noSale.done': ({ printer }) => `Drawer opening sent to printer ${printer}`,

    'drawer.doubt': ({ receipt }) =>
      `Receipt ${receipt}: did the drawer open? Printing was cut short and the server cannot know.`,
    'drawer.openForSale': 'Open the drawer',
    'drawer.wasOpen': 'It opened',
    'drawer.openSent': ({ printer }) => `Drawer opening sent to printer ${printer}`,
    'receiptDoubt.text': ({ receipt }) =>
      `Receipt ${receipt}: perhaps not printed (server restored from a backup). Does the customer have it?`,
    'receiptDoubt.reprint': 'Print a copy',
    'receiptDoubt.hasIt': 'They have it',
    'receiptDoubt.sent': ({ printer }) => `Copy sent to printer ${printer}`,

    'error.unknown_barcode': ({ barcode }) => `UNKNOWN BARCODE: ${barcode || '?'}`,
    'error.unknown_product': 'Unknown product',
    'error.invalid_pin': 'Wrong PIN',
    'error.too_many_attempts': 'Too many attempts: wait a moment and try again',
    'error.disk_full': 'Server disk full: sale not recorded, nothing changed. Call support.',
    'error.invalid_token': 'This till is no longer recognised: pair it again',
    'error.invalid_pairing_code': 'Wrong, used or expired pairing code',
    'error.invalid_request': 'Invalid request',
    'error.not_logged_in': 'No cashier logged in',
    'error.unauthorized': 'Till not authenticated',
    'error.no_open_basket': 'No open basket: basket resynchronised',
    'error.basket_mismatch': 'Another basket was open on this till: it was resumed',
    'error.basket_held': ({ data }) => `This basket is held by till ${data?.till ?? '?'}`,
    'error.receipt_number_used': 'Receipt number already used: confirm again',
    'error.unknown_line': 'This line no longer exists',
    'error.empty_basket': 'The basket is empty',
    'error.payment_short': 'The payment does not cover the total',
    'error.card_overpay': 'The card amount exceeds the total',
    'error.missing_reference': 'Type the card slip reference',
    'error.internal_error': 'Internal server error: nothing was changed',
    'error.disconnected': 'Connection to the server lost',
    'error.offline': 'Offline: not possible right now',
    'error.network': 'Server unreachable',
    'error.choose_cashier': 'Tap your name first',
    'error.invalid_amount': 'Invalid amount',
    'error.login_offline':
      'Offline: no server answers, so nobody can sign in right now. A cashier already signed in can keep selling.',
    'error.no_offline_storage': 'This browser cannot keep sales offline: wait for the server to come back',
    'error.sale_not_sent': ({ receipt, detail }) =>
      `The server refuses sale ${receipt} (${detail}): it stays on this till; tell your manager`,
    'error.basket_closed_elsewhere': 'This basket was resumed or finished on another till',
    'error.lines_dropped': ({ names }) => `Removed from the basket, no longer on sale: ${names}`,
    'error.manager_required': 'Managers only',
    'error.no_printer': 'No printer is set up for this till',
    'error.unknown_sale': 'The server does not know this sale',
    'error.unknown_printer': 'This printer is no longer in the store',
    'error.drawer_not_in_doubt': 'The server already knows whether the drawer opened for this sale',
    'error.drawer_already_requested': 'The drawer was already opened for this sale',
    'error.reason_required': 'Give the reason',
    'error.sale_too_large': 'Sale too long to send in one go',
  },
};

const LANG_KEY = 'edge.lang';

function initialLanguage() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && STRINGS[saved]) return saved;
  // A French shop: French unless the browser clearly asks for English.
  return (navigator.language || '').toLowerCase().startsWith('en') ? 'en' : 'fr';
}

let currentLang = initialLanguage();
let moneyFormat = makeMoneyFormat(currentLang);

function makeMoneyFormat(lang) {
  return new Intl.NumberFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', { style: 'currency', currency: 'EUR' });
}

export function getLang() {
  return currentLang;
}

export function setLang(lang) {
  if (!STRINGS[lang]) return;
  currentLang = lang;
  moneyFormat = makeMoneyFormat(lang);
  localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang;
}

/** Translated string for `key`; falls back to French, then to the key itself. */
export function t(key, params = {}) {
  const value = STRINGS[currentLang][key] ?? STRINGS.fr[key];
  if (value === undefined) return key;
  if (typeof value === 'function') return value(params);
  return value.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ''));
}

export function hasTranslation(key) {
  return key in STRINGS[currentLang];
}

/**
 * Cents to "1,20 €" (fr) or "€1.20" (en). Intl puts no-break spaces in French;
 * they are turned into plain spaces so the text reads the same everywhere, and
 * CSS (white-space: nowrap on .money) keeps the amount on one line.
 */
export function formatMoney(cents) {
  return moneyFormat.format(cents / 100).replace(/[\u00a0\u202f]/g, ' ');
}

const rateFormats = new Map(); // language -> its Intl.NumberFormat, made once (as moneyFormat)

function rateFormat(lang) {
  if (!rateFormats.has(lang)) {
    rateFormats.set(lang, new Intl.NumberFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', { maximumFractionDigits: 2 }));
  }
  return rateFormats.get(lang);
}

/** VAT basis points to "5,5 %" (fr) or "5.5%" (en). */
export function formatRate(basisPoints) {
  const percent = rateFormat(currentLang).format(basisPoints / 100);
  return currentLang === 'fr' ? `${percent} %` : `${percent}%`;
}

/** Amount as typed into an input, without the currency sign: 1250 → "12,50" (fr) / "12.50" (en). */
export function formatAmountForInput(cents) {
  const text = (cents / 100).toFixed(2);
  return currentLang === 'fr' ? text.replace('.', ',') : text;
}

/** Human text for an error object {code, message, ...}: ours if we know the code, else the server's. */
export function errorText(error) {
  if (!error) return '';
  const key = `error.${error.code}`;
  if (error.code && key in STRINGS[currentLang]) return t(key, error);
  return error.message || error.code || String(error);
}

/** Fills every element marked with data-i18n / data-i18n-placeholder / data-i18n-title. */
export function translatePage(root = document) {
  for (const element of root.querySelectorAll('[data-i18n]')) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll('[data-i18n-placeholder]')) {
    element.placeholder = t(element.dataset.i18nPlaceholder);
  }
  for (const element of root.querySelectorAll('[data-i18n-title]')) {
    element.title = t(element.dataset.i18nTitle);
  }
  document.title = t('app.title');
}

// Only remember a language the cashier picked; until then follow the browser.
document.documentElement.lang = currentLang;

// --- Manager approval, discounts, refunds (approval.js, screen-discount.js, screen-refund.js) ---
Object.assign(STRINGS.fr, {
  'approval.title': 'Accord d’un responsable',
  'approval.pick': 'Responsable : touchez votre nom',
  'approval.pin': 'Code PIN du responsable',
  'approval.cancel': 'Annuler',
  'approval.submit': 'Valider',
  'approval.notManager': 'Ce code n’est pas celui d’un responsable',
  'approval.whyDiscount': ({ limit }) => `Remise au-delà de ${limit} : un responsable doit l’accorder.`,
  'approval.whyRefund': 'Remboursement sans ticket : un responsable doit l’accorder.',
  'approval.whyRefundReceipt': 'Ce remboursement demande l’accord d’un responsable.',

  'discount.basketButton': 'Remise ticket',
  'discount.lineTitle': 'Remise sur l’article',
  'discount.basketTitle': 'Remise sur le ticket',
  'discount.basketBase': ({ amount }) => `Ticket de ${amount}`,
  'discount.percent': 'Pourcentage (%)',
  'discount.amount': 'Montant (€)',
  'discount.reason': 'Motif',
  'discount.reasonPlaceholder': 'Ou saisissez le motif',
  'discount.reasons': () => ['Produit abîmé', 'Fin de journée', 'Geste commercial', 'Fidélité', 'Erreur d’étiquette'],
  'discount.preview': ({ off, left }) => `Remise de ${off} — reste ${left}`,
  'discount.apply': 'Appliquer',
  'discount.cancel': 'Annuler',
  'discount.remove': 'Retirer la remise',
  'discount.invalidValue': 'Saisissez un montant ou un pourcentage (100 % au plus)',
  'discount.reasonNeeded': 'Indiquez le motif de la remise',
  'discount.mark': ({ off, reason }) => `Remise ${off} (${reason})`,
  'discount.basketMark': ({ off, reason }) => `Remise ticket ${off} (${reason})`,
  'discount.linesTotal': 'Remises articles',

  'refund.open': 'Retour / remboursement',
  'refund.title': 'Retour / remboursement',
  'refund.back': 'Retour à la vente',
  'refund.queryPlaceholder': 'N° de ticket, ou scannez son QR code',
  'refund.find': 'Chercher',
  'refund.noReceipt': 'Sans ticket',
  'refund.searchPlaceholder': 'Rechercher le produit rapporté',
  'refund.saleInfo': ({ receipt, total }) => `Ticket ${receipt} — ${total}`,
  'refund.earlier': ({ count }) => (count <= 1 ? 'déjà 1 remboursement' : `déjà ${count} remboursements`),
  'refund.withoutReceiptInfo': 'Sans ticket : au prix du jour, avec l’accord d’un responsable, rendu en espèces.',
  'refund.lineInfo': ({ sold, refunded, total }) => `vendu ${sold} (${total}) · déjà remboursé ${refunded}`,
  'refund.noMore': ({ name, count }) => `${name} : ${count} au plus à rembourser`,
  'refund.reason': 'Motif',
  'refund.reasonPlaceholder': 'Ou saisissez le motif',
  'refund.reasons': () => ['Produit défectueux', 'Erreur de caisse', 'Client mécontent', 'Produit non conforme'],
  'refund.allCash': 'Tout rendre en espèces',
  'refund.givenBack': ({ tenders }) => `Rendu : ${tenders}`,
  'refund.confirm': 'Rembourser',
  'refund.saving': 'Enregistrement…',
  'refund.nothing': 'Choisissez ce qui est rapporté',
  'refund.reasonNeeded': 'Indiquez le motif du remboursement',
  'refund.doneTitle': 'Remboursement enregistré',
  'refund.total': 'Remboursé',
  'refund.finish': 'Terminer',
  'refund.offline': 'Hors ligne — le remboursement est gardé sur cette caisse et sera envoyé au serveur dès son retour.',
  'refund.method.cash': 'Espèces',
  'refund.method.card': 'Carte',
  'refund.method.meal_voucher': 'Titre-restaurant',
  'refund.method.cheque': 'Chèque',
  'refund.method.gift_voucher': 'Bon d’achat',

  'error.refund_exceeds_sale': 'Plus rien à rembourser sur cette ligne : un autre remboursement l’a déjà rendue',
  'error.refund_of_refund': 'Ce ticket est un remboursement : il ne peut pas être remboursé',
  'error.refund_whole_line': 'Un article pesé se rembourse en entier',
  'error.refund_tenders_mismatch': 'Les moyens de remboursement ne font pas le total',
  'error.refund_offline_qr': 'Hors ligne : saisissez le numéro du ticket',
  'error.refund_offline_other_till': 'Hors ligne : seuls les tickets de cette caisse se retrouvent',
  'error.refund_meal_voucher': 'Les titres-restaurant se remboursent en titres-restaurant, jamais en espèces',
});

Object.assign(STRINGS.en, {
  'approval.title': 'A manager’s approval',
  'approval.pick': 'Manager: tap your name',
  'approval.pin': 'Manager’s PIN',
  'approval.cancel': 'Cancel',
  'approval.submit': 'Approve',
  'approval.notManager': 'That is not a manager’s PIN',
  'approval.whyDiscount': ({ limit }) => `A discount past ${limit} needs a manager’s approval.`,
  'approval.whyRefund': 'A refund without a receipt needs a manager’s approval.',
  'approval.whyRefundReceipt': 'This refund needs a manager’s approval.',

  'discount.basketButton': 'Basket discount',
  'discount.lineTitle': 'Item discount',
  'discount.basketTitle': 'Basket discount',
  'discount.basketBase': ({ amount }) => `Basket of ${amount}`,
  'discount.percent': 'Percent (%)',
  'discount.amount': 'Amount (€)',
  'discount.reason': 'Reason',
  'discount.reasonPlaceholder': 'Or type the reason',
  'discount.reasons': () => ['Damaged', 'End of day', 'Goodwill', 'Loyalty', 'Label error'],
  'discount.preview': ({ off, left }) => `${off} off — ${left} left`,
  'discount.apply': 'Apply',
  'discount.cancel': 'Cancel',
  'discount.remove': 'Remove the discount',
  'discount.invalidValue': 'Type an amount or a percent (100% at most)',
  'discount.reasonNeeded': 'Say why the discount is given',
  'discount.mark': ({ off, reason }) => `Discount ${off} (${reason})`,
  'discount.basketMark': ({ off, reason }) => `Basket discount ${off} (${reason})`,
  'discount.linesTotal': 'Item discounts',

  'refund.open': 'Return / refund',
  'refund.title': 'Return / refund',
  'refund.back': 'Back to selling',
  'refund.queryPlaceholder': 'Receipt number, or scan its QR code',
  'refund.find': 'Find',
  'refund.noReceipt': 'No receipt',
  'refund.searchPlaceholder': 'Find the product brought back',
  'refund.saleInfo': ({ receipt, total }) => `Receipt ${receipt} — ${total}`,
  'refund.earlier': ({ count }) => (count <= 1 ? '1 refund already' : `${count} refunds already`),
  'refund.withoutReceiptInfo': 'No receipt: at today’s price, with a manager’s approval, in cash.',
  'refund.lineInfo': ({ sold, refunded, total }) => `sold ${sold} (${total}) · refunded ${refunded}`,
  'refund.noMore': ({ name, count }) => `${name}: ${count} at most to refund`,
  'refund.reason': 'Reason',
  'refund.reasonPlaceholder': 'Or type the reason',
  'refund.reasons': () => ['Faulty product', 'Till error', 'Unhappy customer', 'Not as described'],
  'refund.allCash': 'Give it all back in cash',
  'refund.givenBack': ({ tenders }) => `Given back: ${tenders}`,
  'refund.confirm': 'Refund',
  'refund.saving': 'Saving…',
  'refund.nothing': 'Pick what is brought back',
  'refund.reasonNeeded': 'Say why the customer is refunded',
  'refund.doneTitle': 'Refund recorded',
  'refund.total': 'Refunded',
  'refund.finish': 'Done',
  'refund.offline': 'Offline — the refund is kept on this till and goes to the server as soon as it is back.',
  'refund.method.cash': 'Cash',
  'refund.method.card': 'Card',
  'refund.method.meal_voucher': 'Meal voucher',
  'refund.method.cheque': 'Cheque',
  'refund.method.gift_voucher': 'Gift voucher',

  'error.refund_exceeds_sale': 'Nothing left to refund on that line: another refund already gave it back',
  'error.refund_of_refund': 'That receipt is a refund: it cannot be refunded',
  'error.refund_whole_line': 'A weighed item is refunded whole',
  'error.refund_tenders_mismatch': 'The refund’s tenders do not add up to its total',
  'error.refund_offline_qr': 'Offline: type the receipt number',
  'error.refund_offline_other_till': 'Offline: only this till’s receipts can be found',
  'error.refund_meal_voucher': 'Meal vouchers are refunded as meal vouchers, never in cash',
});

Object.assign(STRINGS.fr, {
  'error.discounts_dropped': ({ names }) =>
    `Remise retirée au retour du serveur, un responsable doit l’accorder à nouveau : ${names}`,
});
Object.assign(STRINGS.en, {
  'error.discounts_dropped': ({ names }) => `Discount removed when the server came back; a manager must approve it again: ${names}`,
});

// --- Payment with any tenders, receipt on request, parked baskets, today's sales
// (screen-pay.js, screen-done.js, screen-parked.js, screen-sales.js) ---
Object.assign(STRINGS.fr, {
  'pay.title': 'Paiement',
  'pay.mode.cash': 'Espèces',
  'pay.mode.card': 'Carte',
  'pay.mode.voucher_paper': 'Titre-resto papier',
  'pay.mode.voucher_card': 'Titre-resto carte',
  'pay.mode.cheque': 'Chèque',
  'pay.mode.gift_voucher': 'Bon d’achat',
  'pay.amount.card': 'Montant carte',
  'pay.amount.voucher_paper': 'Valeur des titres-restaurant papier',
  'pay.amount.voucher_card': 'Montant carte titre-restaurant',
  'pay.amount.cheque': 'Montant du chèque',
  'pay.amount.gift_voucher': 'Montant du bon d’achat',
  'pay.reference.card': 'Référence du ticket TPE (facultatif)',
  'pay.reference.cheque': 'N° du chèque (facultatif)',
  'pay.reference.gift_voucher': 'N° du bon (facultatif)',
  'pay.paid': 'Déjà payé',
  'pay.leftLabel': 'Reste à payer',
  'pay.left': ({ amount }) => `Reste ${amount}`,
  'pay.voucherExcess': ({ amount }) => `Titre-restaurant : ${amount} non rendu`,
  'pay.printNo': 'Sans ticket — toucher pour imprimer',
  'pay.printYes': 'Ticket imprimé',
  'pay.addTender': 'Ajouter ce paiement',
  'pay.removeTender': 'Retirer ce paiement',

  'done.voucherExcess': ({ amount }) => `Titre-restaurant : ${amount} non rendu`,
  'done.notPrinted': 'Pas de ticket imprimé (à la demande du client).',
  'done.printReceipt': 'Imprimer le ticket',

  'parked.open': 'Paniers en attente',
  'parked.title': 'Paniers en attente',
  'parked.none': 'Aucun panier en attente',
  'parked.otherTills': 'Ouverts sur d’autres caisses',
  'parked.by': ({ till, cashier }) => `caisse ${till}, ${cashier}`,
  'parked.justNow': 'à l’instant',
  'parked.minutesAgo': ({ minutes }) => `il y a ${minutes} min`,
  'parked.hoursAgo': ({ hours, minutes }) => `il y a ${hours} h ${minutes}`,
  'parked.park': 'Mettre en attente',
  'parked.parkTitle': 'Mettre le panier en attente',
  'parked.name': 'Nom du client',
  'parked.nameHelp': 'Laissé vide : votre nom. Le panier se reprend sur n’importe quelle caisse.',
  'parked.cancel': 'Annuler',
  'parked.confirm': 'Mettre en attente',
  'parked.done': ({ name }) => `Panier mis en attente : ${name}`,
  'parked.atLogout': ({ name }) => `Le panier ouvert a été mis en attente au nom de ${name}`,

  'sales.open': 'Ventes du jour',
  'sales.title': 'Ventes du jour',
  'sales.back': 'Retour',
  'sales.thisTill': 'Cette caisse — voir tout le magasin',
  'sales.allTills': 'Tout le magasin — voir cette caisse',
  'sales.none': 'Aucune vente aujourd’hui',
  'sales.more': 'Ventes plus anciennes',
  'sales.print': 'Imprimer le ticket',
  'sales.duplicate': 'Duplicata',
  'sales.notPrinted': 'Non imprimé',
  'sales.printed': 'Imprimé',
  'sales.printedCopies': ({ count }) => `Imprimé + ${count} ${count <= 1 ? 'duplicata' : 'duplicatas'}`,
  'sales.refund': 'Remboursement',
  'sales.method.cash': 'Espèces',
  'sales.method.card': 'Carte',
  'sales.method.meal_voucher': 'Titre-restaurant',
  'sales.method.cheque': 'Chèque',
  'sales.method.gift_voucher': 'Bon d’achat',
  'sales.originalSent': ({ printer }) => `Ticket envoyé à l’imprimante ${printer}`,
  'sales.duplicateSent': ({ printer, copy }) => `Duplicata n° ${copy} envoyé à l’imprimante ${printer}`,

  'error.meal_voucher_cap': ({ cap }) =>
    (cap ? `Titres-restaurant limités à ${cap} par vente` : 'Titres-restaurant au-delà du plafond par vente'),
  'error.tender_overpay': 'Carte, chèque et bons dépassent le total : ils ne rendent pas de monnaie',
});

Object.assign(STRINGS.en, {
  'pay.title': 'Payment',
  'pay.mode.cash': 'Cash',
  'pay.mode.card': 'Card',
  'pay.mode.voucher_paper': 'Meal voucher (paper)',
  'pay.mode.voucher_card': 'Meal voucher card',
  'pay.mode.cheque': 'Cheque',
  'pay.mode.gift_voucher': 'Gift voucher',
  'pay.amount.card': 'Card amount',
  'pay.amount.voucher_paper': 'Value of the paper meal vouchers',
  'pay.amount.voucher_card': 'Meal voucher card amount',
  'pay.amount.cheque': 'Cheque amount',
  'pay.amount.gift_voucher': 'Gift voucher amount',
  'pay.reference.card': 'Card slip reference (optional)',
  'pay.reference.cheque': 'Cheque number (optional)',
  'pay.reference.gift_voucher': 'Voucher number (optional)',
  'pay.paid': 'Paid so far',
  'pay.leftLabel': 'Left to pay',
  'pay.left': ({ amount }) => `${amount} left`,
  'pay.voucherExcess': ({ amount }) => `Meal voucher: ${amount} not given back`,
  'pay.printNo': 'No receipt — tap to print',
  'pay.printYes': 'Receipt printed',
  'pay.addTender': 'Add this payment',
  'pay.removeTender': 'Remove this payment',

  'done.voucherExcess': ({ amount }) => `Meal voucher: ${amount} not given back`,
  'done.notPrinted': 'No receipt printed (the customer’s choice).',
  'done.printReceipt': 'Print the receipt',

  'parked.open': 'Parked baskets',
  'parked.title': 'Parked baskets',
  'parked.none': 'No basket waiting',
  'parked.otherTills': 'Open on other tills',
  'parked.by': ({ till, cashier }) => `till ${till}, ${cashier}`,
  'parked.justNow': 'just now',
  'parked.minutesAgo': ({ minutes }) => `${minutes} min ago`,
  'parked.hoursAgo': ({ hours, minutes }) => `${hours} h ${minutes} ago`,
  'parked.park': 'Park basket',
  'parked.parkTitle': 'Park the basket',
  'parked.name': 'Customer’s name',
  'parked.nameHelp': 'Left blank: your name. Any till can resume it.',
  'parked.cancel': 'Cancel',
  'parked.confirm': 'Park',
  'parked.done': ({ name }) => `Basket parked: ${name}`,
  'parked.atLogout': ({ name }) => `The open basket was parked under ${name}’s name`,

  'sales.open': 'Today’s sales',
  'sales.title': 'Today’s sales',
  'sales.back': 'Back',
  'sales.thisTill': 'This till — show the whole store',
  'sales.allTills': 'Whole store — show this till',
  'sales.none': 'No sale today',
  'sales.more': 'Older sales',
  'sales.print': 'Print the receipt',
  'sales.duplicate': 'Copy',
  'sales.notPrinted': 'Not printed',
  'sales.printed': 'Printed',
  'sales.printedCopies': ({ count }) => `Printed + ${count} ${count === 1 ? 'copy' : 'copies'}`,
  'sales.refund': 'Refund',
  'sales.method.cash': 'Cash',
  'sales.method.card': 'Card',
  'sales.method.meal_voucher': 'Meal voucher',
  'sales.method.cheque': 'Cheque',
  'sales.method.gift_voucher': 'Gift voucher',
  'sales.originalSent': ({ printer }) => `Receipt sent to printer ${printer}`,
  'sales.duplicateSent': ({ printer, copy }) => `Copy no. ${copy} sent to printer ${printer}`,

  'error.meal_voucher_cap': ({ cap }) =>
    (cap ? `Meal vouchers are limited to ${cap} per sale` : 'Meal vouchers over the per-sale cap'),
  'error.tender_overpay': 'Card, cheque and vouchers exceed the total: they give no change',
});

// --- Selling: the product grid, weighed and open-price items, unknown barcodes, the idle lock
// (screen-grid.js, screen-sell*.js) ---
Object.assign(STRINGS.fr, {
  'sell.perKilo': ({ price }) => `${price} le kg`,
  'sell.labelPrice': 'prix de l’étiquette',

  'grid.favourites': '★ Favoris',
  'grid.others': 'Autres',
  'grid.openPrice': 'Prix libre',
  'grid.more': 'D’autres produits : utilisez la recherche (F2)',
  'grid.empty': 'Catalogue en cours de chargement…',

  'keypad.weightHelp': ({ price }) => `Poids en grammes (ou en kg avec une virgule) — ${price} le kg`,
  'keypad.priceHelp': 'Prix de l’article',
  'keypad.grams': 'grammes',
  'keypad.kilograms': 'kilogrammes',
  'keypad.amount': 'montant en €',
  'keypad.weightPreview': ({ grams, price }) => `${grams} g = ${price}`,
  'keypad.badWeight': 'Poids invalide (1 g à 100 kg)',
  'keypad.badPrice': 'Montant invalide',
  'keypad.cancel': 'Annuler',
  'keypad.add': 'Ajouter',

  'unknown.text': ({ barcode }) => `Code-barres inconnu : ${barcode}`,
  'unknown.search': 'Rechercher le produit',
  'unknown.openPrice': ({ name, rate }) => `${name} (TVA ${rate}) à prix libre`,
  'unknown.openPriceLabel': 'ou à prix libre :',
  'unknown.close': 'Fermer',

  'approval.whyOpenPrice': ({ limit }) => `Prix libre au-delà de ${limit} : un responsable doit l’accorder.`,

  'error.weight_required': 'Article vendu au poids : saisissez le poids',
  'error.price_required': 'Article à prix libre : saisissez le prix',
  'error.invalid_barcode': 'Code-barres mal lu : scannez-le à nouveau',
});

Object.assign(STRINGS.en, {
  'sell.perKilo': ({ price }) => `${price} per kg`,
  'sell.labelPrice': 'price on the label',

  'grid.favourites': '★ Favourites',
  'grid.others': 'Others',
  'grid.openPrice': 'Open price',
  'grid.more': 'More products: use the search (F2)',
  'grid.empty': 'Loading the catalogue…',

  'keypad.weightHelp': ({ price }) => `Weight in grams (or in kg with a decimal point) — ${price} per kg`,
  'keypad.priceHelp': 'The item’s price',
  'keypad.grams': 'grams',
  'keypad.kilograms': 'kilograms',
  'keypad.amount': 'amount in €',
  'keypad.weightPreview': ({ grams, price }) => `${grams} g = ${price}`,
  'keypad.badWeight': 'Not a weight (1 g to 100 kg)',
  'keypad.badPrice': 'Not an amount',
  'keypad.cancel': 'Cancel',
  'keypad.add': 'Add',

  'unknown.text': ({ barcode }) => `Unknown barcode: ${barcode}`,
  'unknown.search': 'Search the product',
  'unknown.openPrice': ({ name, rate }) => `${name} (VAT ${rate}) at a typed price`,
  'unknown.openPriceLabel': 'or at a typed price:',
  'unknown.close': 'Close',

  'approval.whyOpenPrice': ({ limit }) => `A typed price past ${limit} needs a manager’s approval.`,

  'error.weight_required': 'Sold by weight: type the weight',
  'error.price_required': 'Open price: type the price',
  'error.invalid_barcode': 'Barcode misread: scan it again',
});

// --- Card payments on the payment terminal (screen-pay-card.js, screen-pay.js, card-terminal.js) ---
// `card.code.*`: a payment's outcome by its code: the terminal's refusal codes (Caisse-AP's AF)
// and the node's own (docs/protocol.md, "Card payments").
Object.assign(STRINGS.fr, {
  'pay.cardOnTerminal': 'Le montant part au terminal de paiement : le client y présente sa carte.',
  'pay.cardSlipEntry': 'Saisie du ticket : encaissez sur le terminal lui-même, puis tapez la référence de son ticket.',
  'pay.sendToTerminal': 'Envoyer au terminal',
  'pay.onTerminal': 'Paiement sur le terminal…',

  'card.waiting': 'Paiement en cours sur le terminal…',
  'card.waitingRefund': 'Remboursement en cours sur le terminal…',
  'card.cancelOnTerminal': 'Pour annuler : touche rouge du terminal.',
  'card.asking': 'Connexion au serveur perdue : la caisse redemande où en est le paiement…',
  'card.declined': 'Paiement refusé',
  'card.unreachable': 'Terminal injoignable',
  'card.nothingCharged': 'Rien n’a été débité.',
  'card.unknown': 'Résultat inconnu',
  'card.readSlip': 'Lisez le ticket du terminal : indique-t-il que le paiement est accepté ?',
  'card.slipYes': 'Oui, accepté',
  'card.slipNo': 'Non',
  'card.slipApprovedReference': 'Tapez la référence imprimée sur le ticket du terminal.',
  'card.slipReference': 'Référence du ticket',
  'card.settle': 'Valider',
  'card.back': 'Retour',
  'card.otherTender': 'Autre moyen de paiement',
  'card.useSlip': 'Saisir le ticket du terminal',
  'card.reason.declined': 'Le terminal a refusé le paiement.',
  'card.reason.unreachable': 'Le serveur n’a pas pu joindre le terminal. Encaissez sur le terminal lui-même, puis saisissez la référence de son ticket.',
  'card.reason.unknown': 'La réponse du terminal s’est perdue : seul son ticket dit si la carte a été débitée. La caisse ne relance jamais un paiement.',
  'card.code.04': 'Paiement refusé (carte ou banque).',
  'card.code.05': 'Opération interdite pour cette carte.',
  'card.code.06': 'Paiement abandonné.',
  'card.code.07': 'Paiement non abouti.',
  'card.code.08': 'Temps dépassé sur le terminal.',
  'card.code.09': 'Le terminal n’a pas compris la demande (erreur de format) : prévenez le responsable informatique.',
  'card.code.11': 'Annulé sur le terminal (touche rouge).',
  'card.code.13': 'Devise non acceptée par le terminal.',
  'card.code.no_reason': 'Refusé, sans motif donné par le terminal.',
  'card.code.terminal_unreachable': 'Le serveur du terminal ne répond pas.',
  'card.code.not_taken': 'Le serveur du terminal n’a pas pris la demande à temps : rien n’a été envoyé au terminal.',
  'card.code.stale_request': 'La demande est arrivée trop tard : elle n’a pas été envoyée au terminal.',
  'card.code.node_restarted': 'Le serveur a redémarré avant d’envoyer la demande : rien n’a été envoyé au terminal.',
  'card.code.not_found': 'Le serveur ne connaît pas ce paiement : seul le ticket du terminal dit s’il a eu lieu.',
  'card.code.wrong_echo': 'La réponse du terminal ne correspond pas à la demande : seul son ticket dit si la carte a été débitée.',
  'card.code.connection_failed': 'Le terminal ne répond pas sur le réseau (éteint, débranché ou mal réglé).',
  'card.code.no_result': 'Le terminal n’a pas donné de résultat : seul son ticket dit si la carte a été débitée.',
  'card.code.node_stopped': 'Le serveur s’est arrêté pendant le paiement : seul le ticket du terminal dit si la carte a été débitée.',

  'error.terminal_busy': 'Le terminal termine un autre paiement : attendez la fin, puis recommencez.',
  'error.no_terminal': 'Aucun terminal de paiement pour cette caisse : saisissez le ticket du terminal.',
  'error.terminal_unreachable': 'Terminal de paiement injoignable : rien n’a été débité.',
  'error.card_partial': ({ amount, asked }) => `Carte acceptée en partie : ${amount} sur ${asked}. Le reste est à payer autrement.`,
  'error.card_payment_not_approved': 'Ce paiement par carte n’a pas été accepté.',
  'error.card_payment_mismatch': 'Ce paiement par carte ne correspond pas à cette vente.',
  'error.card_payment_taken': 'Le terminal a déjà encaissé ce panier par carte : terminez la vente, puis remboursez ce que le client ne prend pas.',
  'error.card_payment_used': 'Ce paiement par carte a déjà servi pour une autre vente.',
  'error.payment_id_reused': 'Ce paiement par carte a déjà été demandé autrement : recommencez.',
  'error.card_payment_too_much': 'Montant carte supérieur au total de la vente.',
  'error.unknown_payment': 'Paiement par carte inconnu du serveur.',
  'error.payment_not_unknown': 'Ce paiement a déjà un résultat : rien à régler depuis le ticket.',
  'error.payment_already_settled': 'Ce paiement a déjà été réglé depuis le ticket.',
  'error.card_payment_pending': 'Ce paiement par carte est encore en cours sur le terminal.',
});

Object.assign(STRINGS.en, {
  'pay.cardOnTerminal': 'The amount goes to the payment terminal: the customer presents the card there.',
  'pay.cardSlipEntry': 'Slip entry: take the payment on the terminal itself, then type its slip reference.',
  'pay.sendToTerminal': 'Send to the terminal',
  'pay.onTerminal': 'Paying on the terminal…',

  'card.waiting': 'Payment in progress on the terminal…',
  'card.waitingRefund': 'Refund in progress on the terminal…',
  'card.cancelOnTerminal': 'Use the red button on the terminal to cancel.',
  'card.asking': 'Connection to the server lost: the till is asking again how the payment went…',
  'card.declined': 'Payment declined',
  'card.unreachable': 'Terminal unreachable',
  'card.nothingCharged': 'Nothing was charged.',
  'card.unknown': 'Outcome unknown',
  'card.readSlip': 'Read the terminal’s slip: did it say approved?',
  'card.slipYes': 'Yes, approved',
  'card.slipNo': 'No',
  'card.slipApprovedReference': 'Type the reference printed on the terminal’s slip.',
  'card.slipReference': 'Slip reference',
  'card.settle': 'Confirm',
  'card.back': 'Back',
  'card.otherTender': 'Another way to pay',
  'card.useSlip': 'Type the terminal’s slip',
  'card.reason.declined': 'The terminal declined the payment.',
  'card.reason.unreachable': 'The server could not reach the terminal. Take the payment on the terminal itself, then type its slip reference.',
  'card.reason.unknown': 'The terminal’s answer was lost: only its slip says whether the card was charged. The till never tries a payment again.',
  'card.code.04': 'Payment refused (card or bank).',
  'card.code.05': 'Not allowed for this card.',
  'card.code.06': 'Payment abandoned.',
  'card.code.07': 'Payment not completed.',
  'card.code.08': 'Timed out on the terminal.',
  'card.code.09': 'The terminal did not understand the request (format error): tell store IT.',
  'card.code.11': 'Cancelled on the terminal (red button).',
  'card.code.13': 'Currency not accepted by the terminal.',
  'card.code.no_reason': 'Declined, with no reason given by the terminal.',
  'card.code.terminal_unreachable': 'The terminal’s server does not answer.',
  'card.code.not_taken': 'The terminal’s server did not take the request in time: nothing was sent to the terminal.',
  'card.code.stale_request': 'The request arrived too late: it was not sent to the terminal.',
  'card.code.node_restarted': 'The server restarted before sending the request: nothing was sent to the terminal.',
  'card.code.not_found': 'The server does not know this payment: only the terminal’s slip says whether it happened.',
  'card.code.wrong_echo': 'The terminal’s answer does not match the request: only its slip says whether the card was charged.',
  'card.code.connection_failed': 'The terminal does not answer on the network (off, unplugged or not set up).',
  'card.code.no_result': 'The terminal gave no result: only its slip says whether the card was charged.',
  'card.code.node_stopped': 'The server stopped during the payment: only the terminal’s slip says whether the card was charged.',

  'error.terminal_busy': 'The terminal is finishing another payment: wait for it to end, then try again.',
  'error.no_terminal': 'No payment terminal for this till: type the terminal’s slip.',
  'error.terminal_unreachable': 'Payment terminal unreachable: nothing was charged.',
  'error.card_partial': ({ amount, asked }) => `Card partly approved: ${amount} of ${asked}. The rest is still due.`,
  'error.card_payment_not_approved': 'This card payment was not approved.',
  'error.card_payment_mismatch': 'This card payment does not match this sale.',
  'error.card_payment_taken': 'The card terminal already took payment for this basket: complete the sale, then refund what the customer does not take.',
  'error.card_payment_used': 'This card payment already paid another sale.',
  'error.payment_id_reused': 'This card payment was already asked differently: start again.',
  'error.card_payment_too_much': 'Card amount above the sale’s total.',
  'error.unknown_payment': 'The server does not know this card payment.',
  'error.payment_not_unknown': 'This payment already has an outcome: nothing to settle from the slip.',
  'error.payment_already_settled': 'This payment was already settled from the slip.',
  'error.card_payment_pending': 'This card payment is still in progress on the terminal.',
});

// --- Shifts, training mode and the day's closure (screen-shift.js) ---
Object.assign(STRINGS.fr, {
  'shift.button': 'Caisse',
  'shift.title': 'Session de caisse',
  'shift.back': 'Retour',
  'shift.float': 'Fond de caisse compté (€)',
  'shift.open': 'Ouvrir la session',
  'shift.since': ({ cashier, time, day }) => `Ouverte par ${cashier} à ${time} — journée du ${day}`,
  'shift.ended': 'La journée est terminée : clôturez la session (comptez la caisse), puis ouvrez celle du jour.',
  'shift.endsSoon': ({ time }) => `La journée se termine à ${time} : pensez à clôturer la session.`,
  'shift.move': 'Entrée ou sortie d’espèces (€)',
  'shift.moveReason': 'Motif (dépôt banque, monnaie…)',
  'shift.cashIn': 'Entrée',
  'shift.cashOut': 'Sortie',
  'shift.countHelp': 'Comptez la caisse et les justificatifs, moyen par moyen :',
  'shift.closeConfirm': 'Clôturer avec ces montants',
  'shift.close': 'Clôturer la session',
  'shift.closedTitle': 'Session clôturée',
  'shift.xTitle': 'Rapport X',
  'shift.xSales': ({ sales, refunds, net }) => `${sales} vente(s), ${refunds} remboursement(s) — net ${net}`,
  'shift.difference': 'Écart (compté − attendu)',
  'shift.expected': 'Attendu en caisse',
  'shift.zTitle': ({ number, period }) => `Z n° ${number} — journée du ${period}`,
  'shift.zGrandTotal': ({ gt }) => `Grand total perpétuel : ${gt}`,
  'shift.closeDay': 'Clôturer la journée',
  'shift.trainingOn': 'MODE ÉCOLE : les ventes de cette caisse ne comptent pas.',
  'shift.trainingStart': 'Passer en mode école',
  'shift.trainingStop': 'Quitter le mode école',
  'shift.trainingWhy': 'Le mode école se change avec l’accord d’un responsable.',
  'shift.trainingMark': 'MODE ÉCOLE',
  'shift.tender.cash': 'Espèces',
  'shift.tender.card': 'Carte bancaire',
  'shift.tender.meal_voucher_paper': 'Titres-restaurant papier',
  'shift.tender.meal_voucher_card': 'Titres-restaurant carte',
  'shift.tender.cheque': 'Chèques',
  'shift.tender.gift_voucher': 'Bons cadeaux',
  'error.no_shift': 'Aucune session de caisse ouverte : ouvrez-en une (touche « Caisse »)',
  'error.shift_open': 'Une session est déjà ouverte sur cette caisse',
  'error.shift_ended': 'La session a pris fin avec la journée : clôturez-la, puis ouvrez celle du jour',
  'error.shift_reason_needed': 'Indiquez le motif du mouvement d’espèces',
  'error.training_mismatch': 'Le mode école ne touche jamais une vraie vente (ni un vrai remboursement une vente d’école), et ne passe aucune carte au terminal',
  'error.training_offline': 'Mode école : impossible hors ligne, attendez le serveur',
  'error.period_closed': 'Cette journée est déjà clôturée',
  'error.period_not_over': 'La journée n’est pas terminée',
  'error.nothing_to_close': 'Rien à clôturer pour le moment',
  'error.closure_out_of_order': 'Clôturez d’abord la journée précédente',
  'error.not_caught_up': 'Un serveur du magasin n’a pas été entendu : remettez-le en ligne avant de clôturer',
  'error.covers_backwards': 'Ce serveur a perdu des événements déjà clôturés : prévenez le support',
});

Object.assign(STRINGS.en, {
  'shift.button': 'Drawer',
  'shift.title': 'Cash session',
  'shift.back': 'Back',
  'shift.float': 'Float counted (€)',
  'shift.open': 'Open the session',
  'shift.since': ({ cashier, time, day }) => `Opened by ${cashier} at ${time} — business day ${day}`,
  'shift.ended': 'The business day is over: close the session (count the drawer), then open today’s.',
  'shift.endsSoon': ({ time }) => `The business day ends at ${time}: remember to close the session.`,
  'shift.move': 'Cash in or out (€)',
  'shift.moveReason': 'Reason (bank deposit, change…)',
  'shift.cashIn': 'Cash in',
  'shift.cashOut': 'Cash out',
  'shift.countHelp': 'Count the drawer and the slips, tender by tender:',
  'shift.closeConfirm': 'Close with these amounts',
  'shift.close': 'Close the session',
  'shift.closedTitle': 'Session closed',
  'shift.xTitle': 'X report',
  'shift.xSales': ({ sales, refunds, net }) => `${sales} sale(s), ${refunds} refund(s) — net ${net}`,
  'shift.difference': 'Difference (counted − expected)',
  'shift.expected': 'Expected in the drawer',
  'shift.zTitle': ({ number, period }) => `Z no. ${number} — business day ${period}`,
  'shift.zGrandTotal': ({ gt }) => `Perpetual grand total: ${gt}`,
  'shift.closeDay': 'Close the day',
  'shift.trainingOn': 'TRAINING MODE: this till’s sales do not count.',
  'shift.trainingStart': 'Switch to training mode',
  'shift.trainingStop': 'Leave training mode',
  'shift.trainingWhy': 'Training mode is switched with a manager’s approval.',
  'shift.trainingMark': 'TRAINING (MODE ÉCOLE)',
  'shift.tender.cash': 'Cash',
  'shift.tender.card': 'Card',
  'shift.tender.meal_voucher_paper': 'Paper meal vouchers',
  'shift.tender.meal_voucher_card': 'Meal voucher cards',
  'shift.tender.cheque': 'Cheques',
  'shift.tender.gift_voucher': 'Gift vouchers',
  'error.no_shift': 'No cash session open: open one (the “Drawer” button)',
  'error.shift_open': 'A session is already open on this till',
  'error.shift_ended': 'The session ended with the business day: close it, then open today’s',
  'error.shift_reason_needed': 'Say why the cash moves',
  'error.training_mismatch': 'Training mode never touches a real sale (nor a real refund a training sale), and takes no card on the terminal',
  'error.training_offline': 'Training mode: not possible offline, wait for the server',
  'error.period_closed': 'This day is already closed',
  'error.period_not_over': 'The business day is not over',
  'error.nothing_to_close': 'Nothing to close yet',
  'error.closure_out_of_order': 'Close the day before first',
  'error.not_caught_up': 'A server of the store was not heard: bring it back online before closing',
  'error.covers_backwards': 'This server lost events already closed: call support',
});

// --- Sales a till made as a till it no longer is (earlier-tills.js): paired again, or moved ---
Object.assign(STRINGS.fr, {
  'status.otherStoreSales': ({ count, store, till }) =>
    `${count} ${count <= 1 ? 'vente' : 'ventes'} du magasin précédent (${store}, caisse ${till}) `
    + `${count <= 1 ? 'attend' : 'attendent'} sur cette caisse : à envoyer au serveur de ce magasin`,
  'status.earlierTillSales': ({ count, till }) =>
    `${count} ${count <= 1 ? 'vente' : 'ventes'} de la caisse ${till} `
    + `${count <= 1 ? 'attend' : 'attendent'} sur cette caisse : appairez-la à nouveau dans ce magasin pour l’envoyer`,
});
Object.assign(STRINGS.en, {
  'status.otherStoreSales': ({ count, store, till }) =>
    `${count} ${count === 1 ? 'sale' : 'sales'} of the previous store (${store}, till ${till}) `
    + `${count === 1 ? 'waits' : 'wait'} on this till: to be sent to that store’s node`,
  'status.earlierTillSales': ({ count, till }) =>
    `${count} ${count === 1 ? 'sale' : 'sales'} of till ${till} ${count === 1 ? 'waits' : 'wait'} `
    + 'on this till: pair it again in this store to send them',
});
