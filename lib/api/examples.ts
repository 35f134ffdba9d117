/**
 * Example objects of every kind, valid and invalid, as one table. The unit tests check them against the
 * zod schemas and the e2e test against a real kube-apiserver with the generated CRDs: both must agree.
 * They also document what the API accepts (the GitRepo ones follow examples from Fleet's docs, with
 * the apiVersion changed).
 */
import { API_VERSION } from './constants.js';

/** One example object and the verdict both zod and the API server must reach. */
export interface ObjectCase {
  /** What the case shows, as a sentence fragment. */
  name: string;
  /** The object: apiVersion, kind, metadata (name only), spec and optionally status. */
  object: { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: unknown; status?: unknown };
  /** For an invalid object: a field path both error messages must name, e.g. `spec.repo`. */
  invalidField?: string;
}

const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;
const TIME = '2025-01-02T03:04:05Z';

function object(kind: string, name: string, spec: unknown, status?: unknown): ObjectCase['object'] {
  return { apiVersion: API_VERSION, kind, metadata: { name }, ...(spec === undefined ? {} : { spec }), ...(status === undefined ? {} : { status }) };
}

function valid(name: string, obj: ObjectCase['object']): ObjectCase {
  return { name, object: obj };
}

function invalid(name: string, invalidField: string, obj: ObjectCase['object']): ObjectCase {
  return { name, object: obj, invalidField };
}

const readyCondition = { type: 'Ready', status: 'True', reason: 'Succeeded', message: '', lastTransitionTime: TIME };
const nonReady = (i: number) => ({ apiVersion: 'apps/v1', kind: 'Deployment', name: `d${i}`, namespace: 'app', summary: { state: 'in-progress' } });

