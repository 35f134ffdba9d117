import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stack } from './fixture.js';
import { startFleet, removeFleetDir, type Fleet } from './support/processes.js';
import { applyCredentials, gitRepoObject, ociRegistryFor } from './support/fleetobjects.js';
import { API_VERSION, Label, type BundleDeployment } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { waitFor } from '../stack/net.js';
import type { ManagedProcess } from '../stack/proc.js';
import { startNodeStack } from './support/nodestack.js';
import { checkHost, processesMatching, snapshotHost, type HostSnapshot } from '../stack/host.js';
import { NODE_LOCK } from '../stack/node.js';
import { readNodeBinaries } from '../stack/node-binaries.js';
import { crane, pushBusybox } from '../stack/images.js';
import { startStack, type Stack, type StackDescription } from '../stack/stack.js';

/**
 * A real node (stack/node.ts): a second stack, in its own process like `flotilla dev`'s, runs one cluster
 * with kubelet + containerd; the shared e2e stack's upstream, controller and an agent deploy a bundle to
 * it through git and the OCI registry. The bundle's Deployment, StatefulSet, DaemonSet and Job really run
 * (Pods on the node, images pulled by containerd from the node stack's registry); readiness, a rollout of
 * a new image and the correction of a hand-edited Pod template are checked on the node; stopping the
 * node stack must leave no process, mount, link, cgroup, iptables chain or changed sysctl behind.
 */

const run = promisify(execFile);
type Obj<T = Record<string, unknown>> = T & KubeObject;
const WS = 'node-e2e';
const REPO = 'node-e2e';
const APP = 'node-e2e-app';
const CLUSTER = 'node-e2e';
const TIMEOUT = 180_000;
const V1 = 'registry.flotilla.local/flotilla-node/busybox:1.35';

/** Every sysctl value except the counters that change on their own. */
async function sysctls(): Promise<Map<string, string>> {
  const { stdout } = await run('sysctl', ['-a'], { maxBuffer: 16 * 1024 * 1024 }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
  const volatile = /^(fs\.(dentry-state|file-nr|inode-nr|inode-state|quota\.)|kernel\.(ns_last_pid|random\.)|net\.netfilter\.nf_conntrack_count)/;
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [key, value] = line.split(' = ');
    if (key && value !== undefined && !volatile.test(key) && !/\.conf\.(veth|flcni|flnode)/.test(key)) out.set(key, value);
  }
  return out;
}

async function nftTables(): Promise<string> {
  return (await run('nft', ['list', 'tables'])).stdout.trim();
}

/** The bundle: `probeFile` is what the web Pods' readiness probe reads (the Pods are Ready only if it exists in the image). */
function workloads(image: string, mode: string, probeFile: string): Record<string, string> {
  // A Job's Pod template is immutable: it keeps the first image, the others roll out.
  const pod = (name: string, command: string) =>
    `      containers:\n      - name: ${name}\n        image: ${name === 'once' ? V1 : image}\n        command: [sh, -c, ${JSON.stringify(command)}]\n        env:\n        - {name: MODE, value: ${mode}}\n`;
  const probe = `        readinessProbe:\n          exec: {command: [cat, ${probeFile}]}\n          periodSeconds: 1\n`;
  return {
    'app/fleet.yaml': `defaultNamespace: ${APP}\ncorrectDrift:\n  enabled: true\n`,
    'app/deployment.yaml':
      'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n' +
      `${pod('web', 'exec httpd -f -p 8080 -h /var/www')}${probe}`,
    'app/statefulset.yaml':
      'apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  serviceName: db\n  replicas: 1\n  selector:\n    matchLabels: {app: db}\n  template:\n    metadata:\n      labels: {app: db}\n    spec:\n' +
      pod('db', 'exec sleep 100000'),
    'app/service.yaml': 'apiVersion: v1\nkind: Service\nmetadata:\n  name: db\nspec:\n  clusterIP: None\n  selector: {app: db}\n  ports:\n  - port: 80\n',
    'app/daemonset.yaml':
      'apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  selector:\n    matchLabels: {app: agent}\n  template:\n    metadata:\n      labels: {app: agent}\n    spec:\n' +
      pod('agent', 'exec sleep 100000'),
    'app/job.yaml':
      'apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\nspec:\n  backoffLimit: 2\n  template:\n    spec:\n      restartPolicy: Never\n' +
      pod('once', 'test -f /bin/busybox && echo done'),
  };
}

