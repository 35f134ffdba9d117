import { expect } from 'chai';
import type { ComparePatch } from '../lib/api/index.js';
import type { KubeObject } from '../lib/kube/client.js';
import { MAX_PATCH_CHARS, compareObject, comparePatchMatches, modifiedStatusOf, removeAt } from './drift.js';
import type { ObjectId } from './objects.js';

const id: ObjectId = { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'app', name: 'web' };

function deployment(
  patch: { replicas?: number; labels?: Record<string, string>; image?: string; extra?: Record<string, unknown>; meta?: Record<string, unknown> } = {},
): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'web',
      namespace: 'app',
      uid: 'u1',
      resourceVersion: '7',
      generation: 3,
      managedFields: [{ manager: 'x' }],
      labels: patch.labels ?? { app: 'web' },
      ...patch.meta,
    },
    spec: { replicas: patch.replicas ?? 2, template: { spec: { containers: [{ name: 'c', image: patch.image ?? 'nginx:1' }] } }, ...patch.extra },
    status: { availableReplicas: 1 },
  };
}

describe('agent drift', () => {
  describe('compareObject', () => {
    const cases: { name: string; expected: KubeObject | undefined; live: KubeObject | undefined; patches?: ComparePatch[]; state: string; patch?: unknown }[] =
      [
        { name: 'an absent object is missing', expected: deployment(), live: undefined, state: 'missing' },
        {
          name: 'equal objects are unchanged, whatever their server-owned metadata and status',
          expected: deployment(),
          live: { ...deployment(), metadata: { ...deployment().metadata, resourceVersion: '99', generation: 9 }, status: { availableReplicas: 0 } },
          state: 'unchanged',
        },
        {
          name: 'a changed managed field is modified, with the live value in the patch',
          expected: deployment(),
          live: deployment({ replicas: 5 }),
          state: 'modified',
          patch: { spec: { replicas: 5 } },
        },
        {
          name: 'a removed label is modified, the patch deleting it',
          expected: deployment({ labels: { app: 'web', team: 'a' } }),
          live: deployment({ labels: { app: 'web' } }),
          state: 'modified',
          patch: { metadata: { labels: { team: null } } },
        },
        {
          name: 'a changed container image replaces the list in the patch',
          expected: deployment(),
          live: deployment({ image: 'evil:1' }),
          state: 'modified',
          patch: { spec: { template: { spec: { containers: [{ name: 'c', image: 'evil:1' }] } } } },
        },
        {
          name: 'a comparePatches operation path is ignored',
          expected: deployment(),
          live: deployment({ replicas: 5 }),
          patches: [{ kind: 'Deployment', name: 'web', operations: [{ op: 'remove', path: '/spec/replicas' }] }],
          state: 'unchanged',
        },
        {
          name: 'a comparePatches jsonPointer is ignored',
          expected: deployment(),
          live: deployment({ replicas: 5 }),
          patches: [{ apiVersion: 'apps/v1', jsonPointers: ['/spec/replicas'] }],
          state: 'unchanged',
        },
        {
          name: 'a comparePatches entry for another object does not hide drift',
          expected: deployment(),
          live: deployment({ replicas: 5 }),
          patches: [{ kind: 'Deployment', name: 'other', jsonPointers: ['/spec/replicas'] }],
          state: 'modified',
          patch: { spec: { replicas: 5 } },
        },
        { name: 'an object whose expected state is unknown but that exists is modified', expected: undefined, live: deployment(), state: 'modified' },
      ];
    for (const c of cases) {
      it(c.name, () => {
        const drift = compareObject(id, c.expected, c.live, c.patches);
        expect(drift.state).to.equal(c.state);
        if (c.patch !== undefined) expect(drift.patch).to.deep.equal(c.patch);
      });
    }

    it('names the other bundle deployment a live object was written by, and keeps it in the status entry', () => {
      const mine = deployment({ labels: { app: 'web', 'flotilla.dev/bundle-id': 'repo-a' } });
      const theirs = deployment({ labels: { app: 'web', 'flotilla.dev/bundle-id': 'repo-b' } });
      const drift = compareObject(id, mine, theirs);
      expect(drift).to.include({ state: 'modified', ownedBy: 'repo-b' });
      expect(modifiedStatusOf(drift)).to.include({ kind: 'Deployment', name: 'web', ownedBy: 'repo-b' });
    });

    it('names no other owner when the label is ours, absent on either side, or the object is unchanged', () => {
      const labelled = (v?: string) => deployment({ labels: v ? { app: 'web', 'flotilla.dev/bundle-id': v } : { app: 'web' }, replicas: v ? 2 : 3 });
      expect(compareObject(id, labelled('repo-a'), deployment({ replicas: 5, labels: { app: 'web', 'flotilla.dev/bundle-id': 'repo-a' } })).ownedBy).to.equal(
        undefined,
      );
      expect(compareObject(id, labelled('repo-a'), labelled()).ownedBy).to.equal(undefined);
      expect(compareObject(id, labelled(), labelled('repo-b')).ownedBy).to.equal(undefined);
      expect(compareObject(id, labelled('repo-a'), labelled('repo-a')).state).to.equal('unchanged');
    });

    it('does not modify its inputs when ignoring fields', () => {
      const live = deployment({ replicas: 5 });
      compareObject(id, deployment(), live, [{ jsonPointers: ['/spec/replicas'] }]);
      expect((live.spec as { replicas: number }).replicas).to.equal(5);
    });
  });

  describe('removeAt', () => {
    const cases: { name: string; pointer: string; want: unknown }[] = [
      { name: 'removes a nested key', pointer: '/a/b', want: { a: {}, l: [1, 2], 'x/y': 1 } },
      { name: 'removes an array element', pointer: '/l/0', want: { a: { b: 1 }, l: [2], 'x/y': 1 } },
      { name: 'decodes ~1 as a slash', pointer: '/x~1y', want: { a: { b: 1 }, l: [1, 2] } },
      { name: 'ignores a path that does not exist', pointer: '/a/zz/q', want: { a: { b: 1 }, l: [1, 2], 'x/y': 1 } },
      { name: 'ignores something that is not a pointer', pointer: 'a', want: { a: { b: 1 }, l: [1, 2], 'x/y': 1 } },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const doc = { a: { b: 1 }, l: [1, 2], 'x/y': 1 };
        removeAt(doc, c.pointer);
        expect(doc).to.deep.equal(c.want);
      });
    }
  });

  describe('comparePatchMatches', () => {
    const cases: { patch: ComparePatch; want: boolean }[] = [
      { patch: {}, want: true },
      { patch: { kind: 'Deployment', name: 'web', namespace: 'app' }, want: true },
      { patch: { apiVersion: 'apps/v1beta2' }, want: true },
      { patch: { apiVersion: 'v1' }, want: false },
      { patch: { namespace: 'other' }, want: false },
      { patch: { kind: 'Service' }, want: false },
    ];
    for (const c of cases)
      it(`${JSON.stringify(c.patch)} ${c.want ? 'matches' : 'does not match'} Deployment app/web`, () => {
        expect(comparePatchMatches(c.patch, id)).to.equal(c.want);
      });
  });

  describe('modifiedStatusOf', () => {
    it('marks a missing object', () => {
      expect(modifiedStatusOf({ id, state: 'missing' })).to.deep.equal({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: 'web',
        namespace: 'app',
        missing: true,
      });
    });
    it('bounds the patch of a large change', () => {
      const entry = modifiedStatusOf({ id, state: 'modified', patch: { data: 'x'.repeat(10_000) } });
      expect(entry.patch?.length).to.equal(MAX_PATCH_CHARS);
      expect(entry.patch?.endsWith('...')).to.equal(true);
    });
  });
});
