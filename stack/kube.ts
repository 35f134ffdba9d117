import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { generateKeyPairSync } from 'node:crypto';
import { Agent, request } from 'undici';
import { KubeConfig } from '@kubernetes/client-node';
import { spawnManaged, type ManagedProcess } from './proc.js';
import { freePort, waitFor } from './net.js';
import type { StackBinaries } from './binaries.js';

const run = promisify(execFile);

/**
 * One real Kubernetes control plane on loopback: etcd + kube-apiserver (+ kube-controller-manager on
 * request), with a CA generated for it, an admin client certificate (O=system:masters) and an admin
 * kubeconfig written to `<dir>/kubeconfig`. What controller-runtime's envtest does, in TypeScript.
 */

/** Options for {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** Cluster name, e.g. "upstream" or "downstream-1"; used in file and process names. */
  name: string;
  /** Folder for certificates, data and logs of this control plane. */
  dir: string;
  binaries: StackBinaries;
  /** Also run kube-controller-manager (garbage collection, namespace deletion). */
  controllerManager?: boolean;
  /**
   * Prepare for a real node (stack/node.ts): the API server reaches kubelets by their InternalIP, and
   * kube-controller-manager (implied) also runs the node lifecycle controller, which lifts the node's
   * not-ready taint.
   */
  node?: boolean;
  /**
   * Make the cluster usable by Pods of the real node: the API server also serves on this host address
   * (the node's IP, which Pods reach through their bridge; its certificate names it), advertises it as the
   * `kubernetes` Service's endpoint, and runs the ServiceAccount admission plugin so Pods get their token.
   * It listens on every address (the node's bridge only appears after the control planes start).
   */
  podReachableAt?: string;
}

/** A running control plane. */
export interface ControlPlane {
  readonly name: string;
  /** https://127.0.0.1:PORT */
  readonly server: string;
  /** Path of the admin kubeconfig. */
  readonly kubeconfigPath: string;
  /** PEM of the CA that signed the API server's serving certificate. */
  readonly caPem: string;
  /** A fresh KubeConfig loaded from the admin kubeconfig. */
  kubeConfig(): KubeConfig;
  /** Stops kube-apiserver only (for "API server down" faults); {@link startApiServer} brings it back on the same port. */
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  /** Stops every process of this control plane. */
  stop(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`);
  }
}

/** Generates the CA, serving cert, admin client cert and service-account keys in `dir`. */
async function writePki(dir: string, extraIp?: string): Promise<void> {
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '365', '-subj', '/CN=flotilla-test-ca'], dir);
  await writeFile(
    join(dir, 'serving.ext'),
    `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1${extraIp ? `,IP:${extraIp}` : ''}\n` +
      'extendedKeyUsage=serverAuth\n',
  );
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'serving.key', '-out', 'serving.csr', '-subj', '/CN=kube-apiserver'], dir);
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'serving.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'serving.crt',
      '-days',
      '365',
      '-extfile',
      'serving.ext',
    ],
    dir,
  );
  await writeFile(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'admin.key', '-out', 'admin.csr', '-subj', '/O=system:masters/CN=admin'], dir);
  await openssl(
    ['x509', '-req', '-in', 'admin.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'admin.crt', '-days', '365', '-extfile', 'client.ext'],
    dir,
  );
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await writeFile(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
}

function kubeconfigYaml(name: string, server: string, ca: string, cert: string, key: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    `current-context: ${name}`,
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(ca)}`,
    'users:',
    '- name: admin',
    '  user:',
    `    client-certificate-data: ${b64(cert)}`,
    `    client-key-data: ${b64(key)}`,
    'contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    '    user: admin',
    '',
  ].join('\n');
}

function tail(text: string, lines = 15): string {
  return text.split('\n').slice(-lines).join('\n');
}

async function logTail(path: string): Promise<string> {
  try {
    return tail(await readFile(path, 'utf8'));
  } catch {
    return '(no log)';
  }
}

/**
 * Starts etcd on free loopback ports and waits until it is healthy. Another stack starting at the same moment
 * can take a port between freePort() and etcd's bind; etcd then exits with "address already in use", and
 * this starts it again on new ports with an empty data folder (at most three attempts).
 */
