import { expect } from 'chai';
import { StallingError } from '../errors.js';
import { parseFleetYaml, type FleetYaml } from './index.js';

function parseError(text: string): StallingError {
  try {
    parseFleetYaml(text, 'apps/web/fleet.yaml');
  } catch (err: unknown) {
    if (err instanceof StallingError) return err;
    throw err;
  }
  throw new Error('expected parseFleetYaml to throw');
}

describe('parseFleetYaml', () => {
  const valid: [string, string, FleetYaml][] = [
    ['an empty file', '', {}],
    [
      "Fleet's no-op helm.atomic: false (dropped) and timeoutSeconds, also per target",
      'helm:\n  atomic: false\n  timeoutSeconds: 0\ntargetCustomizations:\n- name: slow\n  helm: {atomic: false, timeoutSeconds: 300}\n',
      { helm: { timeoutSeconds: 0 }, targetCustomizations: [{ name: 'slow', helm: { timeoutSeconds: 300 } }] },
    ],
    [
      "helm.atomic: true (Helm's --atomic, honoured per cluster by the planner) with timeoutSeconds, also per target",
      'helm:\n  atomic: true\n  timeoutSeconds: 60\ntargetCustomizations:\n- name: lab\n  helm: {atomic: true}\n',
      { helm: { atomic: true, timeoutSeconds: 60 }, targetCustomizations: [{ name: 'lab', helm: { atomic: true } }] },
    ],
    ['a comment-only file', '# nothing here\n', {}],
    [
      'namespaces and labels',
      'defaultNamespace: web\nnamespace: web-prod\nlabels:\n  role: frontend\n',
      { defaultNamespace: 'web', namespace: 'web-prod', labels: { role: 'frontend' } },
    ],
    [
      'target customizations with overlays',
      [
        'targetCustomizations:',
        '- name: prod',
        '  clusterSelector:',
        '    matchLabels: {env: prod}',
        '  yaml:',
        '    overlays: [prod, big]',
        '  namespace: web-prod',
        '- name: lab',
        '  clusterGroup: lab',
        '  doNotDeploy: true',
      ].join('\n'),
      {
        targetCustomizations: [
          { name: 'prod', clusterSelector: { matchLabels: { env: 'prod' } }, yaml: { overlays: ['prod', 'big'] }, namespace: 'web-prod' },
          { name: 'lab', clusterGroup: 'lab', doNotDeploy: true },
        ],
      },
    ],
    [
      'dependsOn, diff, correctDrift and keepResources',
      [
        'dependsOn:',
        '- name: crds',
        '- selector: {matchLabels: {role: base}}',
        'diff:',
        '  comparePatches:',
        '  - {apiVersion: apps/v1, kind: Deployment, name: web, namespace: web, jsonPointers: [/spec/replicas]}',
        'correctDrift: {enabled: true}',
        'keepResources: true',
        'serviceAccount: deployer',
        'namespaceLabels: {team: a}',
      ].join('\n'),
      {
        dependsOn: [{ name: 'crds' }, { selector: { matchLabels: { role: 'base' } } }],
        diff: { comparePatches: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'web', jsonPointers: ['/spec/replicas'] }] },
        correctDrift: { enabled: true },
        keepResources: true,
        serviceAccount: 'deployer',
        namespaceLabels: { team: 'a' },
      },
    ],
    [
      'helm options and per-target helm values and kustomize dirs',
      [
        'helm:',
        '  chart: ./chart',
        '  releaseName: web',
        '  values: {replicas: 2, image: {tag: "${ .ClusterLabels.tag }"}}',
        '  valuesFiles: [values/common.yaml]',
        '  takeOwnership: true',
        '  force: false',
        '  waitForJobs: true',
        '  skipSchemaValidation: true',
        '  disableDNS: true',
        '  disablePreProcess: false',
        '  disableDependencyUpdate: true',
        '  maxHistory: 3',
        'kustomize: {dir: base}',
        'targetCustomizations:',
        '- name: prod',
        '  clusterSelector: {matchLabels: {env: prod}}',
        '  helm: {values: {replicas: 5}, valuesFiles: [values/prod.yaml]}',
        '  kustomize: {dir: overlays-k/prod}',
      ].join('\n'),
      {
        helm: {
          chart: './chart',
          releaseName: 'web',
          values: { replicas: 2, image: { tag: '${ .ClusterLabels.tag }' } },
          valuesFiles: ['values/common.yaml'],
          takeOwnership: true,
          force: false,
          waitForJobs: true,
          skipSchemaValidation: true,
          disableDNS: true,
          disablePreProcess: false,
          disableDependencyUpdate: true,
          maxHistory: 3,
        },
        kustomize: { dir: 'base' },
        targetCustomizations: [
          {
            name: 'prod',
            clusterSelector: { matchLabels: { env: 'prod' } },
            helm: { values: { replicas: 5 }, valuesFiles: ['values/prod.yaml'] },
            kustomize: { dir: 'overlays-k/prod' },
          },
        ],
      },
    ],
    [
      "Fleet's rolloutStrategy with Flotilla's soak, deadline and onFailure",
      [
        'rolloutStrategy:',
        '  maxUnavailable: 10%',
        '  maxUnavailablePartitions: 1',
        '  maxNew: 20',
        '  autoPartitionSize: 5',
        '  autoPartitionThreshold: 50',
        '  partitions:',
        '  - name: canary',
        '    maxUnavailable: 0',
        '    clusterSelector: {matchLabels: {ring: canary}}',
        '  - name: rest',
        '    clusterGroup: production',
        '  minSuccessTime: 5m',
        '  deadline: 30m',
        '  onFailure: rollback',
        '',
      ].join('\n'),
      {
        rolloutStrategy: {
          maxUnavailable: '10%',
          maxUnavailablePartitions: 1,
          maxNew: 20,
          autoPartitionSize: 5,
          autoPartitionThreshold: 50,
          partitions: [
            { name: 'canary', maxUnavailable: 0, clusterSelector: { matchLabels: { ring: 'canary' } } },
            { name: 'rest', clusterGroup: 'production' },
          ],
          minSuccessTime: '5m',
          deadline: '30m',
          onFailure: 'rollback',
        },
      },
    ],
  ];
  for (const [name, text, expected] of valid) {
    it(`accepts ${name}`, () => expect(parseFleetYaml(text, 'fleet.yaml')).to.deep.equal(expected));
  }

  const invalid: [string, string, RegExp][] = [
    [
      'a helm.repo that is not an http(s) URL',
      'helm:\n  chart: web\n  repo: ftp://charts.example\n',
      /^apps\/web\/fleet\.yaml: helm\.repo: must be the http\(s\):\/\/ URL/,
    ],
    ['a helm.atomic that is not a boolean', 'helm: {atomic: "no"}\n', /helm\.atomic: .*boolean/i],
    [
      'a helm.atomic that is not a boolean in a target customization',
      'targetCustomizations:\n- name: a\n  helm: {atomic: 1}\n',
      /targetCustomizations\[0\]\.helm\.atomic: .*boolean/i,
    ],
    ['a negative helm.timeoutSeconds', 'helm: {timeoutSeconds: -1}\n', /helm\.timeoutSeconds: /],
    ['imageScans, as deprecated', 'imageScans:\n- image: web\n', /^apps\/web\/fleet\.yaml: imageScans: Fleet "imageScans" is deprecated in Fleet/],
    [
      'a rolloutStrategy.maxUnavailable that is no count or percentage',
      'rolloutStrategy: {maxUnavailable: ten}\n',
      /^apps\/web\/fleet\.yaml: rolloutStrategy\.maxUnavailable: "ten" is not/,
    ],
    ['a percentage over 100', 'rolloutStrategy: {autoPartitionSize: 150%}\n', /rolloutStrategy\.autoPartitionSize: "150%" is not/],
    ['a partition that selects nothing', 'rolloutStrategy:\n  partitions:\n  - name: a\n', /rolloutStrategy\.partitions\[0\]: selects nothing/],
    [
      'a misspelled rollout field',
      'rolloutStrategy: {maxUnavailabel: 1}\n',
      /rolloutStrategy\.maxUnavailabel: unknown field|rolloutStrategy: .*maxUnavailabel/,
    ],
    ['an unknown onFailure', 'rolloutStrategy: {onFailure: retry}\n', /rolloutStrategy\.onFailure/],
    ['a deadline that is no duration', 'rolloutStrategy: {deadline: soon}\n', /rolloutStrategy\.deadline/],
    ['helm.templateValues, pointing at .ClusterValues', 'helm: {templateValues: {a: b}}\n', /helm\.templateValues: .*\.ClusterValues/],
    ['a valuesFrom entry with a misspelled ref', 'helm:\n  valuesFrom:\n  - configMapRef: {name: v}\n', /helm\.valuesFrom\[0\]\.configMapRef: unknown field/],
    ['an unknown dependsOn accepted state', 'dependsOn:\n- name: db\n  acceptedStates: [Done]\n', /dependsOn\[0\]\.acceptedStates\[0\]: /],
    ['a bundle name longer than a Helm release name', `name: ${'a'.repeat(54)}\n`, /^apps\/web\/fleet\.yaml: name: /],
    [
      'a chart URL of another scheme',
      'helm: {chart: "ftp://charts.example/web.tgz"}\n',
      /helm\.chart: must be a chart folder inside the bundle .* an oci:\/\/ reference/,
    ],
    ['a values file outside the bundle', 'helm: {valuesFiles: [../secrets.yaml]}\n', /helm\.valuesFiles\[0\]: must be a path inside the bundle/],
    ['a kustomize dir outside the bundle', 'kustomize: {dir: /etc}\n', /kustomize\.dir: must be a path inside the bundle/],
    ['a misspelled helm key', 'helm: {relaseName: web}\n', /helm\.relaseName: unknown field/],
    ['values that are not a mapping', 'helm: {values: [1]}\n', /helm\.values: /],
    [
      'a misspelled key, naming its path',
      'targetCustomizations:\n- name: a\n  clusterSelectr: {}\n',
      /targetCustomizations\[0\]\.clusterSelectr: unknown field/,
    ],
    [
      'a wrong type, naming its path',
      'targetCustomizations:\n- clusterSelector: {matchLabels: {env: 1}}\n',
      /targetCustomizations\[0\]\.clusterSelector\.matchLabels\.env: .*expected string/,
    ],
    ['an invalid namespace name', 'namespace: Web_Prod\n', /namespace: must be a lowercase DNS-1123 label/],
    ['a YAML syntax error, naming the line', 'namespace: web\nlabels: {a: b\n', /^apps\/web\/fleet\.yaml: invalid YAML at line 3/],
    ['a list instead of a mapping', '- a\n- b\n', /must be a mapping of fields \(got a list\)/],
    ['a scalar instead of a mapping', 'just text\n', /must be a mapping of fields \(got string\)/],
    ['several documents', 'a: 1\n---\nb: 2\n', /invalid YAML/],
    [
      'an alias bomb',
      [
        'a: &a [x, x, x, x, x, x, x, x, x, x]',
        'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
        'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
        'e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]',
        'f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]',
      ].join('\n'),
      /more than 100000 YAML nodes/,
    ],
  ];
  for (const [name, text, pattern] of invalid) {
    it(`rejects ${name}`, () => {
      const err = parseError(text);
      expect(err.reason).to.equal('InvalidBundle');
      expect(err.message).to.match(pattern);
    });
  }

  it('rejects a file larger than 1 MiB without parsing it', () => {
    expect(parseError(`# ${'x'.repeat(1 << 20)}\n`).message).to.match(/larger than 1048576 bytes/);
  });
});
