import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';

/**
 * Reading a stack cluster's etcd directly (loopback, its v3 JSON gateway and /metrics): the exact bytes
 * the API server stored for an object, how many times it was written, and the database size.
 */

/** The client URL of the etcd whose data folder is `<stackDir>/clusters/<cluster>/etcd` (found in /proc). */
export function etcdUrlOf(stackDir: string, cluster: string): string {
  const dataDir = `--data-dir=${join(stackDir, 'clusters', cluster, 'etcd')}`;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!args.includes(dataDir)) continue;
    const url = args
      .find((a) => a.startsWith('--listen-client-urls='))
      ?.split('=')[1]
      ?.split(',')[0];
    if (url !== undefined) return url;
  }
  throw new Error(`no running etcd with ${dataDir}`);
}

/** One stored key: value size in bytes and how many times it was written since it was created. */
export interface StoredValue {
  bytes: number;
  version: number;
}

/** The value stored under `key` (e.g. `/registry/flotilla.dev/bundles/ns/name`), or undefined. */
export async function storedValue(etcdUrl: string, key: string): Promise<StoredValue | undefined> {
  const res = await request(`${etcdUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64') }) });
  const body = (await res.body.json()) as { kvs?: { value?: string; version?: string }[] };
  const kv = body.kvs?.[0];
  if (!kv) return undefined;
  return { bytes: Buffer.from(kv.value ?? '', 'base64').length, version: Number(kv.version ?? 0) };
}

/** etcd's database size in use (bytes), from its /metrics. */
export async function dbSizeInUse(etcdUrl: string): Promise<number> {
  const res = await request(`${etcdUrl}/metrics`);
  const text = await res.body.text();
  return Number(/^etcd_mvcc_db_total_size_in_use_in_bytes (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
}
