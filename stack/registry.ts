import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { RegistryClient, type RegistryClientOptions } from '../lib/oci/index.js';
import { cacheDir } from './binaries.js';
import { freePort, waitFor } from './net.js';
import { spawnManaged, type ManagedProcess } from './proc.js';
import { startTokenServer, type TokenServer } from './registry-token.js';
import { createCA, issueCert } from './tls.js';

/**
 * The real OCI registry of the stack: Docker Distribution (Debian `docker-registry`) on a free loopback
 * port, in one of four modes:
 * - `http`: plain HTTP, anonymous;
 * - `tls`: HTTPS with a certificate from a CA generated for this run, anonymous;
 * - `tls-auth`: HTTPS + htpasswd (bcrypt) basic auth;
 * - `token`: HTTPS + `auth: token`, with a token server (registry-token.ts) issuing signed JWTs.
 * The access log (Apache combined format) goes to the log file, so tests can count what the registry received.
 */

/** How the registry is served and authenticated. */
export type RegistryMode = 'http' | 'tls' | 'tls-auth' | 'token';

/**
 * Which Docker Distribution runs it:
 * - `distribution-2`: Debian's `docker-registry` (2.8.2), the stack's default;
 * - `distribution-3`: Distribution v3.0.0, built from the Go module proxy by `stack/tools/install.sh --extras`.
 *   The benchmarks run on it: 2.8.2 compiles its whole route table again for every request (fixed upstream in
 *   v3, distribution/distribution#3683), which costs about 1.5 ms of CPU per request and made the registry a
 *   quarter of the CPU of a fleet's rollout on 2 cores (bench/README.md).
 */
export const REGISTRY_IMPLEMENTATIONS = ['distribution-2', 'distribution-3'] as const;
/** See {@link REGISTRY_IMPLEMENTATIONS}. */
export type RegistryImplementation = (typeof REGISTRY_IMPLEMENTATIONS)[number];

/** A running (or stopped) registry. */
export interface RegistryHandle {
  mode: RegistryMode;
  implementation: RegistryImplementation;
  /** `127.0.0.1:PORT`, as written in references. */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://...`. */
  url: string;
  /** The CA that signed the registry's certificate (TLS modes). */
  caPem?: string;
  caFile?: string;
  /** Credentials with full access (tls-auth and token modes). */
  username?: string;
  password?: string;
  /** Credentials allowed to pull only (token mode). */
  readerUsername?: string;
  readerPassword?: string;
  /** Token server realm and request count (token mode). */
  tokenRealm?: string;
  tokenRequests?: () => number;
  /** Root of the registry's filesystem storage. */
  storageDir: string;
  /** Where a blob's bytes are stored on disk (for tampering tests). */
  blobPath(digest: string): string;
  stop(): Promise<void>;
  /** Starts it again on the same port and storage. */
  start(): Promise<void>;
  /** Everything the registry wrote (access log and its own log). */
  logs(): string;
}

/** Options of {@link startRegistry}. */
export interface StartRegistryOptions {
  mode: RegistryMode;
  /** Folder for config, certificates and storage; default a new temporary folder. */
  rootDir?: string;
  port?: number;
  /** Address to listen on (default 127.0.0.1); a stack with a real node uses 0.0.0.0 so Pods reach it at the node's IP. */
  listen?: string;
  /** Default `distribution-2`. */
  implementation?: RegistryImplementation;
}

/** One request in the registry's access log. */
export interface AccessLogEntry {
  method: string;
  /** Path without query string. */
  path: string;
  status: number;
}

/** Parses the Apache combined-format lines Distribution writes for each request. */
export function parseAccessLog(text: string): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  const re = /"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d{3}) /g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    out.push({ method: m[1] ?? '', path: (m[2] ?? '').split('?')[0] ?? '', status: Number(m[3]) });
  }
  return out;
}

const run = promisify(execFile);

