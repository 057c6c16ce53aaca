import { escapeXml } from './console-svg.ts';

/**
 * The console's page, script and stylesheet. The page is static apart from escaped attributes; the script
 * builds every row with `textContent` (never `innerHTML`), and inserts the server's SVG diagrams through
 * `DOMParser`, so no payload text can become markup. Both are served from the console's own path, which is
 * what the Content-Security-Policy allows (no inline script or style).
 * @module
 */

/** What the page needs to know. */
export interface ConsolePageOptions {
  readonly basePath: string;
  readonly title: string;
  readonly token: string;
  readonly actions: boolean;
  readonly panels: Readonly<Record<'map' | 'outbox' | 'sagas' | 'projections' | 'health', boolean>>;
  readonly refresh: number;
}

/** The HTML of the console page. */
export function consolePage(o: ConsolePageOptions): string {
  const a = (v: string | number) => escapeXml(String(v));
  const section = (id: string, title: string, body: string) =>
    o.panels[id as keyof ConsolePageOptions['panels']]
      ? `<section id="${id}" class="panel" data-panel="${id}"><h2>${title}</h2>${body}</section>`
      : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="console-base" content="${a(o.basePath)}">
<meta name="csrf-token" content="${a(o.token)}">
<meta name="console-actions" content="${o.actions ? 'on' : 'off'}">
<meta name="console-refresh" content="${a(o.refresh)}">
<title>${a(o.title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${a(o.basePath)}/console.css">
<script type="module" src="${a(o.basePath)}/console.js"></script>
</head>
<body>
<header><h1>${a(o.title)}</h1><nav>${(['map', 'outbox', 'sagas', 'projections', 'health'] as const)
    .filter((p) => o.panels[p])
    .map((p) => `<a href="#${p}">${p}</a>`)
    .join(' ')}</nav>${
    o.actions
      ? '<label class="token">operator token <input type="password" id="operator-token" autocomplete="off" placeholder="sent as Authorization: Bearer, with actions only"></label>'
      : ''
  }<p id="flash" role="status"></p></header>
<main>
${section('map', 'Application map', '<div class="diagram-box" data-slot="diagram"></div><details><summary>Mermaid text</summary><pre data-slot="mermaid"></pre></details><table data-slot="handlers"><thead><tr><th>message</th><th>kind</th><th>handler</th><th>behaviors</th><th>emits</th></tr></thead><tbody></tbody></table>')}
${section('outbox', 'Outbox', '<dl class="figures" data-slot="figures"></dl><div class="chart-box" data-slot="chart"></div><h3>Dead letters</h3><p data-slot="bulk"></p><table data-slot="dead"><thead><tr><th>seq</th><th>type</th><th>topic / key</th><th>attempts</th><th>last error</th><th>payload</th><th></th></tr></thead><tbody></tbody></table>')}
${section('sagas', 'Sagas', '<ul class="counts" data-slot="counts"></ul><form data-slot="filter"><label>status <select name="status"><option value="">any</option></select></label> <label>name <input name="name" maxlength="255"></label> <button type="submit">Filter</button></form><table data-slot="list"><thead><tr><th>id</th><th>name</th><th>status</th><th>step</th><th>updated</th></tr></thead><tbody></tbody></table><p data-slot="pages"></p><div data-slot="detail" class="detail"></div>')}
${section('projections', 'Projections', '<table data-slot="list"><thead><tr><th>name</th><th>version</th><th>position</th><th>head</th><th>lag</th><th>state</th><th>last error</th><th></th></tr></thead><tbody></tbody></table>')}
${section('health', 'Consumers and health', '<table data-slot="list"><thead><tr><th>component</th><th>status</th><th>heartbeat</th><th>detail</th></tr></thead><tbody></tbody></table><h3>Recent actions</h3><ul data-slot="audit" class="audit"></ul>')}
</main>
</body>
</html>
`;
}

const SCRIPT = `// cqrs-ts console: builds every row with textContent; diagrams are server-rendered, escaped SVG.
const meta = (n) => document.querySelector('meta[name="' + n + '"]')?.getAttribute('content') ?? '';
const base = meta('console-base');
const csrf = meta('csrf-token');
const actions = meta('console-actions') === 'on';
const refreshMs = Math.max(1, Number(meta('console-refresh')) || 5) * 1000;
const STATUSES = ['running', 'paused', 'compensating', 'completed', 'compensated', 'compensation_failed', 'failed'];

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, String(v));
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? '' : String(c)));
  return e;
}
const slot = (panel, name) => document.querySelector('#' + panel + ' [data-slot="' + name + '"]');
const flash = (text, bad) => { const f = document.getElementById('flash'); f.textContent = text; f.className = bad ? 'bad' : 'ok'; };
const age = (ms) => ms < 1000 ? ms + ' ms' : ms < 120000 ? Math.round(ms / 1000) + ' s' : Math.round(ms / 60000) + ' min';
const when = (t) => t === null || t === undefined ? '–' : new Date(t).toISOString().replace('T', ' ').slice(0, 19);

