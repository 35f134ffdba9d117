import { expect } from 'chai';
import { StallingError } from '../errors.js';
import { readBundle, readGitRepoBundles } from './read.js';
import { type Tree, removeTree, writeTree } from './testing.js';

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\n`;

/** Writes a tree, reads the bundle at `dir`, removes the tree; returns the bundle or the error. */
async function read(tree: Tree, dir = 'app', limits = {}): Promise<Awaited<ReturnType<typeof readBundle>> | StallingError> {
  const root = await writeTree(tree);
  try {
    return await readBundle(root, { name: 'b', dir }, limits);
  } catch (err) {
    if (err instanceof StallingError) return err;
    throw err;
  } finally {
    await removeTree(root);
  }
}

describe('reading a bundle', () => {
  it('keeps manifests and overlay files, parses fleet.yaml, and leaves out the rest', async () => {
    const bundle = await read({
      'app/fleet.yaml':
        'defaultNamespace: web\ntargetCustomizations:\n  - name: prod\n    clusterSelector: {matchLabels: {env: prod}}\n    yaml: {overlays: [prod]}\n',
      'app/deploy.yaml': cm('web'),
      'app/config/extra.json': '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra"}}',
      'app/README.md': '# docs',
      'app/overlays/prod/deploy_patch.yaml': 'data: {env: prod}\n',
      'app/overlays/prod/notes.txt': 'not kept',
      'app/nested/fleet.yaml': '{}\n',
      'app/nested/other.yaml': cm('other-bundle'),
      'app/.git/x.yaml': cm('git'),
      'app/secret.yaml': cm('ignored'),
      'app/.fleetignore': 'secret.yaml\n',
    });
    if (bundle instanceof Error) throw bundle;
    expect(bundle.files.map((f) => f.path)).to.deep.equal(['config/extra.json', 'deploy.yaml', 'overlays/prod/deploy_patch.yaml']);
    expect(bundle.fleetYaml.defaultNamespace).to.equal('web');
    expect(bundle.fleetYaml.targetCustomizations?.[0]?.yaml?.overlays).to.deep.equal(['prod']);
    expect(bundle.files[1]?.content.toString()).to.equal(cm('web'));
  });

  it('keeps a chart at the bundle root whole, without parsing its templates as manifests', async () => {
    const b = await read({
      'app/fleet.yaml': 'helm: {releaseName: web}\n',
      'app/Chart.yaml': 'apiVersion: v2\nname: x\nversion: 0.1.0\n',
      'app/values.yaml': 'a: 1\n',
      'app/.helmignore': '*.md\n',
      'app/values.schema.json': '{}',
      'app/templates/_helpers.tpl': '{{- define "x" -}}x{{- end -}}\n',
      'app/templates/cm.yaml': 'kind: ConfigMap\nname: {{ include "x" . }}\n',
      'app/templates/NOTES.txt': 'hi',
      'app/crds/w.yaml': cm('w'),
      'app/charts/sub-0.1.0.tgz': Buffer.from([0x1f, 0x8b, 0]),
    });
    expect(b).not.to.be.instanceOf(StallingError);
    expect((b as { files: { path: string }[] }).files.map((f) => f.path)).to.deep.equal([
      '.helmignore',
      'Chart.yaml',
      'charts/sub-0.1.0.tgz',
      'crds/w.yaml',
      'templates/NOTES.txt',
      'templates/_helpers.tpl',
      'templates/cm.yaml',
      'values.schema.json',
      'values.yaml',
    ]);
  });

  it('keeps a chart folder named by helm.chart and kustomization folders whole, and only manifests elsewhere', async () => {
    const b = await read({
      'app/fleet.yaml': 'targetCustomizations:\n- {clusterName: a, helm: {chart: chart}}\n- {clusterName: c, kustomize: {dir: k/prod}}\n',
      'app/README.md': 'ignored',
      'app/chart/Chart.yaml': 'apiVersion: v2\nname: x\nversion: 0.1.0\n',
      'app/chart/templates/a.yaml': '{{ . }}',
      'app/k/base/kustomization.yaml': 'resources: [a.yaml]\n',
      'app/k/base/a.yaml': cm('a'),
      'app/k/base/app.env': 'A=1\n',
      'app/k/prod/kustomization.yaml': 'resources: [../base]\n',
    });
    expect(b).not.to.be.instanceOf(StallingError);
    expect((b as { files: { path: string }[] }).files.map((f) => f.path)).to.deep.equal([
      'chart/Chart.yaml',
      'chart/templates/a.yaml',
      'k/base/a.yaml',
      'k/base/app.env',
      'k/base/kustomization.yaml',
      'k/prod/kustomization.yaml',
    ]);
  });

  it('applies .fleetignore files of the directories above the bundle', async () => {
    const bundle = await read({ '.fleetignore': '*.tmp.yaml\n', 'app/a.yaml': cm('a'), 'app/b.tmp.yaml': cm('b') });
    if (bundle instanceof Error) throw bundle;
    expect(bundle.files.map((f) => f.path)).to.deep.equal(['a.yaml']);
  });

  it('reads a file through a symbolic link that stays inside the bundle', async () => {
    const bundle = await read({ 'app/real/a.txt': cm('a'), 'app/link.yaml': { symlink: 'real/a.txt' }, 'app/dir': { symlink: 'real' } });
    if (bundle instanceof Error) throw bundle;
    expect(bundle.files.map((f) => [f.path, f.content.toString()])).to.deep.equal([['link.yaml', cm('a')]]);
  });

  const failures: [what: string, tree: Tree, reason: string, message: RegExp][] = [
    [
      'malformed YAML, naming the file and line',
      { 'app/ok.yaml': cm('ok'), 'app/bad.yaml': `${cm('x')}---\nkind: ConfigMap\nmetadata:\n  name: [oops\n` },
      'InvalidBundle',
      /^app\/bad\.yaml:8: invalid YAML: unexpected end of the stream within a flow collection/,
    ],
    [
      'a document without kind, naming the line it starts on',
      { 'app/two.yaml': `${cm('x')}---\n# second\napiVersion: v1\nmetadata: {name: y}\n` },
      'InvalidBundle',
      /^app\/two\.yaml:6: resource has no kind/,
    ],
    ['a document that is a list', { 'app/list.yaml': '- a\n- b\n' }, 'InvalidBundle', /^app\/list\.yaml:1: a resource must be a mapping/],
    [
      'malformed JSON, naming the line',
      { 'app/bad.json': '{\n  "apiVersion": "v1",\n  "kind": "ConfigMap",\n  "metadata": {"name": "x"]\n}\n' },
      'InvalidBundle',
      /^app\/bad\.json:4: invalid JSON: missed comma/,
    ],
    ['a manifest that is not UTF-8', { 'app/bin.yaml': Buffer.from([0xff, 0xfe, 0x00, 0x41]) }, 'InvalidBundle', /^app\/bin\.yaml: not valid UTF-8/],
    [
      'fleet.yaml with a field of the wrong type, naming the field',
      { 'app/fleet.yaml': 'defaultNamespace: 42\n', 'app/a.yaml': cm('a') },
      'InvalidBundle',
      /^app\/fleet\.yaml: defaultNamespace: /,
    ],
    [
      'fleet.yaml with a wrongly typed customization field',
      {
        'app/fleet.yaml': 'targetCustomizations:\n  - name: x\n    clusterSelector: {matchLabels: {env: 1}}\n',
        'app/a.yaml': cm('a'),
      },
      'InvalidBundle',
      /targetCustomizations\[0\]\.clusterSelector\.matchLabels\.env/,
    ],
    ['both fleet.yaml and fleet.yml', { 'app/fleet.yaml': '{}', 'app/fleet.yml': '{}' }, 'InvalidBundle', /both fleet\.yaml and fleet\.yml exist/],
    [
      'an overlay named in fleet.yaml that has no files',
      {
        'app/fleet.yaml': 'targetCustomizations:\n  - name: x\n    clusterName: c\n    yaml: {overlays: [prod]}\n',
        'app/a.yaml': cm('a'),
      },
      'InvalidBundle',
      /^app\/fleet\.yaml: targetCustomizations\[0\]\.yaml\.overlays\[0\]: overlay "prod" has no manifests under app\/overlays\/prod\//,
    ],
    [
      'a patch that breaks for a customization',
      {
        'app/fleet.yaml': 'targetCustomizations:\n  - name: x\n    clusterName: c\n    yaml: {overlays: [prod]}\n',
        'app/a.yaml': cm('a'),
        'app/overlays/prod/b_patch.yaml': 'data: {}\n',
      },
      'InvalidBundle',
      /^app\/overlays\/prod\/b_patch\.yaml: patches b\.yaml, which is not in the bundle/,
    ],
    [
      'a patch document that is a scalar',
      { 'app/a.yaml': cm('a'), 'app/overlays/p/a_patch.yaml': 'just text\n' },
      'InvalidBundle',
      /^app\/overlays\/p\/a_patch\.yaml:1: a patch must be a mapping/,
    ],
    [
      'helm options on a bundle without a chart, naming the field',
      { 'app/fleet.yaml': 'helm: {values: {a: 1}}\n', 'app/a.yaml': cm('a') },
      'InvalidBundle',
      /^app\/fleet\.yaml: helm: the bundle has no chart/,
    ],
    [
      'a customization whose kustomize.dir has no kustomization',
      { 'app/fleet.yaml': 'targetCustomizations:\n- {clusterName: c, kustomize: {dir: k}}\n', 'app/a.yaml': cm('a') },
      'InvalidBundle',
      /^app\/k: has no kustomization\.yaml/,
    ],
    [
      'helm.chart naming a folder without Chart.yaml',
      { 'app/fleet.yaml': 'helm: {chart: nochart}\n', 'app/nochart/a.yaml': cm('a') },
      'InvalidBundle',
      /^app\/fleet\.yaml: helm\.chart: app\/nochart\/Chart\.yaml is not in the bundle/,
    ],
    [
      'a missing values file',
      { 'app/fleet.yaml': 'helm: {valuesFiles: [v/prod.yaml]}\n', 'app/Chart.yaml': 'apiVersion: v2\nname: x\nversion: 0.1.0\n' },
      'InvalidBundle',
      /^app\/fleet\.yaml: helm\.valuesFiles\[0\]: values file app\/v\/prod\.yaml is not in the bundle/,
    ],
    [
      'a kustomization with a remote base',
      { 'app/kustomization.yaml': 'resources: [github.com/org/repo//base?ref=v1]\n' },
      'InvalidBundle',
      /^app\/kustomization\.yaml: resources: "github\.com\/org\/repo\/\/base\?ref=v1" is a remote base/,
    ],
    [
      'a kustomization with a path outside the bundle',
      { 'app/kustomization.yaml': 'resources: [../other]\n', 'other/a.yaml': cm('a') },
      'InvalidBundle',
      /^app\/kustomization\.yaml: resources: "\.\.\/other" is outside the bundle/,
    ],
    [
      'a chart in a bundle rendered as plain YAML',
      { 'app/a.yaml': cm('a'), 'app/sub/Chart.yaml': 'apiVersion: v2\nname: x\n' },
      'InvalidBundle',
      /^app\/sub\/Chart\.yaml: is a Helm chart or a kustomization inside a bundle rendered as plain YAML/,
    ],
    [
      'helm options on a kustomize bundle that names no chart',
      { 'app/fleet.yaml': 'helm: {values: {a: 1}}\n', 'app/kustomization.yaml': 'resources: [a.yaml]\n', 'app/a.yaml': cm('a') },
      'InvalidBundle',
      /^app\/fleet\.yaml: helm: the bundle is built by kustomize and names no chart.*name the chart folder in helm\.chart/,
    ],
    [
      'a kustomize.dir over a chart without a kustomization',
      {
        'app/fleet.yaml': 'helm: {chart: chart}\nkustomize: {dir: k}\n',
        'app/chart/Chart.yaml': 'apiVersion: v2\nname: x\nversion: 0.1.0\n',
        'app/k/a.yaml': cm('a'),
      },
      'InvalidBundle',
      /^app\/k: has no kustomization\.yaml.*to build over the chart's output/,
    ],
    [
      'a kustomization over a chart naming a file not in the bundle',
      {
        'app/fleet.yaml': 'helm: {chart: chart}\nkustomize: {dir: k}\n',
        'app/chart/Chart.yaml': 'apiVersion: v2\nname: x\nversion: 0.1.0\n',
        'app/k/kustomization.yaml': 'resources: [fleet-manifests.yaml, gone.yaml]\n',
      },
      'InvalidBundle',
      /^app\/k\/kustomization\.yaml: resources: "gone\.yaml" is not in the bundle/,
    ],
    [
      'a symbolic link to a file outside the bundle',
      { 'secret.yaml': cm('s'), 'app/a.yaml': { symlink: '../secret.yaml' } },
      'InvalidBundle',
      /^app\/a\.yaml: is a symbolic link to outside the bundle directory/,
    ],
    [
      'a symbolic link to a directory outside the bundle',
      { 'other/s.yaml': cm('s'), 'app/dir': { symlink: '../other' } },
      'InvalidBundle',
      /^app\/dir: is a symbolic link to outside the bundle directory/,
    ],
    ['an absolute symbolic link', { 'app/a.yaml': { symlink: '/etc/hostname' } }, 'InvalidBundle', /is a symbolic link to outside/],
    ['a dangling symbolic link', { 'app/a.yaml': { symlink: 'nope.yaml' } }, 'InvalidBundle', /^app\/a\.yaml: is a symbolic link to nothing/],
  ];
  for (const [what, tree, reason, message] of failures) {
    it(`refuses ${what}`, async () => {
      const err = await read(tree);
      expect(err).to.be.instanceOf(StallingError).with.property('reason', reason);
      expect((err as Error).message).to.match(message);
    });
  }

  const limits: [what: string, tree: Tree, limit: object, message: RegExp][] = [
    ['too many files', { 'app/a.yaml': cm('a'), 'app/b.yaml': cm('b'), 'app/c.yaml': cm('c') }, { maxFiles: 2 }, /has more than 2 files/],
    [
      'a file over the size limit',
      { 'app/a.yaml': cm('a'), 'app/big.yaml': cm('b') + '#'.repeat(200) },
      { maxFileBytes: 100 },
      /^app\/big\.yaml: \d+ bytes is more than the limit of 100 bytes per file/,
    ],
    [
      'a total over the limit',
      { 'app/a.yaml': cm('a'), 'app/b.yaml': cm('b'), 'app/c.yaml': cm('c') },
      { maxTotalBytes: 120 },
      /is larger than the limit of 120 bytes/,
    ],
    ['too many entries walked', { 'app/a.md': '', 'app/b.md': '', 'app/c.md': '' }, { maxEntries: 2 }, /more than 2 files and directories/],
  ];
  for (const [what, tree, limit, message] of limits) {
    it(`stops with BundleTooLarge on ${what}`, async () => {
      const err = await read(tree, 'app', limit);
      expect(err).to.be.instanceOf(StallingError).with.property('reason', 'BundleTooLarge');
      expect((err as Error).message).to.match(message);
    });
  }
});

