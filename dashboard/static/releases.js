// The release sections of the Bundle page: the staged rollout per partition, the version history (what
// `flotilla history` shows) and the diff of two chosen versions (what `flotilla diff` shows, Secret values
// masked by the server). Like app.js, every text from the API becomes a text node, never HTML.

const PHASES = {
  Waiting: ['…', 'Waiting'],
  Rolling: ['→', 'Rolling'],
  Soaking: ['◐', 'Soaking'],
  Done: ['✔', 'Done'],
  Failed: ['✖', 'Failed'],
  Progressing: ['→', 'Progressing'],
  Complete: ['✔', 'Complete'],
  Halted: ['✖', 'Halted'],
  RolledBack: ['↺', 'Rolled back'],
};

/** How often, and how long apart, a history read without the Bundle's own version is read again. */
const HISTORY_REREADS = 5;
const HISTORY_REREAD_MS = 2000;

const short = (digest) => digest.replace(/^sha256:/, '').slice(0, 12);

function changesText(c) {
  if (!c) return 'initial';
  const parts = [...c.added.map((p) => `+${p}`), ...c.modified.map((p) => `~${p}`), ...c.removed.map((p) => `-${p}`)];
  return parts.length ? parts.join(' ') : 'none';
}

/** The Bundle page's release sections; `ui` gives app.js's helpers (h, table, getJSON, refresh). */
export function createReleases(ui) {
  const { h, table, getJSON, refresh } = ui;
  /** Per shown bundle: its history (read again when the bundle's releasesKey changes) and the chosen diff. */
  let rel = { bundle: '' };

  const phase = (p) => {
    const [icon, words] = PHASES[p] ?? ['?', p || 'Unknown'];
    return h('span', { class: `state p-${PHASES[p] ? p : 'Unknown'}`, 'data-phase': p }, `${icon} ${words}`);
  };

  function rolloutSection(r) {
    if (!r.strategy && r.partitions.length === 0)
      return [h('h2', {}, 'Rollout'), h('p', { id: 'rollout-none' }, 'No rolloutStrategy: each new version goes to every targeted cluster at once.')];
    const rows = r.partitions.map((p) =>
      h(
        'tr',
        { 'data-partition': p.name },
        h('th', { scope: 'row' }, p.name),
        h('td', {}, phase(p.phase)),
        h('td', {}, `${p.upToDate}/${p.count}`),
        h('td', {}, `${p.unavailable} (tolerates ${p.maxUnavailable})`),
        h('td', {}, String(p.offline)),
        h('td', {}, p.startedAt || '—'),
        h('td', {}, p.succeededAt || '—'),
        h('td', { class: 'msg' }, p.unavailableClusters.join(', ') || '—'),
      ),
    );
    const version = r.version ? `v${r.version}${r.previousVersion ? ` (from v${r.previousVersion})` : ''}` : '—';
    return [
      h('h2', {}, 'Rollout'),
      h(
        'dl',
        { id: 'rollout' },
        h('dt', {}, 'Phase'),
        h('dd', {}, r.phase ? phase(r.phase) : 'not started yet'),
        h('dt', {}, 'Version'),
        h('dd', {}, version),
        h('dt', {}, 'Message'),
        h('dd', { class: 'msg' }, r.message || '—'),
      ),
      table(
        'Partitions, in rollout order',
        ['Partition', 'Phase', 'Up to date', 'Unavailable', 'Offline', 'Started', 'Within tolerance since', 'Unavailable clusters'],
        rows,
        { id: 'rollout-partitions' },
      ),
    ];
  }

  function loadHistory(b) {
    const key = `${b.namespace}/${b.name}`;
    rel.key = b.releasesKey;
    rel.loading = true;
    getJSON(`/api/history?${new URLSearchParams({ namespace: b.namespace, name: b.name })}`)
      .then((history) => {
        if (rel.bundle !== key) return;
        rel.history = history;
        rel.error = '';
        // A registry may list tags partially (OCI distribution spec, "Listing Tags"): when the version the
        // Bundle points at is missing, read again shortly, a few times, rather than show a short history.
        if (!history.entries.some((e) => e.digest === b.digest) && (rel.rereads ?? 0) < HISTORY_REREADS) {
          rel.rereads = (rel.rereads ?? 0) + 1;
          setTimeout(() => {
            if (rel.bundle !== key || rel.key !== b.releasesKey) return;
            rel.key = '';
            refresh();
          }, HISTORY_REREAD_MS);
        } else rel.rereads = 0;
        const versions = history.entries.map((e) => String(e.version));
        const newest = history.entries.findLast((e) => e.newest) ?? history.entries.at(-1);
        if (!versions.includes(rel.to)) rel.to = newest ? String(newest.version) : '';
        if (!versions.includes(rel.from)) rel.from = versions[Math.max(0, versions.indexOf(rel.to) - 1)] ?? '';
      })
      .catch((err) => {
        if (rel.bundle === key) rel.error = err.message;
      })
      .finally(() => {
        if (rel.bundle !== key) return;
        rel.loading = false;
        refresh();
      });
  }

  function historySection(b) {
    const head = h('h2', {}, 'Version history');
    if (!b.digest) return [head, h('p', { class: 'muted' }, 'None: the bundle is stored inline (etcd mode); only bundles in an OCI registry keep versions.')];
    if (rel.error) return [head, h('p', { class: 'msg error', role: 'alert' }, rel.error)];
    if (!rel.history) return [head, h('p', { role: 'status' }, 'Reading the versions from the registry…')];
    const rows = rel.history.entries.map((e) =>
      h(
        'tr',
        { 'data-version': e.version },
        h('th', { scope: 'row' }, `v${e.version}`, e.newest ? ' (newest)' : '', e.rollback ? ' (rollback)' : ''),
        h('td', {}, h('code', { title: e.digest }, short(e.digest))),
        h('td', {}, e.commit ? h('code', { title: e.commit }, e.commit.slice(0, 12)) : '—'),
        h('td', {}, e.commitTime || '—'),
        h('td', { class: 'msg' }, changesText(e.changes)),
        h('td', {}, `${e.files} (${e.size} bytes)`),
        h('td', { class: 'msg' }, e.clusters.join(', ') || '—'),
      ),
    );
    return [
      head,
      table(
        `${rel.history.entries.length} retained version(s) in ${rel.history.repository}, oldest first`,
        ['Version', 'Digest', 'Commit', 'Commit date', 'Files changed', 'Files (size)', 'Clusters running it'],
        rows,
        { id: 'bundle-history' },
      ),
    ];
  }

  async function showDiff(b) {
    const key = `${b.namespace}/${b.name}`;
    rel.diff = null;
    rel.diffError = '';
    rel.diffLoading = true;
    refresh();
    const q = new URLSearchParams({ namespace: b.namespace, name: b.name, from: rel.from, to: rel.to, cluster: rel.cluster });
    try {
      const diff = await getJSON(`/api/diff?${q}`);
      if (rel.bundle === key) rel.diff = diff;
    } catch (err) {
      if (rel.bundle === key) rel.diffError = err.message;
    }
    rel.diffLoading = false;
    refresh();
  }

  function select(id, label, value, options, onChange) {
    return h(
      'span',
      { class: 'field' },
      h('label', { for: id }, label),
      ' ',
      h(
        'select',
        { id, 'data-key': id, on: { change: (e) => onChange(e.target.value) } },
        options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)),
      ),
    );
  }

  function diffResult() {
    if (rel.diffLoading) return h('p', { role: 'status' }, 'Rendering both versions…');
    if (rel.diffError) return h('p', { class: 'msg error', role: 'alert' }, rel.diffError);
    const d = rel.diff;
    if (!d) return null;
    const files = [...d.changes.added.map((p) => `+ ${p}`), ...d.changes.modified.map((p) => `~ ${p}`), ...d.changes.removed.map((p) => `- ${p}`)];
    const line = (l) => {
      const t = l.trimStart();
      const cls = /^[~+-] \S+\/\S+ /.test(l) ? 'd-obj' : t.startsWith('+ ') ? 'd-add' : t.startsWith('- ') ? 'd-del' : '';
      return h('span', { class: cls }, `${l}\n`);
    };
    return h(
      'div',
      { id: 'diff-result' },
      h('h3', {}, `Files changed, v${d.from} → v${d.to}`),
      h('pre', { id: 'diff-files' }, files.length ? files.join('\n') : '(no file changed)'),
      h('h3', {}, `Objects for cluster ${d.cluster}`),
      h('pre', { id: 'diff-objects' }, d.objects.length ? d.objects.map(line) : '(no object changed)'),
      h('p', { class: 'muted' }, `${d.downloads} blob(s) downloaded; Secret values are shown as ***.`),
    );
  }

  function diffSection(b) {
    if (!b.digest || !rel.history) return [];
    const versions = rel.history.entries.map((e) => [String(e.version), `v${e.version}${e.newest ? ' (newest)' : ''}`]);
    const clusters = [['', 'none (no labels, as flotilla diff)'], ...b.clusters.map((c) => [`${c.namespace}/${c.name}`, c.name])];
    const form = h(
      'form',
      {
        id: 'diff-form',
        'aria-label': 'Compare two versions',
        on: {
          submit: (e) => {
            e.preventDefault();
            if (!rel.diffLoading) showDiff(b);
          },
        },
      },
      select('diff-from', 'From version', rel.from, versions, (v) => (rel.from = v)),
      select('diff-to', 'To version', rel.to, versions, (v) => (rel.to = v)),
      select('diff-cluster', 'Render for cluster', rel.cluster, clusters, (v) => (rel.cluster = v)),
      // Never disabled while a diff renders: the focus stays on it across redraws (a second submit is ignored).
      h('button', { type: 'submit', 'data-key': 'diff-show', 'aria-busy': rel.diffLoading ? 'true' : null }, 'Show diff'),
    );
    return [h('h2', {}, 'Compare versions'), form, h('div', { 'aria-live': 'polite' }, diffResult())];
  }

  return {
    /** The rollout, history and diff sections of bundle view `b`. */
    sections(b) {
      const key = `${b.namespace}/${b.name}`;
      if (rel.bundle !== key) rel = { bundle: key, key: '', rereads: 0, history: null, error: '', from: '', to: '', cluster: '', diff: null, diffError: '' };
      if (b.digest && rel.key !== b.releasesKey && !rel.loading) loadHistory(b);
      return [rolloutSection(b.rollout), historySection(b), diffSection(b)];
    },
  };
}
