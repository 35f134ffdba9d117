import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { API_VERSION, type BundleDeployment } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { waitFor } from '../stack/net.js';
import { configMapFiles } from './lib/content.js';
import { dbSizeInUse, etcdUrlOf, storedValue, type StoredValue } from './lib/etcdclient.js';
import { W, applyGitRepo, bundleDeploymentsOf, contentsIDsOf, deleteGitRepo, isCurrent, type BenchStack } from './lib/fleet.js';
import { parseSize } from './lib/knobs.js';
import { addFields, addParts, fieldsOf, noParts, partsOf, type ObjectParts } from './objectparts.js';
import { REAL_LABEL } from './lib/realfleet.js';

/**
 * etcd footprint: for each bundle size, one GitRepo in OCI mode and one in etcd mode (Fleet's default:
 * content inline in the Bundle and in every BundleDeployment), deployed to both real clusters. We read back
 * the Bundle and BundleDeployments as JSON from the API server and their exact stored bytes and write
 * counts from the upstream etcd, and the growth of etcd's database (in use, MVCC history included).
 */

/** Sizes of stored objects of one kind. */
export interface Stored {
  count: number;
  apiJsonBytes: number;
  etcdBytes: number;
  writes: number;
  historyBytes: number;
  /** Where the JSON bytes go, summed over the objects (managedFields, annotations, labels, spec, status). */
  parts: ObjectParts;
  /** Finer: bytes per managedFields writer and per member of metadata, spec and status, summed over the objects. */
  fields: Record<string, number>;
}

/** One (size, mode) measurement. */
export interface Footprint {
  size: string;
  bundleBytes: number;
  mode: 'oci' | 'etcd';
  outcome: 'stored' | 'refused';
  refusal?: string;
  bundle?: Stored;
  bundleDeployments?: Stored;
  /** Growth of etcd's database in use while the GitRepo deployed (other writes included: noisy). */
  dbGrowthBytes?: number;
}

async function measure(s: BenchStack, etcdUrl: string, objects: KubeObject[], plural: string): Promise<Stored> {
  const out: Stored = { count: objects.length, apiJsonBytes: 0, etcdBytes: 0, writes: 0, historyBytes: 0, parts: noParts(), fields: {} };
  for (const o of objects) {
    const ref = { apiVersion: API_VERSION, kind: o.kind, namespace: o.metadata.namespace ?? '', name: o.metadata.name };
    const live = await s.up.get(ref);
    out.apiJsonBytes += Buffer.byteLength(JSON.stringify(live ?? {}));
    if (live) {
      out.parts = addParts(out.parts, partsOf(live as Parameters<typeof partsOf>[0]));
      out.fields = addFields(out.fields, fieldsOf(live as Parameters<typeof fieldsOf>[0]));
      // One sample of each object as stored, in the scratch folder (kept with BENCH_KEEP=1).
      mkdirSync(join(s.work, 'etcd-samples'), { recursive: true });
      writeFileSync(join(s.work, 'etcd-samples', `${plural}-${ref.name}.json`), JSON.stringify(live, null, 2));
    }
    const v: StoredValue | undefined = await storedValue(etcdUrl, `/registry/flotilla.dev/${plural}/${ref.namespace}/${ref.name}`);
    out.etcdBytes += v?.bytes ?? 0;
    out.writes += v?.version ?? 0;
    // Each write stores a whole new copy of the object in etcd's history until compaction.
    out.historyBytes += (v?.bytes ?? 0) * (v?.version ?? 0);
  }
  return out;
}

type Outcome = { kind: 'deployed' } | { kind: 'refused'; message: string };