async function api(path, init) {
  const r = await fetch(base + '/api' + path, { credentials: 'same-origin', ...init });
  const type = r.headers.get('content-type') || '';
  const body = type.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new Error((body && body.title ? body.title : 'HTTP ' + r.status) + (body && body.detail ? ': ' + body.detail : ''));
  return body;
}
// An operator token, when the authorize hook reads Authorization: kept for this tab only, sent with actions only.
const tokenInput = document.getElementById('operator-token');
if (tokenInput) {
  tokenInput.value = sessionStorage.getItem('cqrs-console-token') ?? '';
  tokenInput.addEventListener('change', () => sessionStorage.setItem('cqrs-console-token', tokenInput.value));
}
function post(path, body) {
  const headers = { 'content-type': 'application/json', 'x-csrf-token': csrf };
  const token = tokenInput ? tokenInput.value.trim() : '';
  if (token) headers.authorization = 'Bearer ' + token;
  return api(path, { method: 'POST', headers, body: JSON.stringify(body ?? {}) });
}

function putSvg(container, text) {
  const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
  const root = doc.documentElement;
  if (root.namespaceURI !== 'http://www.w3.org/2000/svg') return;
  for (const s of root.querySelectorAll('script, foreignObject')) s.remove();
  container.replaceChildren(document.importNode(root, true));
}

async function runAction(label, path, body) {
  try {
    const r = await post(path, body);
    flash(label + ': ' + r.result + ' (by ' + r.by + ')', false);
  } catch (error) {
    flash(label + ' failed: ' + error.message, true);
  }
  await Promise.all([loadOutbox(), loadSagas(), loadProjections(), loadHealth()]);
}

async function loadMap() {
  if (!document.getElementById('map')) return;
  const [data, svg] = await Promise.all([api('/map'), api('/map.svg')]);
  putSvg(slot('map', 'diagram'), svg);
  slot('map', 'mermaid').textContent = data.mermaid;
  slot('map', 'handlers').tBodies[0].replaceChildren(...data.handlers.map((h) =>
    el('tr', {}, el('td', {}, h.messageType), el('td', {}, h.mode === 'event' ? 'event' : h.kind), el('td', {}, h.handler), el('td', {}, h.behaviors.join(', ')), el('td', {}, h.emits.join(', ')))));
}

async function loadOutbox() {
  if (!document.getElementById('outbox')) return;
  const [o, dead, chart] = await Promise.all([api('/outbox'), api('/outbox/dead-letters?limit=100'), api('/outbox/throughput.svg')]);
  const fig = [['backlog', o.backlog], ['oldest pending', age(o.oldestPendingAgeMs)], ['dead letters', o.dead]];
  if (o.relay) fig.push(['relay', (o.relay.running ? 'running' : 'stopped') + ', circuit ' + o.relay.circuit + (o.relay.stalled ? ', stalled' : '')]);
  if (o.relay && o.relay.lastError) fig.push(['relay last error', o.relay.lastError]);
  slot('outbox', 'figures').replaceChildren(...fig.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { 'data-figure': k }, v)]));
  if (o.throughput) putSvg(slot('outbox', 'chart'), chart); else slot('outbox', 'chart').textContent = 'This outbox store does not report throughput.';
  const ids = dead.items.map((d) => d.id);
  slot('outbox', 'bulk').replaceChildren(...(actions && ids.length > 1 ? [
    el('button', { type: 'button', 'data-action': 'replay-all', onclick: () => runAction('replay', '/outbox/dead-letters/replay', { ids }) }, 'Replay all ' + ids.length + ' shown'),
    el('button', { type: 'button', 'data-action': 'delete-all', class: 'danger', onclick: () => { if (confirm('Delete ' + ids.length + ' dead letters?')) runAction('delete', '/outbox/dead-letters/delete', { ids }); } }, 'Delete all ' + ids.length + ' shown'),
  ] : []));
  slot('outbox', 'dead').tBodies[0].replaceChildren(...dead.items.map((d) => el('tr', { 'data-id': d.id },
    el('td', {}, d.seq), el('td', {}, d.type), el('td', {}, d.topic + (d.key === null ? '' : ' / ' + d.key)), el('td', {}, d.attempts),
    el('td', { class: 'error' }, d.lastError ?? ''),
    el('td', {}, el('pre', { class: 'payload' }, d.payload + (d.payloadTruncated ? ' …(cut)' : ''))),
    el('td', {}, ...(actions ? [
      el('button', { type: 'button', 'data-action': 'replay', onclick: () => runAction('replay', '/outbox/dead-letters/replay', { ids: [d.id] }) }, 'Replay'),
      el('button', { type: 'button', 'data-action': 'delete', class: 'danger', onclick: () => { if (confirm('Delete dead letter ' + d.seq + '?')) runAction('delete', '/outbox/dead-letters/delete', { ids: [d.id] }); } }, 'Delete'),
    ] : [])))));
}