/** GitRepo examples. */
export const gitRepoCases: ObjectCase[] = [
  valid(
    'a Fleet GitRepo with repo and paths',
    object('GitRepo', 'simple', {
      repo: 'https://github.com/rancher/fleet-examples',
      paths: ['simple'],
    }),
  ),
  valid(
    'a Fleet GitRepo with branch, paths and a clusterSelector target',
    object('GitRepo', 'targeted', {
      repo: 'https://github.com/rancher/fleet-examples',
      branch: 'master',
      paths: ['multi-cluster/manifests'],
      targets: [
        { name: 'prod', clusterSelector: { matchLabels: { env: 'prod' } } },
        { name: 'dev', clusterSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev', 'test'] }] } },
      ],
    }),
  ),
  valid(
    'a Fleet GitRepo over ssh with clientSecretName and pollingInterval',
    object('GitRepo', 'private', {
      repo: 'git@github.com:rancher/fleet-examples',
      branch: 'main',
      clientSecretName: 'ssh-key',
      pollingInterval: '1m30s',
      targets: [{ clusterGroup: 'production' }],
    }),
  ),
  valid(
    'a Fleet GitRepo storing its bundles through ociRegistrySecret (Fleet 0.13+)',
    object('GitRepo', 'frontend-oci', {
      repo: 'https://git.example.com/org/fleet-oci.git',
      branch: 'main',
      paths: ['./frontend'],
      ociRegistrySecret: 'ocistorage',
    }),
  ),
  valid('a GitRepo whose registry is discovered (KEP-1755)', object('GitRepo', 'oci-discovered', { repo: 'https://x', ociRegistry: { basicHTTP: true } })),
  valid(
    'a GitRepo using most fields and OCI storage',
    object(
      'GitRepo',
      'full',
      {
        repo: 'http://127.0.0.1:3000/org/repo.git',
        revision: 'v1.2.3',
        paths: ['apps/*'],
        caBundle: 'LS0tLS1CRUdJTg==',
        insecureSkipTLSVerify: false,
        disablePolling: true,
        paused: false,
        targetNamespace: 'apps',
        serviceAccount: 'deployer',
        keepResources: true,
        correctDrift: { enabled: true, force: false },
        forceSyncGeneration: 3,
        targets: [{ clusterName: 'edge-1' }, { clusterGroupSelector: { matchLabels: { tier: 'edge' } } }],
        ociRegistry: { reference: '127.0.0.1:5000/flotilla/bundles', authSecretName: 'registry-auth', basicHTTP: true },
      },
      {
        observedGeneration: 1,
        commit: 'a'.repeat(40),
        conditions: [readyCondition],
        readyClusters: 1,
        desiredReadyClusters: 1,
        resourceCounts: { ready: 3, desiredReady: 3 },
        display: { readyBundleDeployments: '1/1', state: 'Ready' },
        artifacts: [{ bundle: 'full-apps', reference: `127.0.0.1:5000/flotilla/bundles/full-apps@${DIGEST_A}`, digest: DIGEST_A }],
      },
    ),
  ),
  invalid('a GitRepo without repo', 'spec.repo', object('GitRepo', 'no-repo', { paths: ['simple'] })),
  invalid('a GitRepo with a misspelled field', 'spec.repository', object('GitRepo', 'typo', { repo: 'https://x', repository: 'https://x' })),
  invalid('a GitRepo with paths as a string', 'spec.paths', object('GitRepo', 'paths-string', { repo: 'https://x', paths: 'simple' })),
  invalid(
    'a GitRepo with a pollingInterval that is not a duration',
    'spec.pollingInterval',
    object('GitRepo', 'bad-interval', { repo: 'https://x', pollingInterval: 'often' }),
  ),
  invalid(
    'a GitRepo with forceSyncGeneration as a string',
    'spec.forceSyncGeneration',
    object('GitRepo', 'bad-generation', { repo: 'https://x', forceSyncGeneration: '1' }),
  ),
  invalid(
    'a GitRepo whose target selector uses an unknown operator',
    'spec.targets[0].clusterSelector.matchExpressions[0].operator',
    object('GitRepo', 'bad-operator', { repo: 'https://x', targets: [{ clusterSelector: { matchExpressions: [{ key: 'env', operator: 'Equals' }] } }] }),
  ),
  invalid(
    'a GitRepo whose matchLabels value is a number',
    'spec.targets[0].clusterSelector.matchLabels.env',
    object('GitRepo', 'bad-label', { repo: 'https://x', targets: [{ clusterSelector: { matchLabels: { env: 1 } } }] }),
  ),
  invalid(
    'a GitRepo whose ociRegistry.reference has a tag',
    'spec.ociRegistry.reference',
    object('GitRepo', 'oci-tag', { repo: 'https://x', ociRegistry: { reference: '127.0.0.1:5000/flotilla:v1' } }),
  ),
  invalid(
    'a GitRepo whose ociRegistry.reference has a digest',
    'spec.ociRegistry.reference',
    object('GitRepo', 'oci-digest', { repo: 'https://x', ociRegistry: { reference: `127.0.0.1:5000/flotilla@${DIGEST_A}` } }),
  ),
  invalid(
    'a GitRepo whose ociRegistrySecret is not a Secret name',
    'spec.ociRegistrySecret',
    object('GitRepo', 'oci-secret-name', { repo: 'https://x', ociRegistrySecret: 'Not_A_Name' }),
  ),
  invalid(
    'a GitRepo status with a negative readyClusters',
    'status.readyClusters',
    object('GitRepo', 'bad-status', { repo: 'https://x' }, { readyClusters: -1 }),
  ),
];

/** Bundle examples. */
export const bundleCases: ObjectCase[] = [
  valid(
    'a Bundle with inline resources (etcd mode)',
    object('Bundle', 'inline', {
      defaultNamespace: 'app',
      resources: [
        { name: 'deploy.yaml', content: 'kind: ConfigMap\n' },
        { name: 'overlays/prod/cm_patch.yaml', content: 'H4sI', encoding: 'base64+gz' },
      ],
      targets: [
        { name: 'prod', clusterSelector: { matchLabels: { env: 'prod' } }, yaml: { overlays: ['prod'] }, namespace: 'prod-app' },
        { name: 'excluded', clusterName: 'lab', doNotDeploy: true },
      ],
      targetRestrictions: [{ clusterSelector: {} }],
    }),
  ),
  valid(
    'a Bundle pinned to an OCI artifact (OCI mode)',
    object(
      'Bundle',
      'oci',
      {
        oci: { reference: `127.0.0.1:5000/flotilla/bundles/oci@${DIGEST_A}`, digest: DIGEST_A, secretName: 'oci-read', basicHTTP: true },
        contentsID: DIGEST_B,
        keepResources: true,
        correctDrift: { enabled: true },
        diff: {
          comparePatches: [
            {
              apiVersion: 'apps/v1',
              kind: 'Deployment',
              name: 'web',
              namespace: 'app',
              operations: [{ op: 'remove', path: '/spec/replicas' }],
              jsonPointers: ['/spec/replicas'],
            },
          ],
        },
        dependsOn: [{ name: 'base' }, { selector: { matchLabels: { role: 'crds' } } }],
        namespaceLabels: { team: 'a' },
        namespaceAnnotations: { owner: 'a' },
      },
      {
        observedGeneration: 2,
        conditions: [readyCondition],
        display: { readyClusters: '2/2', state: 'Ready' },
        summary: { notReady: 0, waitApplied: 0, errApplied: 0, outOfSync: 0, modified: 0, ready: 2, pending: 0, desiredReady: 2 },
      },
    ),
  ),
  invalid(
    'a Bundle with both inline resources and an OCI artifact',
    'spec',
    object('Bundle', 'both', {
      resources: [{ name: 'a.yaml', content: '' }],
      oci: { reference: `127.0.0.1:5000/b@${DIGEST_A}`, digest: DIGEST_A },
    }),
  ),
  invalid(
    'a Bundle whose OCI reference is pinned by another digest',
    'spec.oci',
    object('Bundle', 'mismatch', { oci: { reference: `127.0.0.1:5000/b@${DIGEST_B}`, digest: DIGEST_A } }),
  ),
  invalid(
    'a Bundle whose OCI reference is a tag',
    'spec.oci.reference',
    object('Bundle', 'tagged', { oci: { reference: '127.0.0.1:5000/b:latest', digest: DIGEST_A } }),
  ),
  invalid(
    'a Bundle whose OCI digest is not sha256 hex',
    'spec.oci.digest',
    object('Bundle', 'bad-digest', { oci: { reference: `127.0.0.1:5000/b@${DIGEST_A}`, digest: 'sha256:ABC' } }),
  ),
  invalid(
    'a Bundle with a resource path escaping the bundle',
    'spec.resources[0].name',
    object('Bundle', 'escape', { resources: [{ name: '../secrets.yaml', content: '' }] }),
  ),
  invalid(
    'a Bundle with an unknown resource encoding',
    'spec.resources[0].encoding',
    object('Bundle', 'encoding', { resources: [{ name: 'a.yaml', content: '', encoding: 'gzip' }] }),
  ),
  invalid(
    'a Bundle target with an invalid namespace name',
    'spec.targets[0].namespace',
    object('Bundle', 'bad-ns', { targets: [{ clusterName: 'a', namespace: 'Not_A_Namespace' }] }),
  ),
  invalid(
    'a Bundle status summary without its counts',
    'status.summary.ready',
    object('Bundle', 'bad-summary', { resources: [] }, { summary: { notReady: 0 } }),
  ),
];

/** BundleDeployment examples. */
export const bundleDeploymentCases: ObjectCase[] = [
  valid(
    'a BundleDeployment of an OCI artifact with options and status',
    object(
      'BundleDeployment',
      'oci',
      {
        deploymentID: `${DIGEST_A}:opts`,
        options: { defaultNamespace: 'app', correctDrift: { enabled: true } },
        oci: { reference: `127.0.0.1:5000/flotilla/bundles/oci@${DIGEST_A}`, digest: DIGEST_A, secretName: 'oci-read' },
      },
      {
        conditions: [
          readyCondition,
          { type: 'Deployed', status: 'True', reason: 'Succeeded', message: 'applied', lastTransitionTime: TIME, observedGeneration: 1 },
        ],
        appliedDeploymentID: `${DIGEST_A}:opts`,
        ready: true,
        nonModified: true,
        nonReadyStatus: [nonReady(0)],
        modifiedStatus: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'c', namespace: 'app', missing: true }],
        resources: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'c', namespace: 'app' }],
        display: { state: 'Ready' },
      },
    ),
  ),
  valid(
    'a BundleDeployment with inline resources',
    object('BundleDeployment', 'inline', {
      deploymentID: 's-1',
      resources: [{ name: 'cm.yaml', content: 'kind: ConfigMap' }],
      paused: true,
    }),
  ),
  invalid('a BundleDeployment without deploymentID', 'spec.deploymentID', object('BundleDeployment', 'no-id', { resources: [] })),
  invalid(
    'a BundleDeployment status listing more than 10 non-ready resources',
    'status.nonReadyStatus',
    object('BundleDeployment', 'too-many', { deploymentID: 'x' }, { nonReadyStatus: Array.from({ length: 11 }, (_, i) => nonReady(i)) }),
  ),
  invalid(
    'a BundleDeployment condition with an unknown status',
    'status.conditions[0].status',
    object('BundleDeployment', 'bad-cond', { deploymentID: 'x' }, { conditions: [{ ...readyCondition, status: 'Maybe' }] }),
  ),
  invalid(
    'a BundleDeployment condition without a reason',
    'status.conditions[0].reason',
    object('BundleDeployment', 'no-reason', { deploymentID: 'x' }, { conditions: [{ type: 'Ready', status: 'True', message: '', lastTransitionTime: TIME }] }),
  ),
];

