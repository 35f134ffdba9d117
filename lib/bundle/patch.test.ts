import { expect } from 'chai';
import { PatchError, jsonPatch, mergePatch } from './patch.js';

describe('merge patch (RFC 7386 with named lists)', () => {
  const cases: [what: string, target: unknown, patch: unknown, expected: unknown][] = [
    ['replaces a scalar', { a: 1, b: 2 }, { a: 3 }, { a: 3, b: 2 }],
    ['adds a key', { a: 1 }, { b: { c: 1 } }, { a: 1, b: { c: 1 } }],
    ['merges nested mappings', { a: { b: 1, c: 2 } }, { a: { c: 3 } }, { a: { b: 1, c: 3 } }],
    ['deletes a key with null', { a: 1, b: 2 }, { b: null }, { a: 1 }],
    ['replaces a list of scalars', { a: [1, 2] }, { a: [3] }, { a: [3] }],
    ['replaces a list with an empty list', { a: [{ name: 'x' }] }, { a: [] }, { a: [] }],
    ['replaces a list of unnamed mappings', { a: [{ x: 1 }] }, { a: [{ y: 2 }] }, { a: [{ y: 2 }] }],
    [
      'merges named lists by name',
      {
        c: [
          { name: 'web', image: 'web:1', ports: [80] },
          { name: 'side', image: 'side:1' },
        ],
      },
      {
        c: [
          { name: 'web', image: 'web:2' },
          { name: 'new', image: 'new:1' },
        ],
      },
      {
        c: [
          { name: 'web', image: 'web:2', ports: [80] },
          { name: 'side', image: 'side:1' },
          { name: 'new', image: 'new:1' },
        ],
      },
    ],
    ['removes a named element with $patch: delete', { c: [{ name: 'a' }, { name: 'b' }] }, { c: [{ name: 'a', $patch: 'delete' }] }, { c: [{ name: 'b' }] }],
    ['replaces the whole target when the patch is not a mapping', { a: 1 }, [1, 2], [1, 2]],
    ['replaces a scalar target by a mapping', { a: 'x' }, { a: { b: 1 } }, { a: { b: 1 } }],
  ];
  for (const [what, target, patch, expected] of cases) {
    it(what, () => {
      const before = structuredClone(target);
      expect(mergePatch(target, patch)).to.deep.equal(expected);
      expect(target).to.deep.equal(before);
    });
  }

  it('keeps a "__proto__" key as data, never as a prototype', () => {
    const patched = mergePatch({}, JSON.parse('{"__proto__": {"polluted": true}}')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(patched)).to.equal(Object.prototype);
    expect(Object.keys(patched)).to.deep.equal(['__proto__']);
  });
});

describe('JSON patch (RFC 6902)', () => {
  const doc = { spec: { replicas: 1, list: ['a', 'b'], 'x/y': 1, 't~': 2 } };
  const cases: [what: string, ops: unknown[], expected: unknown][] = [
    ['replaces a value', [{ op: 'replace', path: '/spec/replicas', value: 3 }], { spec: { ...doc.spec, replicas: 3 } }],
    ['adds to the end of a list with -', [{ op: 'add', path: '/spec/list/-', value: 'c' }], { spec: { ...doc.spec, list: ['a', 'b', 'c'] } }],
    ['inserts into a list', [{ op: 'add', path: '/spec/list/0', value: 'z' }], { spec: { ...doc.spec, list: ['z', 'a', 'b'] } }],
    ['removes a list element', [{ op: 'remove', path: '/spec/list/0' }], { spec: { ...doc.spec, list: ['b'] } }],
    [
      'unescapes ~1 and ~0',
      [
        { op: 'remove', path: '/spec/x~1y' },
        { op: 'remove', path: '/spec/t~0' },
      ],
      { spec: { replicas: 1, list: ['a', 'b'] } },
    ],
    ['moves a value', [{ op: 'move', from: '/spec/replicas', path: '/replicas' }], { spec: { list: ['a', 'b'], 'x/y': 1, 't~': 2 }, replicas: 1 }],
    ['copies a value', [{ op: 'copy', from: '/spec/list', path: '/copy' }], { ...doc, copy: ['a', 'b'] }],
    ['passes a true test', [{ op: 'test', path: '/spec/replicas', value: 1 }], doc],
  ];
  for (const [what, ops, expected] of cases) {
    it(what, () => {
      expect(jsonPatch(doc, ops)).to.deep.equal(expected);
    });
  }

  const failures: [what: string, ops: unknown[], message: RegExp][] = [
    ['a failed test', [{ op: 'test', path: '/spec/replicas', value: 2 }], /test failed at "\/spec\/replicas"/],
    ['replacing a missing key', [{ op: 'replace', path: '/spec/missing', value: 1 }], /does not exist/],
    ['a path through a missing key', [{ op: 'add', path: '/nope/x', value: 1 }], /does not exist/],
    ['an index out of range', [{ op: 'remove', path: '/spec/list/5' }], /out of range/],
    ['an unknown op', [{ op: 'frobnicate', path: '/spec' }], /unknown op/],
    ['an operation without path', [{ op: 'add', value: 1 }], /needs "op" and "path"/],
  ];
  for (const [what, ops, message] of failures) {
    it(`refuses ${what}`, () => {
      expect(() => jsonPatch(doc, ops)).to.throw(PatchError, message);
    });
  }
});

