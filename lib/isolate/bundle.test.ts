import { expect } from 'chai';
import { Reason } from '../api/constants.js';
import { StallingError } from '../errors.js';
import type { BundleFile } from '../bundle/manifest.js';
import { BundleRenderer } from './bundle.js';

const file = (path: string, text: string): BundleFile => ({ path, content: Buffer.from(text) });
const cm = (name: string, extra = '') => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${extra}`;

async function failure(p: Promise<unknown>): Promise<StallingError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof StallingError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('BundleRenderer (bundles parsed and rendered behind a bulkhead)', function () {
  this.timeout(60_000);
  let renderer: BundleRenderer;
  before(() => {
    renderer = new BundleRenderer({ limits: { maxExpandedBytes: 4096, renderTimeoutMs: 30_000 } });
  });
  after(async () => {
    await renderer.close();
  });

  it('renders a bundle in a worker, and serves an unchanged bundle from its cache', async () => {
    const files = [file('a.yaml', cm('a', 'data: {k: v}\n'))];
    const first = await renderer.render(files, { defaultNamespace: 'apps' }, 'bundle a');
    expect(first).to.deep.equal([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'apps' }, data: { k: 'v' } }]);
    expect(await renderer.render(files, { defaultNamespace: 'apps' }, 'bundle a')).to.equal(first);
  });

  it('refuses an alias bomb naming the file and the limit', async () => {
    let text = cm('bomb', 'data:\n  l0: &l0 "lol"\n');
    for (let i = 1; i <= 9; i++)
      text += `  l${i}: &l${i} [${Array(10)
        .fill(`*l${i - 1}`)
        .join(', ')}]\n`;
    const err = await failure(renderer.render([file('bomb.yaml', text)], {}, 'bundle bomb'));
    expect(err.reason).to.equal(Reason.ContentLimitExceeded);
    expect(err.message).to.match(/^bomb\.yaml:1: more than .* over the limit max(Nodes|ExpandedBytes)=/);
    expect(await failure(renderer.render([file('bomb.yaml', text)], {}, 'bundle bomb')), 'the same refusal, remembered').to.equal(err);
  });

  it('refuses a rendered bundle that overlays grew past the limit, though every file is within it', async () => {
    const files = [
      file('a.yaml', cm('a', `data:\n  k: "${'x'.repeat(1200)}"\n`)),
      file('overlays/big/a_patch.json', JSON.stringify([1, 2, 3].map((i) => ({ op: 'copy', from: '/data/k', path: `/data/k${i}` })))),
    ];
    expect(await renderer.render(files, {}, 'bundle a')).to.have.length(1);
    const err = await failure(renderer.render(files, { overlays: ['big'] }, 'bundle a'));
    expect(err.reason).to.equal(Reason.ContentLimitExceeded);
    expect(err.message).to.match(/^bundle a \(rendered\): more than 4096 bytes/);
  });

  it("renders again with the cluster's scopes only where they differ from Kubernetes' own list", async () => {
    const files = [file('w.yaml', 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n'), file('c.yaml', cm('c'))];
    const objects = await renderer.renderForCluster(files, { defaultNamespace: 'apps' }, 'bundle w', async () => (_a, kind) => kind === 'Widget');
    const byKind = Object.fromEntries(objects.map((o) => [o.kind, o.metadata.namespace]));
    expect(byKind).to.deep.equal({ Widget: undefined, ConfigMap: 'apps' });
  });

  it('remembers a render over its budget (RenderBudgetExceeded, stalling) by content, and renders changed content afresh', async () => {
    // Limits that do not stop the doubling overlay by size: only the 100 ms deadline (or the heap) can.
    const slow = new BundleRenderer({ limits: { renderTimeoutMs: 100, maxNodes: 1 << 30, maxExpandedBytes: 2 ** 40 } });
    const doubling = (name: string) => [
      file('base.yaml', cm(name, 'data:\n  v: "1"\n')),
      file('overlays/boom/base_patch.json', JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ op: 'copy', from: '/data', path: `/data/c${i}` })))),
    ];
    try {
      const first = await failure(slow.render(doubling('a'), { overlays: ['boom'] }, 'bundle boom'));
      expect(first.reason).to.equal(Reason.RenderBudgetExceeded);
      expect(first.disposition).to.equal('stalling');
      expect(await failure(slow.render(doubling('a'), { overlays: ['boom'] }, 'bundle boom')), 'the same refusal, not rendered again').to.equal(first);
      const changed = await failure(slow.render(doubling('b'), { overlays: ['boom'] }, 'bundle boom'));
      expect(changed.reason).to.equal(Reason.RenderBudgetExceeded);
      expect(changed, 'changed content is rendered again').to.not.equal(first);
    } finally {
      await slow.close();
    }
  });
});
