import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { CRDS_DIR } from '../lib/api/gen-crds.js';
import { API_VERSION, kinds } from '../lib/api/index.js';
import type { KubeClient, KubeObject } from '../lib/kube/client.js';
import { waitFor } from './net.js';

/**
 * Installs Flotilla's generated CRDs (crds/*.yaml) on an API server of the local fleet: `flotilla dev`,
 * the e2e tests and the benchmarks use it. Idempotent and shared: server-side apply (so it coexists with
 * other installers), and one installation per API server per process, whichever caller asks first.
 */

const installed = new Map<string, Promise<void>>();

/**
 * Applies every CRD in crds/, waits until each is Established and every kind can be listed through
 * `kube`, then resets `kube`'s discovery cache. Concurrent and repeated calls for one server share the work.
 */
export function installCrds(kube: KubeClient): Promise<void> {
  let done = installed.get(kube.server);
  if (!done) {
    done = install(kube);
    installed.set(kube.server, done);
    done.catch(() => installed.delete(kube.server));
  }
  return done.then(() => kube.resetDiscovery());
}

async function install(kube: KubeClient): Promise<void> {
  const files = (await readdir(CRDS_DIR)).filter((f) => f.endsWith('.yaml')).sort();
  const crds = await Promise.all(files.map(async (f) => yaml.load(await readFile(join(CRDS_DIR, f), 'utf8')) as KubeObject));
  for (const crd of crds) await kube.apply(crd, 'flotilla-stack');
  for (const crd of crds) {
    await waitFor(
      async () => {
        const live = await kube.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>({
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          name: crd.metadata.name,
        });
        return live?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      },
      { what: `CRD ${crd.metadata.name} to be Established`, timeoutMs: 60_000 },
    );
  }
  kube.resetDiscovery();
  for (const def of kinds) {
    await waitFor(
      async () => {
        kube.resetDiscovery();
        await kube.list({ apiVersion: API_VERSION, kind: def.kind, namespace: 'default' });
        return true;
      },
      { what: `${def.plural} to be served`, timeoutMs: 30_000 },
    );
  }
}
