import { expect } from 'chai';
import { Reason } from '../api/constants.js';
import { StallingError } from '../errors.js';
import { grownBundle, patchToNodes } from '../bundle/growth-testing.js';
import type { BundleFile } from '../bundle/manifest.js';
import { BundleRenderer, HEAP_BYTES_PER_NODE } from './bundle.js';
import type { Isolate, IsolateBudget } from './isolate.js';

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
    expect(err.message).to.match(
      /^bundle a: overlays\/big\/a_patch\.json:1: the overlay patches add more than \d+ bytes, over the limit maxExpandedBytes=4096/,
    );
    // The same bytes from another object: the remembered refusal names the one that asks, not the first.
    const other = await failure(renderer.render(files, { overlays: ['big'] }, 'BundleDeployment b-on-cluster-2'));
    expect(other.message).to.equal(err.message.replace('bundle a', 'BundleDeployment b-on-cluster-2'));
    expect(other.reason).to.equal(err.reason);
    expect(other.disposition).to.equal('stalling');
    expect(await failure(renderer.render(files, { overlays: ['big'] }, 'bundle a')), 'the first label, the first error').to.equal(err);
  });

  it("renders again with the cluster's scopes only where they differ from Kubernetes' own list", async () => {
    const files = [file('w.yaml', 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n'), file('c.yaml', cm('c'))];
    const objects = await renderer.renderForCluster(files, { defaultNamespace: 'apps' }, 'bundle w', async () => (_a, kind) => kind === 'Widget');
    const byKind = Object.fromEntries(objects.map((o) => [o.kind, o.metadata.namespace]));
    expect(byKind).to.deep.equal({ Widget: undefined, ConfigMap: 'apps' });
  });

  it('remembers a render over its budget (RenderBudgetExceeded, stalling) by content, and renders changed content afresh', async () => {
    // Limits that do not stop the doubling overlay by size (2^29 nodes): only the 100 ms deadline (or the heap) can.
    const slow = new BundleRenderer({ limits: { renderTimeoutMs: 100, maxNodes: 1 << 30, maxExpandedBytes: 2 ** 40 } });
    const doubling = (name: string) => [
      file('base.yaml', cm(name, 'data:\n  v: "1"\n')),
      file('overlays/boom/base_patch.json', JSON.stringify(Array.from({ length: 28 }, (_, i) => ({ op: 'copy', from: '/data', path: `/data/c${i}` })))),
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

  it('maxNodes bites before the heap: a patch that grows the bundle to maxNodes passes in its worker, one node more is refused by the limit', async () => {
    // 500,000 nodes get the smallest worker (64 MiB), the same heap per node as the default 2,000,000 in 256 MiB.
    const big = new BundleRenderer({ limits: { maxNodes: 500_000 }, cacheBytes: 0 });
    try {
      const grown = (nodes: number) => grownBundle(patchToNodes(nodes));
      const over = await failure(big.render(grown(500_001), { overlays: ['grow'] }, 'BundleDeployment web'));
      expect(over.reason).to.equal(Reason.ContentLimitExceeded);
      expect(over.message).to.match(
        /^BundleDeployment web: overlays\/grow\/base_patch\.json:1: the overlay patches add more than 499993 YAML nodes, over the limit maxNodes=500000; /,
      );
      const [object] = await big.render(grown(500_000), { overlays: ['grow'] }, 'BundleDeployment web');
      expect(Object.keys(object?.data ?? {})).to.include.members(['v', 'c0', 'c16']);
    } finally {
      await big.close();
    }
  });

  it('gives a render with overlays a heap that holds maxNodes nodes (up to renderMemoryMb), and one without the smallest that fits its content', async () => {
    const budgets: IsolateBudget[] = [];
    const run = async (_job: unknown, budget: IsolateBudget) => {
      budgets.push(budget);
      return { objects: [], bytes: 0 };
    };
    const spy = { run } as unknown as Isolate;
    const files = [file('a.yaml', cm('a'))];
    await new BundleRenderer({ isolate: spy, cacheBytes: 0 }).render(files, { overlays: ['x'] }, 'a');
    await new BundleRenderer({ isolate: spy, cacheBytes: 0 }).render(files, {}, 'a');
    await new BundleRenderer({ isolate: spy, cacheBytes: 0, limits: { renderMemoryMb: 100 } }).render(files, { overlays: ['x'] }, 'a');
    expect(budgets.map((b) => b.memoryMb)).to.deep.equal([256, 64, 100]);
    expect(256 * 1024 * 1024).to.be.at.least(2_000_000 * HEAP_BYTES_PER_NODE);
  });
});
