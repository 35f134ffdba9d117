import { expect } from 'chai';
import { objectCases } from './examples.js';
import { formatIssues, kindByName, kinds, validateOrThrow, type KindDefinition } from './index.js';
import { StallingError } from '../errors.js';

function kindOf(name: string): KindDefinition {
  const def = kindByName(name);
  if (!def) throw new Error(`no kind ${name}`);
  return def;
}

describe('kind schemas', () => {
  for (const c of objectCases) {
    if (c.invalidField === undefined) {
      it(`accepts ${c.name}`, () => {
        const result = kindOf(c.object.kind).schema.safeParse(c.object);
        expect(result.success, result.error ? formatIssues(result.error).join('; ') : '').to.equal(true);
      });
    } else {
      const field = c.invalidField;
      it(`rejects ${c.name}, naming ${field}`, () => {
        const result = kindOf(c.object.kind).schema.safeParse(c.object);
        expect(result.success).to.equal(false);
        const lines = result.error ? formatIssues(result.error) : [];
        expect(
          lines.some((line) => line.startsWith(field)),
          lines.join('\n'),
        ).to.equal(true);
      });
    }
  }

  it('registers every kind once, with unique plural and short names', () => {
    const names = kinds.flatMap((k) => [k.plural, k.singular, ...k.shortNames]);
    expect(new Set(names).size).to.equal(names.length);
    expect(kinds.map((k) => k.kind)).to.have.members([
      'GitRepo',
      'Bundle',
      'BundleDeployment',
      'Cluster',
      'ClusterGroup',
      'ClusterRegistrationToken',
      'ClusterRegistration',
    ]);
  });

  it('rejects an object of another apiVersion (a Fleet object not converted yet)', () => {
    const fleet = { apiVersion: 'fleet.cattle.io/v1alpha1', kind: 'GitRepo', metadata: { name: 'x' }, spec: { repo: 'https://x' } };
    expect(kindOf('GitRepo').schema.safeParse(fleet).success).to.equal(false);
  });

  it('throws a StallingError naming the object and the field from validateOrThrow', () => {
    const bad = { apiVersion: 'flotilla.dev/v1alpha1', kind: 'GitRepo', metadata: { name: 'x' }, spec: { paths: [] } };
    expect(() => validateOrThrow(kindOf('GitRepo').schema, bad, 'GitRepo default/x', 'InvalidSpec')).to.throw(
      StallingError,
      /^GitRepo default\/x: spec\.repo: /,
    );
  });
});
