import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir, ensureBinaries, INSTALL_SCRIPT } from './binaries.js';

/** Paths of the real node's programs, as written by `stack/tools/install.sh --node` to node-binaries.json. */
export interface NodeBinaries {
  kubelet: string;
  kubeScheduler: string;
  crane: string;
  containerd: string;
  runc: string;
  cniBinDir: string;
  busybox: string;
  /** The sandbox process for the pause image (stack/tools/pause). */
  pause: string;
  k8sVersion: string;
}

const REQUIRED = ['kubelet', 'kubeScheduler', 'crane', 'containerd', 'runc', 'busybox', 'pause'] as const;

/** Reads the node's binary paths, checking each one exists. */
export async function readNodeBinaries(): Promise<NodeBinaries> {
  const file = join(cacheDir(), 'node-binaries.json');
  if (!existsSync(file)) throw new Error(`the real node's binaries are not installed (no ${file}); run: bash ${INSTALL_SCRIPT} --node`);
  const parsed = JSON.parse(await readFile(file, 'utf8')) as NodeBinaries;
  for (const key of REQUIRED) {
    if (!existsSync(parsed[key])) throw new Error(`the real node's ${key} is missing at ${parsed[key]}; run: bash ${INSTALL_SCRIPT} --node`);
  }
  if (!existsSync(join(parsed.cniBinDir, 'bridge')))
    throw new Error(`the CNI bridge plugin is missing in ${parsed.cniBinDir}; run: bash ${INSTALL_SCRIPT} --node`);
  return parsed;
}

/** Runs the installer with --node (a no-op when everything is there), then reads the node's binaries. */
export async function ensureNodeBinaries(): Promise<NodeBinaries> {
  await ensureBinaries({ node: true });
  return await readNodeBinaries();
}
