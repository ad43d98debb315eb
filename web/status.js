// The store IT page: this node's /healthz in plain words, refreshed every 5 s.
// It needs no login: /healthz is the node's public health check.

import { getLang, hasTranslation, setLang, t as tillText } from './i18n.js';

const TEXT = {
  fr: {
    title: 'État du magasin', lang: 'EN', node: 'Ce serveur', store: 'Magasin',
    nodeId: 'Nœud', version: 'Version', uptime: 'Démarré depuis', tills: 'Caisses connectées',
    events: 'Événements écrits', peers: 'Autres serveurs du magasin', noPeers: 'aucun (serveur seul)',
    connected: 'connecté', notConnected: 'NON CONNECTÉ', lastContact: 'dernier contact',
    lags: 'événements à recevoir', never: 'jamais', printers: 'Imprimantes',
    headoffice: 'Siège (synchronisation)', disabled: 'non configurée', backlog: 'à envoyer',
    oldest: 'plus ancien non envoyé', lastSuccess: 'dernier envoi réussi',
    lastError: 'dernière erreur', state: 'état',
    task: 'Tâche de fond', taskDown: 'arrêtée sur une erreur, relancée automatiquement',
    ok: 'Tout fonctionne.', warning: 'Le magasin vend, mais quelque chose demande attention :',
    down: 'Ce serveur ne répond pas. Les caisses passent sur un autre serveur ou vendent hors ligne.',
    updated: 'Mis à jour à', seconds: 's',
  },
  en: {
    title: 'Store status', lang: 'FR', node: 'This server', store: 'Store',
    nodeId: 'Node', version: 'Version', uptime: 'Up for', tills: 'Tills connected',
    events: 'Events written', peers: "The store's other servers", noPeers: 'none (single server)',
    connected: 'connected', notConnected: 'NOT CONNECTED', lastContact: 'last contact',
    lags: 'events to receive', never: 'never', printers: 'Printers',
    headoffice: 'Head office (sync)', disabled: 'not configured', backlog: 'to send',
    oldest: 'oldest unsent', lastSuccess: 'last successful send',
    lastError: 'last error', state: 'state',
    task: 'Background task', taskDown: 'stopped on an error, being restarted',
    ok: 'Everything works.', warning: 'The store is selling, but something needs attention:',
    down: 'This server does not answer. Tills move to another server or sell offline.',
    updated: 'Updated at', seconds: 's',
  },
};

let last = null;
const t = (key) => TEXT[getLang()][key];

/** A printer's state as the tills word it ("Imprimante : plus de papier"). */
function printerState(printer) {
  const key = `printer.state.${printer.state}`;
  return hasTranslation(key) ? tillText(key) : tillText('printer.state.other', printer);
}

function section(title, rows) {
  const box = document.createElement('section');
  const heading = document.createElement('h2');
  heading.textContent = title;
  box.append(heading);
  for (const [label, value, bad] of rows) {
    const row = document.createElement('div');
    row.className = 'row';
    const name = document.createElement('span');
    name.textContent = label;
    const shown = document.createElement('span');
    shown.textContent = value ?? '—';
    if (bad !== undefined) shown.className = bad ? 'bad' : 'good';
    row.append(name, shown);
    box.append(row);
  }
  return box;
}

/** What needs store IT's attention, in plain words (empty: all is well). */
function problems(health) {
  const found = [];
  for (const peer of health.peers || []) {
    if (!peer.connected) found.push(`${t('nodeId')} ${peer.node_id}: ${t('notConnected')}`);
  }
  for (const printer of health.printers || []) {
    if (printer.state !== 'ready') found.push(`${printer.name}: ${printerState(printer)} (${printer.detail})`);
  }
  const office = health.headoffice || {};
  if (office.state === 'failing') found.push(`${t('headoffice')}: ${office.last_error}`);
  for (const task of health.tasks || []) {
    if (task.state === 'restarting') {
      found.push(`${t('task')} ${task.name}: ${t('taskDown')} (${task.last_error})`);
    }
  }
  return found;
}

function render() {
  document.documentElement.lang = getLang();
  document.getElementById('title').textContent = t('title');
  document.getElementById('lang').textContent = t('lang');
  const summary = document.getElementById('summary');
  const sections = document.getElementById('sections');
  sections.replaceChildren();
  if (!last) {
    summary.dataset.state = 'down';
    summary.textContent = t('down');
    return;
  }
  const found = problems(last);
  summary.dataset.state = found.length ? 'warning' : 'ok';
  summary.textContent = found.length ? `${t('warning')} ${found.join(' · ')}` : t('ok');

  sections.append(section(t('node'), [
    [t('store'), last.store_id], [t('nodeId'), last.node_id], [t('version'), last.version],
    [t('uptime'), `${Math.round(last.uptime_s)} ${t('seconds')}`],
    [t('tills'), String(last.tills_connected)], [t('events'), String(last.journal.seq)],
  ]));
  const peers = last.peers || [];
  sections.append(section(t('peers'), peers.length ? peers.map((peer) => [
    `${peer.node_id} (${peer.url || '?'})`,
    peer.connected
      ? `${t('connected')}, ${t('lastContact')} ${peer.last_contact_s_ago ?? t('never')} ${t('seconds')}`
        + (peer.lag_events ? `, ${peer.lag_events} ${t('lags')}` : '')
      : t('notConnected'),
    !peer.connected,
  ]) : [[t('noPeers'), '']]));
  sections.append(section(t('printers'), (last.printers || []).map((printer) => [
    printer.name, `${printerState(printer)} — ${printer.detail}`, printer.state !== 'ready',
  ])));
  const office = last.headoffice || {};
  sections.append(section(t('headoffice'), office.state === 'disabled'
    ? [[t('state'), t('disabled')]]
    : [[t('state'), office.state, office.state === 'failing'],
       [t('backlog'), String(office.backlog_events ?? '—')],
       [t('oldest'), office.oldest_unsent], [t('lastSuccess'), office.last_success],
       [t('lastError'), office.last_error]]));
}

async function refresh() {
  try {
    const reply = await fetch('/healthz', { cache: 'no-store' });
    last = reply.ok ? await reply.json() : null;
  } catch {
    last = null;
  }
  render();
  document.getElementById('updated').textContent = `${t('updated')} ${new Date().toLocaleTimeString(getLang())}`;
}

document.getElementById('lang').addEventListener('click', () => {
  setLang(getLang() === 'fr' ? 'en' : 'fr');
  render();
});
refresh();
setInterval(refresh, 5000);
