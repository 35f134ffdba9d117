import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { createHash } from 'node:crypto';
import { API_VERSION } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';

/**
 * The demo's sample repository: the files under examples/sample-repo plus a generated `big/` bundle of
 * six ConfigMaps of about 850 KiB each (about 5 MiB: more than etcd accepts in one object). The big
 * files are generated deterministically, so every `dev up` pushes the same bytes.
 */

async function walk(dir: string, root: string, out: Record<string, string>): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, root, out);
    else out[relative(root, path)] = await readFile(path, 'utf8');
  }
}

/** Deterministic filler text of `bytes` characters derived from `seed`. */
export function filler(seed: string, bytes: number): string {
  const parts: string[] = [];
  let block = createHash('sha256').update(seed).digest('hex');
  let size = 0;
  while (size < bytes) {
    parts.push(block);
    size += block.length;
    block = createHash('sha256').update(block).digest('hex');
  }
  return parts.join('').slice(0, bytes);
}

/** The big bundle's files. */
export function bigBundle(count = 6, bytesEach = 850 * 1024): Record<string, string> {
  const files: Record<string, string> = {
    'big/fleet.yaml': 'defaultNamespace: demo-big\n',
    'big/namespace.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo-big\n',
  };
  for (let i = 0; i < count; i++) {
    files[`big/payload-${i}.yaml`] =
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: payload-${i}\ndata:\n  blob: "${filler(`payload-${i}`, bytesEach)}"\n`;
  }
  return files;
}

/** Every file of the sample repository, path -> content. */
export async function sampleRepository(sampleDir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  await walk(sampleDir, sampleDir, files);
  return { ...files, ...bigBundle() };
}

/**
 * The sample GitRepo `flotilla dev` creates: its bundles go to OCI storage in the registry the upstream
 * cluster announces (KEP-1755, kube-public/local-registry-hosting): no registry address is written here.
 */
export function sampleGitRepo(namespace: string, repoURL: string, gitSecret: string): KubeObject {
  return {
    apiVersion: API_VERSION,
    kind: 'GitRepo',
    metadata: { name: 'sample', namespace },
    spec: {
      repo: repoURL,
      branch: 'main',
      clientSecretName: gitSecret,
      pollingInterval: '15s',
      paths: ['common', 'web', 'monitoring', 'big'],
      targets: [{ clusterSelector: {} }],
      // No reference: discovered. The dev registry serves plain HTTP.
      ociRegistry: { basicHTTP: true },
    },
  };
}
