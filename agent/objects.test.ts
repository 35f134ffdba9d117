import { expect } from 'chai';
import { Annotation, Label } from '../lib/api/index.js';
import { FlotillaError } from '../lib/errors.js';
import type { RenderedObject as Rendered } from '../lib/bundle/index.js';
import {
  applyPhases,
  idKey,
  namespacesOf,
  prepareObjects,
  sortForApply,
  sortForPrune,
  validateObjects,
  type DesiredObject,
  type ObjectId,
  type ScopeLookup,
} from './objects.js';

const builtin: ScopeLookup = (apiVersion, kind) => {
  const clusterScoped = ['Namespace', 'CustomResourceDefinition', 'ClusterRole'];
  const known = ['ConfigMap', 'Secret', 'Deployment', 'Service', 'ServiceAccount', 'Role', ...clusterScoped];
  if (!known.includes(kind)) return undefined;
  void apiVersion;
  return !clusterScoped.includes(kind);
};

const obj = (apiVersion: string, kind: string, name: string, namespace?: string, extra: Record<string, unknown> = {}): Rendered => ({
  apiVersion,
  kind,
  metadata: { name, ...(namespace ? { namespace } : {}) },
  ...extra,
});

const id = (apiVersion: string, kind: string, name: string, namespace?: string): ObjectId => ({ apiVersion, kind, name, ...(namespace ? { namespace } : {}) });

function prepare(objects: Rendered[]): DesiredObject[] {
  return prepareObjects(objects, { bundleDeploymentName: 'bd-1', deploymentID: 's-abc:def', isNamespaced: builtin });
}

