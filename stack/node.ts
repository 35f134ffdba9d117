import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig, CoreV1Api } from '@kubernetes/client-node';
import { startContainerd } from './containerd.js';
import { checkHost, processesMatching, restoreHost, snapshotHost, type HostSnapshot } from './host.js';
import { pushNodeImages } from './images.js';
import { freePort, waitFor } from './net.js';
import type { NodeBinaries } from './node-binaries.js';
import { spawnManaged, type ManagedProcess } from './proc.js';

const run = promisify(execFile);

/**
 * One real node for one of the stack's clusters: containerd + runc + the bridge CNI, the kubelet and
 * kube-scheduler (the cluster's kube-controller-manager runs the node lifecycle controller, see
 * stack/kube.ts). Pods really run. Only one node fits on a machine (port 10250, /var/log/containers, the
 * kubelet's host-wide changes): a lock file says which stack holds it. The host state the node changes is
 * recorded first (stack/host.ts); stopping the node, or a failed start, restores it, and {@link RealNode.check}
 * lists anything left behind.
 */

/** The machine-wide lock: which process holds the node, and the host snapshot to restore if it died. */
export const NODE_LOCK = '/run/flotilla-node.lock.json';
/** The node's address (a /32 on a bridge of its own: the kubelet refuses a loopback node IP). */
export const NODE_IP = '172.30.213.1';
/** The Pods' subnet on the CNI bridge. */
export const POD_SUBNET = '172.30.214.0/24';
const NODE_BRIDGE = 'flnode0';
const CNI_BRIDGE = 'flcni0';

/** Options for {@link startNode}. */
export interface NodeOptions {
  /** The cluster's name (the node is named `<cluster>-node`) and its admin kubeconfig. */
  cluster: string;
  kubeconfigPath: string;
  /** The node's folder (kubelet root, containerd, CNI, logs). */
  dir: string;
  binaries: NodeBinaries;
  /** The stack's plain-HTTP registry (host:port), where the node's images are pushed and pulled from. */
  registryHost: string;
  log?: (message: string) => void;
}

/** A running node. */
export interface RealNode {
  readonly cluster: string;
  readonly nodeName: string;
  readonly ip: string;
  /** References of the images pushed for the node (busybox for workloads, pause for sandboxes). */
  readonly images: { busybox: string; pause: string };
  /** Milliseconds from the start call to the node Ready and schedulable. */
  readonly startupMs: number;
  /** Stops every node process and restores the host; returns what could not be undone (empty: nothing left). */
  stop(): Promise<string[]>;
  /** Lists what differs from the host as it was before the node started (processes, mounts, ...). */
  check(): Promise<string[]>;
}

/** The cluster whose node this process runs, if any (the lock file cannot tell this process's nodes apart). */
let activeNode: string | undefined;

