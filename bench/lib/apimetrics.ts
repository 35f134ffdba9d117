import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';

/**
 * What a kube-apiserver was asked: its `apiserver_request_total` counter read from /metrics (with the
 * control plane's admin certificate), summed per verb and resource. Two snapshots give the requests in
 * between, which tells who loaded the API server and with what.
 */

/** Request counts keyed "VERB resource[/subresource]" (dry runs marked). */
export type RequestCounts = Record<string, number>;

/** Reads the counters of the control plane whose folder (certificates) is `planeDir` and URL is `server`. */
export async function apiRequestCounts(planeDir: string, server: string): Promise<RequestCounts> {
  const dispatcher = new Agent({
    connect: {
      ca: readFileSync(join(planeDir, 'ca.crt')),
      cert: readFileSync(join(planeDir, 'admin.crt')),
      key: readFileSync(join(planeDir, 'admin.key')),
    },
  });
  try {
    const res = await request(`${server}/metrics`, { dispatcher });
    const text = await res.body.text();
    const out: RequestCounts = {};
    for (const m of text.matchAll(/^apiserver_request_total\{([^}]*)\} (\S+)$/gm)) {
      const labels = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1] ?? '', l[2] ?? '']));
      if (labels.verb === 'WATCH') continue;
      const key = `${labels.verb ?? ''}${labels.dry_run ? ' (dry run)' : ''} ${labels.resource ?? ''}${labels.subresource ? `/${labels.subresource}` : ''}`;
      out[key] = (out[key] ?? 0) + Number(m[2]);
    }
    return out;
  } finally {
    await dispatcher.close();
  }
}

/** The `top` largest differences `after - before`, largest first. */
export function topDeltas(before: RequestCounts, after: RequestCounts, top = 10): { request: string; count: number }[] {
  return Object.entries(after)
    .map(([request, n]) => ({ request, count: n - (before[request] ?? 0) }))
    .filter((d) => d.count > 0)
    .sort((a, b) => b.count - a.count)
    .slice(0, top);
}