describe('agent objects', () => {
  describe('apply order', () => {
    const cases: { name: string; input: ObjectId[]; want: string[] }[] = [
      {
        name: 'puts Namespaces first, then CRDs, then kinds in dependency order, custom resources last',
        input: [
          id('example.com/v1', 'Widget', 'w', 'a'),
          id('apps/v1', 'Deployment', 'd', 'a'),
          id('v1', 'ConfigMap', 'c', 'a'),
          id('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'widgets.example.com'),
          id('v1', 'Namespace', 'a'),
          id('v1', 'ServiceAccount', 'sa', 'a'),
          id('v1', 'Service', 's', 'a'),
        ],
        want: ['Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'ConfigMap', 'Service', 'Deployment', 'Widget'],
      },
      {
        name: 'orders objects of one kind by namespace and name',
        input: [id('v1', 'ConfigMap', 'b', 'x'), id('v1', 'ConfigMap', 'a', 'y'), id('v1', 'ConfigMap', 'a', 'x')],
        want: ['ConfigMap', 'ConfigMap', 'ConfigMap'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(sortForApply(c.input.map((i) => ({ id: i }))).map((o) => o.id.kind)).to.deep.equal(c.want);
      });
    }

    it('is deterministic for one kind: namespace, then name', () => {
      const sorted = sortForApply([id('v1', 'ConfigMap', 'b', 'x'), id('v1', 'ConfigMap', 'a', 'y'), id('v1', 'ConfigMap', 'a', 'x')].map((i) => ({ id: i })));
      expect(sorted.map((o) => `${o.id.namespace}/${o.id.name}`)).to.deep.equal(['x/a', 'x/b', 'y/a']);
    });

    it('splits Namespaces and CRDs into the first phase', () => {
      const { first, rest } = applyPhases(
        [id('v1', 'ConfigMap', 'c', 'a'), id('v1', 'Namespace', 'a'), id('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'x.example.com')].map((i) => ({
          id: i,
        })),
      );
      expect(first.map((o) => o.id.kind)).to.deep.equal(['Namespace', 'CustomResourceDefinition']);
      expect(rest.map((o) => o.id.kind)).to.deep.equal(['ConfigMap']);
    });

    it('prunes in reverse order: workloads before their namespace and CRDs', () => {
      const order = sortForPrune([
        id('v1', 'Namespace', 'a'),
        id('apps/v1', 'Deployment', 'd', 'a'),
        id('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'x.example.com'),
        id('example.com/v1', 'Widget', 'w', 'a'),
      ]);
      expect(order.map((o) => o.kind)).to.deep.equal(['Widget', 'Deployment', 'CustomResourceDefinition', 'Namespace']);
    });
  });

  describe('identity', () => {
    it('ignores the version: a new apiVersion of the same object is the same object', () => {
      expect(idKey(id('apps/v1beta1', 'Deployment', 'd', 'a'))).to.equal(idKey(id('apps/v1', 'Deployment', 'd', 'a')));
    });
    it('separates groups, kinds, namespaces and names', () => {
      const keys = new Set(
        [
          id('v1', 'ConfigMap', 'a', 'x'),
          id('v1', 'Secret', 'a', 'x'),
          id('v1', 'ConfigMap', 'a', 'y'),
          id('v1', 'ConfigMap', 'b', 'x'),
          id('other.io/v1', 'ConfigMap', 'a', 'x'),
        ].map(idKey),
      );
      expect(keys.size).to.equal(5);
    });
  });

  describe('prepareObjects', () => {
    const cases: { name: string; input: Rendered; check: (o: DesiredObject) => void }[] = [
      {
        name: 'puts a namespaced object without namespace into "default"',
        input: obj('v1', 'ConfigMap', 'c'),
        check: (o) => expect(o.object.metadata.namespace).to.equal('default'),
      },
      {
        name: 'drops the namespace of a cluster-scoped object',
        input: obj('rbac.authorization.k8s.io/v1', 'ClusterRole', 'r', 'oops'),
        check: (o) => expect(o.object.metadata).to.not.have.property('namespace'),
      },
      {
        name: 'labels the object with its bundle deployment and annotates the deployment ID',
        input: obj('v1', 'ConfigMap', 'c', 'a'),
        check: (o) => {
          expect(o.object.metadata.labels?.[Label.BundleID]).to.equal('bd-1');
          expect(o.object.metadata.annotations?.[Annotation.DeploymentID]).to.equal('s-abc:def');
        },
      },
      {
        name: 'drops server-owned metadata and status',
        input: obj('v1', 'ConfigMap', 'c', 'a', { status: { x: 1 } }),
        check: (o) => expect(o.object).to.not.have.property('status'),
      },
      {
        name: 'keeps the labels the manifest sets',
        input: { ...obj('v1', 'ConfigMap', 'c', 'a'), metadata: { name: 'c', namespace: 'a', labels: { app: 'x' } } },
        check: (o) => expect(o.object.metadata.labels).to.include({ app: 'x', [Label.BundleID]: 'bd-1' }),
      },
    ];
    for (const c of cases) it(c.name, () => c.check(prepare([c.input])[0] as DesiredObject));

    it('does not change the rendered input (the render cache keeps it for the next reconcile)', () => {
      const input = obj('v1', 'ConfigMap', 'c', undefined, { data: { k: 'v' }, status: { x: 1 } });
      input.metadata = { ...input.metadata, uid: 'u', labels: { app: 'x' }, annotations: { a: 'b' }, managedFields: [{ manager: 'm' }] };
      const before = structuredClone(input);
      const [out] = prepare([input, obj('rbac.authorization.k8s.io/v1', 'ClusterRole', 'r', 'oops')]);
      expect(input).to.deep.equal(before);
      expect(out?.object.metadata).to.not.have.property('uid');
      expect(out?.object.metadata).to.not.have.property('managedFields');
      expect(out?.object.metadata.labels).to.include({ app: 'x', [Label.BundleID]: 'bd-1' });
      expect(out?.object).to.deep.include({ data: { k: 'v' } });
    });

    it("accepts a custom resource whose CRD is in the same bundle, with the CRD's scope", () => {
      const crd = obj('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'widgets.example.com', undefined, {
        spec: { group: 'example.com', names: { kind: 'Widget' }, scope: 'Cluster' },
      });
      const out = prepare([crd, obj('example.com/v1', 'Widget', 'w', 'a')]);
      expect(out[1]?.served).to.equal(false);
      expect(out[1]?.namespaced).to.equal(false);
      expect(out[1]?.object.metadata).to.not.have.property('namespace');
    });

    it('refuses a kind the cluster does not serve and the bundle does not define, naming it', () => {
      expect(() => prepare([obj('example.com/v1', 'Gadget', 'g', 'a')])).to.throw(FlotillaError, /Gadget \(example.com\/v1\).*objects: Gadget a\/g\)/);
    });
  });

  describe('validateObjects', () => {
    const reserved = { namespace: 'flotilla-system', names: ['flotilla-agent', 'flotilla-agent-bootstrap'], inventoryPrefix: 'flotilla-inv-' };
    const cases: { name: string; objects: Rendered[]; max?: number; error?: RegExp }[] = [
      { name: 'accepts ordinary objects', objects: [obj('v1', 'ConfigMap', 'c', 'a'), obj('rbac.authorization.k8s.io/v1', 'ClusterRole', 'system:x')] },
      { name: 'refuses an invalid namespace', objects: [obj('v1', 'ConfigMap', 'c', 'Not_A_Namespace')], error: /metadata.namespace/ },
      { name: 'refuses a name with a slash', objects: [obj('v1', 'ConfigMap', 'a/b', 'a')], error: /metadata.name/ },
      {
        name: "refuses to overwrite the agent's state Secret",
        objects: [obj('v1', 'Secret', 'flotilla-agent', 'flotilla-system')],
        error: /agent's own state/,
      },
      { name: 'refuses to overwrite an inventory', objects: [obj('v1', 'ConfigMap', 'flotilla-inv-x', 'flotilla-system')], error: /agent's own state/ },
      { name: 'accepts a Secret of that name elsewhere', objects: [obj('v1', 'Secret', 'flotilla-agent', 'other')] },
      {
        name: 'refuses more objects than the limit',
        objects: [obj('v1', 'ConfigMap', 'a', 'a'), obj('v1', 'ConfigMap', 'b', 'a')],
        max: 1,
        error: /more than the limit of 1/,
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const run = () => validateObjects(prepare(c.objects), reserved, c.max ?? 100);
        if (c.error) expect(run).to.throw(FlotillaError, c.error);
        else expect(run).to.not.throw();
      });
    }
  });

  describe('namespacesOf', () => {
    const cases: {
      name: string;
      objects: [string, string, string, string?][];
      options?: Parameters<typeof namespacesOf>[1];
      ensure: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }[];
      required: string[];
    }[] = [
      {
        name: 'creates the target namespace objects live in',
        objects: [['v1', 'ConfigMap', 'a', 'x']],
        options: { target: 'x' },
        ensure: [{ name: 'x' }],
        required: [],
      },
      {
        name: 'requires every other namespace to exist (Fleet: namespaces "y" not found)',
        objects: [
          ['v1', 'ConfigMap', 'a', 'x'],
          ['v1', 'ConfigMap', 'b', 'y'],
        ],
        options: { target: 'x' },
        ensure: [{ name: 'x' }],
        required: ['y'],
      },
      {
        name: 'requires nothing of namespaces the bundle defines',
        objects: [
          ['v1', 'ConfigMap', 'b', 'y'],
          ['v1', 'Namespace', 'y'],
        ],
        ensure: [],
        required: [],
      },
      {
        name: 'creates no namespace without a target',
        objects: [
          ['v1', 'ConfigMap', 'a', 'x'],
          ['v1', 'ConfigMap', 'b', 'z'],
        ],
        ensure: [],
        required: ['x', 'z'],
      },
      {
        name: 'puts namespaceLabels and namespaceAnnotations on the target namespace',
        objects: [['v1', 'ConfigMap', 'a', 'x']],
        options: { target: 'x', labels: { team: 'a' }, annotations: { note: 'n' } },
        ensure: [{ name: 'x', labels: { team: 'a' }, annotations: { note: 'n' } }],
        required: [],
      },
      {
        name: 'ensures a decorated target namespace even when no object lives there yet',
        objects: [],
        options: { target: 't', labels: { a: 'b' } },
        ensure: [{ name: 't', labels: { a: 'b' } }],
        required: [],
      },
      { name: 'does not create an undecorated target no object uses', objects: [], options: { target: 't' }, ensure: [], required: [] },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const desired = prepare(c.objects.map(([apiVersion, kind, name, ns]) => obj(apiVersion, kind, name, ns)));
        expect(namespacesOf(desired, c.options)).to.deep.equal({ ensure: c.ensure, required: c.required });
      });
    }

    it("merges the labels into the bundle's own Namespace object instead", () => {
      const desired = prepare([obj('v1', 'Namespace', 'x')]);
      expect(namespacesOf(desired, { target: 'x', labels: { team: 'a' } })).to.deep.equal({ ensure: [], required: [] });
      expect(desired[0]?.object.metadata.labels).to.deep.equal({ [Label.BundleID]: 'bd-1', team: 'a' });
    });
  });
});
