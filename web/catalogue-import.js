// The store IT page's catalogue import: the same as `edge catalogue import` on the node.
// Authenticated by the node's admin token (the `admin-token` file of its data folder,
// made anew at each start), as `edge` commands are; the files go in parts that fit the
// node's request bound, and the node imports them all or nothing.

import { getLang, setLang } from './i18n.js';

const TEXT = {
  fr: {
    title: 'Catalogue du magasin', lang: 'EN', back: '← État du magasin',
    intro: 'Ajoute ou modifie les produits propres au magasin (et ses promotions) depuis des '
      + 'fichiers CSV (UTF-8), comme « edge catalogue import ». Tout ou rien : une ligne en '
      + 'erreur et rien n’est importé.',
    products: 'Produits (CSV)', promotions: 'Promotions (CSV, facultatif)',
    token: 'Jeton d’administration (fichier admin-token du dossier de données du serveur)',
    send: 'Importer', sending: 'Envoi, partie {n} sur {of}…', importing: 'Import en cours…',
    done: 'Importé : {summary}', refused: 'Rien n’a été importé :', unreachable: 'Le serveur ne répond pas.',
  },
  en: {
    title: 'Store catalogue', lang: 'FR', back: '← Store status',
    intro: 'Adds or changes the store’s own products (and its promotions) from CSV files '
      + '(UTF-8), as `edge catalogue import` does. All or nothing: one bad line and nothing '
      + 'is imported.',
    products: 'Products (CSV)', promotions: 'Promotions (CSV, optional)',
    token: 'Admin token (the admin-token file in the node’s data folder)',
    send: 'Import', sending: 'Sending part {n} of {of}…', importing: 'Importing…',
    done: 'Imported: {summary}', refused: 'Nothing was imported:', unreachable: 'The node does not answer.',
  },
};
const PART_CHARACTERS = 12000; // edge/selling/catalogue_admin.py: under the 64 KB request bound
const t = (key, values = {}) => TEXT[getLang()][key].replace(/\{(\w+)\}/g, (_, k) => values[k] ?? '');
const $ = (id) => document.getElementById(id);

function render() {
  document.documentElement.lang = getLang();
  for (const [id, key] of [['title', 'title'], ['lang', 'lang'], ['back', 'back'], ['intro', 'intro'],
    ['products-label', 'products'], ['promotions-label', 'promotions'], ['token-label', 'token'],
    ['send', 'send']]) {
    $(id).textContent = t(key);
  }
}

async function post(token, body) {
  const reply = await fetch('/api/admin/catalogue', {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(answer.error?.message ?? `HTTP ${reply.status}`);
  return answer;
}

async function submit(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  const files = { products: $('products').files[0], promotions: $('promotions').files[0] };
  const parts = [];
  for (const [file, blob] of Object.entries(files)) {
    if (!blob) continue;
    const text = await blob.text();
    for (let start = 0; start < Math.max(text.length, 1); start += PART_CHARACTERS) {
      parts.push({ file, text: text.slice(start, start + PART_CHARACTERS) });
    }
  }
  const upload = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  $('send').disabled = true;
  $('outcome').textContent = '';
  try {
    for (const [index, part] of parts.entries()) {
      $('progress').textContent = t('sending', { n: index + 1, of: parts.length });
      await post(token, { action: 'upload', upload, ...part });
    }
    $('progress').textContent = t('importing');
    const answer = await post(token, { action: 'import', upload });
    $('progress').textContent = t('done', { summary: answer.message });
    $('outcome').dataset.state = 'ok';
  } catch (error) {
    $('progress').textContent = t('refused');
    $('outcome').textContent = error instanceof TypeError ? t('unreachable') : error.message;
    $('outcome').dataset.state = 'refused';
  } finally {
    $('send').disabled = false;
  }
}

$('lang').addEventListener('click', () => {
  setLang(getLang() === 'fr' ? 'en' : 'fr');
  render();
});
$('import').addEventListener('submit', submit);
render();
