/**
 * The hostile-content corpus of issue 13, shared by e2e/hostile.e2e.ts and bench/hostile.ts: small files
 * that cost a parser or renderer without limits gigabytes or minutes. Each names the reason and the limit
 * (a pattern over the refusal message) it must be refused with under the default content limits.
 */

/** One hostile input: a file added to a bundle directory (and, for rendering, overlay files and names). */
export interface HostileInput {
  input: string;
  /** Path in the bundle (below `dir` when given). */
  file: string;
  content: string;
  /** Condition reason of the refusal. */
  reason: 'ContentLimitExceeded' | 'RenderBudgetExceeded';
  /** Matches the refusal message: the limit that refused it. */
  limit: RegExp;
  /** Overlays to render with (a costly overlay). */
  overlays?: string[];
  extraFiles?: Record<string, string>;
}

const header = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n`;

/** "Billion laughs": 9 levels of 10 aliases each, 10^9 strings once expanded, from about 1 KB. */
export function aliasBomb(): string {
  let text = `${header('hostile-bomb')}data:\n  l0: &l0 "lol"\n`;
  for (let i = 1; i <= 9; i++)
    text += `  l${i}: &l${i} [${Array(10)
      .fill(`*l${i - 1}`)
      .join(', ')}]\n`;
  return text;
}

/** The corpus refused by parsing limits, with paths below `dir` ('' for the bundle root). */
export function hostileCorpus(dir: string): HostileInput[] {
  const at = (name: string) => (dir ? `${dir}/${name}` : name);
  return [
    {
      input: 'an alias bomb ("billion laughs", 1 KB)',
      file: at('bomb.yaml'),
      content: aliasBomb(),
      reason: 'ContentLimitExceeded',
      limit: /max(Nodes|ExpandedBytes)=/,
    },
    {
      input: 'nesting 50000 levels deep',
      file: at('deep.yaml'),
      content: `${header('hostile-deep')}data:\n  x: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`,
      reason: 'ContentLimitExceeded',
      limit: /maxDepth=200/,
    },
    {
      input: 'a flood of 100000 documents',
      file: at('flood.yaml'),
      content: '---\n'.repeat(100_000),
      reason: 'ContentLimitExceeded',
      limit: /maxDocuments=10000/,
    },
    {
      input: 'a key of 100000 characters',
      file: at('key.yaml'),
      content: `${header('hostile-key')}data:\n  "${'k'.repeat(100_000)}": v\n`,
      reason: 'ContentLimitExceeded',
      limit: /maxKeyLength=4096/,
    },
    {
      input: 'a line of 3 MiB',
      file: at('line.yaml'),
      content: `${header('hostile-line')}data: {blob: "${'x'.repeat(3 << 20)}"}\n`,
      reason: 'ContentLimitExceeded',
      limit: /maxLineLength=2097152/,
    },
  ];
}

/**
 * Content that passes every parsing limit but is costly to render: an overlay of 40 JSON Patch `copy`
 * operations, each doubling the patched object (2^40 times its size), applied to `base.yaml`. The growth
 * budget of overlay patches (lib/bundle/growth.ts) refuses it once the copies would add more
 * than maxNodes, before the worker's heap cap or deadline is reached.
 */
export function costlyToRender(): HostileInput {
  const ops = Array.from({ length: 40 }, (_, i) => ({ op: 'copy', from: '/data', path: `/data/c${i}` }));
  return {
    input: 'an overlay that doubles the object 40 times (costly to render)',
    file: 'overlays/boom/base_patch.json',
    content: JSON.stringify(ops),
    reason: 'ContentLimitExceeded',
    limit: /overlays\/boom\/base_patch\.json:1: the overlay patches add more than \d+ YAML nodes, over the limit maxNodes=/,
    overlays: ['boom'],
  };
}
