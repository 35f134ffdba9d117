import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { stack } from './fixture.js';
import { applyCredentials, gitRepoObject } from './support/fleetobjects.js';
import { statusOf, tokenClient } from './support/kube.js';
import { podURL, startNodeStack, type NodeStack } from './support/nodestack.js';
import { API_VERSION, Label, type BundleDeployment, type GitRepo } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { requestToken } from '../controller/rbac.js';
import { readBinaries } from '../stack/binaries.js';
import { issueRegistrationToken, writeAgentBootstrap } from '../stack/bootstrap.js';
import { checkHost, processesMatching, snapshotHost, type HostSnapshot } from '../stack/host.js';
import { buildImage } from '../stack/image.js';
import { freePort, waitFor } from '../stack/net.js';
import { NODE_IP } from '../stack/node.js';
import { readNodeBinaries } from '../stack/node-binaries.js';
import { spawnManaged, type ManagedProcess } from '../stack/proc.js';
import type { ControlPlane } from '../stack/kube.js';

/**
 * The controller chart (charts/flotilla) as Pods on a real node (stack/node.ts). One cluster has the node
 * and is its own upstream: the chart is installed on it with the real helm, the controller runs from the
 * image built without Docker (stack/image.ts) with its in-cluster configuration and ServiceAccount token
 * (non-root, read-only root file system, probes and resource limits enforced by the kubelet), wins its
 * Lease, and reconciles a GitRepo from the e2e stack's git server into Bundles and a BundleDeployment for a
 * cluster registered by an agent process on the host (the same cluster, as Fleet's "local" cluster). The
 * chart's optional dashboard runs in the same install: the test fetches the fleet page from its Pod IP on
 * the node's bridge, and its ServiceAccount's token can read the Flotilla kinds but not write them.
 */

const run = promisify(execFile);
type Obj<T = Record<string, unknown>> = T & KubeObject;
type Pod = Obj<{
  spec: { containers: Record<string, unknown>[]; securityContext?: { runAsNonRoot?: boolean; runAsUser?: number } };
  status?: { podIP?: string; containerStatuses?: { ready?: boolean; restartCount?: number }[] };
}>;
const CLUSTER = 'ctlpod';
const SYSTEM_NS = 'flotilla-system';
const WS = 'ctlpod';
const REGISTRATION_NS = 'ctlpod-registration';
const AGENT_NS = 'ctlpod-agent';
const REPO = 'ctlpod';
const APP = 'ctlpod-app';
const DASHBOARD = 'flotilla-dashboard';
const DASHBOARD_PORT = 8420;
const TIMEOUT = 180_000;

/**
 * The loopback git server made reachable from Pods: a TCP relay on the node's IP (the kubelet's
 * KUBE-FIREWALL drops traffic to 127/8 that does not come from loopback), bytes passed through unchanged.
 */
async function relayToLoopback(port: number): Promise<Server> {
  const server = createServer((inbound) => {
    const outbound = connect(port, '127.0.0.1');
    inbound.pipe(outbound).pipe(inbound);
    const close = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', close);
    outbound.on('error', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, NODE_IP, () => resolve());
  });
  return server;
}

