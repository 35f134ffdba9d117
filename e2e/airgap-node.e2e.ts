import { expect } from 'chai';
import { stack } from './fixture.js';
import { startFleet, removeFleetDir, type Fleet } from './support/processes.js';
import { applyCredentials, gitRepoObject, ociRegistryFor } from './support/fleetobjects.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { parseReference } from '../lib/oci/index.js';
import { waitFor } from '../stack/net.js';
import { startNodeStack, type NodeStack } from './support/nodestack.js';
import { readNodeBinaries } from '../stack/node-binaries.js';
import { crane } from '../stack/images.js';
import type { Stack } from '../stack/stack.js';

/**
 * The real node pulls a relocated image and a local image (issue 17): a busybox image is pushed by tag to
 * the shared stack's plain source registry, which the node's containerd is not configured for; a bundle
 * references it there. With relocation to the node stack's registry (the one containerd pulls from), the
 * controller copies it by digest, the agent rewrites the Deployment to `registry/relocated/path@digest`.
 * The same Pod has a second container whose image fleet.yaml declares local (`images.local`, KEP-1755):
 * the cluster's `kube-public/local-registry-hosting` names the node stack's registry as
 * `hostFromContainerRuntime` (and a `host` nothing listens on), so the agent writes that host and
 * containerd pulls the local image from it. Both containers run on the real node.
 */

type Pod = KubeObject & {
  spec: { nodeName?: string; containers: Array<{ name: string; image: string }> };
  status?: { phase?: string; containerStatuses?: Array<{ name: string; imageID?: string; ready?: boolean }> };
};

const WS = 'airgap-node';
const REPO = 'airgap-node';
const APP = 'airgap-node-app';
const CLUSTER = 'airgap-node';

describe('airgap on a real node: containerd pulls the relocated image by digest and a local image from the KEP-1755 host', function () {
  this.timeout(15 * 60_000);
  let nodeStack: NodeStack;
  let fleet: Fleet;
  let node: KubeClient;
  let failed = false;
  const git = () => stack().git!;

  before(async function () {
    this.timeout(10 * 60_000);
    nodeStack = await startNodeStack({ name: 'airgap-node', clusters: [CLUSTER], node: CLUSTER });
    const plane = await nodeStack.plane(CLUSTER);
    node = await KubeClient.fromKubeConfig(plane.kubeConfig());
    const composite = { cluster: (name: string) => (name === CLUSTER ? plane : stack().cluster(name)) } as Stack;
    fleet = await startFleet(composite, { workspace: WS, clusters: [{ name: CLUSTER, labels: { node: 'real' } }] });
    await applyCredentials(fleet.upstream, WS, WS, git());
    await git().createRepo(REPO);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });
  after(async function () {
    this.timeout(3 * 60_000);
    await fleet?.stop();
    await node?.close();
    if (fleet && !failed) await removeFleetDir(fleet);
    await nodeStack?.stop(failed);
  });

  it('runs the Pod from registry/relocated/path@digest, and its local image from the KEP-1755 host, on the node', async () => {
    const binaries = await readNodeBinaries();
    const nodeRegistry = nodeStack.desc.registries.http?.host as string;
    const source = stack().registry('http').host;
    // The node's busybox, under its address on the node stack's registry, copied by tag to the source registry.
    const busybox = parseReference(nodeStack.desc.node?.images.busybox ?? '');
    const sourceRef = `${source}/airgap-node/busybox:${busybox.tag ?? 'latest'}`;
    await crane(binaries.crane, ['copy', `${nodeRegistry}/${busybox.repository}:${busybox.tag ?? 'latest'}`, sourceRef]);
    const digest = await crane(binaries.crane, ['digest', sourceRef]);
    // The local image lives only on the node stack's registry, under a name of its own.
    const localName = 'airgap-node/local-busybox';
    const localTag = 'v1';
    await crane(binaries.crane, ['copy', `${nodeRegistry}/${busybox.repository}:${busybox.tag ?? 'latest'}`, `${nodeRegistry}/${localName}:${localTag}`]);
    await node.apply(
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'local-registry-hosting', namespace: 'kube-public' },
        data: { 'localRegistryHosting.v1': `host: "localhost:9"\nhostFromContainerRuntime: "${nodeRegistry}"\n` },
      },
      WS,
    );
    await git().commit(
      REPO,
      {
        'app/fleet.yaml': `defaultNamespace: ${APP}\nimages:\n  local: [${localName}]\n`,
        'app/deployment.yaml': `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: web, image: "${sourceRef}", command: [sh, -c, "exec sleep 100000"]}
        - {name: local, image: "${localName}:${localTag}", command: [sh, -c, "exec sleep 100000"]}
`,
      },
      'a workload whose image is on the source registry',
    );
    await fleet.upstream.apply(
      gitRepoObject(REPO, WS, git(), REPO, {
        paths: ['app'],
        pollingInterval: '1s',
        targets: [{ clusterSelector: { matchLabels: { node: 'real' } } }],
        ociRegistry: ociRegistryFor(stack().registry('http'), 'airgap-node'),
        images: {
          sources: [{ registry: source, basicHTTP: true }],
          relocation: { registryEndpoint: nodeRegistry, imageNamespace: 'relocated', basicHTTP: true },
        },
      }),
      WS,
    );
    const relocated = `${nodeRegistry}/relocated/airgap-node/busybox@${digest}`;
    let last: Pod[] = [];
    await waitFor(
      async () => {
        await fleet.assertAlive();
        nodeStack.assertRunning();
        last = (await node.list<Pod>({ apiVersion: 'v1', kind: 'Pod', namespace: APP }, 'app=web')).items;
        const statuses = last[0]?.status?.containerStatuses ?? [];
        return last.length === 1 && last[0]?.status?.phase === 'Running' && statuses.length === 2 && statuses.every((c) => c.ready) ? true : undefined;
      },
      {
        what: 'the web Pod Running on the real node, both containers ready',
        timeoutMs: 300_000,
        intervalMs: 1000,
        context: () => `pods: ${JSON.stringify(last.map((p) => [p.spec.containers[0]?.image, p.status]))}; logs in ${fleet.logDir} and ${nodeStack.dir}`,
      },
    );
    const pod = last[0] as Pod;
    expect(pod.spec.nodeName).to.equal(nodeStack.desc.node?.nodeName);
    expect(pod.spec.containers[0]?.image, 'the agent applied the relocated reference').to.equal(relocated);
    const status = (name: string) => pod.status?.containerStatuses?.find((c) => c.name === name);
    expect(status('web')?.imageID, 'containerd pulled that digest').to.contain(digest);
    expect(pod.spec.containers[1]?.image, "the local image on the cluster's hostFromContainerRuntime").to.equal(`${nodeRegistry}/${localName}:${localTag}`);
    expect(status('local')?.imageID, 'containerd pulled the local image from that registry').to.contain(digest);
  });
});
