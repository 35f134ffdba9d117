import { expect } from 'chai';
import { Reason } from '../api/constants.js';
import { checkRendered } from '../isolate/bundle-tasks.js';
import { DEFAULT_CONTENT_LIMITS, contentLimits, setActiveContentLimits, type ContentLimits } from './limits.js';
import { grownBundle, patchToNodes, refusal } from './growth-testing.js';
import type { BundleFile } from './manifest.js';
import { renderBundle } from './render.js';

function render(files: BundleFile[], limits: Partial<ContentLimits>) {
  setActiveContentLimits(contentLimits(limits));
  try {
    return renderBundle(files, { overlays: ['grow'], bundle: 'BundleDeployment web' });
  } finally {
    setActiveContentLimits(DEFAULT_CONTENT_LIMITS);
  }
}

describe('content limits: growth of overlay patches at the boundary (GrowthMeter)', () => {
  it('maxNodes: a patch that makes the bundle exactly maxNodes passes, one node more is refused naming the bundle, the file and the limit', () => {
    const limits = { maxNodes: 1000 };
    const objects = render(grownBundle(patchToNodes(1000)), limits);
    expect(
      refusal(() => checkRendered(objects, contentLimits(limits), 'bundle web')),
      'the final check agrees',
    ).to.equal(undefined);
    expect(refusal(() => checkRendered(objects, contentLimits({ maxNodes: 999 }), 'bundle web'))?.message).to.include('maxNodes=999');

    const err = refusal(() => render(grownBundle(patchToNodes(1001)), limits));
    expect(err?.reason).to.equal(Reason.ContentLimitExceeded);
    expect(err?.message).to.match(
      /^BundleDeployment web: overlays\/grow\/base_patch\.json:1: the overlay patches add more than 993 YAML nodes, over the limit maxNodes=1000; /,
    );
    expect(err?.message).to.include('--max-nodes (chart value limits.maxNodes)');
  });

  it('maxExpandedBytes: counted as the final check counts them; at the limit passes, one byte less refuses naming the patch file', () => {
    // Every operation kind; the bundle only grows, so the last step is the largest.
    const files = grownBundle([
      { op: 'remove', path: '/data/v' },
      { op: 'add', path: '/data/s', value: 'x'.repeat(3000) },
      { op: 'copy', from: '/data', path: '/data/c0' },
      { op: 'copy', from: '/data/s', path: '/data/c0/s2' },
      { op: 'move', from: '/data/c0', path: '/data/moved' },
      { op: 'replace', path: '/data/s', value: 'y'.repeat(3001) },
    ]);
    const objects = render(files, {});
    const bytes = checkRendered(objects, DEFAULT_CONTENT_LIMITS, 'bundle web');
    expect(refusal(() => render(files, { maxExpandedBytes: bytes }))).to.equal(undefined);
    const err = refusal(() => render(files, { maxExpandedBytes: bytes - 1 }));
    expect(err?.message).to.match(
      /^BundleDeployment web: overlays\/grow\/base_patch\.json:1: the overlay patches add more than \d+ bytes, over the limit maxExpandedBytes=/,
    );
    expect(err?.message).to.include(`maxExpandedBytes=${bytes - 1}`);
  });

  it('a patch must keep the bundle within the limits at every step: one that goes over and back is refused where it went over', () => {
    const files = grownBundle([
      { op: 'add', path: '/data/s', value: 'x'.repeat(3000) },
      { op: 'copy', from: '/data/s', path: '/data/t' },
      { op: 'remove', path: '/data/t' },
    ]);
    const bytes = checkRendered(render(files, {}), DEFAULT_CONTENT_LIMITS, 'bundle web');
    // The copy of t adds 3002 bytes (the string and its quotes) and 5 for its key: a peak of 3007 over the end.
    expect(refusal(() => render(files, { maxExpandedBytes: bytes + 3006 }))?.message).to.include(`maxExpandedBytes=${bytes + 3006}`);
    expect(refusal(() => render(files, { maxExpandedBytes: bytes + 3007 }))).to.equal(undefined);
  });

  it('maxDepth: copies that nest /data into itself pass at maxDepth levels and are refused one level over', () => {
    // The object is level 1, data level 2. The first copy puts metadata ({name}) at /data/m, its name at level
    // 4; each next copy puts the last {name} one key m deeper: after n copies the deepest name is at level n + 3.
    const nest = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        op: 'copy',
        from: i === 0 ? '/metadata' : `/data/${Array(i).fill('m').join('/')}`,
        path: `/data/${Array(i + 1)
          .fill('m')
          .join('/')}`,
      }));
    const objects = render(grownBundle(nest(7)), { maxDepth: 10 });
    expect(
      refusal(() => checkRendered(objects, contentLimits({ maxDepth: 10 }), 'bundle web')),
      'the final check agrees',
    ).to.equal(undefined);
    const err = refusal(() => render(grownBundle(nest(7)), { maxDepth: 9 }));
    expect(err?.message).to.match(
      /^BundleDeployment web: overlays\/grow\/base_patch\.json:1: the overlay patches nest deeper than 9 levels, over the limit maxDepth=9/,
    );
  });

  it('a merge patch that brings an alias-expanded value is measured expanded, and refused naming its file and line', () => {
    let laughs = 'data:\n  l0: &l0 "lol"\n';
    for (let i = 1; i <= 4; i++)
      laughs += `  l${i}: &l${i} [${Array(10)
        .fill(`*l${i - 1}`)
        .join(', ')}]\n`;
    const other = {
      path: 'other.yaml',
      content: Buffer.from(`apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  list: [${Array(100).fill(1).join(', ')}]\n`),
    };
    const files = grownBundle(`# a merge patch\n${laughs}`, 'yaml', [other]);
    // The patch file is 12357 nodes expanded, within maxNodes=12400; the bundle, with other.yaml's 107, is not.
    const err = refusal(() => render(files, { maxNodes: 12_400 }));
    expect(err?.message).to.match(
      /^BundleDeployment web: overlays\/grow\/base_patch\.yaml:2: the overlay patches add more than \d+ YAML nodes, over the limit maxNodes=12400/,
    );
    const objects = render(files, { maxNodes: 20_000 });
    expect(objects.find((o) => o.metadata.name === 'base')?.data)
      .to.have.property('l4')
      .with.length(10);
  });

  it('the rendered objects share nothing: a change to a copy after rendering leaves its source alone', () => {
    const [object] = render(
      grownBundle([
        { op: 'copy', from: '/metadata', path: '/data/meta' },
        { op: 'copy', from: '/data', path: '/data/again' },
      ]),
      {},
    );
    const data = object?.data as Record<string, Record<string, unknown>>;
    (object?.metadata as Record<string, unknown>).namespace = 'changed';
    (data.meta as Record<string, unknown>).extra = 1;
    expect(data.meta).to.deep.equal({ name: 'base', extra: 1 });
    expect((data.again as Record<string, unknown>).meta).to.deep.equal({ name: 'base' });
  });

  it('refuses 40 doubling copies under the default limits (2^41 nodes otherwise) by maxNodes', () => {
    const ops = Array.from({ length: 40 }, (_, i) => ({ op: 'copy', from: '/data', path: `/data/c${i}` }));
    expect(refusal(() => render(grownBundle(ops), {}))?.message).to.include('over the limit maxNodes=2000000');
  });
});
