import { expect } from 'chai';
import { Reason } from '../api/constants.js';
import { StallingError } from '../errors.js';
import { checkRendered } from '../isolate/bundle-tasks.js';
import { CONTENT_LIMIT_FLAGS, DEFAULT_CONTENT_LIMITS, contentLimits, type ContentLimits } from './limits.js';
import { refusal } from './growth-testing.js';
import { parseDocuments, type RenderedObject } from './manifest.js';

const nested = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}\n`;
const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n`;
/** A YAML file with `count` alias nodes. */
const aliases = (count: number) => `a: &x 1\nb: [${Array(count).fill('*x').join(', ')}]\n`;
/** A "billion laughs" file: `levels` levels of 10 aliases each of the level below. */
function laughs(levels: number): string {
  let text = 'l0: &l0 "lol"\n';
  for (let i = 1; i <= levels; i++)
    text += `l${i}: &l${i} [${Array(10)
      .fill(`*l${i - 1}`)
      .join(', ')}]\n`;
  return text;
}

interface Case {
  limit: keyof ContentLimits;
  value: number;
  /** The input at the limit (passes) and one step over it (refused). */
  at: string;
  over: string;
  file?: string;
}

// Each limit at its boundary: the input exactly at the limit passes, one step over is refused.
const cases: Case[] = [
  { limit: 'maxDocuments', value: 3, at: [cm('a'), cm('b'), cm('c')].join('---\n'), over: [cm('a'), cm('b'), cm('c'), cm('d')].join('---\n') },
  { limit: 'maxDocuments', value: 2, at: '---\n---\n', over: '---\n---\n---\n' }, // empty documents count: a flood of markers
  // A root list is level 1 and its scalar one level deeper: N brackets are N + 1 levels.
  { limit: 'maxDepth', value: 10, at: nested(9), over: nested(10) },
  { limit: 'maxDepth', value: 10, at: nested(9), over: nested(10), file: 'deep.json' },
  // Depth through aliases: the anchored list is 4 levels, used 6 lists deep (expanded: 11 levels).
  { limit: 'maxDepth', value: 10, at: `a: &x [[[1]]]\nb: [[[[[*x]]]]]\n`, over: `a: &x [[[1]]]\nb: [[[[[[*x]]]]]]\n` },
  { limit: 'maxAliases', value: 5, at: aliases(5), over: aliases(6) },
  { limit: 'maxAliases', value: 0, at: 'a: &x 1\nb: 2\n', over: 'a: &x 1\nb: *x\n' },
  { limit: 'maxLineLength', value: 100, at: `a: ${'x'.repeat(97)}\n`, over: `a: ${'x'.repeat(98)}\n` },
  { limit: 'maxKeyLength', value: 20, at: `${'k'.repeat(20)}: 1\n`, over: `${'k'.repeat(21)}: 1\n` },
  { limit: 'maxKeyLength', value: 20, at: `{"${'k'.repeat(20)}": 1}`, over: `{"${'k'.repeat(21)}": 1}`, file: 'keys.json' },
  { limit: 'maxStringLength', value: 100, at: `a: "${'s'.repeat(100)}"\n`, over: `a: "${'s'.repeat(101)}"\n` },
  // A list of N scalars is N + 1 nodes.
  { limit: 'maxNodes', value: 11, at: `[${Array(10).fill(1).join(',')}]\n`, over: `[${Array(11).fill(1).join(',')}]\n` },
  // Alias expansion: the root mapping, "lol", and lists of 10 aliases 3 levels deep (11 + 111 + 1111 nodes).
  { limit: 'maxNodes', value: 1235, at: laughs(3), over: `${laughs(3)}z: 1\n` },
  // A string of N characters is N + 2 bytes (its JSON quotes).
  { limit: 'maxExpandedBytes', value: 1024, at: `"${'b'.repeat(1022)}"\n`, over: `"${'b'.repeat(1023)}"\n` },
];

