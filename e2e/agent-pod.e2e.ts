import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { stack } from './fixture.js';
import { startFleet, removeFleetDir, type Fleet } from './support/processes.js';
import { applyCredentials, gitRepoObject } from './support/fleetobjects.js';
import { API_VERSION, Label, type BundleDeployment } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { readBinaries } from '../stack/binaries.js';
import { buildImage } from '../stack/image.js';
import { waitFor } from '../stack/net.js';
import { NODE_IP } from '../stack/node.js';
import { readNodeBinaries } from '../stack/node-binaries.js';
import type { ManagedProcess } from '../stack/proc.js';
import { podURL, startNodeStack } from './support/nodestack.js';
import { issueRegistrationToken } from '../stack/bootstrap.js';
import { checkHost, processesMatching, snapshotHost, type HostSnapshot } from '../stack/host.js';
import type { Stack, StackDescription } from '../stack/stack.js';

/**
 * The agent as a Pod on a real node (stack/node.ts): Flotilla's image built without Docker (stack/image.ts)
 * is pushed to the node stack's registry, the agent chart is installed with the real helm, and the Pod
 * (non-root, read-only root file system, probes, resource limits, all enforced by the kubelet) runs the
 * agent with its in-cluster configuration and ServiceAccount token. It registers with the upstream API
 * server of the same node stack (both serve on the node's IP, which Pods reach: stack/kube.ts
 * podReachableAt) and deploys a bundle from git through the OCI registry. Stopping the node stack must leave
 * the host as it was (stack/host.ts checkHost, as the node suite checks).
 */

const run = promisify(execFile);
type Obj<T = Record<string, unknown>> = T & KubeObject;
const WS = 'agentpod';
const UP = 'agentpod-up';
const CLUSTER = 'agentpod';
const AGENT_NS = 'flotilla-agent';
const APP = 'agentpod-app';
const TIMEOUT = 180_000;