function binaryPath(key: 'registry' | 'htpasswd' | 'distributionV3', fallback: string): string {
  try {
    const recorded = (JSON.parse(readFileSync(join(cacheDir(), 'stack-binaries.json'), 'utf8')) as Record<string, string>)[key];
    if (recorded !== undefined && existsSync(recorded)) return recorded;
  } catch {
    // no manifest yet: use the Debian path
  }
  return fallback;
}

/** Distribution v3's binary, or an error saying how to build it. */
function distributionV3Binary(): string {
  const path = binaryPath('distributionV3', '');
  if (path === '') throw new Error('Distribution v3 is not built on this machine; build it with: bash stack/tools/install.sh --extras');
  return path;
}

interface ModeSetup {
  tls?: { certificate: string; key: string };
  auth?: Record<string, unknown>;
  extra: Partial<RegistryHandle>;
  tokenServer?: TokenServer;
}

async function setupMode(mode: RegistryMode, dir: string): Promise<ModeSetup> {
  if (mode === 'http') return { extra: {} };
  const ca = await createCA(join(dir, 'pki'), `flotilla-registry-${mode}`);
  const cert = await issueCert(ca, join(dir, 'pki'), {
    commonName: '127.0.0.1',
    ipAddresses: ['127.0.0.1'],
    dnsNames: ['localhost'],
    fileName: 'registry',
    usage: 'server',
  });
  const base: ModeSetup = { tls: { certificate: cert.certFile, key: cert.keyFile }, extra: { caPem: ca.certPem, caFile: ca.certFile } };
  const username = 'flotilla';
  const password = randomBytes(12).toString('hex');
  if (mode === 'tls-auth') {
    const { stdout } = await run(binaryPath('htpasswd', '/usr/bin/htpasswd'), ['-Bbn', username, password]);
    const htpasswd = join(dir, 'htpasswd');
    await writeFile(htpasswd, `${stdout.trim()}\n`);
    return { ...base, auth: { htpasswd: { realm: 'flotilla', path: htpasswd } }, extra: { ...base.extra, username, password } };
  }
  if (mode === 'token') {
    const readerPassword = randomBytes(12).toString('hex');
    const tokenServer = await startTokenServer({
      dir: join(dir, 'pki'),
      ca,
      service: 'flotilla-registry',
      issuer: 'flotilla-test-token-issuer',
      users: [
        { username, password },
        { username: 'reader', password: readerPassword, actions: ['pull'] },
      ],
    });
    return {
      ...base,
      tokenServer,
      auth: { token: { realm: tokenServer.realm, service: tokenServer.service, issuer: tokenServer.issuer, rootcertbundle: ca.certFile } },
      extra: {
        ...base.extra,
        username,
        password,
        readerUsername: 'reader',
        readerPassword,
        tokenRealm: tokenServer.realm,
        tokenRequests: tokenServer.requests,
      },
    };
  }
  return base;
}

/**
 * Starts Docker Distribution in `mode` and waits until `GET /v2/` answers (200, or 401 with auth).
 * The process is registered with the stack's process registry, so it dies with the test run.
 */
