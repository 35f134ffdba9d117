import { execFile } from 'node:child_process';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join, normalize, sep } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './net.js';
import { createCA, issueCert } from './tls.js';

/**
 * A Helm chart repository for the stack: a small Node HTTPS server (certificate from a CA made for this
 * run) with basic auth, serving the files of one folder, i.e. the `index.yaml` and chart `.tgz` files that
 * the real `helm package` and `helm repo index` write there ({@link publishChart}). Every request is
 * recorded (method, path, status), so tests can see what the controller fetched and that agents fetched
 * nothing. Files carry an `ETag` and a `Last-Modified`, and a conditional GET that still matches is answered
 * `304 Not Modified`, as by the static web servers and object stores that host most Helm repositories.
 */

const run = promisify(execFile);

/** A request the repository answered. */
export interface HelmRepoRequest {
  method: string;
  path: string;
  status: number;
}

/** A running Helm repository. */
export interface HelmRepoHandle {
  /** `https://127.0.0.1:PORT/charts`: the repository URL (index.yaml is below it). */
  url: string;
  /** The folder served under /charts. */
  dir: string;
  caPem: string;
  caFile: string;
  username: string;
  password: string;
  /** Every request so far. */
  requests(): HelmRepoRequest[];
  stop(): Promise<void>;
}

function authorized(header: string | undefined, expected: Buffer): boolean {
  if (!header?.startsWith('Basic ')) return false;
  const given = Buffer.from(header.slice('Basic '.length), 'base64');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Starts the repository on a free loopback port; files are served from `dir` (default: a new temporary folder). */
export async function startHelmRepo(options: { dir?: string } = {}): Promise<HelmRepoHandle> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-helmrepo-'));
  const dir = options.dir ?? join(root, 'charts');
  await mkdir(dir, { recursive: true });
  const ca = await createCA(join(root, 'pki'), 'flotilla-helmrepo');
  const cert = await issueCert(ca, join(root, 'pki'), { commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' });
  const username = 'charts';
  const password = randomBytes(12).toString('hex');
  const expected = Buffer.from(`${username}:${password}`);
  const log: HelmRepoRequest[] = [];
  const server: Server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const answer = (status: number, body: Buffer | string, type = 'text/plain', validators: Record<string, string> = {}) => {
      log.push({ method: req.method ?? 'GET', path, status });
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...validators });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (!authorized(req.headers.authorization, expected)) {
      res.setHeader('www-authenticate', 'Basic realm="charts"');
      answer(401, 'unauthorized\n');
      return;
    }
    const rel = normalize(decodeURIComponent(path.replace(/^\/charts\//, '')));
    const file = join(dir, rel);
    if (!path.startsWith('/charts/') || !file.startsWith(dir + sep)) {
      answer(404, 'not found\n');
      return;
    }
    // Validators as a static web server gives them (an ETag of the content, the file's Last-Modified), and
    // 304 Not Modified for a conditional GET that still matches (If-None-Match first, as RFC 9110 says).
    Promise.all([readFile(file), stat(file)]).then(
      ([body, info]) => {
        const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`;
        const lastModified = new Date(Math.floor(info.mtimeMs / 1000) * 1000).toUTCString();
        const ifNoneMatch = req.headers['if-none-match'];
        const ifModifiedSince = req.headers['if-modified-since'];
        const fresh =
          ifNoneMatch !== undefined
            ? ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)
            : ifModifiedSince !== undefined && Date.parse(ifModifiedSince) >= Date.parse(lastModified);
        const validators = { etag, 'last-modified': lastModified };
        if (fresh) answer(304, '', undefined, validators);
        else answer(200, body, file.endsWith('.yaml') ? 'application/x-yaml' : 'application/gzip', validators);
      },
      () => answer(404, 'not found\n'),
    );
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    url: `https://127.0.0.1:${port}/charts`,
    dir,
    caPem: ca.certPem,
    caFile: ca.certFile,
    username,
    password,
    requests: () => [...log],
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * Packages the chart folder `chartDir` with the real `helm package` into the repository's folder and
 * re-indexes it with `helm repo index --url` (so index.yaml lists every version published so far). Returns
 * the package's file name.
 */
export async function publishChart(helm: string, repo: Pick<HelmRepoHandle, 'dir' | 'url'>, chartDir: string): Promise<string> {
  const env = { ...process.env, HELM_CACHE_HOME: join(repo.dir, '..', 'helm-cache'), HELM_CONFIG_HOME: join(repo.dir, '..', 'helm-config') };
  const { stdout } = await run(helm, ['package', chartDir, '--destination', repo.dir], { env });
  const tgz = /([^/\s]+\.tgz)\s*$/.exec(stdout.trim())?.[1];
  if (!tgz || !(await stat(join(repo.dir, tgz)).catch(() => undefined))) throw new Error(`helm package did not say which file it wrote: ${stdout}`);
  await run(helm, ['repo', 'index', repo.dir, '--url', repo.url], { env });
  return tgz;
}
