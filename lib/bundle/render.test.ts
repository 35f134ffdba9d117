import { expect } from 'chai';
import { StallingError } from '../errors.js';
import type { BundleFile, RenderedObject } from './manifest.js';
import { type RenderOptions, renderBundle, renderOptionsFrom } from './render.js';

function files(tree: Record<string, string>): BundleFile[] {
  return Object.entries(tree).map(([path, text]) => ({ path, content: Buffer.from(text) }));
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: web
          image: web:1.0
        - name: proxy
          image: proxy:1.0
`;
const service = `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
    - port: 80
`;
const base = { 'deployment.yaml': deployment, 'svc.yaml': service };

/** A compact view of rendered objects: "Kind ns/name". */
function ids(objects: RenderedObject[]): string[] {
  return objects.map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`);
}

function find(objects: RenderedObject[], kind: string, name: string): Record<string, unknown> {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in ${ids(objects).join(', ')}`);
  return found as Record<string, unknown>;
}

describe('rendering a bundle', () => {
  it('renders the base manifests in path order, documents in file order, ignoring other files', () => {
    const objects = renderBundle(
      files({
        'z.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: z}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\n',
        'a.json': '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}',
        'README.md': '# not a manifest',
        'overlays/prod/extra.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n',
      }),
    );
    expect(ids(objects)).to.deep.equal(['ConfigMap /a', 'ConfigMap /z', 'ConfigMap /y']);
  });

  describe('overlays', () => {
    it('patches a base file with overlays/<name>/<file>_patch.yaml (merge patch, containers merged by name)', () => {
      const objects = renderBundle(
        files({
          ...base,
          'overlays/prod/deployment_patch.yaml':
            'spec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n        - name: web\n          image: web:2.0\n',
        }),
        { overlays: ['prod'] },
      );
      const spec = find(objects, 'Deployment', 'web').spec;
      expect(spec).to.deep.equal({
        replicas: 3,
        template: {
          spec: {
            containers: [
              { name: 'web', image: 'web:2.0' },
              { name: 'proxy', image: 'proxy:1.0' },
            ],
          },
        },
      });
    });

    it('applies a JSON patch when the patch document is a list', () => {
      const objects = renderBundle(
        files({
          ...base,
          'overlays/prod/svc_patch.json': '[{"op": "replace", "path": "/spec/ports/0/port", "value": 8080}]',
          'overlays/prod/svc.json.unused': 'x',
        }),
        { overlays: ['prod'] },
      );
      expect(find(objects, 'Service', 'web').spec).to.deep.equal({ ports: [{ port: 8080 }] });
    });

    it('adds files that are not in the base and replaces those that are', () => {
      const objects = renderBundle(
        files({
          ...base,
          'overlays/dev/svc.yaml': 'apiVersion: v1\nkind: Service\nmetadata: {name: web-dev}\n',
          'overlays/dev/configmap.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n',
        }),
        { overlays: ['dev'] },
      );
      expect(ids(objects)).to.deep.equal(['ConfigMap /settings', 'Deployment /web', 'Service /web-dev']);
    });

    it('applies several overlays in the given order (a later one patches what an earlier one added)', () => {
      const tree = files({
        ...base,
        'overlays/one/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {from: one, keep: "1"}\n',
        'overlays/two/cm_patch.yaml': 'data: {from: two}\n',
        'overlays/three/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {from: three}\n',
      });
      expect(find(renderBundle(tree, { overlays: ['one', 'two'] }), 'ConfigMap', 'cm').data).to.deep.equal({ from: 'two', keep: '1' });
      expect(find(renderBundle(tree, { overlays: ['one', 'two', 'three'] }), 'ConfigMap', 'cm').data).to.deep.equal({ from: 'three' });
      expect(() => renderBundle(tree, { overlays: ['two', 'one'] })).to.throw(StallingError, /cm_patch\.yaml: patches cm\.yaml, which is not in the bundle/);
    });

    it('patches files in subdirectories by their path relative to the overlay', () => {
      const objects = renderBundle(
        files({
          'apps/deployment.yaml': deployment,
          'overlays/prod/apps/deployment_patch.yml': 'spec: {replicas: 5}\n',
        }),
        { overlays: ['prod'] },
      );
      expect((find(objects, 'Deployment', 'web').spec as { replicas: number }).replicas).to.equal(5);
    });

    it('in a file with several documents, patches the one named by kind and metadata.name', () => {
      const objects = renderBundle(
        files({
          'all.yaml': `${deployment}---\n${service}`,
          'overlays/prod/all_patch.yaml': 'kind: Service\nmetadata: {name: web}\nspec: {type: NodePort}\n',
        }),
        { overlays: ['prod'] },
      );
      expect((find(objects, 'Service', 'web').spec as { type: string }).type).to.equal('NodePort');
      expect(find(objects, 'Deployment', 'web').spec).to.not.have.property('type');
    });

    const failures: [what: string, tree: Record<string, string>, overlays: string[], message: RegExp][] = [
      ['an overlay without files', base, ['missing'], /^overlays\/missing: overlay "missing" is selected but has no files/],
      ['an invalid overlay name', base, ['../x'], /"\.\.\/x" is not a valid overlay name/],
      [
        'a patch for a missing file',
        { ...base, 'overlays/p/nope_patch.yaml': 'a: 1\n' },
        ['p'],
        /^overlays\/p\/nope_patch\.yaml: patches nope\.yaml, which is not in the bundle/,
      ],
      [
        'an unnamed patch for a multi-document file',
        { 'all.yaml': `${deployment}---\n${service}`, 'overlays/p/all_patch.yaml': 'spec: {}\n' },
        ['p'],
        /^overlays\/p\/all_patch\.yaml:1: all\.yaml has 2 documents: a patch for it must be a mapping that sets kind and metadata\.name/,
      ],
      [
        'a patch naming no document of the file',
        { 'all.yaml': `${deployment}---\n${service}`, 'overlays/p/all_patch.yaml': 'kind: Secret\nmetadata: {name: web}\n' },
        ['p'],
        /no Secret named web in all\.yaml/,
      ],
      [
        'a patch that removes the name',
        { ...base, 'overlays/p/svc_patch.yaml': 'metadata: {name: null}\n' },
        ['p'],
        /^overlays\/p\/svc_patch\.yaml:1: Service has no metadata\.name/,
      ],
      [
        'a failing JSON patch',
        { ...base, 'overlays/p/svc_patch.yaml': '- op: remove\n  path: /spec/missing\n' },
        ['p'],
        /^overlays\/p\/svc_patch\.yaml:1: cannot patch svc\.yaml: "\/spec\/missing" does not exist/,
      ],
      [
        'malformed YAML in a patch, with its line',
        { ...base, 'overlays/p/svc_patch.yaml': 'spec:\n  ports: [\n' },
        ['p'],
        /^overlays\/p\/svc_patch\.yaml:3: invalid YAML/,
      ],
    ];
    for (const [what, tree, overlays, message] of failures) {
      it(`refuses ${what}`, () => {
        expect(() => renderBundle(files(tree), { overlays })).to.throw(StallingError, message);
      });
    }
  });

  describe('namespaces', () => {
    const tree = files({
      'ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n',
      'role.yaml': 'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n',
      'crd.yaml': 'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n',
      'cm-none.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: none}\n',
      'cm-own.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: own, namespace: mine}\n',
      'custom.yaml': 'apiVersion: example.com/v1\nkind: Namespace\nmetadata: {name: not-core}\n',
    });
    const cases: [what: string, options: RenderOptions, expected: string[]][] = [
      [
        'no namespace options: left as written',
        {},
        [
          'ConfigMap /none',
          'ConfigMap mine/own',
          'CustomResourceDefinition /widgets.example.com',
          'Namespace /not-core',
          'Namespace /apps',
          'ClusterRole /reader',
        ],
      ],
      [
        'defaultNamespace: fills only objects that name none',
        { defaultNamespace: 'dflt' },
        [
          'ConfigMap dflt/none',
          'ConfigMap mine/own',
          'CustomResourceDefinition /widgets.example.com',
          'Namespace dflt/not-core',
          'Namespace /apps',
          'ClusterRole /reader',
        ],
      ],
      [
        'namespace: forces every namespaced object',
        { namespace: 'forced', defaultNamespace: 'dflt' },
        [
          'ConfigMap forced/none',
          'ConfigMap forced/own',
          'CustomResourceDefinition /widgets.example.com',
          'Namespace forced/not-core',
          'Namespace /apps',
          'ClusterRole /reader',
        ],
      ],
      [
        'targetNamespace: wins over namespace',
        { namespace: 'forced', targetNamespace: 'admin' },
        [
          'ConfigMap admin/none',
          'ConfigMap admin/own',
          'CustomResourceDefinition /widgets.example.com',
          'Namespace admin/not-core',
          'Namespace /apps',
          'ClusterRole /reader',
        ],
      ],
      [
        'a caller that knows more cluster-scoped kinds',
        { namespace: 'forced', isClusterScoped: (_v, kind) => kind !== 'ConfigMap' },
        [
          'ConfigMap forced/none',
          'ConfigMap forced/own',
          'CustomResourceDefinition /widgets.example.com',
          'Namespace /not-core',
          'Namespace /apps',
          'ClusterRole /reader',
        ],
      ],
    ];
    for (const [what, options, expected] of cases) {
      it(`applies ${what}`, () => {
        expect(ids(renderBundle(tree, options))).to.deep.equal(expected);
      });
    }

    it('takes overlays and namespaces from deployment options', () => {
      expect(renderOptionsFrom({ yaml: { overlays: ['a'] }, namespace: 'n', defaultNamespace: 'd', targetNamespace: 't' })).to.deep.equal({
        overlays: ['a'],
        namespace: 'n',
        defaultNamespace: 'd',
        targetNamespace: 't',
      });
    });
  });

  it('refuses two objects with the same identity, naming both files', () => {
    const tree = files({
      'a.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n',
      'b.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: ns}\n',
    });
    expect(ids(renderBundle(tree))).to.deep.equal(['ConfigMap /x', 'ConfigMap ns/x']);
    expect(() => renderBundle(tree, { namespace: 'ns' })).to.throw(StallingError, /^b\.yaml: ConfigMap ns\/x is also defined in a\.yaml/);
  });

  it('names files with the source directory in messages', () => {
    expect(() => renderBundle(files({ 'bad.yaml': 'kind: X\n' }), { sourceDir: 'apps/web' })).to.throw(
      StallingError,
      /^apps\/web\/bad\.yaml:1: resource has no apiVersion/,
    );
  });
});