async function startEtcd(name: string, dir: string, binary: string): Promise<{ etcd: ManagedProcess; etcdUrl: string }> {
  for (let attempt = 1; ; attempt++) {
    const [etcdClient, etcdPeer] = [await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    await rm(join(dir, 'etcd'), { recursive: true, force: true });
    await mkdir(join(dir, 'etcd'), { recursive: true });
    const etcd = spawnManaged(
      `etcd (${name})`,
      binary,
      [
        `--name=${name}`,
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=${name}=http://127.0.0.1:${etcdPeer}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
        '--quota-backend-bytes=4294967296',
      ],
      join(dir, 'etcd.log'),
    );
    const outcome = await waitFor(
      async () => {
        if (!etcd.running()) return 'exited' as const;
        const res = await request(`${etcdUrl}/health`);
        const body = await res.body.text();
        return res.statusCode === 200 && body.includes('true') ? ('healthy' as const) : undefined;
      },
      { what: `etcd of ${name} to be healthy`, timeoutMs: 60_000 },
    );
    if (outcome === 'healthy') return { etcd, etcdUrl };
    const log = await logTail(etcd.logFile);
    if (attempt < 3 && log.includes('address already in use')) continue;
    throw new Error(`etcd of ${name} exited: ${log}`);
  }
}

/** Starts etcd and kube-apiserver (and optionally kube-controller-manager); resolves when /readyz is ok. */
export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const { name, dir, binaries } = options;
  await mkdir(join(dir, 'certs'), { recursive: true });
  await writePki(dir, options.podReachableAt);
  const { etcd, etcdUrl } = await startEtcd(name, dir, binaries.etcd);
  const apiPort = await freePort();

  const server = `https://127.0.0.1:${apiPort}`;
  const caPem = await readFile(join(dir, 'ca.crt'), 'utf8');
  const apiArgs = [
    `--etcd-servers=${etcdUrl}`,
    `--cert-dir=${join(dir, 'certs')}`,
    `--tls-cert-file=${join(dir, 'serving.crt')}`,
    `--tls-private-key-file=${join(dir, 'serving.key')}`,
    `--secure-port=${apiPort}`,
    `--bind-address=${options.podReachableAt ? '0.0.0.0' : '127.0.0.1'}`,
    `--advertise-address=${options.podReachableAt ?? '127.0.0.1'}`,
    '--authorization-mode=RBAC',
    '--service-cluster-ip-range=10.0.0.0/24',
    `--service-account-issuer=${server}/`,
    `--service-account-key-file=${join(dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    `--client-ca-file=${join(dir, 'ca.crt')}`,
    '--allow-privileged=true',
    ...(options.podReachableAt ? [] : ['--disable-admission-plugins=ServiceAccount']),
    '--v=0',
    ...(options.node ? ['--kubelet-preferred-address-types=InternalIP'] : []),
  ];
  let apiserver: ManagedProcess | undefined;
  const startApiServer = async (): Promise<void> => {
    apiserver = spawnManaged(`kube-apiserver (${name})`, binaries.kubeApiserver, apiArgs, join(dir, 'kube-apiserver.log'));
    const proc = apiserver;
    const tlsAgent = new Agent({ connect: { ca: caPem, cert: await readFile(join(dir, 'admin.crt')), key: await readFile(join(dir, 'admin.key')) } });
    try {
      await waitFor(
        async () => {
          if (!proc.running()) throw new Error(`kube-apiserver exited: ${await logTail(proc.logFile)}`);
          const res = await request(`${server}/readyz`, { dispatcher: tlsAgent });
          return res.statusCode === 200 && (await res.body.text()) === 'ok';
        },
        { what: `kube-apiserver of ${name} to be ready`, timeoutMs: 120_000, intervalMs: 500, context: () => `log: ${proc.logFile}` },
      );
    } finally {
      await tlsAgent.close();
    }
  };
  await startApiServer();

  const kubeconfigPath = join(dir, 'kubeconfig');
  await writeFile(
    kubeconfigPath,
    kubeconfigYaml(name, server, caPem, await readFile(join(dir, 'admin.crt'), 'utf8'), await readFile(join(dir, 'admin.key'), 'utf8')),
    { mode: 0o600 },
  );

  let kcm: ManagedProcess | undefined;
  if (options.controllerManager || options.node) {
    kcm = spawnManaged(
      `kube-controller-manager (${name})`,
      binaries.kubeControllerManager,
      [
        `--kubeconfig=${kubeconfigPath}`,
        '--leader-elect=false',
        `--service-account-private-key-file=${join(dir, 'sa.key')}`,
        `--root-ca-file=${join(dir, 'ca.crt')}`,
        `--secure-port=${await freePort()}`,
        '--bind-address=127.0.0.1',
        options.node
          ? '--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route'
          : '--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-route,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ttl',
        '--use-service-account-credentials=false',
        '--v=0',
      ],
      join(dir, 'kube-controller-manager.log'),
    );
  }

  return {
    name,
    server,
    kubeconfigPath,
    caPem,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromFile(kubeconfigPath);
      return kc;
    },
    async stopApiServer() {
      await apiserver?.stop();
    },
    startApiServer,
    async stop() {
      await kcm?.stop();
      await apiserver?.stop();
      await etcd.stop();
    },
  };
}