describe('a real node: Deployment, StatefulSet, DaemonSet and Job run on kubelet + containerd', function () {
  this.timeout(15 * 60_000);
  let hostBefore: HostSnapshot;
  let sysctlsBefore: Map<string, string>;
  let nftBefore: string;
  let dir: string;
  let nodeStack: ManagedProcess;
  let desc: StackDescription;
  let fleet: Fleet;
  let node: KubeClient;
  let failed = false;
  let fleetStopped = false;
  const git = () => stack().git!;
  const nodeInfo = () => desc.node!;

  async function bundleReady(what: string, check: (bd: Obj<BundleDeployment>) => boolean = () => true): Promise<void> {
    await waitFor(
      async () => {
        await fleet.assertAlive();
        if (!nodeStack.running()) throw new Error(`the node stack exited: see ${nodeStack.logFile}`);
        const bds = (await fleet.upstream.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${REPO}`))
          .items;
        const bd = bds[0];
        return bds.length === 1 && bd?.status?.ready === true && bd.status.appliedDeploymentID === bd.spec.deploymentID && check(bd);
      },
      { what, timeoutMs: TIMEOUT, intervalMs: 500, context: () => `logs in ${fleet.logDir} and ${dir}/node` },
    );
  }

  async function pods(app: string): Promise<Obj<{ spec: { nodeName?: string }; status?: Record<string, unknown> }>[]> {
    return (
      await node.list<Obj<{ spec: { nodeName?: string }; status?: Record<string, unknown> }>>({ apiVersion: 'v1', kind: 'Pod', namespace: APP }, `app=${app}`)
    ).items;
  }

  before(async function () {
    this.timeout(10 * 60_000);
    hostBefore = await snapshotHost();
    sysctlsBefore = await sysctls();
    nftBefore = await nftTables();
    const started = await startNodeStack({ name: 'node-e2e', clusters: [CLUSTER], node: CLUSTER });
    ({ dir, desc, process: nodeStack } = started);
    process.stdout.write(`      real node ${nodeInfo().nodeName} Ready in ${(nodeInfo().startupMs / 1000).toFixed(1)} s\n`);
    const plane = await started.plane(CLUSTER);
    node = await KubeClient.fromKubeConfig(plane.kubeConfig());
    const composite = { cluster: (name: string) => (name === CLUSTER ? plane : stack().cluster(name)) } as Stack;
    fleet = await startFleet(composite, { workspace: WS, clusters: [{ name: CLUSTER, labels: { node: 'real' } }] });
    await git().createRepo(REPO);
    // First with a readiness probe that fails (the file is only in the v2 image): see the readiness test.
    await git().commit(REPO, workloads(V1, 'base', '/etc/flotilla-image'), 'workloads on the real node, web probe failing');
    await applyCredentials(fleet.upstream, WS, WS, git());
    await fleet.upstream.apply(
      gitRepoObject(REPO, WS, git(), REPO, {
        paths: ['app'],
        targets: [{ clusterSelector: { matchLabels: { node: 'real' } } }],
        ociRegistry: ociRegistryFor(stack().registry('http'), 'node-e2e'),
      }),
      WS,
    );
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async function () {
    this.timeout(180_000);
    if (!fleetStopped) await fleet?.stop();
    await node?.close();
    await nodeStack?.stop(90_000);
    if (fleet && !failed) await removeFleetDir(fleet);
    if (!failed) await rm(dir, { recursive: true, force: true });
  });

  it('refuses a second node on the machine, naming the one that runs', async () => {
    let message = '';
    try {
      await (await startStack({ clusters: ['second'], node: 'second', git: false })).stop();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.match(/only one real node can run on this machine/);
    expect(message).to.contain(CLUSTER);
  });

  it('keeps the bundle not Ready while the web Pods run on the node but fail their readiness probe', async () => {
    await waitFor(
      async () => {
        const list = await pods('web');
        const statuses = list.map((p) => (p.status?.containerStatuses as { ready?: boolean; started?: boolean }[] | undefined)?.[0]);
        return list.length === 2 && statuses.every((c) => c?.started === true && c.ready === false);
      },
      { what: 'both web Pods started and not ready', timeoutMs: TIMEOUT, intervalMs: 500 },
    );
    await waitFor(
      async () => {
        const bd = (await fleet.upstream.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${REPO}`))
          .items[0];
        return bd?.status?.appliedDeploymentID !== undefined && bd.status.appliedDeploymentID === bd.spec.deploymentID;
      },
      { what: 'the first commit applied', timeoutMs: TIMEOUT, intervalMs: 500 },
    );
    for (let i = 0; i < 5; i++) {
      const bds = (await fleet.upstream.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${REPO}`)).items;
      expect(bds.length).to.equal(1);
      expect(bds[0]?.status?.appliedDeploymentID, 'the bundle is applied').to.equal(bds[0]?.spec.deploymentID);
      expect(bds[0]?.status?.ready, 'the bundle is not Ready while the Deployment is unavailable').to.not.equal(true);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await git().commit(REPO, workloads(V1, 'base', '/var/www/index.html'), 'web probe reads a file the image has');
  });

  it('runs every workload on the node and reports the bundle Ready once they are', async () => {
    await bundleReady('the workloads bundle Ready on the real node');
    const deployment = await node.get<Obj<{ status?: { readyReplicas?: number } }>>({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: APP, name: 'web' });
    expect(deployment?.status?.readyReplicas).to.equal(2);
    const ds = await node.get<Obj<{ status?: { numberReady?: number } }>>({ apiVersion: 'apps/v1', kind: 'DaemonSet', namespace: APP, name: 'agent' });
    expect(ds?.status?.numberReady).to.equal(1);
    const sts = await node.get<Obj<{ status?: { readyReplicas?: number } }>>({ apiVersion: 'apps/v1', kind: 'StatefulSet', namespace: APP, name: 'db' });
    expect(sts?.status?.readyReplicas).to.equal(1);
    const job = await node.get<Obj<{ status?: { succeeded?: number } }>>({ apiVersion: 'batch/v1', kind: 'Job', namespace: APP, name: 'once' });
    expect(job?.status?.succeeded, 'the Job ran to completion').to.equal(1);
    const digest = await crane((await readNodeBinaries()).crane, ['digest', nodeInfo().images.busybox]);
    for (const app of ['web', 'db', 'agent']) {
      const list = await pods(app);
      expect(list.length, `Pods of ${app}`).to.be.greaterThan(0);
      for (const p of list) {
        expect(p.spec.nodeName, `${p.metadata.name} on the real node`).to.equal(nodeInfo().nodeName);
        expect(p.status?.phase, `${p.metadata.name} phase`).to.equal('Running');
        const imageID = (p.status?.containerStatuses as { imageID?: string }[] | undefined)?.[0]?.imageID ?? '';
        expect(imageID, `${p.metadata.name} runs the image containerd pulled from the stack registry`).to.contain(digest);
      }
    }
  });

  it('rolls out a new image: the new Pods pass their probe and replace the old ones', async () => {
    const binaries = await readNodeBinaries();
    const host = desc.registries.http!.host;
    const digest = await pushBusybox({
      crane: binaries.crane,
      busybox: binaries.busybox,
      workDir: join(dir, 'image-v2'),
      ref: `${host}/flotilla-node/busybox:v2`,
      extraFiles: { 'etc/flotilla-image': 'v2\n' },
    });
    // The probe now reads a file only v2 has: Ready Pods are v2 Pods.
    await git().commit(REPO, workloads('registry.flotilla.local/flotilla-node/busybox:v2', 'base', '/etc/flotilla-image'), 'busybox v2');
    await bundleReady('the bundle Ready with the v2 image');
    await waitFor(
      async () => {
        const list = await pods('web');
        const ids = list.map((p) => (p.status?.containerStatuses as { imageID?: string; ready?: boolean }[] | undefined)?.[0]);
        return list.length === 2 && ids.every((s) => s?.ready === true && s.imageID?.includes(digest));
      },
      { what: 'both web Pods on the v2 image and Ready', timeoutMs: TIMEOUT, intervalMs: 500 },
    );
  });

  it('corrects a Pod template edited by hand on the node', async () => {
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', namespace: APP, name: 'web' };
    const current = await node.get<Obj<{ spec: { template: { spec: { containers: Record<string, unknown>[] } } } }>>(ref);
    const containers = current?.spec.template.spec.containers.map((c) => ({ ...c, env: [{ name: 'MODE', value: 'edited-by-hand' }] }));
    await node.mergePatch(ref, { spec: { template: { spec: { containers } } } });
    const mode = async () =>
      (await node.get<Obj<{ spec: { template: { spec: { containers: { env?: { value?: string }[] }[] } } } }>>(ref))?.spec.template.spec.containers[0]?.env?.[0]
        ?.value;
    await waitFor(async () => (await mode()) === 'base', { what: 'the agent to restore MODE=base in the Pod template', timeoutMs: TIMEOUT, intervalMs: 500 });
    await bundleReady('the bundle Ready again after the drift correction');
    await waitFor(
      async () => {
        const list = await pods('web');
        const envs = list.map((p) => JSON.stringify((p.spec as { containers?: { env?: unknown }[] }).containers?.[0]?.env));
        return list.length === 2 && envs.every((e) => e.includes('"base"'));
      },
      { what: 'the web Pods back on the template from git', timeoutMs: TIMEOUT, intervalMs: 500 },
    );
  });

  it('leaves no process, mount, link, cgroup, iptables chain or changed sysctl behind when stopped', async () => {
    fleetStopped = true;
    await fleet.stop();
    await nodeStack.stop(90_000);
    expect(await processesMatching(dir), 'processes of the node stack').to.deep.equal([]);
    for (const name of ['kubelet', 'containerd-shim', 'containerd --config']) {
      const left = (await processesMatching(name)).filter((p) => p.args.includes(dir));
      expect(left, `${name} processes`).to.deep.equal([]);
    }
    expect(await checkHost(hostBefore), 'mounts, links, network namespaces, cgroups, paths, iptables').to.deep.equal([]);
    const now = await sysctls();
    const changed = [...sysctlsBefore].filter(([k, v]) => now.get(k) !== v).map(([k, v]) => `${k}: ${v} -> ${now.get(k)}`);
    expect(changed, 'sysctls changed').to.deep.equal([]);
    expect(await nftTables(), 'nf_tables tables').to.equal(nftBefore);
    expect(existsSync(NODE_LOCK), 'the node lock released').to.equal(false);
  });
});