describe('reading every bundle of a GitRepo checkout', () => {
  it('reads each discovered bundle', async () => {
    const root = await writeTree({ 'a/x.yaml': cm('x'), 'b/fleet.yaml': 'namespace: b\n', 'b/y.yaml': cm('y') });
    try {
      const bundles = await readGitRepoBundles(root, { repoName: 'repo', paths: ['a', 'b'] });
      expect(bundles.map((b) => [b.name, b.dir, b.files.map((f) => f.path), b.fleetYaml])).to.deep.equal([
        ['repo-a', 'a', ['x.yaml'], {}],
        ['repo-b', 'b', ['y.yaml'], { namespace: 'b' }],
      ]);
    } finally {
      await removeTree(root);
    }
  });

  it('treats a directory whose fleet.yaml is ignored as part of its parent bundle, in discovery and reading alike', async () => {
    const root = await writeTree({
      'app/a.yaml': cm('a'),
      'app/sub/fleet.yaml': '{}\n',
      'app/sub/x.yaml': cm('x'),
      'app/sub/.fleetignore': 'fleet.yaml\n',
    });
    try {
      const bundles = await readGitRepoBundles(root, { repoName: 'repo', paths: ['app'] });
      expect(bundles.map((b) => [b.dir, b.files.map((f) => f.path)])).to.deep.equal([['app', ['a.yaml', 'sub/x.yaml']]]);
    } finally {
      await removeTree(root);
    }
  });

  it('refuses the whole checkout when one bundle is invalid', async () => {
    const root = await writeTree({ 'a/x.yaml': cm('x'), 'b/y.yaml': 'kind: [\n' });
    try {
      const err = await readGitRepoBundles(root, { repoName: 'repo', paths: ['*'] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(StallingError);
      expect((err as Error).message).to.match(/^b\/y\.yaml:2: invalid YAML/);
    } finally {
      await removeTree(root);
    }
  });

  it('refuses two directories that give the same bundle name', async () => {
    const root = await writeTree({ 'a_b/x.yaml': cm('x'), 'a-b/y.yaml': cm('y') });
    try {
      const err = await readGitRepoBundles(root, { repoName: 'repo', paths: ['*'] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as Error).message).to.match(/directories a-b and a_b both give the bundle name repo-a-b/);
    } finally {
      await removeTree(root);
    }
  });
});
