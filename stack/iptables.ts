import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The host's iptables rule sets (IPv4 and IPv6), as the node's teardown sees them: a snapshot is the set
 * of chains and rules per table; undoing returns every table to its snapshot by deleting the rules added
 * to chains that existed before and flushing and deleting the chains that did not (the kubelet's
 * KUBE-FIREWALL, KUBE-KUBELET-CANARY, ...; the bridge CNI's CNI-* chains). Rules that existed before are
 * never touched, so a rule set changed meanwhile by someone else keeps their changes.
 */

/** One family's tables: table name -> chains and rule lines (`-A CHAIN ...`, as iptables-save prints them). */
export type IptablesTables = Record<string, { chains: string[]; rules: string[] }>;

/** Both families; a family whose iptables-save fails (no IPv6 in the kernel) is recorded as absent. */
export interface IptablesSnapshot {
  ipv4?: IptablesTables;
  ipv6?: IptablesTables;
}

const FAMILIES = { ipv4: 'iptables', ipv6: 'ip6tables' } as const;
/** nft's name of each family, for the tables iptables-nft creates on first use. */
const NFT_FAMILY = { ipv4: 'ip', ipv6: 'ip6' } as const;

/** Parses iptables-save output into tables. */
export function parseIptablesSave(text: string): IptablesTables {
  const tables: IptablesTables = {};
  let current: { chains: string[]; rules: string[] } | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      current = { chains: [], rules: [] };
      tables[line.slice(1).trim()] = current;
    } else if (line.startsWith(':') && current) {
      current.chains.push(line.slice(1).split(' ')[0] ?? '');
    } else if (line.startsWith('-A ') && current) {
      current.rules.push(line.trim());
    }
  }
  return tables;
}

/** Reads both families' rule sets. */
export async function snapshotIptables(): Promise<IptablesSnapshot> {
  const out: IptablesSnapshot = {};
  for (const [family, tool] of Object.entries(FAMILIES) as [keyof IptablesSnapshot, string][]) {
    try {
      const { stdout } = await run(`${tool}-save`, [], { maxBuffer: 64 * 1024 * 1024 });
      out[family] = parseIptablesSave(stdout);
    } catch {
      /* family unavailable: nothing to record or restore */
    }
  }
  return out;
}

/**
 * The iptables-restore --noflush script that brings `after` back to `before` (empty when they agree):
 * deletes of added rules in old chains, then flush and delete of the new chains. Tables absent from
 * `before` are left out: they are deleted whole.
 */
export function undoScript(before: IptablesTables, after: IptablesTables): string {
  const lines: string[] = [];
  for (const [table, now] of Object.entries(after)) {
    // A table that did not exist is deleted whole (restoreIptables), built-in chains and all.
    const old = before[table];
    if (!old) continue;
    const oldChains = new Set(old.chains);
    const oldRules = new Set(old.rules);
    const newChains = now.chains.filter((c) => !oldChains.has(c));
    const deletes = now.rules.filter((r) => !oldRules.has(r) && oldChains.has(r.split(' ')[1] ?? '')).map((r) => `-D${r.slice(2)}`);
    if (deletes.length === 0 && newChains.length === 0) continue;
    lines.push(`*${table}`, ...deletes, ...newChains.map((c) => `-F ${c}`), ...newChains.map((c) => `-X ${c}`), 'COMMIT');
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** What differs between two families' tables, one line each (for leftover checks). */
export function iptablesDifferences(family: string, before: IptablesTables, after: IptablesTables): string[] {
  const diffs: string[] = [];
  for (const [table, now] of Object.entries(after)) {
    if (!before[table]) {
      diffs.push(`${family}: table ${table} left behind${now.rules.length === 0 ? ' (empty)' : ''}`);
      continue;
    }
    const old = before[table] ?? { chains: [], rules: [] };
    for (const c of now.chains) if (!old.chains.includes(c)) diffs.push(`${family} ${table}: chain ${c} left behind`);
    const oldRules = new Set(old.rules);
    for (const r of now.rules) if (!oldRules.has(r)) diffs.push(`${family} ${table}: rule left behind: ${r}`);
  }
  return diffs;
}

async function restoreInput(tool: string, script: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(`${tool}-restore`, ['--noflush'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${tool}-restore exited ${code}: ${stderr.trim()}`))));
    child.stdin.end(script);
  });
}

/** Undoes every change made to the rule sets since `before`; returns what it could not undo. */
export async function restoreIptables(before: IptablesSnapshot): Promise<string[]> {
  const now = await snapshotIptables();
  const problems: string[] = [];
  for (const [family, tool] of Object.entries(FAMILIES) as [keyof IptablesSnapshot, string][]) {
    const old = before[family];
    const current = now[family];
    if (!old || !current) continue;
    const script = undoScript(old, current);
    try {
      if (script !== '') await restoreInput(tool, script);
    } catch (err) {
      problems.push(`${family}: ${(err as Error).message}`);
    }
    // iptables-nft creates a table on first use; one that did not exist goes too (it is empty by now).
    for (const table of Object.keys(current).filter((t) => !old[t])) {
      await run('nft', ['delete', 'table', NFT_FAMILY[family], table]).catch((err: { stderr?: string; message?: string }) =>
        problems.push(`${family}: table ${table}: nft delete table failed: ${(err.stderr ?? err.message ?? '').trim()}`),
      );
    }
  }
  return problems;
}

/** Lists every chain and rule present now and absent from `before`. */
export async function checkIptables(before: IptablesSnapshot): Promise<string[]> {
  const now = await snapshotIptables();
  const out: string[] = [];
  for (const family of Object.keys(FAMILIES) as (keyof IptablesSnapshot)[]) {
    const old = before[family];
    const current = now[family];
    if (old && current) out.push(...iptablesDifferences(family, old, current));
  }
  return out;
}