export async function startRegistry(options: StartRegistryOptions): Promise<RegistryHandle> {
  const dir = options.rootDir ?? (await mkdtemp(join(tmpdir(), `flotilla-registry-${options.mode}-`)));
  await mkdir(dir, { recursive: true });
  const storageDir = join(dir, 'storage');
  await mkdir(storageDir, { recursive: true });
  const port = options.port ?? (await freePort());
  const setup = await setupMode(options.mode, dir);
  // JSON is YAML: Distribution reads this file as YAML.
  const config = {
    version: 0.1,
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: { filesystem: { rootdirectory: storageDir }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } },
    http: { addr: `${options.listen ?? '127.0.0.1'}:${port}`, secret: randomBytes(16).toString('hex'), ...(setup.tls ? { tls: setup.tls } : {}) },
    ...(setup.auth ? { auth: setup.auth } : {}),
  };
  const configFile = join(dir, 'config.yml');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const logFile = join(dir, 'registry.log');
  const implementation = options.implementation ?? 'distribution-2';
  const binary = implementation === 'distribution-3' ? distributionV3Binary() : binaryPath('registry', '/usr/bin/docker-registry');
  const scheme = setup.tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  let proc: ManagedProcess | undefined;
  const logs = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');

  const start = async () => {
    if (proc?.running()) return;
    // v3 exports OpenTelemetry traces to localhost:4318 unless told not to: a request there per batch, and an
    // error in the log for each.
    const env = implementation === 'distribution-3' ? { ...process.env, OTEL_TRACES_EXPORTER: 'none' } : process.env;
    proc = spawnManaged(`docker-registry (${options.mode}, ${implementation})`, binary, ['serve', configFile], logFile, { env });
    const agent = new Agent({ connect: setup.extra.caPem ? { ca: setup.extra.caPem } : {} });
    try {
      await waitFor(
        async () => {
          if (!proc?.running()) throw new Error('the registry process exited');
          const res = await request(`${url}/v2/`, { dispatcher: agent });
          await res.body.dump();
          return res.statusCode === 200 || res.statusCode === 401;
        },
        {
          what: `docker-registry (${options.mode}) at ${url}`,
          timeoutMs: 30_000,
          intervalMs: 100,
          context: () => `registry log tail:\n${logs().slice(-2000)}`,
        },
      );
    } finally {
      await agent.close();
    }
  };
  await start();
  const handle: RegistryHandle = {
    mode: options.mode,
    implementation,
    host: `127.0.0.1:${port}`,
    url,
    ...setup.extra,
    storageDir,
    blobPath: (digest) => {
      const [algorithm, hex = ''] = digest.split(':');
      return join(storageDir, 'docker', 'registry', 'v2', 'blobs', algorithm ?? 'sha256', hex.slice(0, 2), hex, 'data');
    },
    stop: async () => {
      await proc?.stop();
    },
    start,
    logs,
  };
  if (setup.tokenServer) tokenServers.set(handle, setup.tokenServer);
  if (options.rootDir === undefined) ownedDirs.set(handle, dir);
  return handle;
}

// The token server outlives stop()/start() (a restart keeps the same realm); it is unref'd, so it never
// keeps the process alive, and disposeRegistry closes it.
const tokenServers = new WeakMap<RegistryHandle, TokenServer>();
/** Temporary folders made by startRegistry (no rootDir given), removed by disposeRegistry. */
const ownedDirs = new WeakMap<RegistryHandle, string>();

/** Stops a registry for good, with its token server (token mode), and removes the folder it made. */
export async function disposeRegistry(handle: RegistryHandle): Promise<void> {
  await handle.stop();
  await tokenServers.get(handle)?.stop();
  const dir = ownedDirs.get(handle);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}

/**
 * The registry's log once it has stopped growing for 300 ms (at most 10 s): the registry writes an
 * access-log line after it has answered, so a log read right after a response may miss that line.
 */
export async function settledLog(reg: RegistryHandle): Promise<string> {
  let text = reg.logs();
  let stableMs = 0;
  for (let waited = 0; waited < 10_000 && stableMs < 300; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = reg.logs();
    stableMs = now.length === text.length ? stableMs + 50 : 0;
    text = now;
  }
  return text;
}

/** Requests the registry logged after `mark` (a length of its settled log, see {@link settledLog}). */
export async function requestsSince(reg: RegistryHandle, mark: number): Promise<AccessLogEntry[]> {
  return parseAccessLog((await settledLog(reg)).slice(mark));
}

/**
 * A Flotilla registry client for `reg`, configured as the controller would be (plain HTTP in http mode,
 * the run's CA, full-access credentials), with retries that do not wait.
 */
export function registryClientFor(reg: RegistryHandle, options: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({
    registry: reg.host,
    basicHTTP: reg.mode === 'http',
    caPem: reg.caPem,
    credentials: reg.username !== undefined && reg.password !== undefined ? { username: reg.username, password: reg.password } : undefined,
    sleep: async () => {},
    ...options,
  });
}
