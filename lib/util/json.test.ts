import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { canonicalJSON, hashCanonicalJSON, isPlainObject, jsonEqual, mergePatchBetween, mergePatchForKeys, parseJSONObject, setOwn } from './json.js';

/** An object with an own `__proto__` key, as JSON.parse makes it. */
const withProtoKey = (value: unknown): Record<string, unknown> => JSON.parse(`{"__proto__": ${JSON.stringify(value)}}`) as Record<string, unknown>;

describe('isPlainObject', () => {
  const cases: { value: unknown; want: boolean }[] = [
    { value: {}, want: true },
    { value: { a: 1 }, want: true },
    { value: Object.create(null) as unknown, want: true },
    { value: [], want: false },
    { value: null, want: false },
    { value: undefined, want: false },
    { value: 'x', want: false },
    { value: 1, want: false },
  ];
  for (const c of cases) it(`${JSON.stringify(c.value) ?? String(c.value)} -> ${c.want}`, () => expect(isPlainObject(c.value)).to.equal(c.want));
});

describe('parseJSONObject', () => {
  it('returns the object of JSON bytes that hold one', () => {
    expect(parseJSONObject(Buffer.from('{"layers":[1],"a":{"b":null}}'))).to.deep.equal({ layers: [1], a: { b: null } });
  });
  for (const text of ['', 'not json', '{"unterminated": ', '[]', '[{"a":1}]', 'null', '42', '"text"', '\xff\xfe']) {
    it(`returns undefined for ${JSON.stringify(text)}`, () => {
      expect(parseJSONObject(Buffer.from(text, 'latin1'))).to.equal(undefined);
    });
  }
});

describe('setOwn', () => {
  it('keeps a __proto__ key as data without touching the prototype', () => {
    const obj: Record<string, unknown> = {};
    setOwn(obj, '__proto__', { polluted: true });
    expect(Object.getPrototypeOf(obj)).to.equal(Object.prototype);
    expect(Object.keys(obj)).to.deep.equal(['__proto__']);
    expect(JSON.stringify(obj)).to.equal('{"__proto__":{"polluted":true}}');
  });
});

describe('jsonEqual', () => {
  const cases: { name: string; a: unknown; b: unknown; want: boolean }[] = [
    { name: 'equal scalars', a: 'x', b: 'x', want: true },
    { name: 'different scalars', a: 1, b: '1', want: false },
    { name: 'key order does not matter', a: { a: 1, b: [1, { c: 2 }] }, b: { b: [1, { c: 2 }], a: 1 }, want: true },
    { name: 'array order matters', a: [1, 2], b: [2, 1], want: false },
    { name: 'an undefined key counts as absent', a: { a: 1, b: undefined }, b: { a: 1 }, want: true },
    { name: 'a missing key differs from null', a: { a: null }, b: {}, want: false },
    { name: 'an array is not an object', a: [], b: {}, want: false },
    { name: 'null is not an object', a: null, b: {}, want: false },
    { name: 'nested difference', a: { a: { b: [1] } }, b: { a: { b: [2] } }, want: false },
    { name: 'an own __proto__ key is compared as data', a: withProtoKey({}), b: { x: 1 }, want: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(jsonEqual(c.a, c.b)).to.equal(c.want);
      expect(jsonEqual(c.b, c.a)).to.equal(c.want);
    });
  }
});

describe('canonicalJSON', () => {
  const cases: { name: string; value: unknown; want: string }[] = [
    { name: 'sorts keys at every depth', value: { b: 1, a: { d: [{ z: 1, y: 2 }], c: null } }, want: '{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}' },
    { name: 'drops undefined object values', value: { a: undefined, b: 1 }, want: '{"b":1}' },
    { name: 'writes undefined in an array as null', value: [1, undefined, 2], want: '[1,null,2]' },
    { name: 'writes undefined at the top as null', value: undefined, want: 'null' },
    { name: 'keeps array order', value: [3, 1, 2], want: '[3,1,2]' },
    { name: 'escapes strings as JSON.stringify does', value: { 'k"ey': 'ä\n"' }, want: '{"k\\"ey":"ä\\n\\""}' },
    { name: 'sorts uppercase before lowercase (code units)', value: { b: 1, B: 2, a: 3 }, want: '{"B":2,"a":3,"b":1}' },
    { name: 'sorts by UTF-16 code units (a supplementary character before U+FF5E)', value: { '～': 1, '😀': 2 }, want: '{"😀":2,"～":1}' },
    { name: 'writes numbers and booleans as JSON does', value: { n: 1.5e21, t: true, f: false, z: 0 }, want: '{"f":false,"n":1.5e+21,"t":true,"z":0}' },
  ];
  for (const c of cases) it(c.name, () => expect(canonicalJSON(c.value)).to.equal(c.want));

  it('gives equal values equal bytes', () => {
    expect(canonicalJSON({ x: [1, { b: 2, a: 1 }], y: 'é' })).to.equal(canonicalJSON({ y: 'é', x: [1, { a: 1, b: 2 }] }));
  });
});

