import { expect } from 'chai';
import { API_VERSION, Annotation, Finalizer, Label, type Bundle } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { WrittenBundles, sameBundle } from './bundle-writes.js';

type BundleObject = Bundle & KubeObject;
const M = 'flotilla-controller';

/** The Bundle the GitRepo reconciler would apply at `commit`. */
function desired(commit: string, spec: Partial<Bundle['spec']> = {}, labels: Record<string, string> = {}): BundleObject {
  return {
    apiVersion: API_VERSION,
    kind: 'Bundle',
    metadata: {
      name: 'apps-web',
      namespace: 'ws',
      labels: { [Label.RepoName]: 'apps', ...labels },
      annotations: { [Annotation.Commit]: commit, [Annotation.SourceDir]: 'web' },
      finalizers: [Finalizer.Bundle],
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'GitRepo', name: 'apps', uid: 'u1', controller: true, blockOwnerDeletion: true }],
    },
    spec: { contentsID: 'c1', oci: { reference: 'r/ws-apps-web@sha256:1', digest: 'sha256:1' }, ...spec },
  } as BundleObject;
}

/** `d` as the API server keeps it after `manager` applied it: its fields in managedFields, and what others added. */
function live(d: BundleObject, manager = M, extra: Partial<BundleObject['metadata']> = {}): BundleObject {
  const keys = (o: object | undefined) => Object.fromEntries(Object.keys(o ?? {}).map((k) => [`f:${k}`, {}]));
  return {
    ...structuredClone(d),
    metadata: {
      ...structuredClone(d.metadata),
      resourceVersion: '10',
      generation: 1,
      managedFields: [
        {
          manager,
          operation: 'Apply',
          fieldsV1: { 'f:metadata': { 'f:labels': keys(d.metadata.labels), 'f:annotations': keys(d.metadata.annotations) }, 'f:spec': keys(d.spec) },
        },
        { manager: 'flotilla-bundle-status', operation: 'Apply', subresource: 'status', fieldsV1: { 'f:status': {} } },
      ],
      ...extra,
    },
    status: { observedGeneration: 1 },
  } as BundleObject;
}

describe('sameBundle: which Bundles a commit changed', () => {
  it('is true when only the commit annotation differs', () => {
    expect(sameBundle(live(desired('a')), desired('b'), M)).to.equal(true);
  });
  it('is false when a spec field changes (new contents)', () => {
    expect(sameBundle(live(desired('a')), desired('b', { contentsID: 'c2' }), M)).to.equal(false);
  });
  it('is false when a field the manager set is no longer set (a fleet.yaml option removed)', () => {
    expect(sameBundle(live(desired('a', { paused: true })), desired('b'), M)).to.equal(false);
  });
  it('is true although another writer set a spec field the manager never set (a rollback pin)', () => {
    const l = live(desired('a'));
    l.spec.rollback = { version: 2 } as never;
    expect(sameBundle(l, desired('b'), M)).to.equal(true);
  });
  it('is false when a label changes or its finalizer is gone', () => {
    expect(sameBundle(live(desired('a')), desired('b', {}, { team: 'x' }), M)).to.equal(false);
    expect(sameBundle(live(desired('a'), M, { finalizers: [] }), desired('b'), M)).to.equal(false);
  });
  it('is false when in doubt: another manager applied it, no live object, or the Bundle is being deleted', () => {
    expect(sameBundle(live(desired('a'), 'someone-else'), desired('b'), M)).to.equal(false);
    expect(sameBundle(undefined, desired('b'), M)).to.equal(false);
    expect(sameBundle(live(desired('a'), M, { deletionTimestamp: '2026-01-01T00:00:00Z' }), desired('b'), M)).to.equal(false);
  });
});

describe('WrittenBundles: the roll-up never sees a Bundle older than its own write', () => {
  const at = (rv: string, contentsID: string, name = 'apps-web') =>
    ({ ...live(desired('a', { contentsID })), metadata: { ...live(desired('a')).metadata, name, resourceVersion: rv } }) as BundleObject;

  it('reads the write while the cache holds the version it replaced, and the cache once it caught up', () => {
    const cache = new Map<string, BundleObject>([['ws/apps-web', at('10', 'c1')]]);
    const w = new WrittenBundles({ get: (k) => cache.get(k) });
    w.record('ws/apps', at('10', 'c1'), at('11', 'c2'));
    expect(w.of('ws/apps', [...cache.values()]).map((b) => b.spec.contentsID)).to.deep.equal(['c2']);
    cache.set('ws/apps-web', at('11', 'c2'));
    expect(w.of('ws/apps', [...cache.values()]).map((b) => b.metadata.resourceVersion)).to.deep.equal(['11']);
  });

  it('adds a Bundle it created that the cache does not hold yet, for that GitRepo only', () => {
    const cache = new Map<string, BundleObject>([['ws/apps-web', at('10', 'c1')]]);
    const w = new WrittenBundles({ get: (k) => cache.get(k) });
    w.record('ws/apps', undefined, at('12', 'c9', 'apps-db'));
    expect(w.of('ws/apps', [...cache.values()]).map((b) => b.metadata.name)).to.deep.equal(['apps-web', 'apps-db']);
    expect(w.of('ws/other', [...cache.values()]).map((b) => b.metadata.name)).to.deep.equal(['apps-web']);
    cache.set('ws/apps-db', at('12', 'c9', 'apps-db'));
    expect(w.of('ws/apps', [...cache.values()]).map((b) => b.metadata.name)).to.deep.equal(['apps-web', 'apps-db']);
  });
});