describe('the controller chart as Pods on a real node: the controller reconciles, the dashboard serves read-only', function () {
  this.timeout(15 * 60_000);
  let hostBefore: HostSnapshot;
  let started: NodeStack;
  let plane: ControlPlane;
  let kube: KubeClient;
  let relay: Server;
  let agent: ManagedProcess;
  let failed = false;
  let stopped = false;

  async function readyPod(component: string): Promise<Pod> {
    return await waitFor(
      async () => {
        started.assertRunning();
        const pods = (await kube.list<Pod>({ apiVersion: 'v1', kind: 'Pod', namespace: SYSTEM_NS }, `app.kubernetes.io/component=${component}`)).items;
        return pods.length === 1 && pods[0]?.status?.containerStatuses?.[0]?.ready === true ? pods[0] : undefined;
      },
      { what: `the ${component} Pod Ready`, timeoutMs: TIMEOUT, intervalMs: 1000, context: () => `node logs in ${started.dir}/node` },
    );
  }

  async function installChart(): Promise<void> {
    const bins = await readBinaries();
    const registry = started.desc.registries.http!;
    const built = await buildImage({
      crane: (await readNodeBinaries()).crane,
      helm: bins.helm,
      kustomize: bins.kustomize,
      ref: `${registry.host}/flotilla:e2e`,
      work: join(started.dir, 'image'),
    });
    process.stdout.write(`      image ${(built.compressedBytes / 1024 / 1024).toFixed(1)} MiB compressed, built in ${(built.buildMs / 1000).toFixed(1)} s\n`);
    const values = {
      image: { repository: 'registry.flotilla.local/flotilla', tag: 'e2e', pullPolicy: 'Always' },
      workspaceNamespace: WS,
      registrationNamespace: REGISTRATION_NS,
      // What registration tokens tell agents: the API server at the node's IP, which Pods and the host reach.
      apiServerURL: podURL(plane.server).toString().replace(/\/$/, ''),
      apiServerCA: plane.caPem,
      pollingInterval: '2s',
      // No kube-proxy on the node: the in-cluster configuration goes to the node's IP directly.
      extraEnv: [
        { name: 'KUBERNETES_SERVICE_HOST', value: NODE_IP },
        { name: 'KUBERNETES_SERVICE_PORT', value: podURL(plane.server).port },
      ],
      dashboard: { enabled: true, service: { enabled: true } },
    };
    const valuesFile = join(started.dir, 'controller-values.yaml');
    await writeFile(valuesFile, yaml.dump(values), { mode: 0o600 });
    const env = { ...process.env, HELM_CONFIG_HOME: join(started.dir, 'helm', 'config'), HELM_CACHE_HOME: join(started.dir, 'helm', 'cache') };
    const args = ['install', 'flotilla', 'charts/flotilla', '-n', SYSTEM_NS, '--create-namespace', '--kubeconfig', plane.kubeconfigPath, '-f', valuesFile];
    await run(bins.helm, args, { env: { ...env, HELM_DATA_HOME: join(started.dir, 'helm', 'data') } }).catch((err: { stderr?: string }) => {
      throw new Error(`helm install of the controller chart failed: ${err.stderr}`);
    });
  }

  /** Registers the cluster through the token flow (the Pod controller writes the token Secret) and starts its agent on the host. */
  async function startAgent(): Promise<ManagedProcess> {
    const token = await issueRegistrationToken(kube, { namespace: WS, name: `${WS}-token`, manager: 'ctlpod-e2e', timeoutMs: TIMEOUT });
    expect(token.apiServerURL, 'the chart apiServerURL in the token').to.equal(podURL(plane.server).toString().replace(/\/$/, ''));
    await writeAgentBootstrap(kube, token, {
      agentNamespace: AGENT_NS,
      workspace: WS,
      registrationNamespace: REGISTRATION_NS,
      clusterName: CLUSTER,
      labels: { node: 'real' },
      manager: 'ctlpod-e2e',
    });
    const args = ['--import', 'tsx', 'agent/main.ts', '--kubeconfig', plane.kubeconfigPath, '--namespace', AGENT_NS];
    args.push('--cache-dir', join(started.dir, 'agent-cache'), '--probe-address', '127.0.0.1', '--resync', '5s', '--heartbeat', '5s');
    args.push('--probe-port', String(await freePort()), '--metrics-port', String(await freePort()));
    return spawnManaged('agent', process.execPath, args, join(started.dir, 'agent.log'));
  }

  before(async function () {
    this.timeout(10 * 60_000);
    hostBefore = await snapshotHost();
    started = await startNodeStack({ name: 'ctlpod', clusters: [CLUSTER], kcm: CLUSTER, node: CLUSTER });
    plane = await started.plane(CLUSTER);
    kube = await KubeClient.fromKubeConfig(plane.kubeConfig());
    relay = await relayToLoopback(Number(new URL(stack().git!.url).port));
    await installChart();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async function () {
    this.timeout(180_000);
    if (stopped) return;
    await agent?.stop(10_000);
    await new Promise<void>((resolve) => (relay ? relay.close(() => resolve()) : resolve()));
    await kube?.close();
    await started?.stop(failed);
  });

  it('runs the controller Pod non-root with a read-only root file system and limits, Ready (leading) by its probes', async () => {
    const pod = await readyPod('controller');
    const c = pod.spec.containers[0] as { securityContext?: { readOnlyRootFilesystem?: boolean }; resources?: { limits?: { memory?: string } } };
    expect(c.securityContext?.readOnlyRootFilesystem).to.equal(true);
    expect(c.resources?.limits?.memory).to.equal('1Gi');
    expect(pod.spec.securityContext?.runAsNonRoot).to.equal(true);
    expect(pod.status?.containerStatuses?.[0]?.restartCount, 'no restart: the liveness probe passes').to.equal(0);
    // Ready means leading: the Lease, written with the ServiceAccount's token, names this Pod.
    const lease = await kube.get<Obj<{ spec?: { holderIdentity?: string } }>>({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      namespace: SYSTEM_NS,
      name: 'flotilla-controller',
    });
    expect(lease?.spec?.holderIdentity).to.equal(pod.metadata.name);
    // The kubelet ran it as the chart's user: the process's uid as seen on the host.
    const { stdout } = await run('sh', ['-c', "ps -eo uid,args | grep '[/]app/controller/main.js' | awk '{print $1}'"]);
    expect(stdout.trim().split('\n')).to.deep.equal(['1000']);
  });

  it('reconciles a GitRepo from git into a Bundle and a BundleDeployment that the registered cluster applies', async () => {
    agent = await startAgent();
    await waitFor(async () => (await kube.list({ apiVersion: API_VERSION, kind: 'Cluster', namespace: WS })).items.length === 1, {
      what: 'the Cluster registered through the controller Pod',
      timeoutMs: TIMEOUT,
      intervalMs: 1000,
      context: () => `agent log ${join(started.dir, 'agent.log')}`,
    });
    const git = stack().git!;
    await git.createRepo(REPO);
    const commit = await git.commit(
      REPO,
      {
        'app/fleet.yaml': `defaultNamespace: ${APP}\n`,
        'app/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-controller-pod\ndata:\n  a: b\n',
      },
      'bundle',
    );
    await applyCredentials(kube, WS, 'ctlpod-e2e', git);
    const registryPort = new URL(started.desc.registries.http!.url).port;
    await kube.apply(
      gitRepoObject(REPO, WS, git, REPO, {
        // The git server through the relay, the registry on every address: both at the node's IP.
        repo: `http://${NODE_IP}:${(relay.address() as AddressInfo).port}/${REPO}.git`,
        paths: ['app'],
        targets: [{ clusterSelector: { matchLabels: { node: 'real' } } }],
        ociRegistry: { reference: `${NODE_IP}:${registryPort}/${REPO}`, basicHTTP: true },
      }),
      'ctlpod-e2e',
    );
    await waitFor(
      async () => {
        started.assertRunning();
        if (!agent.running()) throw new Error(`the agent exited: see ${agent.logFile}`);
        const bd = (await kube.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${REPO}`)).items[0];
        return bd?.status?.ready === true && bd.status.appliedDeploymentID === bd.spec.deploymentID;
      },
      { what: 'the BundleDeployment Ready', timeoutMs: TIMEOUT, intervalMs: 1000, context: () => `agent log ${agent.logFile}` },
    );
    const repo = await kube.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO });
    expect(repo?.status?.commit, 'the commit the controller Pod fetched').to.equal(commit);
    const bundles = (await kube.list({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS }, `${Label.RepoName}=${REPO}`)).items;
    expect(bundles.length).to.equal(1);
    const cm = await kube.get<Obj<{ data?: Record<string, string> }>>({ apiVersion: 'v1', kind: 'ConfigMap', namespace: APP, name: 'from-controller-pod' });
    expect(cm?.data?.a).to.equal('b');
  });

  it('serves the fleet page from the dashboard Pod, as its own non-root user', async () => {
    const pod = await readyPod('dashboard');
    const base = `http://${pod.status?.podIP}:${DASHBOARD_PORT}`;
    const page = await fetch(`${base}/`);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.contain('<title>Flotilla dashboard</title>');
    const fleetPage = await waitFor(
      async () => {
        const rows = ((await (await fetch(`${base}/api/fleet`)).json()) as { gitRepos: { name: string; ready: boolean; commit: string }[] }).gitRepos;
        const row = rows.find((r) => r.name === REPO);
        return row?.ready === true ? row : undefined;
      },
      { what: 'the GitRepo Ready on the dashboard', timeoutMs: 60_000, intervalMs: 1000 },
    );
    const repo = await kube.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO });
    expect(fleetPage.commit).to.equal(repo?.status?.commit);
    const c = pod.spec.containers[0] as { securityContext?: { readOnlyRootFilesystem?: boolean } };
    expect(c.securityContext?.readOnlyRootFilesystem).to.equal(true);
    const { stdout } = await run('sh', ['-c', "ps -eo uid,args | grep '[/]app/dashboard/main.js' | awk '{print $1}'"]);
    expect(stdout.trim().split('\n')).to.deep.equal(['1000']);
    // Actions are off in-cluster: the dashboard refuses them itself.
    const action = await fetch(`${base}/api/actions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(action.status).to.equal(403);
  });

  it("gives the dashboard's ServiceAccount read access to the Flotilla kinds and refuses it any write", async () => {
    const { token } = await requestToken(kube, SYSTEM_NS, DASHBOARD, 600);
    const sa = await tokenClient(token, plane);
    try {
      const can = async (verb: string, resource: string, group = 'flotilla.dev') =>
        (
          await sa.raw<{ status?: { allowed?: boolean } }>('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { verb, group, resource, namespace: WS } },
          })
        ).status?.allowed === true;
      for (const resource of ['gitrepos', 'bundles', 'bundledeployments', 'clusters', 'clustergroups']) {
        expect(await can('list', resource), `list ${resource}`).to.equal(true);
        expect(await can('watch', resource), `watch ${resource}`).to.equal(true);
        for (const verb of ['create', 'patch', 'update', 'delete']) expect(await can(verb, resource), `${verb} ${resource}`).to.equal(false);
      }
      expect(await can('get', 'secrets', ''), 'get secrets').to.equal(false);
      expect((await sa.list({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS })).items.map((r) => r.metadata.name)).to.deep.equal([REPO]);
      const ref = { apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO };
      expect(await statusOf(() => sa.mergePatch(ref, { spec: { paused: true } })), 'pausing a GitRepo with its token').to.equal(403);
      expect(await statusOf(() => sa.list({ apiVersion: 'v1', kind: 'Secret', namespace: WS })), 'listing Secrets').to.equal(403);
    } finally {
      await sa.close();
    }
    const repo = await kube.get<Obj<{ spec: { paused?: boolean } }>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: REPO });
    expect(repo?.spec.paused ?? false, 'the GitRepo is not paused').to.equal(false);
  });

  it('leaves no process, mount, link, cgroup, iptables chain or changed sysctl behind when stopped', async () => {
    stopped = true;
    await agent?.stop(10_000);
    await new Promise<void>((resolve) => relay.close(() => resolve()));
    await kube.close();
    await started.stop(failed);
    expect(await processesMatching(started.dir), 'processes of the node stack').to.deep.equal([]);
    expect(await checkHost(hostBefore), 'mounts, links, network namespaces, cgroups, paths, sysctls, iptables').to.deep.equal([]);
  });
});
