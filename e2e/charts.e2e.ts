/**
 * The Helm charts (charts/flotilla, charts/flotilla-agent) with the real helm binary, built from the Go
 * module proxy by stack/tools/install.sh --extras: lint and template offline (embedded registry on and
 * off), then install on the stack's real kube-apiservers. No kubelet runs there, so the objects are
 * asserted, not the pods; instead the controller and an agent run in-process with exactly the credentials
 * the charts' ServiceAccounts get, so the real authorizer proves the charts' RBAC is enough for the whole
 * path: registration, GitRepo -> OCI artifact -> BundleDeployment -> object in the downstream cluster.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { API_VERSION, kinds } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { createLogger } from '../lib/log.js';
import { parseControllerConfig } from '../controller/config.js';
import { agentRules, importRules } from '../controller/rbac.js';
import { startManager, type Manager } from '../controller/manager.js';
import { parseAgentConfig } from '../agent/config.js';
import { parseBootstrap } from '../agent/credentials.js';
import { decodeSecretData } from '../lib/kube/secret.js';
import { Agent } from '../agent/agent.js';
import { parseDashboardArgs } from '../dashboard/command.js';
import type { ControlPlane } from '../stack/kube.js';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CONTROLLER_CHART = join(ROOT, 'charts', 'flotilla');
const AGENT_CHART = join(ROOT, 'charts', 'flotilla-agent');
const NS = 'charts-e2e';
const AGENT_NS = 'charts-e2e-agent';
const W = 'charts-e2e-ws';
const R = 'charts-e2e-reg';
const DEMO_NS = 'charts-e2e-demo';
const CLUSTER = 'charts-e2e';
const RBAC = 'rbac.authorization.k8s.io/v1';

type Manifest = KubeObject & Record<string, unknown>;
interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Container {
  args?: string[];
  command?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name: string; containerPort: number }[];
  securityContext?: Record<string, unknown>;
  livenessProbe?: { httpGet?: { path: string; port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  securityContext?: Record<string, unknown>;
  volumes?: { name: string; emptyDir?: unknown }[];
  serviceAccountName?: string;
}
interface Workload {
  spec: {
    replicas?: number;
    strategy?: { type: string };
    template: { spec: PodSpec };
    serviceName?: string;
    volumeClaimTemplates?: { metadata: { name: string }; spec: { resources: { requests: { storage: string } } } }[];
  };
}

/** The real helm, with its own config and cache folders, and the stack's Kubernetes version. */
class Helm {
  constructor(
    readonly bin: string,
    readonly kubeVersion: string,
    readonly home: string,
  ) {}

  /** Runs helm; resolves with stdout and stderr whether it succeeded or not. */
  exec(args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
    const env = {
      ...process.env,
      HELM_CONFIG_HOME: join(this.home, 'config'),
      HELM_CACHE_HOME: join(this.home, 'cache'),
      HELM_DATA_HOME: join(this.home, 'data'),
    };
    return new Promise((done) => {
      execFile(this.bin, args, { env, maxBuffer: 64 * 1024 * 1024, timeout: 180_000 }, (err, stdout, stderr) => done({ ok: !err, stdout, stderr }));
    });
  }

  /** Runs helm and returns stdout; throws with helm's own message when it fails. */
  async run(args: string[]): Promise<string> {
    const out = await this.exec(args);
    if (!out.ok) throw new Error(`helm ${args.slice(0, 2).join(' ')} failed:\n${out.stderr}${out.stdout}`);
    return out.stdout;
  }

  /** Writes `values` to a file only this user can read (they may hold tokens) and returns its path. */
  async valuesFile(values: unknown): Promise<string> {
    const file = join(this.home, `values-${Date.now()}-${Math.random().toString(16).slice(2)}.yaml`);
    await writeFile(file, yaml.dump(values), { mode: 0o600 });
    return file;
  }

  /** `helm template` of `chart` with `values`, parsed into objects. */
  async template(chart: string, values: unknown, release = 'e2e', namespace = NS): Promise<Manifest[]> {
    const out = await this.run(['template', release, chart, '--namespace', namespace, '--kube-version', this.kubeVersion, '-f', await this.valuesFile(values)]);
    return yaml.loadAll(out).filter((d): d is Manifest => typeof d === 'object' && d !== null);
  }
}

const find = (objects: Manifest[], kind: string, name?: string): Manifest => {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ''} among: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
};
const kindsOf = (objects: Manifest[]) => objects.map((o) => o.kind).sort();
const containerOf = (w: Manifest) => (w as unknown as Workload).spec.template.spec.containers[0] as Container;

function controllerValues(registry: boolean, up: ControlPlane, htpasswd = ''): Record<string, unknown> {
  return {
    workspaceNamespace: W,
    registrationNamespace: R,
    apiServerURL: up.server,
    apiServerCA: up.caPem,
    pollingInterval: '2s',
    artifactRetention: 3,
    agentTokenTTL: '2h',
    logLevel: 'debug',
    registry: registry ? { enabled: true, auth: { htpasswd }, persistence: { size: '1Gi' } } : { enabled: false },
  };
}

