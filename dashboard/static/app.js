// The dashboard page: plain ES module, served as it is (no build step, no framework). Every text from the
// API is put into the page as a text node (textContent / createTextNode), never parsed as HTML, so an
// object name or a message holding markup is shown as that markup's text.

import { createReleases } from './releases.js';

/** Each state with an icon and words, so that it is never told by colour alone (worst first). */
const STATES = [
  ['ErrApplied', '✖', 'Error applying'],
  ['Modified', '✎', 'Modified'],
  ['OutOfSync', '↻', 'Out of sync'],
  ['WaitApplied', '→', 'Waiting to apply'],
  ['Pending', '…', 'Pending'],
  ['NotReady', '◐', 'Not ready'],
  ['Ready', '✔', 'Ready'],
];
const STATE = new Map(STATES.map(([id, icon, words]) => [id, { icon, words }]));
const GROUP_PAGE = 50;
const BUNDLE_CLUSTERS_PAGE = 200;

let session = { actions: false, context: '' };
/** Per expanded matrix group (key "ns/name"): how many clusters are shown and whether only problems. */
const expanded = new Map();
let bundleClusterLimit = BUNDLE_CLUSTERS_PAGE;

/** Builds an element; strings and numbers become text nodes; `on` holds listeners. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const seg = (s) => encodeURIComponent(s);
const link = (href, text, key) => h('a', { href, 'data-key': key ?? href }, text);
const clusterLink = (ns, name) => link(`#/cluster/${seg(ns)}/${seg(name)}`, name);
const bundleLink = (ns, name) => link(`#/bundle/${seg(ns)}/${seg(name)}`, name);

/** A state badge: icon, words and the state's name, coloured as well. */
function badge(state, count) {
  const s = STATE.get(state) ?? { icon: '?', words: state || 'Unknown' };
  const cls = STATE.has(state) ? state : 'Unknown';
  const text = count === undefined ? `${s.icon} ${s.words}` : `${s.icon} ${count} ${s.words}`;
  return h('span', { class: `state s-${cls}`, 'data-state': cls, title: state || 'Unknown' }, text);
}

function counts(c) {
  const parts = STATES.filter(([id]) => c[id]).map(([id]) => badge(id, c[id]));
  return parts.length ? parts : h('span', { class: 'muted' }, '— ', h('span', { class: 'sr-only' }, 'not targeted'));
}

function ago(iso) {
  if (!iso) return 'never';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  const rel = s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
  return h('time', { datetime: iso, title: iso }, `${rel} (${iso})`);
}

function table(caption, headers, rows, extra) {
  return h(
    'table',
    extra ?? {},
    h('caption', {}, caption),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headers.map((x) => h('th', { scope: 'col' }, x)),
      ),
    ),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, 'None.'))),
  );
}

function conditionsTable(conditions) {
  return table(
    'Conditions',
    ['Type', 'Status', 'Reason', 'Message', 'Since'],
    conditions.map((c) =>
      h(
        'tr',
        {},
        h('th', { scope: 'row' }, c.type),
        h('td', {}, c.status),
        h('td', {}, c.reason),
        h('td', { class: 'msg' }, c.message),
        h('td', {}, ago(c.lastTransitionTime)),
      ),
    ),
  );
}

async function getJSON(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ?? `${path}: HTTP ${res.status}`);
  return body;
}

function notify(text, isError) {
  const n = document.getElementById('notice');
  n.className = isError ? 'error' : '';
  n.setAttribute('role', isError ? 'alert' : 'status');
  n.textContent = text;
}

// ---- actions --------------------------------------------------------------------------------------

const confirmDialog = () => document.getElementById('confirm');

function confirmAction(text) {
  const d = confirmDialog();
  document.getElementById('confirm-text').textContent = text;
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = 'cancel';
    d.showModal();
  });
}

async function act(action, repo) {
  const what = { pause: 'Pause', resume: 'Resume', sync: 'Force a sync of' }[action];
  const consequence = {
    pause: 'New versions will be built but not rolled out until it is resumed.',
    resume: 'Versions built while paused will be rolled out.',
    sync: 'Git is fetched again and every cluster re-applies its bundles.',
  }[action];
  if (!(await confirmAction(`${what} GitRepo ${repo.namespace}/${repo.name}? ${consequence}`))) return;
  const res = await fetch('/api/actions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-flotilla-csrf': session.csrfToken ?? '' },
    body: JSON.stringify({ action, namespace: repo.namespace, name: repo.name }),
  });
  const body = await res.json().catch(() => ({}));
  if (res.ok) notify(body.message ?? 'done', false);
  else notify(`Refused (HTTP ${res.status}${res.status === 403 ? ' Forbidden' : ''}): ${body.error ?? res.statusText}`, true);
}