let sagaFilter = '';
let sagaAfter = '';
async function loadSagas() {
  if (!document.getElementById('sagas')) return;
  const q = new URLSearchParams(sagaFilter);
  if (sagaAfter) q.set('afterId', sagaAfter);
  const s = await api('/sagas' + (q.size ? '?' + q : ''));
  slot('sagas', 'counts').replaceChildren(...STATUSES.map((st) => el('li', { 'data-status': st, class: st }, st + ': ' + (s.counts[st] ?? 0))), ...(s.capped ? [el('li', {}, '(counted the first 20,000)')] : []));
  slot('sagas', 'list').tBodies[0].replaceChildren(...s.items.map((r) => el('tr', { 'data-id': r.id },
    el('td', {}, el('button', { type: 'button', class: 'link', 'data-open': r.id, onclick: () => openSaga(r.id, s.resume) }, r.id)),
    el('td', {}, r.name), el('td', { class: r.status }, r.status), el('td', {}, r.cursor), el('td', {}, when(r.updatedAt)))));
  const last = s.items.length === 50 ? s.items[49].id : '';
  slot('sagas', 'pages').replaceChildren(
    ...(sagaAfter ? [el('button', { type: 'button', 'data-page': 'first', onclick: () => { sagaAfter = ''; loadSagas(); } }, 'First page')] : []),
    ...(last ? [el('button', { type: 'button', 'data-page': 'next', onclick: () => { sagaAfter = last; loadSagas(); } }, 'Next page')] : []));
}

async function openSaga(id, canResume) {
  const detail = slot('sagas', 'detail');
  const [d, svg] = await Promise.all([api('/sagas/' + encodeURIComponent(id)), api('/sagas/' + encodeURIComponent(id) + '/log.svg')]);
  const box = el('div', { class: 'diagram-box', 'data-slot': 'sequence' });
  putSvg(box, svg);
  detail.replaceChildren(
    el('h3', {}, d.saga.name + ' ' + d.saga.id),
    el('p', {}, 'status ' + d.saga.status + ', ' + d.log.length + ' log rows' + (d.saga.error ? ', error ' + d.saga.error : '')),
    box,
    ...(canResume && d.saga.status === 'compensation_failed'
      ? [el('button', { type: 'button', 'data-action': 'resume', onclick: () => runAction('resume', '/sagas/' + encodeURIComponent(id) + '/resume', {}).then(() => openSaga(id, canResume)) }, 'Resume compensation')]
      : []));
}

async function loadProjections() {
  if (!document.getElementById('projections')) return;
  const p = await api('/projections');
  slot('projections', 'list').tBodies[0].replaceChildren(...p.items.map((s) => el('tr', { 'data-name': s.name },
    el('td', {}, s.name), el('td', {}, s.version), el('td', {}, s.position), el('td', {}, s.head),
    el('td', {}, s.lagEvents + (s.lagCapped ? '+' : '') + ' events, ' + age(s.lagMs)), el('td', {}, s.state + (s.active ? '' : ' (inactive)')),
    el('td', { class: 'error' }, s.lastError ? s.lastError.eventType + ' ' + s.lastError.error : ''),
    el('td', {}, ...(actions ? [el('button', { type: 'button', 'data-action': 'rebuild', onclick: () => { if (confirm('Rebuild ' + s.name + '?')) runAction('rebuild', '/projections/' + encodeURIComponent(s.name) + '/rebuild', { mode: 'in-place' }); } }, 'Rebuild')] : [])))));
}

