import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnManaged, type ManagedProcess } from './proc.js';
import { waitFor } from './net.js';

/**
 * containerd for the stack's real node (Debian containerd 1.6 with runc): every path under the node's
 * folder (root, state, socket, CNI configuration and IPAM data), the CRI plugin set up for this machine
 * (cgroupfs on cgroup v1, `restrict_oom_score_adj` because root here lacks CAP_SYS_RESOURCE), a bridge
 * CNI network without masquerading (Pods need no way out, so no NAT rules), and the stack's plain-HTTP
 * loopback registry as the only registry: under its own address and under {@link REGISTRY_ALIAS}, the
 * stable name sample manifests use.
 */

/** The name under which Pods on the node pull from the stack's registry, whatever its port. */
export const REGISTRY_ALIAS = 'registry.flotilla.local';

/** Options for {@link startContainerd}. */
export interface ContainerdOptions {
  /** The node's folder; containerd's files go to `<dir>/containerd`, the CNI's to `<dir>/cni`. */
  dir: string;
  containerd: string;
  runc: string;
  cniBinDir: string;
  /** The stack registry's host:port (plain HTTP, loopback). */
  registryHost: string;
  /** Sandbox image reference (pause). */
  sandboxImage: string;
  /** Name of the CNI bridge and the Pod subnet. */
  bridge: string;
  podSubnet: string;
}

/** A running containerd. */
export interface Containerd {
  /** unix:///.../containerd.sock, for the kubelet's --container-runtime-endpoint. */
  readonly endpoint: string;
  readonly socket: string;
  readonly process: ManagedProcess;
}

/** The containerd configuration (version 2 format, containerd 1.6). */
export function containerdConfig(o: ContainerdOptions): string {
  const d = join(o.dir, 'containerd');
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${d}/root"
state = "${d}/state"
oom_score = 0
[grpc]
  address = "${d}/containerd.sock"
[ttrpc]
  address = "${d}/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${d}/opt"
[${cri}]
  sandbox_image = "${o.sandboxImage}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [${cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        BinaryName = "${o.runc}"
        SystemdCgroup = false
        Root = "${d}/runc"
  [${cri}.cni]
    bin_dir = "${o.cniBinDir}"
    conf_dir = "${join(o.dir, 'cni', 'net.d')}"
    max_conf_num = 1
  [${cri}.registry]
    config_path = "${d}/certs.d"
`;
}

/** The bridge CNI network list: host-local IPAM under the node's folder, no masquerade, no port mapping. */
export function cniConfig(o: ContainerdOptions): string {
  return `${JSON.stringify(
    {
      cniVersion: '0.4.0',
      name: 'flotilla',
      plugins: [
        {
          type: 'bridge',
          bridge: o.bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: o.podSubnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(o.dir, 'cni', 'ipam') },
        },
      ],
    },
    null,
    2,
  )}\n`;
}

/** hosts.toml for a registry name served by the stack registry over plain HTTP. */
export function hostsToml(registryHost: string): string {
  return `server = "http://${registryHost}"\n\n[host."http://${registryHost}"]\n  capabilities = ["pull", "resolve"]\n`;
}

/** Writes the configuration and starts containerd; resolves when its socket answers. */
export async function startContainerd(o: ContainerdOptions): Promise<Containerd> {
  const d = join(o.dir, 'containerd');
  for (const name of [o.registryHost, REGISTRY_ALIAS]) {
    await mkdir(join(d, 'certs.d', name), { recursive: true });
    await writeFile(join(d, 'certs.d', name, 'hosts.toml'), hostsToml(o.registryHost));
  }
  await mkdir(join(o.dir, 'cni', 'net.d'), { recursive: true });
  await writeFile(join(o.dir, 'cni', 'net.d', '10-flotilla.conflist'), cniConfig(o));
  await writeFile(join(d, 'config.toml'), containerdConfig(o));
  const socket = join(d, 'containerd.sock');
  const proc = spawnManaged('containerd (node)', o.containerd, ['--config', join(d, 'config.toml'), '--log-level', 'warn'], join(o.dir, 'containerd.log'), {
    env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/usr/bin:/sbin:/bin` },
  });
  await waitFor(
    async () => {
      if (!proc.running()) throw new Error(`containerd exited: ${(await readFile(proc.logFile, 'utf8').catch(() => '')).split('\n').slice(-10).join('\n')}`);
      return existsSync(socket);
    },
    { what: 'containerd to listen', timeoutMs: 30_000, intervalMs: 100, context: () => `log: ${proc.logFile}` },
  );
  return { endpoint: `unix://${socket}`, socket, process: proc };
}