function actionButtons(r) {
  const key = `${r.namespace}/${r.name}`;
  return [
    r.paused
      ? h(
          'button',
          { type: 'button', 'data-key': `resume-${key}`, on: { click: () => act('resume', r) } },
          'Resume',
          h('span', { class: 'sr-only' }, ` ${key}`),
        )
      : h('button', { type: 'button', 'data-key': `pause-${key}`, on: { click: () => act('pause', r) } }, 'Pause', h('span', { class: 'sr-only' }, ` ${key}`)),
    ' ',
    h('button', { type: 'button', 'data-key': `sync-${key}`, on: { click: () => act('sync', r) } }, 'Force sync', h('span', { class: 'sr-only' }, ` ${key}`)),
  ];
}

// ---- pages ----------------------------------------------------------------------------------------

async function fleetPage() {
  const { gitRepos } = await getJSON('/api/fleet');
  const headers = ['GitRepo', 'Repository', 'Commit', 'State', 'Deployments ready', 'Clusters ready', 'Last error', 'Bundles'];
  if (session.actions) headers.push('Actions');
  const rows = gitRepos.map((r) =>
    h(
      'tr',
      { 'data-gitrepo': `${r.namespace}/${r.name}` },
      h('th', { scope: 'row' }, `${r.namespace}/${r.name}`, r.paused ? h('div', {}, badge('OutOfSync'), ' paused') : null),
      h('td', {}, h('code', {}, r.repo), h('div', { class: 'muted' }, r.branch)),
      h('td', {}, r.commit ? h('code', { title: r.commit }, r.commit.slice(0, 12)) : '—'),
      h('td', {}, badge(r.ready ? 'Ready' : r.state === 'Ready' ? 'NotReady' : r.state)),
      h('td', {}, r.readyBundleDeployments || '—'),
      h('td', {}, r.readyClusters || '—'),
      h('td', { class: 'msg' }, r.lastError || h('span', { class: 'muted' }, 'none')),
      h(
        'td',
        {},
        r.bundles.map((b, i) => [i ? ', ' : '', bundleLink(b.namespace, b.name)]),
      ),
      session.actions ? h('td', {}, actionButtons(r)) : null,
    ),
  );
  return [h('h1', {}, 'Fleet'), table(`${gitRepos.length} GitRepo(s)`, headers, rows, { id: 'gitrepos' })];
}

