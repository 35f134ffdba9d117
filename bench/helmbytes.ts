import { randomBytes } from 'node:crypto';
import { measureChange, mark, type ChangeFigures } from './bytes.js';
import { applyGitRepo, deleteGitRepo, waitDeployed, type BenchStack } from './lib/fleet.js';
import { REAL_LABEL, type RealFleet } from './lib/realfleet.js';
import { median } from './lib/stats.js';

/**
 * Bytes per template change in a Helm chart: a chart of N templates (one ConfigMap each, about 1 KiB)
 * in the repository is deployed to both real clusters (OCI mode, rendered by each agent with the real
 * helm); then one template at a time changes, and we count what the controller uploaded and what each
 * agent downloaded, as the bytes benchmark does. The target: one template's layer plus the manifest per
 * change, each way (Fleet stores the whole chart as one Content object; Flux moves a whole tarball).
 */

/** Result of the benchmark. */
export interface HelmBytesResult {
  templates: number;
  chartBytes: number;
  changes: ChangeFigures[];
  median: { changedFileBytes: number; controllerTotal: number; agentTotal: number; agentManifestBytes: number };
}

function template(i: number): Buffer {
  const name = `cm-${String(i).padStart(3, '0')}`;
  const payload = randomBytes(640).toString('base64').replace(/[+/=]/g, 'x');
  return Buffer.from(
    `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-${name}\n  labels:\n    app.kubernetes.io/managed-by: {{ .Release.Service }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  payload: "${payload}"\n`,
  );
}

/** The chart's files under `dir`: Chart.yaml, values.yaml, fleet.yaml and `count` templates. */
export function chartFiles(dir: string, count: number): Record<string, Buffer> {
  const files: Record<string, Buffer> = {
    [`${dir}/fleet.yaml`]: Buffer.from('defaultNamespace: bench-helm\nhelm:\n  releaseName: bench\n'),
    [`${dir}/Chart.yaml`]: Buffer.from('apiVersion: v2\nname: bench\nversion: 1.0.0\n'),
    [`${dir}/values.yaml`]: Buffer.from('greeting: hello\n'),
  };
  for (let i = 0; i < count; i++) files[`${dir}/templates/cm-${String(i).padStart(3, '0')}.yaml`] = template(i);
  return files;
}

/** Runs the benchmark on the real fleet (its agents find helm through FLOTILLA_HELM). */
export async function benchHelmBytes(
  s: BenchStack,
  fleet: RealFleet,
  o: { templates: number; rounds: number },
  say: (m: string) => void,
): Promise<HelmBytesResult> {
  const files = chartFiles('chart', o.templates);
  const repo = s.unique('bench-helm');
  await s.git.createRepo(repo);
  let commit = await s.git.commit(repo, files, `a chart with ${o.templates} templates`);
  await applyGitRepo(s, {
    name: repo,
    repo,
    paths: ['chart'],
    targets: [{ clusterSelector: { matchLabels: { [REAL_LABEL]: 'true' } } }],
    ociReference: `${s.registry.host}/bench`,
  });
  await waitDeployed(s.up, repo, commit, fleet.agents.length);
  say(`helm-bytes: chart of ${o.templates} templates deployed`);
  const changes: ChangeFigures[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const i = (r * 37) % o.templates;
    const path = `chart/templates/cm-${String(i).padStart(3, '0')}.yaml`;
    const content = template(i);
    const m = await mark(s, fleet);
    commit = await s.git.commit(repo, { [path]: content }, `change ${path}`);
    await waitDeployed(s.up, repo, commit, fleet.agents.length);
    changes.push(await measureChange(s, fleet, m, content.length, Date.now() - m.t));
    say(`helm-bytes: change ${r + 1}/${o.rounds} (${path}) measured`);
  }
  // Gone before the next benchmark, as every benchmark's GitRepos are (its resyncs would count there).
  await deleteGitRepo(s.up, repo);
  return {
    templates: o.templates,
    chartBytes: Object.values(files).reduce((n, b) => n + b.length, 0),
    changes,
    median: {
      changedFileBytes: median(changes.map((c) => c.changedFileBytes)),
      controllerTotal: median(changes.map((c) => c.controllerBlobBytes + c.controllerManifestBytes)),
      agentTotal: median(changes.flatMap((c) => c.agents.map((a) => a.blobBytes + a.manifestBytes))),
      agentManifestBytes: median(changes.flatMap((c) => c.agents.map((a) => a.manifestBytes))),
    },
  };
}