async function loadHealth() {
  if (!document.getElementById('health')) return;
  const [h, audit] = await Promise.all([api('/health'), api('/audit')]);
  slot('health', 'list').tBodies[0].replaceChildren(...h.components.map((c) => el('tr', { 'data-component': c.name },
    el('td', {}, c.name), el('td', { class: c.status }, c.status),
    el('td', {}, c.heartbeat && c.heartbeat.at ? age(Math.max(0, h.at - c.heartbeat.at)) + ' ago' + (c.heartbeat.lateMs > 0 ? ', late ' + age(c.heartbeat.lateMs) : '') + (c.heartbeat.running ? '' : ' (stopped)') : '–'),
    el('td', {}, (c.output ?? '') + (c.observed ? ' [' + c.observed + ']' : '')))));
  slot('health', 'audit').replaceChildren(...audit.items.slice().reverse().map((a) => el('li', {}, when(a.at) + ' ' + (a.who ?? '(refused)') + ' ' + a.action + ' ' + a.targets.join(', ') + ' → ' + a.outcome)));
}

function setupFilter() {
  const form = slot('sagas', 'filter');
  if (!form) return;
  const select = form.querySelector('select');
  for (const s of STATUSES) select.append(el('option', { value: s }, s));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (select.value) q.set('status', select.value);
    const name = form.querySelector('input').value.trim();
    if (name) q.set('name', name);
    sagaFilter = q.toString();
    sagaAfter = '';
    loadSagas().catch((error) => flash(error.message, true));
  });
}

const loaders = [loadOutbox, loadSagas, loadProjections, loadHealth];
async function refresh() {
  const results = await Promise.allSettled(loaders.map((l) => l()));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) flash(failed.reason.message, true);
}
setupFilter();
Promise.allSettled([loadMap(), refresh()]).then(() => document.body.setAttribute('data-ready', 'true'));
setInterval(refresh, refreshMs);
`;

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:8px 16px;position:sticky;top:0;z-index:1}
header h1{font-size:18px;margin:0;display:inline-block;margin-right:16px}
header nav{display:inline-block}header nav a{color:#b3e5fc;margin-right:10px}
label.token{float:right;font-size:12px}label.token input{width:220px}
#flash{margin:4px 0 0;min-height:1.2em}#flash.bad{color:#ff8a80}#flash.ok{color:#b9f6ca}
main{padding:8px 16px}
.panel{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 16px 16px;margin:12px 0;overflow-x:auto}
.panel h2{font-size:16px;margin:8px 0}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
th{font-weight:600;background:#f5f5f5}
pre.payload{max-width:420px;max-height:120px;overflow:auto;margin:0;white-space:pre-wrap;word-break:break-all;font-size:12px;background:#f7f7f7;padding:4px}
td.error{color:#b71c1c;max-width:280px;word-break:break-word}
dl.figures{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}dl.figures dt{color:#555}
dl.figures dd{margin:0;font-weight:600}
ul.counts{display:flex;flex-wrap:wrap;gap:8px;list-style:none;padding:0}
ul.counts li{background:#eceff1;border-radius:12px;padding:2px 10px}
.compensation_failed,.failed,.fail{color:#b71c1c}.warn{color:#e65100}.pass,.completed{color:#1b5e20}
button{font:inherit;margin-right:4px;cursor:pointer}button.danger{color:#b71c1c}
button.link{background:none;border:none;color:#1565c0;text-decoration:underline;padding:0;font-family:monospace}
.diagram-box{overflow:auto;max-height:560px}
ul.audit{font-size:12px;color:#444}
code{font-size:12px;word-break:break-all}
`;

/** @internal Assets by path below the base path. */
export const CONSOLE_ASSETS: Readonly<Record<string, { readonly type: string; readonly body: string }>> =
  Object.freeze({
    '/console.js': { type: 'text/javascript; charset=utf-8', body: SCRIPT },
    '/console.css': { type: 'text/css; charset=utf-8', body: STYLE },
  });