describe('JSON patch: copies and the growth hook', () => {
  it('copies a subtree as an independent tree: a later change to the copy leaves the source, __proto__ stays a key', () => {
    const source = JSON.parse('{"a": {"list": [1], "__proto__": {"x": 1}}}') as Record<string, unknown>;
    const out = jsonPatch(source, [
      { op: 'copy', from: '/a', path: '/b' },
      { op: 'add', path: '/b/list/-', value: 2 },
    ]) as { a: { list: number[] }; b: Record<string, unknown> };
    expect(out.a.list).to.deep.equal([1]);
    expect(out.b.list).to.deep.equal([1, 2]);
    expect(Object.getPrototypeOf(out.b)).to.equal(Object.prototype);
    expect(Object.hasOwn(out.b, '__proto__')).to.equal(true);
  });

  it('never changes its target, and a later change to a copy leaves the source and the target alone', () => {
    const target = { a: { list: [1] }, b: { k: 1 } };
    const before = structuredClone(target);
    const out = jsonPatch(target, [
      { op: 'copy', from: '/a', path: '/c' },
      { op: 'add', path: '/c/list/-', value: 2 },
      { op: 'add', path: '/a/x', value: 3 },
      { op: 'move', from: '/b/k', path: '/a/k' },
      { op: 'copy', from: '/a', path: '/a/self' },
      { op: 'add', path: '/a/self/y', value: 4 },
    ]) as Record<string, Record<string, unknown>>;
    expect(target).to.deep.equal(before);
    expect(out).to.deep.equal({
      a: { list: [1], x: 3, k: 1, self: { list: [1], x: 3, k: 1, y: 4 } },
      b: {},
      c: { list: [1, 2] },
    });
  });

  it('shows the meter each change before it is made: what is inserted, removed or replaced, the entry bytes and the depth', () => {
    const seen: unknown[] = [];
    const meter = {
      grow: (value: unknown, entryBytes: number, depth: number) => seen.push(['grow', value, entryBytes, depth]),
      shrink: (value: unknown, entryBytes: number) => seen.push(['shrink', value, entryBytes]),
    };
    jsonPatch(
      { a: { k: 1 }, l: [0] },
      [
        { op: 'add', path: '/bb', value: 2 },
        { op: 'replace', path: '/bb', value: 3 },
        { op: 'copy', from: '/a', path: '/c' },
        { op: 'add', path: '/l/0', value: 'x' },
        { op: 'move', from: '/bb', path: '/dd' },
        { op: 'remove', path: '/dd' },
      ],
      meter,
    );
    expect(seen).to.deep.equal([
      ['grow', 2, 6, 1],
      ['shrink', 2, 0],
      ['grow', 3, 0, 1],
      ['grow', { k: 1 }, 5, 1],
      ['grow', 'x', 1, 2],
      ['shrink', undefined, 6],
      ['grow', undefined, 6, 1],
      ['shrink', 3, 6],
    ]);
    const stop = {
      grow: () => {
        throw new Error('over budget');
      },
      shrink: () => undefined,
    };
    expect(() => jsonPatch({ a: 1 }, [{ op: 'copy', from: '/a', path: '/b' }], stop)).to.throw('over budget');
  });
});
