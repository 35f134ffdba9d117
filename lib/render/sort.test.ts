import { expect } from 'chai';
import { StallingError } from '../errors.js';
import { sortHelmOutput } from './helm.js';
import { engineOf } from './index.js';
import { checkKustomization } from './kustomize.js';

const doc = (source: string, body: string) => `---\n# Source: ${source}\n${body}\n`;
const cm = (name: string, annotations = '') =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${annotations ? `  annotations:\n${annotations}\n` : ''}data:\n  note: "helm.sh/hook: pre-install"`;

describe('sortHelmOutput', () => {
  const output = [
    doc('web/crds/widgets.yaml', 'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com'),
    doc('web/charts/db/crds/dbs.yaml', 'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: dbs.example.com'),
    doc('web/templates/cm.yaml', cm('plain')),
    doc(
      'web/templates/migrate.yaml',
      cm(
        'migrate',
        '    helm.sh/hook: pre-upgrade,pre-install\n    helm.sh/hook-weight: "5"\n    helm.sh/hook-delete-policy: hook-succeeded,before-hook-creation',
      ),
    ),
    doc('web/templates/early.yaml', cm('early', '    "helm.sh/hook": pre-install\n    "helm.sh/hook-weight": "-1"')),
    doc('web/templates/notify.yaml', cm('notify', '    helm.sh/hook: post-install')),
    doc('web/templates/tests/t.yaml', cm('test', '    helm.sh/hook: test')),
    doc('web/templates/cleanup.yaml', cm('cleanup', '    helm.sh/hook: pre-delete')),
  ].join('');

  it('puts crds/ of the chart and its subcharts apart, keeps plain objects (a hook-like string in data is not a hook)', () => {
    const out = sortHelmOutput(output);
    expect(out.crds.map((d) => d.source)).to.deep.equal(['web/crds/widgets.yaml', 'web/charts/db/crds/dbs.yaml']);
    expect(out.resources.map((d) => d.source)).to.deep.equal(['web/templates/cm.yaml']);
  });

  it('orders install/upgrade hooks by weight with their delete policy, and drops test and delete hooks', () => {
    const hooks = sortHelmOutput(output).hooks.map((h) => [h.source, h.phase, h.weight, h.deletePolicy]);
    expect(hooks).to.deep.equal([
      ['web/templates/early.yaml', 'pre', -1, ['before-hook-creation']],
      ['web/templates/notify.yaml', 'post', 0, ['before-hook-creation']],
      ['web/templates/migrate.yaml', 'pre', 5, ['hook-succeeded', 'before-hook-creation']],
    ]);
  });

  it('skips empty documents (a template that renders nothing)', () => {
    expect(sortHelmOutput('---\n# Source: web/templates/empty.yaml\n\n---\n').resources).to.deep.equal([]);
  });
});

describe('checkKustomization', () => {
  const file = (path: string, text: string) => ({ path, content: Buffer.from(text) });
  const files = [
    file('base/kustomization.yaml', 'resources: [deploy.yaml]\nconfigMapGenerator:\n- name: c\n  files: [app.conf, key=other.conf]\n'),
    file('base/deploy.yaml', 'x'),
    file('base/app.conf', 'x'),
    file('base/other.conf', 'x'),
    file('prod/kustomization.yaml', 'resources: [../base]\npatches:\n- path: patch.yaml\n'),
    file('prod/patch.yaml', 'x'),
    file('remote/kustomization.yaml', 'resources:\n- ../base\n- github.com/example/repo//deploy?ref=v1\n'),
    file('https/kustomization.yaml', 'resources: ["https://example.com/app.yaml"]\n'),
    file('escape/kustomization.yaml', 'resources: [../../etc]\n'),
    file('escape2/kustomization.yaml', 'bases: [../prod, ../escape]\n'),
    file('missing/kustomization.yaml', 'resources: [gone.yaml]\n'),
  ];
  const label = (p: string) => `apps/k/${p}`;

  it('accepts a kustomization whose paths, bases and generator files are in the bundle', () => {
    expect(() => checkKustomization(files, 'prod', label)).not.to.throw();
  });

  const refused: [string, RegExp][] = [
    ['remote', /^apps\/k\/remote\/kustomization\.yaml: resources: "github\.com\/example\/repo\/\/deploy\?ref=v1" is a remote base/],
    ['https', /resources: "https:\/\/example\.com\/app\.yaml" is a remote base/],
    ['escape', /^apps\/k\/escape\/kustomization\.yaml: resources: "\.\.\/\.\.\/etc" is outside the bundle/],
    ['escape2', /^apps\/k\/escape\/kustomization\.yaml: resources: "\.\.\/\.\.\/etc" is outside the bundle/],
    ['missing', /resources: "gone\.yaml" is not in the bundle/],
    ['nothing', /^apps\/k\/nothing: has no kustomization\.yaml/],
  ];
  for (const [dir, pattern] of refused) {
    it(`refuses ${dir}`, () => expect(() => checkKustomization(files, dir, label)).to.throw(StallingError, pattern));
  }
});

describe('engineOf', () => {
  const f = (path: string) => ({ path, content: Buffer.from('') });
  const cases: [string, string[], object | undefined, string, string][] = [
    ['a Chart.yaml at the root', ['Chart.yaml', 'templates/a.yaml'], undefined, 'helm', ''],
    ['helm.chart', ['chart/Chart.yaml'], { helm: { chart: './chart/' } }, 'helm', 'chart'],
    ['kustomize.dir', ['overlays-k/prod/kustomization.yaml'], { kustomize: { dir: 'overlays-k/prod' } }, 'kustomize', 'overlays-k/prod'],
    ['a kustomization at the root', ['kustomization.yaml'], undefined, 'kustomize', ''],
    ['plain YAML', ['deploy.yaml'], { helm: { values: { a: 1 } } }, 'yaml', ''],
  ];
  for (const [name, paths, options, engine, dir] of cases) {
    it(`picks ${engine} for ${name}`, () => expect(engineOf(paths.map(f), options)).to.deep.equal({ engine, dir }));
  }
});