interface Lock {
  pid: number;
  dir: string;
  cluster: string;
  snapshot: HostSnapshot;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Fails, naming the holder, when a node already runs on this machine (in this process or another one):
 * the stack calls it before starting anything else.
 */
export async function assertNodeAvailable(): Promise<void> {
  if (activeNode !== undefined)
    throw new Error(
      `only one real node can run on this machine and this process already runs one (cluster ${activeNode}); stop that stack before starting another node`,
    );
  if (!existsSync(NODE_LOCK)) return;
  const held = JSON.parse(await readFile(NODE_LOCK, 'utf8')) as Lock;
  if (alive(held.pid) && held.pid !== process.pid)
    throw new Error(
      `only one real node can run on this machine and one already runs (cluster ${held.cluster}, process ${held.pid}, folder ${held.dir}); ` +
        `stop that stack first ('flotilla dev down' or end its test), then start this one again (lock: ${NODE_LOCK})`,
    );
}

/** Takes the machine's node lock, or fails naming the holder; cleans up after a holder that died. */
async function takeLock(o: NodeOptions, log: (m: string) => void): Promise<HostSnapshot> {
  await assertNodeAvailable();
  if (existsSync(NODE_LOCK)) {
    const held = JSON.parse(await readFile(NODE_LOCK, 'utf8')) as Lock;
    log(`a node of process ${held.pid} did not stop (folder ${held.dir}); restoring the host from its record first`);
    await killNodeProcesses(held.dir);
    const problems = await restoreHost(held.snapshot);
    if (problems.length > 0) throw new Error(`could not undo a previous node's host changes:\n${problems.join('\n')}\n(lock: ${NODE_LOCK})`);
    await rm(NODE_LOCK, { force: true });
  }
  const snapshot = await snapshotHost();
  const lock: Lock = { pid: process.pid, dir: o.dir, cluster: o.cluster, snapshot };
  const handle = await open(NODE_LOCK, 'wx').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`only one real node can run on this machine: ${NODE_LOCK} appeared while starting (${err.code}); stop the other stack first`);
  });
  try {
    await handle.writeFile(JSON.stringify(lock));
  } finally {
    await handle.close();
  }
  return snapshot;
}

/** Kills what containerd started outside its process group (shims; container processes go with their cgroups). */
async function killNodeProcesses(dir: string): Promise<void> {
  for (const p of await processesMatching(join(dir, 'containerd'))) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

async function ip(args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    throw new Error(`ip ${args.join(' ')} failed: ${((err as { stderr?: string }).stderr ?? '').trim()}`);
  }
}

function kubeletConfig(o: NodeOptions, endpoint: string, healthzPort: number): string {
  return `${JSON.stringify(
    {
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      address: NODE_IP,
      port: 10250,
      readOnlyPort: 0,
      healthzBindAddress: '127.0.0.1',
      healthzPort,
      // Loopback-only addresses: the API server reaches the kubelet on the node's private IP.
      authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
      authorization: { mode: 'AlwaysAllow' },
      cgroupDriver: 'cgroupfs',
      failCgroupV1: false,
      failSwapOn: false,
      containerRuntimeEndpoint: endpoint,
      podLogsDir: join(o.dir, 'pod-logs'),
      serializeImagePulls: false,
      registerNode: true,
      fileCheckFrequency: '5s',
      syncFrequency: '10s',
      nodeStatusUpdateFrequency: '5s',
      evictionHard: { 'memory.available': '50Mi', 'nodefs.available': '2%', 'imagefs.available': '2%', 'nodefs.inodesFree': '2%' },
      imageGCHighThresholdPercent: 99,
      imageGCLowThresholdPercent: 98,
      maxPods: 60,
    },
    null,
    2,
  )}\n`;
}

async function logTail(path: string): Promise<string> {
  return (await readFile(path, 'utf8').catch(() => '(no log)')).split('\n').slice(-12).join('\n');
}

/** Resolves when the node is Ready and no longer tainted not-ready (the node lifecycle controller's work). */
async function waitNodeReady(kubeconfigPath: string, nodeName: string, procs: ManagedProcess[]): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const outcome = await waitFor(
    async () => {
      const exited = procs.find((p) => !p.running());
      if (exited) return { exited };
      const node = await core.readNode({ name: nodeName });
      const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      const tainted = node.spec?.taints?.some((t) => t.key.startsWith('node.kubernetes.io/'));
      return ready && !tainted ? { exited: undefined } : false;
    },
    {
      what: `node ${nodeName} to be Ready and untainted`,
      timeoutMs: 120_000,
      intervalMs: 250,
      context: () => `logs: ${procs.map((p) => p.logFile).join(', ')}`,
    },
  );
  if (outcome.exited)
    throw new Error(`${outcome.exited.name} exited while the node started; last lines of ${outcome.exited.logFile}:\n${await logTail(outcome.exited.logFile)}`);
}