describe('hashCanonicalJSON', () => {
  /** What the sink was fed, piece by piece. */
  const fed = (value: unknown) => {
    const pieces: string[] = [];
    hashCanonicalJSON({ update: (d: string) => pieces.push(d) }, value);
    return pieces;
  };
  const big = 'x'.repeat(200_000);
  const values: [string, unknown][] = [
    ['a nested object', { b: 1, a: { d: [{ z: 1, y: 2 }], c: null, u: undefined }, s: 'ä\n"', '😀': [undefined, true] }],
    ['a scalar', 'just a string'],
    ['undefined', undefined],
    ['an empty object and array', { a: {}, b: [] }],
    ['a large ConfigMap', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big' }, data: { a: big, b: 'small', c: big } }],
    ['many small keys', Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`key-${i}`, i]))],
  ];
  for (const [name, value] of values) {
    it(`feeds the bytes of canonicalJSON: ${name}`, () => {
      expect(fed(value).join('')).to.equal(canonicalJSON(value));
      const h = createHash('sha256');
      hashCanonicalJSON(h, value);
      expect(h.digest('hex')).to.equal(createHash('sha256').update(canonicalJSON(value)).digest('hex'));
    });
  }

  it('feeds a small object in one piece and a large one in pieces of at most 64 KiB beside its large strings', () => {
    expect(fed({ b: 1, a: 2 })).to.have.length(1);
    const pieces = fed({ data: { a: big, b: 'small' }, many: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`key-${i}`, i])) });
    expect(pieces.length).to.be.greaterThan(3);
    expect(pieces.filter((p) => p.length > 65_536).map((p) => p.length)).to.deep.equal([200_002]);
  });
});

describe('mergePatchBetween', () => {
  const cases: { name: string; from: unknown; to: unknown; want: unknown }[] = [
    { name: 'equal values give no patch', from: { a: [1, { b: 2 }] }, to: { a: [1, { b: 2 }] }, want: undefined },
    { name: 'key order does not matter', from: { a: 1, b: 2 }, to: { b: 2, a: 1 }, want: undefined },
    { name: 'a new key is added', from: { a: 1 }, to: { a: 1, b: 2 }, want: { b: 2 } },
    { name: 'a removed key becomes null', from: { a: 1, b: 2 }, to: { a: 1 }, want: { b: null } },
    { name: 'a key set to undefined becomes null', from: { a: 1, b: 2 }, to: { a: 1, b: undefined }, want: { b: null } },
    { name: 'nested changes stay nested', from: { a: { b: 1, c: 1 } }, to: { a: { b: 2, c: 1 } }, want: { a: { b: 2 } } },
    { name: 'arrays are replaced whole', from: { a: [1, 2] }, to: { a: [1, 3] }, want: { a: [1, 3] } },
    { name: 'a scalar replacing an object is kept as is', from: { a: { b: 1 } }, to: { a: 'x' }, want: { a: 'x' } },
    { name: 'an object replacing a scalar is kept whole', from: { a: 1 }, to: { a: { b: 1 } }, want: { a: { b: 1 } } },
    { name: 'removing everything is null', from: { a: 1 }, to: undefined, want: null },
  ];
  for (const c of cases) it(c.name, () => expect(mergePatchBetween(c.from, c.to)).to.deep.equal(c.want));

  it('keeps a __proto__ key as a patch key', () => {
    const patch = mergePatchBetween({}, withProtoKey({ a: 1 })) as Record<string, unknown>;
    expect(Object.getPrototypeOf(patch)).to.equal(Object.prototype);
    expect(JSON.stringify(patch)).to.equal('{"__proto__":{"a":1}}');
  });
});

describe('mergePatchForKeys', () => {
  const cases: { name: string; current: Record<string, unknown> | undefined; desired: Record<string, unknown>; patch: Record<string, unknown> }[] = [
    { name: 'is empty when nothing changes', current: { a: 1, b: { c: [1] } }, desired: { a: 1, b: { c: [1] } }, patch: {} },
    { name: 'sets what is new', current: undefined, desired: { a: 1 }, patch: { a: 1 } },
    { name: 'removes nested keys the desired state lacks', current: { s: { n: 1, list: [1] } }, desired: { s: { n: 2 } }, patch: { s: { n: 2, list: null } } },
    { name: 'replaces arrays whole', current: { l: [1, 2] }, desired: { l: [2] }, patch: { l: [2] } },
    { name: 'leaves keys it does not own alone', current: { agent: { lastSeen: 'x' }, a: 1 }, desired: { a: 2 }, patch: { a: 2 } },
    { name: 'removes keys set to undefined', current: { a: 1 }, desired: { a: undefined }, patch: { a: null } },
    { name: 'ignores a key set to undefined that is already absent', current: { a: 1 }, desired: { a: 1, b: undefined }, patch: {} },
    { name: 'ignores nested undefined values that are already absent', current: { s: { n: 1 } }, desired: { s: { n: 1, m: undefined } }, patch: {} },
  ];
  for (const c of cases) it(c.name, () => expect(mergePatchForKeys(c.current, c.desired)).to.deep.equal(c.patch));
});
