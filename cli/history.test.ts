import { expect } from 'chai';
import { fileChanges } from './history.js';
import { lineDiff } from './diff.js';

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
    expect(lineDiff(['a', 'b', 'c'], ['a', 'x', 'c'])).to.deep.equal(['+ x', '- b']);
    expect(lineDiff(['a'], ['a'])).to.deep.equal([]);
  });
});
