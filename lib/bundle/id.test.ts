import { expect } from 'chai';
import { gzipSync } from 'node:zlib';
import { StallingError } from '../errors.js';
import { contentsID, deploymentID, optionsHash } from './id.js';
import { filesToResources, resourcesToFiles } from './resources.js';

describe('bundle ids', () => {
  const a = { path: 'a.yaml', content: Buffer.from('kind: A\n') };
  const b = { path: 'sub/b.yaml', content: Buffer.from('kind: B\n') };

  it('gives the same contents id whatever the order of the files', () => {
    expect(contentsID([a, b])).to.equal(contentsID([b, a]));
    expect(contentsID([a, b])).to.match(/^[0-9a-f]{64}$/);
  });

  it('treats a string and a Buffer with the same bytes alike', () => {
    expect(contentsID([{ path: 'a.yaml', content: 'kind: A\n' }])).to.equal(contentsID([a]));
  });

  const different: [what: string, files: { path: string; content: Buffer | string }[]][] = [
    ['one byte of content changes', [{ ...a, content: 'kind: a\n' }, b]],
    ['a file is renamed', [{ ...a, path: 'a.yml' }, b]],
    ['a file is removed', [a]],
    ['content moves between path and content', [{ path: 'a.yamlk', content: 'ind: A\n' }, b]],
  ];
  for (const [what, files] of different) {
    it(`changes the contents id when ${what}`, () => {
      expect(contentsID(files)).to.not.equal(contentsID([a, b]));
    });
  }

  it('refuses duplicate paths', () => {
    expect(() => contentsID([a, a])).to.throw(/duplicate path a\.yaml/);
  });

  it('hashes options canonically: key order and undefined values do not matter', () => {
    expect(optionsHash({ namespace: 'x', yaml: { overlays: ['a'] } })).to.equal(
      optionsHash({ yaml: { overlays: ['a'] }, namespace: 'x', defaultNamespace: undefined }),
    );
    expect(optionsHash(undefined)).to.equal(optionsHash({}));
    expect(optionsHash({ yaml: { overlays: ['a', 'b'] } })).to.not.equal(optionsHash({ yaml: { overlays: ['b', 'a'] } }));
  });

  it('builds the deployment id from both', () => {
    const id = deploymentID(contentsID([a]), optionsHash({}));
    expect(id).to.match(/^s-[0-9a-f]{64}:[0-9a-f]{64}$/);
    expect(id).to.equal(deploymentID(contentsID([a]), optionsHash({})));
  });
});

describe('inline bundle resources', () => {
  const files = [
    { path: 'b.yaml', content: Buffer.from('kind: B\n') },
    { path: 'a.yaml', content: Buffer.from('kind: A\n') },
  ];

  for (const compress of [false, true]) {
    it(`round-trips files ${compress ? 'gzipped' : 'as plain text'}, in path order`, () => {
      const resources = filesToResources(files, { compress });
      expect(resources.map((r) => r.name)).to.deep.equal(['a.yaml', 'b.yaml']);
      expect(resources.every((r) => (r.encoding ?? '') === (compress ? 'base64+gz' : ''))).to.equal(true);
      expect(resourcesToFiles(resources).map((f) => [f.path, f.content.toString()])).to.deep.equal([
        ['a.yaml', 'kind: A\n'],
        ['b.yaml', 'kind: B\n'],
      ]);
    });
  }

  const failures: [what: string, resources: Parameters<typeof resourcesToFiles>[0], reason: string][] = [
    ['a path leaving the bundle', [{ name: '../x.yaml', content: '' }], 'InvalidBundle'],
    ['an absolute path', [{ name: '/etc/x.yaml', content: '' }], 'InvalidBundle'],
    [
      'a duplicate path',
      [
        { name: 'a.yaml', content: '' },
        { name: 'a.yaml', content: '' },
      ],
      'InvalidBundle',
    ],
    ['content that is not gzip', [{ name: 'a.yaml', content: 'aGVsbG8=', encoding: 'base64+gz' }], 'InvalidBundle'],
    [
      'a small gzip that expands beyond the limit',
      [{ name: 'a.yaml', content: gzipSync(Buffer.alloc(1 << 20)).toString('base64'), encoding: 'base64+gz' }],
      'BundleTooLarge',
    ],
  ];
  for (const [what, resources, reason] of failures) {
    it(`refuses ${what}`, () => {
      expect(() => resourcesToFiles(resources, 1000))
        .to.throw(StallingError)
        .with.property('reason', reason);
    });
  }
});
