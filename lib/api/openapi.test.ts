import { expect } from 'chai';
import { z } from 'zod';
import { atomic, freeForm, listMap, refineWithCel } from './crd-extensions.js';
import { buildCrd } from './crd.js';
import { kinds } from './index.js';
import { toOpenAPI, UnsupportedSchemaError, type OpenAPISchema } from './openapi.js';

const d = (text: string) => text;

describe('toOpenAPI', () => {
  it('turns a strict object into properties with required fields and descriptions', () => {
    const schema = z
      .strictObject({
        name: z
          .string()
          .min(1)
          .max(10)
          .regex(/^[a-z]+$/)
          .describe(d('the name')),
        count: z.int().min(0).max(5).optional().describe('how many'),
        mode: z.enum(['a', 'b']).describe('the mode'),
        labels: z.record(z.string(), z.string()).optional().describe('labels'),
        tags: z.array(z.string()).max(3).describe('tags'),
        when: z.iso.datetime({ offset: true }).describe('when'),
        on: z.boolean().describe('on'),
      })
      .describe('a thing');
    expect(toOpenAPI(schema)).to.deep.equal({
      type: 'object',
      description: 'a thing',
      required: ['name', 'mode', 'tags', 'when', 'on'],
      properties: {
        name: { type: 'string', description: 'the name', minLength: 1, maxLength: 10, pattern: '^[a-z]+$' },
        count: { type: 'integer', description: 'how many', minimum: 0, maximum: 5 },
        mode: { type: 'string', description: 'the mode', enum: ['a', 'b'] },
        labels: { type: 'object', description: 'labels', additionalProperties: { type: 'string' } },
        tags: { type: 'array', description: 'tags', maxItems: 3, items: { type: 'string' } },
        when: { type: 'string', description: 'when', format: 'date-time' },
        on: { type: 'boolean', description: 'on' },
      },
    });
  });

  it('emits a refinement as an x-kubernetes-validations rule', () => {
    const schema = refineWithCel(z.strictObject({ a: z.string().describe('a'), b: z.string().describe('b') }), {
      rule: 'self.a == self.b',
      message: 'a must equal b',
      check: (v) => v.a === v.b,
    }).describe('pair');
    expect(toOpenAPI(schema)['x-kubernetes-validations']).to.deep.equal([{ rule: 'self.a == self.b', message: 'a must equal b' }]);
    expect(schema.safeParse({ a: 'x', b: 'y' }).error?.issues[0]?.message).to.equal('a must equal b');
  });

  it('marks map lists and free-form values', () => {
    const list = listMap(z.array(z.strictObject({ type: z.string().describe('t') }).describe('item')).describe('list'), ['type']);
    expect(toOpenAPI(list)).to.include({ 'x-kubernetes-list-type': 'map' });
    expect(toOpenAPI(freeForm('anything'))).to.deep.equal({ description: 'anything', 'x-kubernetes-preserve-unknown-fields': true });
  });

  it('marks atomic objects and lists, wherever they are wrapped', () => {
    const object = atomic(z.strictObject({ a: z.string().describe('a') }).describe('o'));
    const list = atomic(z.array(z.string()).describe('l'));
    expect(toOpenAPI(object)).to.include({ 'x-kubernetes-map-type': 'atomic' });
    expect(toOpenAPI(list)).to.include({ 'x-kubernetes-list-type': 'atomic' });
    const parent = toOpenAPI(z.strictObject({ o: object.optional(), plain: z.strictObject({}).describe('p') }).describe('parent'));
    expect(parent.properties?.o).to.include({ 'x-kubernetes-map-type': 'atomic' });
    expect(parent.properties?.plain?.['x-kubernetes-map-type']).to.equal(undefined);
  });

  it('keeps the atomic spec and status of a BundleDeployment, whose managedFields stay small', () => {
    const bd = kinds.find((k) => k.kind === 'BundleDeployment');
    const schema = bd && buildCrd(bd).spec.versions[0]?.schema.openAPIV3Schema;
    expect(schema?.properties?.spec).to.include({ 'x-kubernetes-map-type': 'atomic' });
    expect(schema?.properties?.status).to.include({ 'x-kubernetes-map-type': 'atomic' });
  });

  it('keeps conditions a map list by type whose items are atomic, so each writer owns its own conditions whole', () => {
    const bundle = kinds.find((k) => k.kind === 'Bundle');
    const conditions = bundle && buildCrd(bundle).spec.versions[0]?.schema.openAPIV3Schema.properties?.status?.properties?.conditions;
    expect(conditions).to.include({ 'x-kubernetes-list-type': 'map' });
    expect(conditions?.items).to.include({ 'x-kubernetes-map-type': 'atomic' });
  });

  const unsupported: [string, z.ZodType, RegExp][] = [
    ['a field without description', z.strictObject({ a: z.string() }).describe('x'), /^a: has no description/],
    ['a loose object', z.looseObject({}).describe('x'), /must be strict/],
    ['a stripping object', z.object({}).describe('x'), /must be strict/],
    ['a union', z.union([z.string(), z.int()]).describe('x'), /"union" is not supported/],
    [
      'a refinement without CEL rule',
      z
        .strictObject({})
        .refine(() => true)
        .describe('x'),
      /no CEL rule/,
    ],
    ['an unknown without freeForm', z.unknown().describe('x'), /freeForm/],
    ['a string with two regexes', z.string().regex(/a/).regex(/b/).describe('x'), /one regex/],
    ['a case-insensitive regex', z.string().regex(/a/i).describe('x'), /flags/],
    ['an email format', z.email().describe('x'), /"email" is not supported/],
    [
      'a map list keyed by an optional field',
      listMap(z.array(z.strictObject({ k: z.string().optional().describe('k') })).describe('l'), ['k']),
      /must be required/,
    ],
    ['an atomic map list', atomic(listMap(z.array(z.strictObject({ k: z.string().describe('k') })).describe('l'), ['k'])), /can be atomic/],
    ['an atomic string', atomic(z.string().describe('s')), /can be atomic/],
  ];
  for (const [name, schema, message] of unsupported) {
    it(`refuses ${name}`, () => expect(() => toOpenAPI(schema)).to.throw(UnsupportedSchemaError, message));
  }
});