async function waitOutcome(s: BenchStack, name: string, commit: string, clusters: number): Promise<Outcome> {
  return await waitFor(
    async () => {
      const repo = await s.up.get<
        KubeObject & { status?: { commit?: string; conditions?: { type: string; status: string; reason?: string; message?: string }[] } }
      >({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: W, name });
      const tooLarge = repo?.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'False' && c.reason === 'BundleTooLarge');
      if (tooLarge) return { kind: 'refused', message: tooLarge.message ?? '' } as Outcome;
      if (repo?.status?.commit !== commit) return undefined;
      const ids = await contentsIDsOf(s.up, name);
      const bds = await bundleDeploymentsOf(s.up, name);
      return bds.length === clusters && bds.every((bd) => isCurrent(bd, ids)) ? ({ kind: 'deployed' } as Outcome) : undefined;
    },
    { what: `GitRepo ${name} to deploy or be refused`, timeoutMs: 300_000, intervalMs: 500 },
  );
}

async function one(s: BenchStack, etcdUrl: string, size: string, mode: 'oci' | 'etcd', clusters: number): Promise<Footprint> {
  const bytes = parseSize(size);
  const name = s.unique(`etcd-${mode}-${size.toLowerCase().replace(/[^a-z0-9]/g, '')}`);
  await s.git.createRepo(name);
  const files = configMapFiles('b', Math.max(1, Math.ceil(bytes / (256 * 1024))), bytes);
  const commit = await s.git.commit(name, { ...files, 'b/fleet.yaml': `defaultNamespace: ${name}\n` }, `a ${size} bundle`);
  const db0 = await dbSizeInUse(etcdUrl);
  await applyGitRepo(s, {
    name,
    repo: name,
    paths: ['b'],
    targets: [{ clusterSelector: { matchLabels: { [REAL_LABEL]: 'true' } } }],
    ...(mode === 'oci' ? { ociReference: `${s.registry.host}/bench` } : {}),
  });
  const outcome = await waitOutcome(s, name, commit, clusters);
  const result: Footprint = { size, bundleBytes: bytes, mode, outcome: outcome.kind === 'deployed' ? 'stored' : 'refused' };
  if (outcome.kind === 'refused') {
    result.refusal = outcome.message;
  } else {
    await sleep(3000); // let the last status writes land
    const bundles = (await s.up.list<KubeObject>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: W }, `flotilla.dev/repo-name=${name}`)).items;
    const bds: (BundleDeployment & KubeObject)[] = await bundleDeploymentsOf(s.up, name);
    result.bundle = await measure(s, etcdUrl, bundles, 'bundles');
    result.bundleDeployments = await measure(s, etcdUrl, bds, 'bundledeployments');
    result.dbGrowthBytes = (await dbSizeInUse(etcdUrl)) - db0;
  }
  await deleteGitRepo(s.up, name);
  return result;
}

/** Runs every size in both modes on the real fleet's 2 clusters. */
export async function benchEtcd(s: BenchStack, sizes: readonly string[], clusters: number, say: (m: string) => void): Promise<Footprint[]> {
  const etcdUrl = etcdUrlOf(s.dir, 'upstream');
  const out: Footprint[] = [];
  for (const size of sizes) {
    for (const mode of ['oci', 'etcd'] as const) {
      out.push(await one(s, etcdUrl, size, mode, clusters));
      say(`etcd: ${size} ${mode}: ${out.at(-1)?.outcome}`);
    }
  }
  return out;
}

/**
 * Where the bytes of one object go, finer than the parts: per OCI-mode measurement and kind, each
 * managedFields writer and each member of metadata, spec and status, largest first (per object).
 */
export function fieldBreakdown(r: readonly Footprint[], fmt: (bytes: number) => string): string[] {
  const lines: string[] = [];
  for (const f of r) {
    if (f.mode !== 'oci' || !f.bundle || !f.bundleDeployments) continue;
    for (const [kind, s] of [
      ['Bundle', f.bundle],
      ['BundleDeployment', f.bundleDeployments],
    ] as const) {
      const n = Math.max(1, s.count);
      const top = Object.entries(s.fields ?? {}).sort((a, b) => b[1] - a[1]);
      lines.push(`${f.size} ${kind}: ${top.map(([k, b]) => `${k} ${fmt(b / n)}`).join(', ')}`);
    }
  }
  return lines;
}
