import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { checkIptables, restoreIptables, snapshotIptables, type IptablesSnapshot } from './iptables.js';

const run = promisify(execFile);

/**
 * The host state a real node changes, recorded before the node starts so that its teardown (on `down`
 * and after a failed start) can put every piece back, and a check can list anything left behind:
 * sysctls, iptables chains and rules, mounts, network links and namespaces, cgroups, and the paths the
 * kubelet, containerd and the CNI plugins create outside the node's own folder.
 */

/** Sysctls the kubelet, the bridge CNI plugin and kube-proxy are known to set. */
export const NODE_SYSCTLS = [
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
  'net.ipv4.ip_forward',
  'net.ipv4.conf.all.forwarding',
  'net.ipv4.conf.all.route_localnet',
  'net.ipv6.conf.all.forwarding',
  'net.bridge.bridge-nf-call-iptables',
  'net.bridge.bridge-nf-call-ip6tables',
  'net.netfilter.nf_conntrack_max',
  'net.netfilter.nf_conntrack_tcp_timeout_established',
  'net.netfilter.nf_conntrack_tcp_timeout_close_wait',
];

/** Paths outside the node's folder that the node's programs may create (removed if they did not exist). */
export const NODE_HOST_PATHS = [
  '/var/log/containers',
  '/var/log/pods',
  '/var/lib/kubelet',
  '/var/lib/cni',
  '/var/lib/containerd',
  '/run/containerd',
  '/run/netns',
  '/var/run/netns',
  '/etc/cni',
  '/etc/kubernetes',
  '/run/flannel',
];

/** What the host looked like before the node started. */
export interface HostSnapshot {
  sysctls: Record<string, string>;
  iptables: IptablesSnapshot;
  mounts: string[];
  links: string[];
  netns: string[];
  /** Top-level cgroup folders of every hierarchy, e.g. /sys/fs/cgroup/memory/user.slice. */
  cgroups: string[];
  /** Which of {@link NODE_HOST_PATHS} existed. */
  paths: Record<string, boolean>;
  /** Entries of /var/log/containers (the kubelet's symlinks), when it existed. */
  logLinks: string[];
}

const sysctlPath = (key: string) => join('/proc/sys', ...key.split('.'));

async function readSysctls(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of NODE_SYSCTLS) {
    try {
      out[key] = (await readFile(sysctlPath(key), 'utf8')).trim();
    } catch {
      /* not present in this kernel */
    }
  }
  return out;
}

/** Mount points from /proc/self/mountinfo (octal escapes decoded). */
export function parseMountPoints(mountinfo: string): string[] {
  return mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && p !== '')
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8))));
}

async function readMounts(): Promise<string[]> {
  return parseMountPoints(await readFile('/proc/self/mountinfo', 'utf8'));
}

async function readLinks(): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'link', 'show']);
  return stdout
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0])
    .filter((n): n is string => n !== undefined && n !== '');
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function readCgroups(): Promise<string[]> {
  const out: string[] = [];
  for (const hierarchy of await list('/sys/fs/cgroup')) {
    const base = join('/sys/fs/cgroup', hierarchy);
    for (const entry of await readdir(base, { withFileTypes: true }).catch(() => [])) if (entry.isDirectory()) out.push(join(base, entry.name));
  }
  return out;
}

/** Records the host state the node will change. */
export async function snapshotHost(): Promise<HostSnapshot> {
  const paths: Record<string, boolean> = {};
  for (const p of NODE_HOST_PATHS) paths[p] = existsSync(p);
  return {
    sysctls: await readSysctls(),
    iptables: await snapshotIptables(),
    mounts: await readMounts(),
    links: await readLinks(),
    netns: await list('/run/netns'),
    cgroups: await readCgroups(),
    paths,
    logLinks: await list('/var/log/containers'),
  };
}

