import { expect } from 'chai';
import type { LabelSelector } from '../api/meta.js';
import type { BundleTarget } from '../api/options.js';
import {
  type ClusterInfo,
  type GroupInfo,
  type TargetMatch,
  customizationFor,
  groupsOf,
  matchTarget,
  matchesSelector,
  mergeOptions,
  selectClusters,
} from './target.js';

describe('label selectors', () => {
  const labels = { env: 'prod', region: 'eu', tier: '' };
  const cases: [what: string, selector: LabelSelector, matches: boolean][] = [
    ['an empty selector', {}, true],
    ['matchLabels that all hold', { matchLabels: { env: 'prod', region: 'eu' } }, true],
    ['matchLabels with one wrong value', { matchLabels: { env: 'prod', region: 'us' } }, false],
    ['matchLabels with an absent key', { matchLabels: { zone: 'a' } }, false],
    ['In with the value', { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev', 'prod'] }] }, true],
    ['In without the value', { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev'] }] }, false],
    ['In on an absent key', { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }, false],
    ['NotIn with the value', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, false],
    ['NotIn without the value', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] }, true],
    ['NotIn on an absent key', { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, true],
    ['Exists on a present key with an empty value', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, true],
    ['Exists on an absent key', { matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, false],
    ['DoesNotExist on an absent key', { matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, true],
    ['DoesNotExist on a present key', { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] }, false],
    [
      'matchLabels and expressions together (AND)',
      {
        matchLabels: { env: 'prod' },
        matchExpressions: [{ key: 'region', operator: 'In', values: ['us'] }],
      },
      false,
    ],
  ];
  for (const [what, selector, matches] of cases) {
    it(`${matches ? 'matches' : 'does not match'} with ${what}`, () => {
      expect(matchesSelector(labels, selector)).to.equal(matches);
    });
  }
});

describe('target matching', () => {
  const cluster: ClusterInfo = {
    name: 'edge-1',
    labels: { env: 'prod' },
    groups: [
      { name: 'default', labels: { region: 'eu' } },
      { name: 'edge', labels: { kind: 'edge' } },
    ],
  };
  const cases: [what: string, target: TargetMatch, matches: boolean][] = [
    ['no criteria at all', { name: 'empty' }, false],
    ['only empty strings and nulls', { clusterName: '', clusterGroup: '', clusterSelector: null }, false],
    ['the cluster name', { clusterName: 'edge-1' }, true],
    ['another cluster name', { clusterName: 'edge-2' }, false],
    ['a cluster selector {} (everything)', { clusterSelector: {} }, true],
    ['a matching cluster selector', { clusterSelector: { matchLabels: { env: 'prod' } } }, true],
    ['a non-matching cluster selector', { clusterSelector: { matchLabels: { env: 'dev' } } }, false],
    ['a group it belongs to', { clusterGroup: 'edge' }, true],
    ['a group it does not belong to', { clusterGroup: 'core' }, false],
    ['a group selector matching one of its groups', { clusterGroupSelector: { matchLabels: { region: 'eu' } } }, true],
    ['a group selector matching none of its groups', { clusterGroupSelector: { matchLabels: { region: 'us' } } }, false],
    [
      'group name and group selector met by the same group',
      {
        clusterGroup: 'default',
        clusterGroupSelector: { matchLabels: { region: 'eu' } },
      },
      true,
    ],
    [
      'group name and group selector met only by different groups',
      {
        clusterGroup: 'edge',
        clusterGroupSelector: { matchLabels: { region: 'eu' } },
      },
      false,
    ],
    ['matching selector but another name (AND)', { clusterName: 'x', clusterSelector: {} }, false],
    ['matching selector and group (AND)', { clusterSelector: { matchLabels: { env: 'prod' } }, clusterGroup: 'edge' }, true],
  ];
  for (const [what, target, matches] of cases) {
    it(`${matches ? 'matches' : 'does not match'} a target with ${what}`, () => {
      expect(matchTarget(target, cluster)).to.equal(matches);
    });
  }
});

describe('cluster groups', () => {
  it('puts a cluster in the groups whose selector matches, and in none without selector', () => {
    const groups: GroupInfo[] = [
      { name: 'all', labels: {}, selector: {} },
      { name: 'prod', labels: { a: 'b' }, selector: { matchLabels: { env: 'prod' } } },
      { name: 'dev', labels: {}, selector: { matchLabels: { env: 'dev' } } },
      { name: 'unset', labels: {} },
    ];
    expect(groupsOf({ env: 'prod' }, groups)).to.deep.equal([
      { name: 'all', labels: {} },
      { name: 'prod', labels: { a: 'b' } },
    ]);
  });
});

describe('target customizations', () => {
  const customizations: BundleTarget[] = [
    { name: 'skip-lab', clusterSelector: { matchLabels: { lab: 'true' } }, doNotDeploy: true },
    { name: 'prod', clusterSelector: { matchLabels: { env: 'prod' } }, namespace: 'prod', yaml: { overlays: ['prod'] } },
    { name: 'any-env', clusterSelector: { matchExpressions: [{ key: 'env', operator: 'Exists' }] }, yaml: { overlays: ['generic'] } },
  ];
  const at = (labels: Record<string, string>): ClusterInfo => ({ name: 'c', labels, groups: [] });

  it('uses the first matching customization, in order', () => {
    expect(customizationFor(customizations, at({ env: 'prod' }))?.name).to.equal('prod');
    expect(customizationFor(customizations, at({ env: 'dev' }))?.name).to.equal('any-env');
    expect(customizationFor(customizations, at({ env: 'prod', lab: 'true' }))?.name).to.equal('skip-lab');
    expect(customizationFor(customizations, at({}))).to.equal(undefined);
  });

  it('merges a customization over the base options: fields replaced, objects merged, lists replaced', () => {
    const merged = mergeOptions(
      { defaultNamespace: 'apps', namespace: 'base', yaml: { overlays: ['a', 'b'] }, namespaceLabels: { team: 'x', tier: '1' } },
      { name: 'prod', clusterName: 'c', namespace: 'prod', yaml: { overlays: ['c'] }, namespaceLabels: { tier: '2' } },
    );
    expect(merged).to.deep.equal({
      defaultNamespace: 'apps',
      namespace: 'prod',
      yaml: { overlays: ['c'] },
      namespaceLabels: { team: 'x', tier: '2' },
    });
  });
});

describe('selecting clusters for a bundle', () => {
  const clusters: { name: string; labels: Record<string, string> }[] = [
    { name: 'dev-1', labels: { env: 'dev' } },
    { name: 'prod-1', labels: { env: 'prod' } },
    { name: 'prod-lab', labels: { env: 'prod', lab: 'true' } },
    { name: 'stray', labels: {} },
  ];
  const groups: GroupInfo[] = [{ name: 'default', labels: {}, selector: { matchExpressions: [{ key: 'env', operator: 'Exists' }] } }];
  const customizations: BundleTarget[] = [
    { name: 'lab', clusterSelector: { matchLabels: { lab: 'true' } }, doNotDeploy: true },
    { name: 'prod', clusterSelector: { matchLabels: { env: 'prod' } }, yaml: { overlays: ['prod'] } },
  ];
  const cases: [what: string, gitRepoTargets: TargetMatch[] | undefined, groupList: GroupInfo[], expected: [string, string[] | undefined][]][] = [
    [
      'no GitRepo targets: the "default" cluster group',
      undefined,
      groups,
      [
        ['dev-1', undefined],
        ['prod-1', ['prod']],
      ],
    ],
    ['no GitRepo targets and no "default" group: nothing', [], [], []],
    ['a selector target', [{ clusterSelector: { matchLabels: { env: 'prod' } } }], groups, [['prod-1', ['prod']]]],
    [
      'every cluster',
      [{ clusterSelector: {} }],
      groups,
      [
        ['dev-1', undefined],
        ['prod-1', ['prod']],
        ['stray', undefined],
      ],
    ],
    ['a target by name', [{ clusterName: 'stray' }], groups, [['stray', undefined]]],
    [
      'several targets (any matches)',
      [{ clusterName: 'stray' }, { clusterGroup: 'default' }],
      groups,
      [
        ['dev-1', undefined],
        ['prod-1', ['prod']],
        ['stray', undefined],
      ],
    ],
  ];
  for (const [what, targets, groupList, expected] of cases) {
    it(`deploys to the right clusters with ${what}`, () => {
      const selected = selectClusters(targets, customizations, clusters, groupList, { defaultNamespace: 'apps' });
      expect(selected.map((s) => [s.cluster, s.options.yaml?.overlays])).to.deep.equal(expected);
      for (const s of selected) expect(s.options.defaultNamespace).to.equal('apps');
    });
  }

  it('excludes a cluster whose first matching GitRepo target says doNotDeploy', () => {
    const selected = selectClusters([{ clusterName: 'dev-1', doNotDeploy: true }, { clusterSelector: {} }], [], clusters, []);
    expect(selected.map((s) => s.cluster)).to.deep.equal(['prod-1', 'prod-lab', 'stray']);
  });

  it('never adds a cluster that only a customization matches', () => {
    const selected = selectClusters([{ clusterName: 'dev-1' }], customizations, clusters, groups);
    expect(selected.map((s) => s.cluster)).to.deep.equal(['dev-1']);
  });

  it('names the customization used', () => {
    const selected = selectClusters([{ clusterSelector: {} }], customizations, clusters, groups);
    expect(selected.map((s) => [s.cluster, s.customization])).to.deep.equal([
      ['dev-1', undefined],
      ['prod-1', 'prod'],
      ['stray', undefined],
    ]);
  });
});
