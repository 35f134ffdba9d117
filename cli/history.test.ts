import { expect } from 'chai';
import { fileChanges } from './history.js';
import { lineDiff, objectDiff } from './diff.js';

describe('release diffs (cli/history.ts, cli/diff.ts)', () => {
  const files = (entries: [string, string][]) => new Map(entries.map(([p, d]) => [p, { digest: d, size: 1 }]));
  it('tells added, modified and removed files apart by layer digest', () => {
    const got = fileChanges(
      files([
        ['a.yaml', 'sha256:1'],
        ['b.yaml', 'sha256:2'],
      ]),
      files([
        ['a.yaml', 'sha256:1'],
        ['b.yaml', 'sha256:9'],
        ['c.yaml', 'sha256:3'],
      ]),
    );
    expect(got).to.deep.equal({ added: ['c.yaml'], modified: ['b.yaml'], removed: [] });
  });
  it('diffs lines: only what changed is printed', () => {
    expect(lineDiff(['a', 'b', 'c'], ['a', 'x', 'c'])).to.deep.equal(['- b', '+ x']);
    expect(lineDiff(['a'], ['a'])).to.deep.equal([]);
  });
  it('prints a changed object as its removed then added lines, and a new object whole', () => {
    const cm = (name: string, v: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns' }, data: { version: v } });
    expect(objectDiff([cm('app', '1')], [cm('app', '3'), cm('extra', 'x')]).slice(0, 4)).to.deep.equal([
      '~ v1/ConfigMap ns/app',
      "    -   version: '1'",
      "    +   version: '3'",
      '+ v1/ConfigMap ns/extra',
    ]);
  });
});