/** Calls `visit` on every node of a schema with its path. */
function walk(node: OpenAPISchema, path: string, visit: (node: OpenAPISchema, path: string) => void): void {
  visit(node, path);
  for (const [key, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${key}`, visit);
  if (node.items) walk(node.items, `${path}[]`, visit);
  if (node.additionalProperties) walk(node.additionalProperties, `${path}[*]`, visit);
}

describe('generated CRD schemas', () => {
  for (const def of kinds) {
    const crd = buildCrd(def);
    const version = crd.spec.versions[0];
    const root = version?.schema.openAPIV3Schema;

    it(`${def.kind}: is structural (a type on every node, no $ref/anyOf/oneOf/allOf/not)`, () => {
      expect(root).to.not.equal(undefined);
      walk(root ?? {}, '', (node, path) => {
        const raw = node as Record<string, unknown>;
        for (const forbidden of ['$ref', 'anyOf', 'oneOf', 'allOf', 'not', 'nullable', 'default']) {
          expect(raw, `${path} has ${forbidden}`).to.not.have.property(forbidden);
        }
        expect(node.type !== undefined || node['x-kubernetes-preserve-unknown-fields'] === true, `${path} has no type`).to.equal(true);
        expect(node.properties !== undefined && node.additionalProperties !== undefined, `${path} mixes properties and additionalProperties`).to.equal(false);
        if (node.type === 'array') expect(node.items, `${path} has no items`).to.not.equal(undefined);
        for (const key of node.required ?? []) expect(node.properties ?? {}, `${path} requires ${key}`).to.have.property(key);
      });
    });

    it(`${def.kind}: describes every property (for kubectl explain), except metadata which must stay bare`, () => {
      expect(root?.properties?.metadata).to.deep.equal({ type: 'object' });
      walk(root ?? {}, '', (node, path) => {
        for (const [key, child] of Object.entries(node.properties ?? {})) {
          if (path === '' && key === 'metadata') continue;
          expect(child.description, `${path}.${key} has no description`).to.be.a('string').and.not.equal('');
        }
      });
    });

    it(`${def.kind}: bounds every list in status`, () => {
      walk(root?.properties?.status ?? {}, 'status', (node, path) => {
        if (node.type === 'array') expect(node.maxItems, `${path} has no maxItems`).to.be.a('number');
      });
    });

    it(`${def.kind}: has the status subresource, the flotilla category and an Age column`, () => {
      expect(version?.subresources).to.deep.equal({ status: {} });
      expect(crd.spec.names.categories).to.deep.equal(['flotilla']);
      expect(version?.additionalPrinterColumns.at(-1)?.name).to.equal('Age');
      expect(crd.metadata.name).to.equal(`${def.plural}.flotilla.dev`);
    });
  }
});