async function groupRows(g, bundles, colspan) {
  const key = `${g.namespace}/${g.name}`;
  const opt = expanded.get(key);
  const q = new URLSearchParams({ namespace: g.namespace, name: g.name, limit: String(opt.limit), problems: opt.problems ? '1' : '0' });
  const view = await getJSON(`/api/group?${q}`);
  const id = `group-${key.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const toggle = h('input', {
    type: 'checkbox',
    id: `${id}-problems`,
    'data-key': `${key}-problems`,
    checked: opt.problems,
    on: {
      change: (e) => {
        opt.problems = e.target.checked;
        opt.limit = GROUP_PAGE;
        refresh();
      },
    },
  });
  const more =
    view.total > view.clusters.length
      ? h(
          'button',
          {
            type: 'button',
            'data-key': `${key}-more`,
            on: {
              click: () => {
                opt.limit += GROUP_PAGE;
                refresh();
              },
            },
          },
          `Show ${Math.min(GROUP_PAGE, view.total - view.clusters.length)} more of ${view.total}`,
        )
      : null;
  const rows = view.clusters.map((c) =>
    h(
      'tr',
      {},
      h('th', { scope: 'row' }, clusterLink(c.namespace, c.name)),
      c.states.map((s) =>
        h('td', { title: s?.message || null }, s ? badge(s.state) : h('span', { class: 'muted' }, '—', h('span', { class: 'sr-only' }, ' not targeted'))),
      ),
    ),
  );
  return h(
    'tr',
    { id },
    h(
      'td',
      { colspan },
      h(
        'div',
        { class: 'sub' },
        h(
          'div',
          { class: 'toolbar' },
          h('label', { for: `${id}-problems` }, toggle, ' Only clusters where a bundle is not ready'),
          h('span', { class: 'muted' }, `${view.clusters.length} of ${view.total} shown`),
        ),
        table(`Clusters of ${g.name}`, ['Cluster', ...bundles.map((b) => b.name)], rows),
        more,
      ),
    ),
  );
}

async function matrixPage() {
  const m = await getJSON('/api/matrix');
  const colspan = m.bundles.length + 2;
  const body = [];
  for (const g of m.groups) {
    const key = `${g.namespace}/${g.name}`;
    const open = expanded.has(key);
    const id = `group-${key.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const button = h(
      'button',
      {
        type: 'button',
        'aria-expanded': open ? 'true' : 'false',
        'aria-controls': id,
        'data-key': `expand-${key}`,
        on: {
          click: () => {
            if (open) expanded.delete(key);
            else expanded.set(key, { limit: GROUP_PAGE, problems: false });
            refresh();
          },
        },
      },
      open ? '▾ ' : '▸ ',
      g.name,
      h('span', { class: 'sr-only' }, open ? ' (collapse)' : ' (expand)'),
    );
    body.push(
      h(
        'tr',
        { 'data-group': key },
        h('th', { scope: 'row' }, button),
        h('td', {}, g.clusterCount),
        g.cells.map((c) => h('td', {}, counts(c))),
      ),
    );
    if (open) body.push(await groupRows(g, m.bundles, colspan));
  }
  const legend = h(
    'p',
    { class: 'muted' },
    'States: ',
    STATES.map(([id]) => [badge(id), ' ']),
    ' — not targeted.',
  );
  return [
    h('h1', {}, 'Bundles × clusters'),
    h(
      'p',
      {},
      `${m.clusterCount} cluster(s) in ${m.groups.length} group(s); each cell counts the group's clusters by the bundle's state there. Expand a group to list its clusters.`,
    ),
    legend,
    table('Bundle deployments by cluster group', ['Cluster group', 'Clusters', ...m.bundles.map((b) => bundleLink(b.namespace, b.name))], body, {
      id: 'matrix',
    }),
  ];
}

async function clusterPage(ns, name) {
  const c = await getJSON(`/api/cluster?${new URLSearchParams({ namespace: ns, name })}`);
  const labels = Object.entries(c.labels).sort(([a], [b]) => a.localeCompare(b));
  return [
    h('h1', {}, `Cluster ${c.namespace}/${c.name}`),
    h(
      'dl',
      {},
      h('dt', {}, 'State'),
      h('dd', {}, c.state ? badge(c.state) : '—'),
      h('dt', {}, 'Bundles ready'),
      h('dd', {}, c.readyBundles || '—'),
      h('dt', {}, 'Last heartbeat'),
      h('dd', {}, ago(c.lastSeen)),
      h('dt', {}, 'Agent version'),
      c.agentVersion ? h('dd', {}, h('code', {}, c.agentVersion)) : h('dd', { class: 'muted' }, 'not reported yet'),
      h('dt', {}, 'Cluster namespace'),
      h('dd', {}, h('code', {}, c.clusterNamespace || '—')),
      h('dt', {}, 'Groups'),
      h('dd', {}, c.groups.join(', ') || 'none'),
    ),
    table(
      'Labels',
      ['Key', 'Value'],
      labels.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, h('code', {}, k)), h('td', {}, h('code', {}, v)))),
    ),
    table(
      'Bundles',
      ['Bundle', 'State', 'Message'],
      c.bundles.map((b) =>
        h('tr', {}, h('th', { scope: 'row' }, bundleLink(b.namespace, b.name)), h('td', {}, badge(b.state)), h('td', { class: 'msg' }, b.message)),
      ),
      { id: 'cluster-bundles' },
    ),
    conditionsTable(c.conditions),
  ];
}

const releases = createReleases({ h, table, getJSON, refresh: () => refresh() });