const AGENT_RULES: Rule[] = [
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'create', 'patch'] },
  { apiGroups: ['apiextensions.k8s.io'], resources: ['customresourcedefinitions'], verbs: ['get'] },
  { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch', 'create', 'patch', 'delete'] },
];

function agentValues(bootstrap: Record<string, unknown>, clusterAdmin: boolean): Record<string, unknown> {
  return {
    bootstrap: { registrationNamespace: R, clusterLabels: { env: 'charts-e2e', 'flotilla.dev/cluster-name': CLUSTER, shard: 3 }, ...bootstrap },
    heartbeat: '2s',
    resync: '5s',
    workers: 1,
    logLevel: 'debug',
    downstreamAccess: clusterAdmin ? { clusterAdmin: true } : { clusterAdmin: false, rules: AGENT_RULES },
  };
}

/** A KubeConfig for `cp` that authenticates as ServiceAccount `namespace/name` (a fresh TokenRequest). */
async function serviceAccountConfig(cp: ControlPlane, admin: KubeClient, namespace: string, name: string): Promise<KubeConfig> {
  const res = await admin.raw<{ status?: { token?: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: cp.server, caData: Buffer.from(cp.caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', token: res.status?.token ?? '' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

/** A pino destination keeping the lines in memory. */
function memoryLog(lines: string[]): Writable {
  return new Writable({
    write(chunk: Buffer, _e, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
}

describe('Helm charts', function () {
  this.timeout(300_000);
  let helm: Helm;
  let up: ControlPlane;

  before(async () => {
    const { helm: bin, k8sVersion } = stack().binaries;
    if (!bin || !existsSync(bin)) {
      throw new Error(
        `the helm binary is missing (${bin || 'no "helm" key in ~/.cache/flotilla/stack-binaries.json'}): ` +
          'run `bash stack/tools/install.sh --extras`, which builds it from the Go module proxy',
      );
    }
    helm = new Helm(bin, k8sVersion, await mkdtemp(join(tmpdir(), 'flotilla-helm-')));
    up = stack().cluster('upstream');
  });
  after(async () => {
    if (helm) await rm(helm.home, { recursive: true, force: true });
  });

  const htpasswd = async (): Promise<string> =>
    new Promise((done, fail) => {
      execFile(stack().binaries.htpasswd, ['-Bbn', 'flotilla', 'e2e-registry-password'], (err, out) => (err ? fail(err) : done(out.trim())));
    });
  const bootstrapValues = {
    apiServerURL: 'https://upstream.example:6443',
    apiServerCA: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    token: 'e2e-token',
    namespace: W,
  };

  describe('offline: helm lint and helm template', () => {
    const cases: { name: string; chart: string; values: () => Promise<Record<string, unknown>>; kinds: string[] }[] = [
      {
        name: 'controller, embedded registry off',
        chart: CONTROLLER_CHART,
        values: async () => controllerValues(false, up),
        kinds: [
          'ClusterRole',
          'ClusterRoleBinding',
          'ConfigMap',
          'Deployment',
          'Namespace',
          'Namespace',
          'Role',
          'Role',
          'Role',
          'Role',
          'RoleBinding',
          'RoleBinding',
          'RoleBinding',
          'RoleBinding',
          'Service',
          'ServiceAccount',
        ],
      },
      {
        name: 'controller, embedded registry on',
        chart: CONTROLLER_CHART,
        values: async () => controllerValues(true, up, await htpasswd()),
        kinds: [
          'ClusterRole',
          'ClusterRoleBinding',
          'ConfigMap',
          'ConfigMap',
          'ConfigMap',
          'Deployment',
          'Namespace',
          'Namespace',
          'Role',
          'Role',
          'Role',
          'Role',
          'RoleBinding',
          'RoleBinding',
          'RoleBinding',
          'RoleBinding',
          'Secret',
          'Service',
          'Service',
          'ServiceAccount',
          'StatefulSet',
        ],
      },
      {
        name: 'agent, bound to cluster-admin',
        chart: AGENT_CHART,
        values: async () => agentValues(bootstrapValues, true),
        kinds: ['ClusterRoleBinding', 'Deployment', 'Role', 'RoleBinding', 'Secret', 'ServiceAccount'],
      },
      {
        name: 'agent, restricted downstream access',
        chart: AGENT_CHART,
        values: async () => agentValues(bootstrapValues, false),
        kinds: ['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Role', 'RoleBinding', 'Secret', 'ServiceAccount'],
      },
    ];
    for (const c of cases) {
      it(`lints strictly and renders the expected objects: ${c.name}`, async () => {
        const file = await helm.valuesFile(await c.values());
        await helm.run(['lint', '--strict', c.chart, '--kube-version', helm.kubeVersion, '-f', file]);
        expect(kindsOf(await helm.template(c.chart, await c.values()))).to.deep.equal(c.kinds);
      });
    }

    it('renders the embedded registry: a StatefulSet with a volume claim template, a ClusterIP Service, htpasswd auth and deletion enabled', async () => {
      const users = await htpasswd();
      const objects = await helm.template(CONTROLLER_CHART, controllerValues(true, up, users));
      const sts = find(objects, 'StatefulSet') as unknown as Workload & Manifest;
      expect(sts.spec.volumeClaimTemplates?.map((t) => [t.metadata.name, t.spec.resources.requests.storage])).to.deep.equal([['data', '1Gi']]);
      expect(sts.spec.serviceName).to.equal('e2e-flotilla-registry');
      expect(containerOf(sts).volumeMounts?.find((m) => m.name === 'data')?.mountPath).to.equal('/var/lib/registry');
      const svc = find(objects, 'Service', 'e2e-flotilla-registry') as Manifest & { spec: { type: string; ports: { port: number }[] } };
      expect([svc.spec.type, svc.spec.ports[0]?.port]).to.deep.equal(['ClusterIP', 5000]);
      const config = yaml.load(String((find(objects, 'ConfigMap', 'e2e-flotilla-registry-config').data as Record<string, string>)['config.yml'])) as {
        storage: { delete: { enabled: boolean } };
        auth: { htpasswd: { path: string } };
      };
      expect(config.storage.delete.enabled).to.equal(true);
      expect(config.auth.htpasswd.path).to.equal('/etc/registry/auth/htpasswd');
      const secret = find(objects, 'Secret', 'e2e-flotilla-registry-auth') as Manifest & { data: Record<string, string> };
      expect(Buffer.from(secret.data.htpasswd ?? '', 'base64').toString()).to.equal(users);
      expect(kindsOf(await helm.template(CONTROLLER_CHART, controllerValues(false, up)))).not.to.include('StatefulSet');
    });

    it('renders the dashboard only when asked: read-only RBAC on the Flotilla kinds, --in-cluster on loopback, a Service only with service.enabled', async () => {
      const byDefault = await helm.template(CONTROLLER_CHART, controllerValues(false, up));
      expect(
        byDefault.filter((o) => o.metadata.name.endsWith('-dashboard')).map((o) => o.kind),
        'nothing of the dashboard by default',
      ).to.deep.equal([]);
      const objects = await helm.template(CONTROLLER_CHART, { ...controllerValues(false, up), dashboard: { enabled: true } });
      const role = find(objects, 'ClusterRole', 'e2e-flotilla-dashboard') as Manifest & { rules: Rule[] };
      expect(role.rules).to.deep.equal([
        { apiGroups: ['flotilla.dev'], resources: ['gitrepos', 'bundles', 'bundledeployments', 'clusters', 'clustergroups'], verbs: ['get', 'list', 'watch'] },
      ]);
      const deploy = find(objects, 'Deployment', 'e2e-flotilla-dashboard') as unknown as Workload & Manifest;
      expect(deploy.spec.template.spec.serviceAccountName).to.equal('e2e-flotilla-dashboard');
      const args = containerOf(deploy).args ?? [];
      expect(parseDashboardArgs(args)).to.deep.include({ inCluster: true, address: '127.0.0.1', enableActions: false });
      expect(objects.some((o) => o.kind === 'Service' && o.metadata.name === 'e2e-flotilla-dashboard')).to.equal(false);
      const proxied = await helm.template(CONTROLLER_CHART, { ...controllerValues(false, up), dashboard: { enabled: true, service: { enabled: true } } });
      expect(parseDashboardArgs(containerOf(find(proxied, 'Deployment', 'e2e-flotilla-dashboard')).args ?? [])).to.deep.include({ address: '0.0.0.0' });
      find(proxied, 'Service', 'e2e-flotilla-dashboard');
    });

    it('passes the controller only flags controller/config.ts accepts, carrying the values given', async () => {
      const objects = await helm.template(CONTROLLER_CHART, controllerValues(false, up));
      const c = containerOf(find(objects, 'Deployment'));
      const config = parseControllerConfig(c.args ?? [], { FLOTILLA_IDENTITY: 'pod-0' });
      expect(config).to.include({
        workspaceNamespace: W,
        registrationNamespace: R,
        systemNamespace: NS,
        apiServerUrl: up.server,
        apiServerCaFile: '/etc/flotilla/api-server-ca/ca.crt',
        defaultPollingInterval: 2000,
        artifactRetention: 3,
        agentTokenTtl: 7_200_000,
        leaderElection: true,
        leaseName: 'flotilla-controller',
        probePort: 8081,
        metricsPort: 8080,
        logLevel: 'debug',
        identity: 'pod-0',
        workDir: '/tmp/flotilla-controller',
      });
      expect(c.env?.map((e) => e.name)).to.include('FLOTILLA_IDENTITY');
      expect((find(objects, 'ConfigMap', 'e2e-flotilla-api-server-ca').data as Record<string, string>)['ca.crt']).to.equal(up.caPem);
    });

    it('gives the controller probes, a scraped metrics port, a non-root read-only container with a writable /tmp, and Recreate rollouts', async () => {
      const objects = await helm.template(CONTROLLER_CHART, controllerValues(false, up));
      const deploy = find(objects, 'Deployment') as unknown as Workload & Manifest;
      const c = containerOf(deploy);
      expect(c.ports?.map((p) => [p.name, p.containerPort])).to.deep.equal([
        ['metrics', 8080],
        ['probes', 8081],
      ]);
      expect([c.livenessProbe?.httpGet, c.readinessProbe?.httpGet]).to.deep.equal([
        { path: '/healthz', port: 'probes' },
        { path: '/readyz', port: 'probes' },
      ]);
      expect(c.securityContext).to.include({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      expect(deploy.spec.template.spec.securityContext).to.include({ runAsNonRoot: true });
      expect(c.volumeMounts?.find((m) => m.mountPath === '/tmp')?.name).to.equal('tmp');
      expect(deploy.spec.template.spec.volumes?.find((v) => v.name === 'tmp')?.emptyDir).to.be.an('object');
      expect(deploy.spec.strategy?.type).to.equal('Recreate');
      const svc = find(objects, 'Service', 'e2e-flotilla-metrics');
      expect(svc.metadata.annotations).to.include({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8080', 'prometheus.io/path': '/metrics' });
    });

    it('writes the bootstrap Secret the agent parses, and passes the agent only flags agent/config.ts accepts', async () => {
      const objects = await helm.template(AGENT_CHART, agentValues(bootstrapValues, true), 'e2e', AGENT_NS);
      const secret = find(objects, 'Secret', 'flotilla-agent-bootstrap');
      expect(secret.metadata.namespace).to.equal(AGENT_NS);
      const parsed = parseBootstrap(decodeSecretData(secret.data), 'rendered');
      expect(parsed).to.deep.include({
        ...bootstrapValues,
        registrationNamespace: R,
        clusterLabels: { env: 'charts-e2e', 'flotilla.dev/cluster-name': CLUSTER, shard: '3' },
      });
      const deploy = find(objects, 'Deployment') as unknown as Workload & Manifest;
      expect([deploy.spec.replicas, deploy.spec.strategy?.type]).to.deep.equal([1, 'Recreate']);
      const config = parseAgentConfig(containerOf(deploy).args ?? [], {});
      expect(config).to.include({ namespace: AGENT_NS, heartbeat: 2000, resync: 5000, workers: 1, logLevel: 'debug', cacheDir: '/var/cache/flotilla-agent' });
      expect(containerOf(deploy).securityContext).to.include({ readOnlyRootFilesystem: true });
      const binding = find(objects, 'ClusterRoleBinding') as Manifest & { roleRef: { name: string } };
      expect(binding.roleRef.name).to.equal('cluster-admin');
      const restricted = await helm.template(AGENT_CHART, agentValues(bootstrapValues, false), 'e2e', AGENT_NS);
      expect((find(restricted, 'ClusterRoleBinding') as Manifest & { roleRef: { name: string } }).roleRef.name).to.equal('e2e-flotilla-agent-downstream');
      expect(find(restricted, 'ClusterRole').rules).to.deep.equal(AGENT_RULES);
    });

    const refusals: { name: string; chart: string; values: () => Record<string, unknown>; message: RegExp }[] = [
      {
        name: 'an agent without a registration token',
        chart: AGENT_CHART,
        values: () => agentValues({ ...bootstrapValues, token: '' }, true),
        message: /bootstrap\.token is required/,
      },
      {
        name: 'an agent without the upstream CA',
        chart: AGENT_CHART,
        values: () => agentValues({ ...bootstrapValues, apiServerCA: '' }, true),
        message: /bootstrap\.apiServerCA is required/,
      },
      {
        name: 'an embedded registry with auth on and no users',
        chart: CONTROLLER_CHART,
        values: () => controllerValues(true, up),
        message: /registry\.auth\.htpasswd/,
      },
      {
        name: 'two controllers without leader election',
        chart: CONTROLLER_CHART,
        values: () => ({ ...controllerValues(false, up), replicas: 2, leaderElection: { enabled: false } }),
        message: /leaderElection\.enabled=true/,
      },
      {
        name: 'one namespace for workspace and registration',
        chart: CONTROLLER_CHART,
        values: () => ({ ...controllerValues(false, up), registrationNamespace: W }),
        message: /must differ/,
      },
    ];
    for (const r of refusals) {
      it(`refuses ${r.name}, naming the value to set`, async () => {
        const out = await helm.exec(['template', 'e2e', r.chart, '--kube-version', helm.kubeVersion, '-f', await helm.valuesFile(r.values())]);
        expect(out.ok, 'helm template succeeded').to.equal(false);
        expect(out.stderr).to.match(r.message);
      });
    }

    describe('least privilege of the controller', () => {
      let rules: (Rule & { where: string })[] = [];
      before(async () => {
        const objects = await helm.template(CONTROLLER_CHART, controllerValues(true, up, await htpasswd()));
        rules = objects
          .filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')
          .flatMap((o) => (o.rules as Rule[]).map((r) => ({ ...r, where: `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}` })));
        expect(rules.length).to.be.greaterThan(10);
      });
      const grants = (group: string, resource: string, verb: string) =>
        rules.filter((r) => (r.apiGroups ?? []).includes(group) && (r.resources ?? []).includes(resource) && r.verbs.includes(verb));
      const table: { name: string; holds: () => string[] }[] = [
        {
          name: 'no wildcard API group, resource or verb',
          holds: () => rules.filter((r) => [...(r.apiGroups ?? []), ...(r.resources ?? []), ...r.verbs].includes('*')).map((r) => r.where),
        },
        {
          name: 'no escalate, bind or impersonate verb',
          holds: () => rules.filter((r) => r.verbs.some((v) => ['escalate', 'bind', 'impersonate'].includes(v))).map((r) => r.where),
        },
        {
          name: 'nothing on ClusterRoles or ClusterRoleBindings',
          holds: () => rules.filter((r) => (r.resources ?? []).some((x) => x.startsWith('clusterrole'))).map((r) => r.where),
        },
        {
          name: 'no write to CustomResourceDefinitions (Helm installs them)',
          holds: () => rules.filter((r) => (r.resources ?? []).includes('customresourcedefinitions')).map((r) => r.where),
        },
        {
          name: 'no pods, exec, nodes or workloads (the controller runs nothing)',
          holds: () =>
            rules.filter((r) => (r.resources ?? []).some((x) => /^(pods|nodes|deployments|daemonsets|statefulsets|jobs)/.test(x))).map((r) => r.where),
        },
        {
          name: 'only the API groups the controller talks to',
          holds: () =>
            rules.flatMap((r) => (r.apiGroups ?? []).filter((g) => !['', 'flotilla.dev', 'rbac.authorization.k8s.io', 'coordination.k8s.io'].includes(g))),
        },
        {
          name: 'no list or watch of namespaces (it reads them one by one)',
          holds: () => ['list', 'watch'].flatMap((v) => grants('', 'namespaces', v).map((r) => `${v} in ${r.where}`)),
        },
        {
          name: 'deletes Roles, RoleBindings and ServiceAccounts only in its own namespaces',
          holds: () =>
            ['roles', 'rolebindings', 'serviceaccounts']
              .flatMap((x) => grants(x === 'serviceaccounts' ? '' : 'rbac.authorization.k8s.io', x, 'delete'))
              .filter((r) => !r.where.startsWith('Role '))
              .map((r) => r.where),
        },
        {
          name: 'creates ClusterRegistrations only in the workspace namespace',
          holds: () =>
            grants('flotilla.dev', 'clusterregistrations', 'create')
              .filter((r) => r.where !== `Role ${W}/e2e-flotilla-controller`)
              .map((r) => r.where),
        },
        {
          name: 'reads and renews only its own Lease',
          holds: () =>
            ['get', 'update']
              .flatMap((v) => grants('coordination.k8s.io', 'leases', v))
              .filter((r) => JSON.stringify(r.resourceNames) !== '["flotilla-controller"]')
              .map((r) => r.where),
        },
      ];
      it('holds every permission it grants to import tokens and agents (the API server refuses Roles that grant more)', () => {
        const granted = [
          ...agentRules('c').clusterNamespace.map((r) => ({ r, where: ['ClusterRole'] })),
          ...[...agentRules('c').workspace, ...importRules().workspace].map((r) => ({ r, where: ['ClusterRole', `Role ${W}/`] })),
          ...importRules().registration.map((r) => ({ r, where: ['ClusterRole', `Role ${R}/`] })),
        ];
        const missing = granted.flatMap(({ r, where }) =>
          r.apiGroups.flatMap((g) =>
            r.resources.flatMap((res) =>
              r.verbs
                .filter((v) => !grants(g, res, v).some((h) => !h.resourceNames && where.some((w) => h.where.startsWith(w))))
                .map((v) => `${v} ${g || 'core'}/${res} in ${where.join(' or ')}`),
            ),
          ),
        );
        expect(missing, 'granted by controller/rbac.ts but not held by the chart').to.deep.equal([]);
      });
      for (const t of table)
        it(`holds ${t.name}`, () => {
          expect(t.holds(), `rules breaking "${t.name}"`).to.deep.equal([]);
        });
    });

    it('ships the generated CRDs unchanged (scripts/sync-chart-crds.sh --check)', async () => {
      const out = await new Promise<{ ok: boolean; text: string }>((done) =>
        execFile('bash', [join(ROOT, 'scripts', 'sync-chart-crds.sh'), '--check'], (err, stdout, stderr) => done({ ok: !err, text: stdout + stderr })),
      );
      expect(out.ok, out.text).to.equal(true);
    });
  });

  describe('helm install on the real kube-apiserver', () => {
    let admin: KubeClient;
    let down: KubeClient;
    const installed: { release: string; namespace: string; kubeconfig: string }[] = [];
    const uninstall = async (namespace: string) => {
      const i = installed.findIndex((x) => x.namespace === namespace);
      const entry = i < 0 ? undefined : installed.splice(i, 1)[0];
      if (entry) await helm.run(['uninstall', entry.release, '--namespace', entry.namespace, '--kubeconfig', entry.kubeconfig, '--wait', '--timeout', '2m']);
    };
    const install = async (release: string, chart: string, namespace: string, cp: ControlPlane, values: unknown) => {
      await helm.run([
        'install',
        release,
        chart,
        '--namespace',
        namespace,
        '--create-namespace',
        '--kubeconfig',
        cp.kubeconfigPath,
        '-f',
        await helm.valuesFile(values),
        '--timeout',
        '2m',
      ]);
      installed.push({ release, namespace, kubeconfig: cp.kubeconfigPath });
    };
    const get = <T = Manifest>(client: KubeClient, apiVersion: string, kind: string, name: string, namespace?: string) =>
      client.get({ apiVersion, kind, name, ...(namespace ? { namespace } : {}) }) as Promise<(T & KubeObject) | undefined>;

    before(async () => {
      admin = await KubeClient.fromKubeConfig(up.kubeConfig());
      down = await KubeClient.fromKubeConfig(stack().cluster('downstream-1').kubeConfig());
      await install('charts-e2e', CONTROLLER_CHART, NS, up, controllerValues(true, up, await htpasswd()));
    });
    after(async function () {
      this.timeout(180_000);
      for (const x of [...installed]) await uninstall(x.namespace).catch(() => undefined);
      for (const ns of [W, R, NS]) await admin?.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns }).catch(() => undefined);
      for (const ns of [AGENT_NS, DEMO_NS]) await down?.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns }).catch(() => undefined);
      await admin?.close();
      await down?.close();
    });

    it('creates the controller: Deployment, ServiceAccount, ClusterRole with the rendered rules, metrics Service, namespaces', async () => {
      const rendered = await helm.template(CONTROLLER_CHART, controllerValues(true, up, await htpasswd()), 'charts-e2e');
      const deploy = await get<Workload>(admin, 'apps/v1', 'Deployment', 'charts-e2e-flotilla-controller', NS);
      expect(deploy?.spec.template.spec.serviceAccountName).to.equal('charts-e2e-flotilla');
      expect(await get(admin, 'v1', 'ServiceAccount', 'charts-e2e-flotilla', NS)).to.not.equal(undefined);
      const role = await get<{ rules: Rule[] }>(admin, RBAC, 'ClusterRole', 'charts-e2e-flotilla-controller');
      expect(role?.rules).to.deep.equal(find(rendered, 'ClusterRole').rules);
      expect(await get(admin, RBAC, 'ClusterRoleBinding', 'charts-e2e-flotilla-controller')).to.not.equal(undefined);
      for (const ns of [W, R, NS])
        expect(
          await get(admin, RBAC, 'RoleBinding', ns === NS ? 'charts-e2e-flotilla-leader-election' : 'charts-e2e-flotilla-controller', ns),
          `RoleBinding in ${ns}`,
        ).to.not.equal(undefined);
      const svc = await get<{ spec: { clusterIP: string } }>(admin, 'v1', 'Service', 'charts-e2e-flotilla-metrics', NS);
      expect(svc?.spec.clusterIP).to.match(/^10\.0\.0\.\d+$/);
    });

    it('installs every CRD, Established', async () => {
      for (const def of kinds) {
        await waitFor(
          async () => {
            const crd = await get<{ status?: { conditions?: { type: string; status: string }[] } }>(
              admin,
              'apiextensions.k8s.io/v1',
              'CustomResourceDefinition',
              `${def.plural}.flotilla.dev`,
            );
            return crd?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
          },
          { what: `CRD ${def.plural}.flotilla.dev Established`, timeoutMs: 30_000 },
        );
      }
    });

    it('creates the embedded registry: StatefulSet, Service, and the volume claim from its template', async () => {
      const sts = await get<Workload>(admin, 'apps/v1', 'StatefulSet', 'charts-e2e-flotilla-registry', NS);
      expect(sts?.spec.volumeClaimTemplates?.[0]?.metadata.name).to.equal('data');
      const svc = await get<{ spec: { type: string; clusterIP: string } }>(admin, 'v1', 'Service', 'charts-e2e-flotilla-registry', NS);
      expect(svc?.spec.type).to.equal('ClusterIP');
      // kube-controller-manager's StatefulSet controller creates the claim before the (never scheduled) pod.
      const pvc = await waitFor(
        () => get<{ spec: { resources: { requests: { storage: string } } } }>(admin, 'v1', 'PersistentVolumeClaim', 'data-charts-e2e-flotilla-registry-0', NS),
        { what: 'PVC data-charts-e2e-flotilla-registry-0', timeoutMs: 60_000 },
      );
      expect(pvc.spec.resources.requests.storage).to.equal('1Gi');
    });

    it("runs the controller and an agent with exactly the charts' RBAC, from registration to an object downstream", async function () {
      this.timeout(240_000);
      const work = await mkdtemp(join(tmpdir(), 'flotilla-charts-'));
      const logs: string[] = [];
      let manager: Manager | undefined;
      let agent: Agent | undefined;
      try {
        manager = await startControllerAsChart(work, logs);
        await admin.create({ apiVersion: API_VERSION, kind: 'ClusterRegistrationToken', metadata: { name: 'charts', namespace: W }, spec: { ttl: '1h' } });
        const tokenSecret = await waitFor(() => get(admin, 'v1', 'Secret', 'charts', W), {
          what: 'the registration token Secret',
          timeoutMs: 60_000,
          context: () => logs.slice(-10).join('\n'),
        });
        const token = decodeSecretData(tokenSecret.data);
        expect([token.apiServerURL, token.apiServerCA], "the chart's apiServerURL and apiServerCA reach the token Secret").to.deep.equal([up.server, up.caPem]);
        const downCp = stack().cluster('downstream-1');
        await install(
          'charts-e2e',
          AGENT_CHART,
          AGENT_NS,
          downCp,
          agentValues({ apiServerURL: token.apiServerURL, apiServerCA: token.apiServerCA, token: token.token, namespace: W }, false),
        );
        agent = await startAgentAsChart(downCp, work, logs);
        await waitFor(() => get(admin, API_VERSION, 'Cluster', CLUSTER, W), {
          what: `Cluster ${CLUSTER} registered`,
          timeoutMs: 60_000,
          context: () => logs.slice(-10).join('\n'),
        });
        await createGitRepo();
        const cm = await waitFor(() => get<{ data?: Record<string, string> }>(down, 'v1', 'ConfigMap', 'greeting', DEMO_NS), {
          what: `ConfigMap ${DEMO_NS}/greeting applied downstream`,
          timeoutMs: 120_000,
          context: () => logs.slice(-15).join('\n'),
        });
        expect(cm.data).to.deep.equal({ text: 'hello from the charts' });
        await deleteAndWait(logs, async () => {
          // The agent goes before its Cluster, as an operator uninstalls it: once the Cluster's Roles are
          // garbage collected, a still-running agent's heartbeat is refused (403) until its ServiceAccount
          // goes with the namespace, and that refusal is not the charts' RBAC falling short.
          await agent?.stop();
          agent = undefined;
        });
        const refused = logs.filter((l) => /\b403\b|forbidden/i.test(l));
        expect(refused, "requests the charts' RBAC refused").to.deep.equal([]);
      } finally {
        await agent?.stop();
        await manager?.stop();
        await rm(work, { recursive: true, force: true });
      }
    });

    /**
     * Deletes the GitRepo (its objects are pruned downstream), calls `beforeCluster`, then deletes the
     * Cluster (its namespace and credentials go).
     */
    async function deleteAndWait(logs: string[], beforeCluster: () => Promise<void>): Promise<void> {
      const context = () => logs.slice(-10).join('\n');
      await admin.delete({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: W, name: 'charts' });
      await waitFor(async () => !(await get(down, 'v1', 'ConfigMap', 'greeting', DEMO_NS)) && !(await get(admin, API_VERSION, 'GitRepo', 'charts', W)), {
        what: 'the GitRepo gone and its ConfigMap pruned downstream',
        timeoutMs: 60_000,
        context,
      });
      await beforeCluster();
      const cluster = await get<{ status?: { namespace?: string } }>(admin, API_VERSION, 'Cluster', CLUSTER, W);
      await admin.delete({ apiVersion: API_VERSION, kind: 'Cluster', namespace: W, name: CLUSTER });
      await waitFor(async () => !(await get(admin, API_VERSION, 'Cluster', CLUSTER, W)), {
        what: `Cluster ${CLUSTER} finalized and gone`,
        timeoutMs: 60_000,
        context,
      });
      const ns = await get(admin, 'v1', 'Namespace', cluster?.status?.namespace ?? '');
      expect(ns === undefined || ns.metadata.deletionTimestamp !== undefined, 'the cluster namespace is being deleted').to.equal(true);
      expect(
        (await admin.list({ apiVersion: 'v1', kind: 'Secret', namespace: R })).items.map((x) => x.metadata.name),
        'credential Secrets left',
      ).to.deep.equal([]);
    }

    /** The controller as the chart runs it: its Deployment's flags, the chart's CA, the chart ServiceAccount's token. */
    async function startControllerAsChart(work: string, logs: string[]): Promise<Manager> {
      const deploy = await get<Workload>(admin, 'apps/v1', 'Deployment', 'charts-e2e-flotilla-controller', NS);
      const caMap = await get<{ data: Record<string, string> }>(admin, 'v1', 'ConfigMap', 'charts-e2e-flotilla-api-server-ca', NS);
      const caFile = join(work, 'ca.crt');
      await writeFile(caFile, caMap?.data['ca.crt'] ?? '');
      const config = {
        ...parseControllerConfig(containerOf(deploy as unknown as Manifest).args ?? [], { FLOTILLA_IDENTITY: 'charts-e2e-0' }),
        workDir: join(work, 'controller'),
        apiServerCaFile: caFile,
      };
      const kubeConfig = await serviceAccountConfig(up, admin, NS, 'charts-e2e-flotilla');
      const manager = await startManager({ config, kubeConfig, log: createLogger({ name: 'controller', level: 'debug', destination: memoryLog(logs) }) });
      await waitFor(async () => manager.ready(), {
        what: 'the controller to lead (Lease in the release namespace) and sync',
        timeoutMs: 60_000,
        context: () => logs.slice(-10).join('\n'),
      });
      return manager;
    }

    /** The agent as its chart runs it: its Deployment's flags and the chart ServiceAccount's token downstream. */
    async function startAgentAsChart(cp: ControlPlane, work: string, logs: string[]): Promise<Agent> {
      const deploy = await get<Workload>(down, 'apps/v1', 'Deployment', 'charts-e2e-flotilla-agent', AGENT_NS);
      const config = parseAgentConfig(containerOf(deploy as unknown as Manifest).args ?? [], {});
      const downstream = await serviceAccountConfig(cp, down, AGENT_NS, 'charts-e2e-flotilla-agent');
      const agent = new Agent({
        downstream,
        namespace: config.namespace,
        cacheDir: join(work, 'cache'),
        heartbeatIntervalMs: config.heartbeat,
        resyncIntervalMs: config.resync,
        workers: config.workers,
        registrationPollMs: 500,
        limits: { maxObjects: config.maxObjects },
        log: createLogger({ name: 'agent', level: 'debug', destination: memoryLog(logs) }),
      });
      await agent.start();
      return agent;
    }

    /** A git repository with one bundle, and a GitRepo in OCI mode (with an auth Secret, copied to agents) targeting the cluster. */
    async function createGitRepo(): Promise<void> {
      const git = stack().git!;
      const url = await git.createRepo('charts-e2e');
      await git.commit(
        'charts-e2e',
        {
          'demo/fleet.yaml': `defaultNamespace: ${DEMO_NS}\n`,
          'demo/greeting.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\ndata:\n  text: hello from the charts\n',
        },
        'a bundle',
      );
      const secret = (name: string, stringData: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: W }, stringData });
      await admin.create(secret('git', { username: git.username, password: git.password }));
      await admin.create(secret('registry', { username: 'pusher', password: 'push-password', agentUsername: 'reader', agentPassword: 'read-password' }));
      const reg = stack().registry('http');
      await admin.create({
        apiVersion: API_VERSION,
        kind: 'GitRepo',
        metadata: { name: 'charts', namespace: W },
        spec: {
          repo: url,
          branch: 'main',
          clientSecretName: 'git',
          pollingInterval: '2s',
          targets: [{ clusterSelector: { matchLabels: { env: 'charts-e2e' } } }],
          ociRegistry: { reference: `${reg.host}/charts-e2e`, basicHTTP: true, authSecretName: 'registry' },
        },
      });
    }

    it("helm uninstall removes what the releases created, and keeps the CRDs, the workspace namespaces and the registry's volume", async () => {
      expect(installed.map((x) => x.namespace).sort(), 'releases to uninstall (the agent chart is installed by the test before)').to.deep.equal([NS, AGENT_NS]);
      await uninstall(AGENT_NS);
      await uninstall(NS);
      const gone: [KubeClient, string, string, string, string?][] = [
        [admin, 'apps/v1', 'Deployment', 'charts-e2e-flotilla-controller', NS],
        [admin, 'apps/v1', 'StatefulSet', 'charts-e2e-flotilla-registry', NS],
        [admin, 'v1', 'Service', 'charts-e2e-flotilla-registry', NS],
        [admin, 'v1', 'ServiceAccount', 'charts-e2e-flotilla', NS],
        [admin, RBAC, 'ClusterRole', 'charts-e2e-flotilla-controller'],
        [admin, RBAC, 'ClusterRoleBinding', 'charts-e2e-flotilla-controller'],
        [admin, RBAC, 'Role', 'charts-e2e-flotilla-controller', W],
        [admin, 'v1', 'Secret', 'charts-e2e-flotilla-registry-auth', NS],
        [down, 'apps/v1', 'Deployment', 'charts-e2e-flotilla-agent', AGENT_NS],
        [down, RBAC, 'ClusterRoleBinding', 'charts-e2e-flotilla-agent-downstream'],
        [down, RBAC, 'ClusterRole', 'charts-e2e-flotilla-agent-downstream'],
        [down, RBAC, 'Role', 'charts-e2e-flotilla-agent', AGENT_NS],
        [down, 'v1', 'Secret', 'flotilla-agent-bootstrap', AGENT_NS],
      ];
      for (const [client, apiVersion, kind, name, namespace] of gone) {
        expect(await get(client, apiVersion, kind, name, namespace), `${kind} ${name} after uninstall`).to.equal(undefined);
      }
      for (const def of kinds)
        expect(await get(admin, 'apiextensions.k8s.io/v1', 'CustomResourceDefinition', `${def.plural}.flotilla.dev`), `CRD ${def.plural}`).to.not.equal(
          undefined,
        );
      for (const ns of [W, R]) {
        const kept = await get(admin, 'v1', 'Namespace', ns);
        expect(kept && !kept.metadata.deletionTimestamp, `namespace ${ns} kept (helm.sh/resource-policy: keep)`).to.equal(true);
      }
      expect(await get(admin, 'v1', 'PersistentVolumeClaim', 'data-charts-e2e-flotilla-registry-0', NS), "the registry's data").to.not.equal(undefined);
    });
  });
});
