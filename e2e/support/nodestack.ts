/**
 * The real-node stack for e2e suites: `stack/cli.ts up --node` in its own process (it needs its own
 * lifetime because the node holds the machine's one node lock), with control-plane views of its clusters
 * that {@link startFleet} accepts.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { ControlPlane } from '../../stack/kube.js';
import { NODE_IP } from '../../stack/node.js';
import { waitFor } from '../../stack/net.js';
import { spawnManaged, type ManagedProcess } from '../../stack/proc.js';
import { readStackDescription, type StackDescription } from '../../stack/stack.js';

/** What the node stack is started with. */
export interface NodeStackOptions {
  /** Prefix of the temporary directory (and its log file), e.g. "node-e2e". */
  name: string;
  /** Every cluster to start; the first runs the kube-controller-manager when `kcm` is set. */
  clusters: string[];
  /** The cluster that gets the real node (kubelet + containerd). */
  node: string;
  /** A cluster that also runs kube-controller-manager (garbage collection, ServiceAccount tokens). */
  kcm?: string;
}

/** A running node stack. */
export interface NodeStack {
  /** The stack's directory: stack.json, clusters/NAME, node/ logs. */
  dir: string;
  /** What the stack wrote to stack.json once up. */
  desc: StackDescription;
  /** The stack's process. */
  process: ManagedProcess;
  /** A ControlPlane view of cluster `name` (kubeconfig, server, CA); enough for startFleet. */
  plane(name: string): Promise<ControlPlane>;
  /** Throws, naming the log, when the stack's process has exited. */
  assertRunning(): void;
  /** Stops the stack; removes its directory unless `keep` (keep it when a test failed). */
  stop(keep: boolean): Promise<void>;
}

/** An API server's URL as Pods on the real node reach it: the node's IP instead of loopback. */
export function podURL(server: string): URL {
  const url = new URL(server);
  url.hostname = NODE_IP;
  return url;
}

/** Starts the node stack with a plain-HTTP registry and waits until its stack.json exists (the node is Ready). */
export async function startNodeStack(options: NodeStackOptions): Promise<NodeStack> {
  const dir = await mkdtemp(join(tmpdir(), `flotilla-stack-${options.name}-`));
  const args = ['--import', 'tsx', 'stack/cli.ts', 'up', '--dir', dir, '--clusters', options.clusters.join(',')];
  if (options.kcm) args.push('--kcm', options.kcm);
  args.push('--node', options.node, '--registries', 'http');
  const proc = spawnManaged('node stack', process.execPath, args, `${dir}.log`);
  let desc: StackDescription;
  try {
    await waitFor(
      async () => {
        if (!proc.running()) throw new Error(`the node stack exited: ${(await readFile(proc.logFile, 'utf8')).slice(-2000)}`);
        return existsSync(join(dir, 'stack.json'));
      },
      { what: 'the node stack to start', timeoutMs: 5 * 60_000, intervalMs: 500 },
    );
    desc = await readStackDescription(dir);
  } catch (err) {
    // A node left running would make every later node test fail on "one node per machine".
    await proc.stop(90_000);
    throw err;
  }
  return {
    dir,
    desc,
    process: proc,
    plane: (name) => planeOf(desc, dir, name),
    assertRunning() {
      if (!proc.running()) throw new Error(`the node stack exited: see ${proc.logFile}`);
    },
    async stop(keep) {
      await proc.stop(90_000);
      if (!keep) await rm(dir, { recursive: true, force: true });
    },
  };
}

async function planeOf(desc: StackDescription, dir: string, name: string): Promise<ControlPlane> {
  const c = desc.clusters[name];
  if (!c) throw new Error(`the node stack has no cluster ${name}`);
  const caPem = await readFile(join(dir, 'clusters', name, 'ca.crt'), 'utf8');
  const unsupported = async () => {
    throw new Error('not supported for the node stack');
  };
  return {
    name,
    server: c.server,
    kubeconfigPath: c.kubeconfig,
    caPem,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromFile(c.kubeconfig);
      return kc;
    },
    stopApiServer: unsupported,
    startApiServer: unsupported,
    stop: unsupported,
  };
}
