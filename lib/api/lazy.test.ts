import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { z } from 'zod';
import { crdExtensionsOf, listMap, refineWithCel } from './crd-extensions.js';
import { lazySchema, lazyState, resolveLazy } from './lazy.js';
import { toOpenAPI } from './openapi.js';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A schema with a nested object, a list map, a CEL rule, descriptions and optional fields. */
function sample() {
  const item = z.strictObject({ name: z.string().min(1).describe('Name.'), size: z.int().min(0).optional().describe('Size.') });
  return refineWithCel(
    z.strictObject({
      items: listMap(z.array(item).max(3).describe('Items.'), ['name']),
      mode: z.enum(['a', 'b']).optional().describe('Mode.'),
    }),
    { rule: 'size(self.items) > 0', message: 'items must not be empty', check: (v) => v.items.length > 0 },
  ).describe('A sample.');
}

const inputs: unknown[] = [
  { items: [{ name: 'x', size: 1 }], mode: 'a' },
  { items: [] },
  { items: [{ name: '' }] },
  { items: [{ name: 'x' }], extra: true },
  { items: [{ name: 'x', size: -1 }], mode: 'c' },
  'not an object',
];

describe('lazySchema', () => {
  it('builds on first use only, once', () => {
    let builds = 0;
    const schema = lazySchema(() => {
      builds++;
      return sample();
    });
    expect(builds).to.equal(0);
    expect(lazyState(schema)).to.equal('pending');
    expect(schema.safeParse(inputs[0]).success).to.equal(true);
    expect(schema.safeParse(inputs[1]).success).to.equal(false);
    expect(schema.description).to.equal('A sample.');
    expect(builds).to.equal(1);
    expect(lazyState(schema)).to.equal('built');
    expect(lazyState(sample())).to.equal(undefined);
  });

  it('validates, describes and converts to OpenAPI exactly as the schema built eagerly', () => {
    const eager = sample();
    const lazy = lazySchema(sample);
    for (const input of inputs) {
      const a = eager.safeParse(input);
      const b = lazy.safeParse(input);
      expect(b.success, JSON.stringify(input)).to.equal(a.success);
      expect(b.error?.issues, JSON.stringify(input)).to.deep.equal(a.error?.issues);
      expect(b.data).to.deep.equal(a.data);
    }
    expect(toOpenAPI(lazy, 'sample')).to.deep.equal(toOpenAPI(eager, 'sample'));
    expect(toOpenAPI(lazy, 'sample')['x-kubernetes-validations']).to.deep.equal([{ rule: 'size(self.items) > 0', message: 'items must not be empty' }]);
  });

  it('stands for the built schema as a field, a wrapper and a class instance', () => {
    const inner = lazySchema(() => listMap(z.array(z.strictObject({ k: z.string().describe('Key.') })).describe('List.'), ['k']));
    const outer = lazySchema(() => z.strictObject({ list: inner, maybe: inner.optional() }).describe('Outer.'));
    expect(outer).to.be.instanceOf(z.ZodObject);
    expect(inner).to.be.instanceOf(z.ZodArray);
    expect(Object.keys(outer.shape)).to.deep.equal(['list', 'maybe']);
    expect(outer.safeParse({ list: [{ k: 'a' }] }).success).to.equal(true);
    expect(outer.safeParse({ list: [{ k: 1 }] }).success).to.equal(false);
    expect(crdExtensionsOf(inner)?.listMapKeys).to.deep.equal(['k']);
    expect(toOpenAPI(outer, 'outer').properties?.list?.['x-kubernetes-list-map-keys']).to.deep.equal(['k']);
    expect(resolveLazy(inner)).to.not.equal(inner);
    expect(resolveLazy(resolveLazy(inner))).to.equal(resolveLazy(inner));
  });

  it('spreads a lazy shape like the object it stands for', () => {
    const shape = lazySchema(() => ({ a: z.string().describe('A.'), b: z.int().optional().describe('B.') }));
    const schema = z.strictObject({ ...shape, c: z.boolean().describe('C.') });
    expect(Object.keys(schema.shape)).to.deep.equal(['a', 'b', 'c']);
    expect(schema.safeParse({ a: 'x', c: true }).success).to.equal(true);
    expect(schema.safeParse({ a: 1, c: true }).success).to.equal(false);
  });

  it('builds again after a failed build instead of keeping a broken schema', () => {
    let calls = 0;
    const schema = lazySchema(() => {
      calls++;
      if (calls === 1) throw new Error('first build fails');
      return z.string();
    });
    expect(() => schema.parse('x')).to.throw('first build fails');
    expect(schema.parse('x')).to.equal('x');
    expect(calls).to.equal(2);
  });

  it('leaves every schema of lib/api unbuilt when the module is imported', async () => {
    const probe = [
      "import { lazyState } from './lib/api/lazy.ts';",
      "const api = await import('./lib/api/index.ts');",
      'const states = Object.entries(api).map(([name, value]) => [name, lazyState(value)]);',
      'console.log(JSON.stringify(states.filter(([, state]) => state !== undefined)));',
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { cwd: ROOT });
    const states = JSON.parse(stdout) as [string, string][];
    expect(states.length).to.be.greaterThan(50);
    expect(states.filter(([, s]) => s !== 'pending')).to.deep.equal([]);
  });
});