describe('content limits (parsing)', () => {
  for (const c of cases) {
    const file = c.file ?? 'bundle/file.yaml';
    const limits = contentLimits({ [c.limit]: c.value });
    it(`${c.limit}=${c.value}${c.file ? ` (${c.file})` : ''}: passes at the limit, refuses one over it naming the file, the limit and its flag`, () => {
      expect(
        refusal(() => parseDocuments(file, c.at, limits)),
        'at the limit',
      ).to.equal(undefined);
      const err = refusal(() => parseDocuments(file, c.over, limits));
      expect(err, 'one over the limit').to.be.instanceOf(StallingError);
      expect(err?.reason).to.equal(Reason.ContentLimitExceeded);
      expect(err?.message).to.include(file).and.include(`${c.limit}=${c.value}`).and.include(CONTENT_LIMIT_FLAGS[c.limit]);
    });
  }

  it('refuses a billion-laughs file under the default limits at once, without expanding it', () => {
    const err = refusal(() => parseDocuments('bomb.yaml', laughs(9)));
    expect(err?.reason).to.equal(Reason.ContentLimitExceeded);
    expect(err?.message).to.match(/^bomb\.yaml:1: more than 2000000 YAML nodes/);
  });

  it('refuses nesting far beyond the limit while parsing (no stack overflow)', () => {
    const err = refusal(() => parseDocuments('deep.yaml', `a: ${nested(200_000)}`));
    expect(err?.message).to.match(/^deep\.yaml:1: nested deeper than 200 levels/);
  });

  it('refuses aliases in a .json file: JSON has none', () => {
    const err = refusal(() => parseDocuments('x.json', '{"a": &x [1], "b": *x}'));
    expect(err?.reason).to.equal(Reason.InvalidBundle);
    expect(err?.message).to.match(/^x\.json:1: JSON has no aliases/);
  });

  it('does not count a long line of a .json file (minified JSON is one line)', () => {
    const limits = contentLimits({ maxLineLength: 100 });
    expect(refusal(() => parseDocuments('one-line.json', `{"a": "${'x'.repeat(200)}"}`, limits))).to.equal(undefined);
  });

  it('counts aliases across the documents of a file', () => {
    const limits = contentLimits({ maxAliases: 3 });
    const err = refusal(() => parseDocuments('f.yaml', `${aliases(2)}---\n${aliases(2)}`, limits));
    expect(err?.message).to.match(/^f\.yaml:\d+: more than 3 alias nodes/);
  });

  it('passes a CRD-like document 40 levels deep with a 1 MiB string under the defaults', () => {
    let schema = '{type: string}';
    for (let i = 0; i < 20; i++) schema = `{type: object, properties: {f${i}: ${schema}}}`;
    const text = `${cm('big')}data:\n  blob: "${'z'.repeat(1 << 20)}"\nschema: ${schema}\n`;
    expect(refusal(() => parseDocuments('crd.yaml', text))).to.equal(undefined);
  });

  it('validates limits: a value below a minimum is refused naming the field', () => {
    expect(() => contentLimits({ maxDepth: 1 })).to.throw(/maxDepth/);
    expect(contentLimits()).to.deep.equal(DEFAULT_CONTENT_LIMITS);
  });
});

describe('content limits (rendered bundle)', () => {
  const object = (name: string, data: Record<string, unknown> = {}): RenderedObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data });

  it('maxObjects: passes at the limit, refuses one over it', () => {
    const limits = contentLimits({ maxObjects: 3 });
    expect(refusal(() => checkRendered([object('a'), object('b'), object('c')], limits, 'bundle x'))).to.equal(undefined);
    const err = refusal(() => checkRendered([object('a'), object('b'), object('c'), object('d')], limits, 'bundle x'));
    expect(err?.reason).to.equal(Reason.ContentLimitExceeded);
    expect(err?.message).to.match(/^bundle x: 4 objects rendered, over the limit maxObjects=3/);
  });

  it('maxExpandedBytes and maxNodes add up over every object of the bundle', () => {
    const big = object('a', { v: 'x'.repeat(700) });
    const limits = contentLimits({ maxExpandedBytes: 1024 });
    expect(refusal(() => checkRendered([big], limits, 'bundle x'))).to.equal(undefined);
    expect(refusal(() => checkRendered([big, object('b', { v: 'x'.repeat(700) })], limits, 'bundle x'))?.message).to.include('maxExpandedBytes=1024');
    const shared = { list: Array(100).fill(1) };
    const nodes = contentLimits({ maxNodes: 150 });
    expect(refusal(() => checkRendered([object('a', shared)], nodes, 'bundle x'))).to.equal(undefined);
    expect(refusal(() => checkRendered([object('a', shared), object('b', shared)], nodes, 'bundle x'))?.message).to.include('maxNodes=150');
  });
});