async function bundlePage(ns, name) {
  const b = await getJSON(`/api/bundle?${new URLSearchParams({ namespace: ns, name })}`);
  const shown = b.clusters.slice(0, bundleClusterLimit);
  const rows = shown.map((c) =>
    h('tr', {}, h('th', { scope: 'row' }, clusterLink(c.namespace, c.name)), h('td', {}, badge(c.state)), h('td', { class: 'msg' }, c.message)),
  );
  const more =
    b.clusters.length > shown.length
      ? h(
          'button',
          {
            type: 'button',
            'data-key': 'bundle-more',
            on: {
              click: () => {
                bundleClusterLimit += BUNDLE_CLUSTERS_PAGE;
                refresh();
              },
            },
          },
          `Show more (${shown.length} of ${b.clusters.length} shown)`,
        )
      : null;
  return [
    h('h1', {}, `Bundle ${b.namespace}/${b.name}`),
    h(
      'dl',
      {},
      h('dt', {}, 'State'),
      h('dd', {}, b.state ? badge(b.state) : '—', b.paused ? ' (paused)' : ''),
      h('dt', {}, 'Clusters ready'),
      h('dd', {}, b.readyClusters || '—'),
      h('dt', {}, 'By state'),
      h('dd', {}, counts(b.counts)),
      h('dt', {}, 'GitRepo'),
      h('dd', {}, b.gitRepo || '—'),
      h('dt', {}, 'Commit'),
      h('dd', {}, b.commit ? h('code', {}, b.commit) : '—'),
      h('dt', {}, 'Artifact digest'),
      h('dd', {}, b.digest ? h('code', { id: 'digest' }, b.digest) : 'none (stored inline in etcd)'),
      h('dt', {}, 'Artifact'),
      h('dd', {}, b.reference ? h('code', {}, b.reference) : '—'),
      h('dt', {}, 'Contents ID'),
      h('dd', {}, b.contentsID ? h('code', {}, b.contentsID) : '—'),
    ),
    conditionsTable(b.conditions),
    table('Clusters (worst state first)', ['Cluster', 'State', 'Message'], rows, { id: 'bundle-clusters' }),
    more,
    releases.sections(b),
  ];
}

// ---- routing and live refresh ---------------------------------------------------------------------

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'matrix') return { nav: 'matrix', render: matrixPage };
  if (parts[0] === 'cluster' && parts.length === 3) return { nav: '', render: () => clusterPage(parts[1], parts[2]) };
  if (parts[0] === 'bundle' && parts.length === 3) return { nav: '', render: () => bundlePage(parts[1], parts[2]) };
  return { nav: 'fleet', render: fleetPage };
}

let rendering = false;
let again = false;
let renders = 0;

/** Re-renders the current page from fresh data, keeping focus on the same control. */
async function refresh(moveFocus) {
  if (rendering) {
    again = true;
    return;
  }
  rendering = true;
  const main = document.getElementById('main');
  try {
    const r = route();
    for (const a of document.querySelectorAll('nav a')) {
      if (a.getAttribute('data-key') === `nav-${r.nav}`) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const content = await r.render();
    // The control focused now, not before the data was fetched: the user may have moved while it loaded.
    const focusKey = document.activeElement?.getAttribute?.('data-key');
    main.replaceChildren();
    append(main, [content]);
    document.title = `${main.querySelector('h1')?.textContent ?? 'Dashboard'} · Flotilla`;
    if (moveFocus) main.focus();
    else if (focusKey) [...document.querySelectorAll('[data-key]')].find((e) => e.getAttribute('data-key') === focusKey)?.focus();
    document.body.setAttribute('data-renders', String(++renders));
  } catch (err) {
    main.replaceChildren(h('h1', {}, 'Not available'), h('p', { class: 'msg' }, err.message));
  } finally {
    rendering = false;
    if (again) {
      again = false;
      refresh();
    }
  }
}

function connect() {
  const live = document.getElementById('live');
  const es = new EventSource('/api/events');
  es.addEventListener('hello', () => {
    live.textContent = 'Live: updates as they happen';
    refresh();
  });
  es.addEventListener('change', () => refresh());
  es.addEventListener('error', () => {
    live.textContent = 'Disconnected: reconnecting…';
  });
}

async function start() {
  try {
    session = await getJSON('/api/session');
    document.getElementById('context').textContent = `${session.context}${session.actions ? ' · actions enabled' : ' · read-only'}`;
  } catch (err) {
    notify(`Cannot reach the dashboard server: ${err.message}`, true);
  }
  window.addEventListener('hashchange', () => {
    bundleClusterLimit = BUNDLE_CLUSTERS_PAGE;
    refresh(true);
  });
  await refresh();
  connect();
}

start();