/** Cluster, ClusterGroup and registration examples. */
export const clusterCases: ObjectCase[] = [
  valid('a Cluster with no spec', { ...object('Cluster', 'bare', undefined), metadata: { name: 'bare', labels: { env: 'prod' } } }),
  valid(
    'a Cluster with spec and status',
    object(
      'Cluster',
      'edge-1',
      { clientID: 'abc', agentNamespace: 'flotilla-system' },
      {
        namespace: 'cluster-flotilla-default-edge-1',
        agent: { lastSeen: TIME, namespace: 'flotilla-system' },
        readyBundles: 1,
        desiredReadyBundles: 2,
        display: { readyBundles: '1/2', state: 'NotReady' },
        conditions: [readyCondition],
      },
    ),
  ),
  valid(
    'a Cluster with registry mirrors and the mirrors in effect on its status',
    object(
      'Cluster',
      'edge-eu',
      {
        registryMirrors: [
          { registry: 'registry.example.com:5000', mirror: 'https://mirror.eu.example.com/cache', authSecretName: 'mirror-auth', originFallback: false },
        ],
      },
      {
        agent: {
          registryMirrors: [{ registry: 'registry.example.com:5000', mirror: 'https://mirror.eu.example.com/cache', source: 'cluster', originFallback: false }],
        },
      },
    ),
  ),
  invalid(
    'a Cluster registry mirror without its mirror',
    'spec.registryMirrors[0].mirror',
    object('Cluster', 'no-mirror', { registryMirrors: [{ registry: 'r.example.com' }] }),
  ),
  invalid('a Cluster with a negative redeployAgentGeneration', 'spec.redeployAgentGeneration', object('Cluster', 'negative', { redeployAgentGeneration: -1 })),
  invalid('a Cluster whose agent.lastSeen is not a time', 'status.agent.lastSeen', object('Cluster', 'bad-time', {}, { agent: { lastSeen: 'yesterday' } })),
  valid('a ClusterGroup selecting by labels', object('ClusterGroup', 'production', { selector: { matchLabels: { env: 'prod' } } })),
  invalid(
    'a ClusterGroup whose matchLabels is a list',
    'spec.selector.matchLabels',
    object('ClusterGroup', 'list', { selector: { matchLabels: ['env=prod'] } }),
  ),
  valid('a ClusterRegistrationToken with a ttl', object('ClusterRegistrationToken', 'day', { ttl: '24h' })),
  invalid('a ClusterRegistrationToken with a ttl in words', 'spec.ttl', object('ClusterRegistrationToken', 'words', { ttl: '1 day' })),
  valid(
    'a ClusterRegistration from an agent',
    object('ClusterRegistration', 'req-1', { clientID: 'uid-1', clientRandom: 'r4nd', clusterLabels: { env: 'dev' } }),
  ),
  invalid('a ClusterRegistration without clientRandom', 'spec.clientRandom', object('ClusterRegistration', 'req-2', { clientID: 'uid-1' })),
  invalid('a ClusterRegistration without spec', 'spec', object('ClusterRegistration', 'req-3', undefined)),
];

/** Every example, all kinds. */
export const objectCases: readonly ObjectCase[] = [...gitRepoCases, ...bundleCases, ...bundleDeploymentCases, ...clusterCases];