/** Kills every process in `cgroup` and below, then removes the folders deepest first. */
async function removeCgroup(cgroup: string, problems: string[]): Promise<void> {
  for (const entry of await readdir(cgroup, { withFileTypes: true }).catch(() => []))
    if (entry.isDirectory()) await removeCgroup(join(cgroup, entry.name), problems);
  for (let attempt = 0; attempt < 20; attempt++) {
    const pids = (await readFile(join(cgroup, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    try {
      await rmdir(cgroup);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      if (attempt === 19) problems.push(`cgroup ${cgroup}: ${(err as Error).message}`);
    }
    await sleep(100);
  }
}

async function unmount(point: string, problems: string[]): Promise<void> {
  try {
    await run('umount', [point]);
  } catch {
    try {
      await run('umount', ['-l', point]);
    } catch (err) {
      problems.push(`mount ${point}: ${((err as { stderr?: string }).stderr ?? String(err)).trim()}`);
    }
  }
}

async function restoreNetwork(before: HostSnapshot, problems: string[]): Promise<void> {
  for (const ns of await list('/run/netns')) {
    if (before.netns.includes(ns)) continue;
    await run('ip', ['netns', 'delete', ns]).catch((err: { stderr?: string }) => problems.push(`netns ${ns}: ${(err.stderr ?? '').trim()}`));
  }
  const links = await readLinks();
  for (const link of links.filter((l) => !before.links.includes(l))) {
    await run('ip', ['link', 'delete', link]).catch((err: { stderr?: string }) => {
      // A veth goes with its peer: gone by now is fine.
      if (!(err.stderr ?? '').includes('Cannot find device')) problems.push(`link ${link}: ${(err.stderr ?? '').trim()}`);
    });
  }
}

async function restorePaths(before: HostSnapshot, problems: string[]): Promise<void> {
  if (before.paths['/var/log/containers']) {
    for (const entry of await list('/var/log/containers')) {
      if (!before.logLinks.includes(entry)) await rm(join('/var/log/containers', entry), { force: true });
    }
  }
  for (const [path, existed] of Object.entries(before.paths)) {
    if (existed || !existsSync(path)) continue;
    try {
      await rm(path, { recursive: true, force: true });
    } catch (err) {
      problems.push(`path ${path}: ${(err as Error).message}`);
    }
  }
}

async function restoreSysctls(before: HostSnapshot, problems: string[]): Promise<void> {
  const now = await readSysctls();
  for (const [key, value] of Object.entries(before.sysctls)) {
    if (now[key] === value) continue;
    await writeFile(sysctlPath(key), value).catch((err: Error) => problems.push(`sysctl ${key}=${value}: ${err.message}`));
  }
}

/**
 * Puts the host back as `before` recorded it (every step runs even when one fails); returns what could
 * not be undone, one line each (empty when everything was).
 */
export async function restoreHost(before: HostSnapshot): Promise<string[]> {
  const problems: string[] = [];
  for (const cgroup of (await readCgroups()).filter((c) => !before.cgroups.includes(c))) await removeCgroup(cgroup, problems);
  const mounts = (await readMounts()).filter((m) => !before.mounts.includes(m));
  for (const point of [...new Set(mounts)].sort((a, b) => b.length - a.length)) await unmount(point, problems);
  await restoreNetwork(before, problems);
  problems.push(...(await restoreIptables(before.iptables)));
  await restorePaths(before, problems);
  await restoreSysctls(before, problems);
  return problems;
}

/** Lists every change to the host since `before` that is still there, one line each (empty: none). */
export async function checkHost(before: HostSnapshot): Promise<string[]> {
  const left: string[] = [];
  const sysctls = await readSysctls();
  for (const [key, value] of Object.entries(before.sysctls)) if (sysctls[key] !== value) left.push(`sysctl ${key} is ${sysctls[key]}, was ${value}`);
  for (const m of await readMounts()) if (!before.mounts.includes(m)) left.push(`mount ${m}`);
  for (const l of await readLinks()) if (!before.links.includes(l)) left.push(`network link ${l}`);
  for (const n of await list('/run/netns')) if (!before.netns.includes(n)) left.push(`network namespace ${n}`);
  for (const c of await readCgroups()) if (!before.cgroups.includes(c)) left.push(`cgroup ${c}`);
  for (const [p, existed] of Object.entries(before.paths)) if (!existed && existsSync(p)) left.push(`path ${p}`);
  for (const e of await list('/var/log/containers')) if (!before.logLinks.includes(e)) left.push(`/var/log/containers/${e}`);
  left.push(...(await checkIptables(before.iptables)));
  return left;
}

/** Process ids whose command line contains `needle` (other than this process), with their command line. */
export async function processesMatching(needle: string): Promise<{ pid: number; args: string }[]> {
  const out: { pid: number; args: string }[] = [];
  for (const entry of await list('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const args = (await readFile(join('/proc', entry, 'cmdline'), 'utf8').catch(() => '')).split('\0').join(' ').trim();
    if (args.includes(needle)) out.push({ pid, args });
  }
  return out;
}