/** Starts the node; on failure stops what it started and restores the host before rethrowing. */
export async function startNode(o: NodeOptions): Promise<RealNode> {
  const log = o.log ?? ((m: string) => process.stderr.write(`[flotilla-stack] ${m}\n`));
  const started = Date.now();
  const nodeName = `${o.cluster}-node`;
  await mkdir(o.dir, { recursive: true });
  const snapshot = await takeLock(o, log);
  activeNode = o.cluster;
  const procs: ManagedProcess[] = [];
  let stopped: Promise<string[]> | undefined;
  const stop = (): Promise<string[]> => {
    stopped ??= (async () => {
      for (const p of [...procs].reverse()) await p.stop(10_000);
      await killNodeProcesses(o.dir);
      const problems = await restoreHost(snapshot);
      await killNodeProcesses(o.dir);
      if (problems.length === 0) await rm(NODE_LOCK, { force: true });
      activeNode = undefined;
      return problems;
    })();
    return stopped;
  };
  try {
    await ip(['link', 'add', NODE_BRIDGE, 'type', 'bridge']);
    await ip(['addr', 'add', `${NODE_IP}/32`, 'dev', NODE_BRIDGE]);
    await ip(['link', 'set', NODE_BRIDGE, 'up']);
    const images = await pushNodeImages({ ...o.binaries, workDir: join(o.dir, 'images'), registryHost: o.registryHost });
    const containerd = await startContainerd({
      dir: o.dir,
      containerd: o.binaries.containerd,
      runc: o.binaries.runc,
      cniBinDir: o.binaries.cniBinDir,
      registryHost: o.registryHost,
      sandboxImage: images.pause,
      bridge: CNI_BRIDGE,
      podSubnet: POD_SUBNET,
    });
    procs.push(containerd.process);
    await writeFile(join(o.dir, 'kubelet.json'), kubeletConfig(o, containerd.endpoint, await freePort()));
    const kubelet = spawnManaged(
      `kubelet (${o.cluster})`,
      o.binaries.kubelet,
      [
        `--kubeconfig=${o.kubeconfigPath}`,
        `--config=${join(o.dir, 'kubelet.json')}`,
        `--root-dir=${join(o.dir, 'kubelet')}`,
        `--cert-dir=${join(o.dir, 'kubelet-pki')}`,
        `--node-ip=${NODE_IP}`,
        `--hostname-override=${nodeName}`,
        '--v=1',
      ],
      join(o.dir, 'kubelet.log'),
    );
    procs.push(kubelet);
    const scheduler = spawnManaged(
      `kube-scheduler (${o.cluster})`,
      o.binaries.kubeScheduler,
      [`--kubeconfig=${o.kubeconfigPath}`, '--leader-elect=false', `--secure-port=${await freePort()}`, '--bind-address=127.0.0.1', '--v=0'],
      join(o.dir, 'kube-scheduler.log'),
    );
    procs.push(scheduler);
    await waitNodeReady(o.kubeconfigPath, nodeName, procs);
    const startupMs = Date.now() - started;
    log(`real node ${nodeName} (${NODE_IP}) Ready on cluster ${o.cluster} in ${(startupMs / 1000).toFixed(1)} s`);
    return {
      cluster: o.cluster,
      nodeName,
      ip: NODE_IP,
      images,
      startupMs,
      stop,
      async check() {
        const left = (await checkHost(snapshot)).map((l) => `host: ${l}`);
        for (const p of await processesMatching(o.dir)) left.push(`process ${p.pid}: ${p.args}`);
        if (existsSync(NODE_LOCK)) left.push(`lock ${NODE_LOCK}`);
        return left;
      },
    };
  } catch (err) {
    const problems = await stop();
    const extra = problems.length > 0 ? `\nand the host could not be fully restored:\n${problems.join('\n')}` : '';
    throw new Error(`starting the real node for ${o.cluster} failed: ${(err as Error).message}${extra}`);
  }
}