describe('the agent as a Pod on a real node, from the image built without Docker', function () {
  this.timeout(15 * 60_000);
  let dir: string;
  let nodeStack: ManagedProcess;
  let desc: StackDescription;
  let fleet: Fleet;
  let node: KubeClient;
  let failed = false;
  let stopped = false;
  let hostBefore: HostSnapshot;

  before(async function () {
    this.timeout(10 * 60_000);
    hostBefore = await snapshotHost();
    const started = await startNodeStack({ name: 'agentpod', clusters: [UP, CLUSTER], kcm: UP, node: CLUSTER });
    ({ dir, desc, process: nodeStack } = started);
    const [up, down] = [await started.plane(UP), await started.plane(CLUSTER)];
    node = await KubeClient.fromKubeConfig(down.kubeConfig());
    const bins = await readBinaries();
    const built = await buildImage({
      crane: (await readNodeBinaries()).crane,
      helm: bins.helm,
      kustomize: bins.kustomize,
      ref: `${desc.registries.http!.host}/flotilla:e2e`,
      work: join(dir, 'image'),
    });
    process.stdout.write(`      image ${(built.compressedBytes / 1024 / 1024).toFixed(1)} MiB compressed, built in ${(built.buildMs / 1000).toFixed(1)} s\n`);
    // The controller runs on the host against the node stack's upstream; no agent process: the Pod is the agent.
    fleet = await startFleet({ cluster: (name: string) => (name === 'upstream' ? up : down) } as Stack, { workspace: WS, clusters: [] });
    const token = await issueRegistrationToken(fleet.upstream, { namespace: WS, name: `${WS}-token`, manager: 'agentpod-e2e' });
    fleet.secrets.push(token.token ?? '');
    const values = {
      image: { repository: 'registry.flotilla.local/flotilla', tag: 'e2e', pullPolicy: 'Always' },
      bootstrap: {
        apiServerURL: podURL(up.server).toString().replace(/\/$/, ''),
        apiServerCA: token.apiServerCA,
        token: token.token,
        namespace: WS,
        registrationNamespace: fleet.registrationNamespace,
        clusterLabels: { 'flotilla.dev/cluster-name': CLUSTER, node: 'real' },
      },
      // No kube-proxy on the node: the in-cluster configuration goes to the node's IP directly.
      extraEnv: [
        { name: 'KUBERNETES_SERVICE_HOST', value: NODE_IP },
        { name: 'KUBERNETES_SERVICE_PORT', value: podURL(down.server).port },
      ],
      resync: '5s',
      heartbeat: '5s',
    };
    const valuesFile = join(dir, 'agent-values.yaml');
    await writeFile(valuesFile, yaml.dump(values), { mode: 0o600 });
    const env = {
      ...process.env,
      HELM_CONFIG_HOME: join(dir, 'helm', 'config'),
      HELM_CACHE_HOME: join(dir, 'helm', 'cache'),
      HELM_DATA_HOME: join(dir, 'helm', 'data'),
    };
    await run(
      bins.helm,
      ['install', 'agent', 'charts/flotilla-agent', '-n', AGENT_NS, '--create-namespace', '--kubeconfig', down.kubeconfigPath, '-f', valuesFile],
      { env },
    ).catch((err: { stderr?: string }) => {
      throw new Error(`helm install of the agent chart failed: ${err.stderr}`);
    });
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async function () {
    this.timeout(180_000);
    if (!stopped) {
      await fleet?.stop();
      await node?.close();
      await nodeStack?.stop(90_000);
    }
    if (fleet && !failed) await removeFleetDir(fleet);
    if (!failed && dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('runs the agent Pod non-root with a read-only root file system and resource limits, Ready by its probes', async () => {
    type Pod = Obj<{ spec: { containers: Record<string, unknown>[] }; status?: { containerStatuses?: { ready?: boolean; imageID?: string }[] } }>;
    const pod = await waitFor(
      async () => {
        if (!nodeStack.running()) throw new Error(`the node stack exited: see ${nodeStack.logFile}`);
        const pods = (await node.list<Pod>({ apiVersion: 'v1', kind: 'Pod', namespace: AGENT_NS })).items;
        return pods.length === 1 && pods[0]?.status?.containerStatuses?.[0]?.ready === true ? pods[0] : undefined;
      },
      { what: 'the agent Pod Ready', timeoutMs: TIMEOUT, intervalMs: 1000, context: () => `node logs in ${dir}/node, controller in ${fleet.logDir}` },
    );
    const c = pod.spec.containers[0] as { securityContext?: { readOnlyRootFilesystem?: boolean }; resources?: { limits?: { memory?: string } } };
    expect(c.securityContext?.readOnlyRootFilesystem).to.equal(true);
    expect(c.resources?.limits?.memory).to.equal('512Mi');
    // The kubelet ran it as the chart's user: the process's uid as seen on the host.
    const { stdout } = await run('sh', ['-c', "ps -eo uid,args | grep '[/]app/agent/main.js' | awk '{print $1}'"]);
    expect(stdout.trim().split('\n')).to.include('1000');
  });

  it('registers upstream and deploys a bundle from git to the node', async () => {
    await waitFor(async () => (await fleet.upstream.list({ apiVersion: API_VERSION, kind: 'Cluster', namespace: WS })).items.length === 1, {
      what: 'the Cluster registered by the agent Pod',
      timeoutMs: TIMEOUT,
      intervalMs: 1000,
    });
    const git = stack().git!;
    await git.createRepo(WS);
    await git.commit(
      WS,
      { 'app/fleet.yaml': `defaultNamespace: ${APP}\n`, 'app/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-pod\ndata:\n  a: b\n' },
      'bundle',
    );
    await applyCredentials(fleet.upstream, WS, WS, git);
    await fleet.upstream.apply(
      gitRepoObject(WS, WS, git, WS, {
        paths: ['app'],
        targets: [{ clusterSelector: { matchLabels: { node: 'real' } } }],
        // The node stack's registry, at the address Pods reach it (it listens on every address).
        ociRegistry: { reference: `${NODE_IP}:${new URL(desc.registries.http!.url).port}/${WS}`, basicHTTP: true },
      }),
      WS,
    );
    await waitFor(
      async () => {
        const bd = (await fleet.upstream.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${WS}`))
          .items[0];
        return bd?.status?.ready === true && bd.status.appliedDeploymentID === bd.spec.deploymentID;
      },
      { what: 'the bundle Ready, applied by the agent Pod', timeoutMs: TIMEOUT, intervalMs: 1000 },
    );
    const cm = await node.get<Obj<{ data?: Record<string, string> }>>({ apiVersion: 'v1', kind: 'ConfigMap', namespace: APP, name: 'from-pod' });
    expect(cm?.data?.a).to.equal('b');
  });

  it('leaves no process, mount, link, cgroup, iptables chain or changed sysctl behind when stopped', async () => {
    stopped = true;
    await fleet.stop();
    await node.close();
    await nodeStack.stop(90_000);
    expect(await processesMatching(dir), 'processes of the node stack').to.deep.equal([]);
    expect(await processesMatching('/app/agent/main.js'), 'the agent Pod').to.deep.equal([]);
    expect(await checkHost(hostBefore), 'mounts, links, network namespaces, cgroups, paths, sysctls, iptables').to.deep.equal([]);
  });
});
