import { expect } from 'chai';
import { StallingError } from '../errors.js';
import { bundleName, discoverBundles } from './discover.js';
import { type Tree, removeTree, writeTree } from './testing.js';

const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\n`;

describe('bundle names', () => {
  const cases: [repo: string, path: string, expected: string][] = [
    ['repo', '.', 'repo'],
    ['repo', '', 'repo'],
    ['repo', './apps/web/', 'repo-apps-web'],
    ['Repo', 'Apps/My_App.v2', 'repo-apps-my-app-v2'],
    ['repo', 'a//b', 'repo-a-b'],
  ];
  for (const [repo, path, expected] of cases) {
    it(`names ${repo} + "${path}" as ${expected}`, () => {
      expect(bundleName(repo, path)).to.equal(expected);
    });
  }

  it('cuts long names to 53 characters with a stable hash suffix that keeps them distinct', () => {
    const one = bundleName('a-rather-long-gitrepo-name', 'clusters/production/eu-west-1/monitoring');
    const two = bundleName('a-rather-long-gitrepo-name', 'clusters/production/eu-west-2/monitoring');
    expect(one).to.have.length.at.most(53);
    expect(one).to.match(/^a-rather-long-gitrepo-name-clusters-production-[0-9a-f]{5}$/);
    expect(one).to.not.equal(two);
    expect(bundleName('a-rather-long-gitrepo-name', 'clusters/production/eu-west-1/monitoring')).to.equal(one);
    expect(one).to.match(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });
});

describe('bundle discovery', () => {
  const tree: Tree = {
    'README.md': '# repo',
    '.git/config': '[core]',
    '.git/objects/x.yaml': cm('git-internal'),
    'simple/deploy.yaml': cm('simple'),
    'simple/nested/more.yaml': cm('more'),
    'simple/overlays/prod/deploy_patch.yaml': 'data: {}\n',
    'simple/overlays/prod/fleet.yaml': '{}\n',
    'apps/web/fleet.yaml': 'defaultNamespace: web\n',
    'apps/web/deploy.yaml': cm('web'),
    'apps/web/sub/fleet.yaml': '{}\n',
    'apps/web/sub/x.yaml': cm('sub'),
    'apps/api/deploy.json': '{}',
    'apps/docs/README.md': '# nothing to deploy',
    'apps/empty-fleet/fleet.yaml': '{}\n',
    'ignored/.keep': '',
    'ignored/x.yaml': cm('ignored'),
    '.fleetignore': 'ignored/*\n',
    link: { symlink: 'apps' },
  };
  let root = '';
  before(async () => {
    root = await writeTree(tree);
  });
  after(async () => {
    await removeTree(root);
  });

  const cases: [what: string, paths: string[] | undefined, expected: string[]][] = [
    [
      'the root by default (owning apps/api, which has no fleet.yaml), nested fleet.yaml bundles, nothing in overlays',
      undefined,
      ['.', 'apps/empty-fleet', 'apps/web', 'apps/web/sub'],
    ],
    ['a literal path', ['simple'], ['simple']],
    ['a glob over directories', ['apps/*'], ['apps/api', 'apps/empty-fleet', 'apps/web', 'apps/web/sub']],
    ['a path with a nested fleet.yaml bundle', ['apps/web'], ['apps/web', 'apps/web/sub']],
    ['several paths, each directory once', ['apps/web', 'apps/web/', './apps/web'], ['apps/web', 'apps/web/sub']],
    ['a recursive glob, never inside overlays', ['simple/**'], ['simple', 'simple/nested']],
  ];
  for (const [what, paths, expected] of cases) {
    it(`finds ${what}`, async () => {
      const bundles = await discoverBundles(root, { repoName: 'repo', paths });
      expect(bundles.map((b) => b.dir)).to.deep.equal(expected);
      expect(bundles.map((b) => b.name)).to.deep.equal(expected.map((d) => bundleName('repo', d)));
    });
  }

  it('skips a matched directory with neither fleet.yaml nor manifests', async () => {
    const bundles = await discoverBundles(root, { repoName: 'repo', paths: ['apps/docs', 'simple'] });
    expect(bundles.map((b) => b.dir)).to.deep.equal(['simple']);
  });

  const failures: [what: string, paths: string[], message: RegExp][] = [
    ['a path that matches nothing', ['nope'], /paths entry "nope" matches no directory/],
    ['a glob that matches nothing', ['apps/*/deep'], /paths entry "apps\/\*\/deep" matches no directory/],
    ['a path leaving the repository', ['../etc'], /leaves the repository/],
    ['an invalid glob', ['apps/[x'], /unterminated/],
    ['an ignored directory', ['ignored'], /matches no directory/],
    ['a symbolic link (never followed)', ['link'], /matches no directory/],
  ];
  for (const [what, paths, message] of failures) {
    it(`refuses ${what}`, async () => {
      const err = await discoverBundles(root, { repoName: 'repo', paths }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(StallingError).with.property('reason', 'InvalidBundle');
      expect((err as Error).message).to.match(message);
    });
  }

  it('stops with BundleTooLarge on a checkout with too many entries', async () => {
    const err = await discoverBundles(root, { repoName: 'repo', maxEntries: 5 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(StallingError).with.property('reason', 'BundleTooLarge');
  });
});
