import { spawn, execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { timingSafeEqual } from 'node:crypto';

const run = promisify(execFile);

/**
 * A real git server over HTTP(S): `git http-backend` (CGI, from Debian's git) behind a small Node
 * HTTP server that enforces basic auth. Clone and push use git's smart HTTP protocol.
 */

/** Options for {@link startGitServer}. */
export interface GitServerOptions {
  /** Folder holding the bare repositories. */
  rootDir: string;
  /** Credentials required for every request; default user "flotilla" and a random password. */
  username?: string;
  password?: string;
  /** When set, anonymous clone (read) is allowed; push always needs credentials. */
  anonymousRead?: boolean;
  /** Serve HTTPS with this certificate (PEM). */
  tls?: { certPem: string; keyPem: string };
  /** Port on 127.0.0.1; default a free one. */
  port?: number;
}

/** A running git server. */
export interface GitServer {
  /** Base URL, e.g. http://127.0.0.1:PORT ; repositories are at `${url}/NAME.git`. */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly rootDir: string;
  /** Number of requests served, per repository, since start (for "no work beyond the fetch" checks). */
  requestCount(repo?: string): number;
  /** Creates an empty bare repository whose default branch is `main`; returns its clone URL. */
  createRepo(name: string): Promise<string>;
  /**
   * Commits `files` (path -> content; null deletes the path) on `branch` (default main) of `repo`,
   * pushing through this server's HTTP endpoint with credentials. Returns the new commit SHA.
   */
  commit(repo: string, files: Record<string, string | Buffer | null>, message: string, branch?: string): Promise<string>;
  /** Stops accepting connections (for "git server down" faults); {@link start} resumes on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

function authorized(req: IncomingMessage, username: string, password: string): boolean {
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return false;
  const given = Buffer.from(Buffer.from(header.slice(6), 'base64').toString('utf8'));
  const expected = Buffer.from(`${username}:${password}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function isPush(_req: IncomingMessage, url: URL): boolean {
  return url.pathname.endsWith('/git-receive-pack') || url.searchParams.get('service') === 'git-receive-pack';
}

function cgiEnv(req: IncomingMessage, url: URL, rootDir: string, user: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: rootDir,
    GIT_HTTP_EXPORT_ALL: '1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.replace(/^\?/, ''),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
  };
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  if (user) env.REMOTE_USER = user;
  for (const [key, value] of Object.entries(req.headers)) {
    if (typeof value === 'string') env[`HTTP_${key.toUpperCase().replace(/-/g, '_')}`] = value;
  }
  return env;
}

/** Runs git http-backend for one request and relays its CGI response. */
function serveCgi(req: IncomingMessage, res: ServerResponse, env: NodeJS.ProcessEnv): void {
  const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  req.pipe(cgi.stdin);
  let headerDone = false;
  let buffered = Buffer.alloc(0);
  cgi.stdout.on('data', (chunk: Buffer) => {
    if (headerDone) {
      res.write(chunk);
      return;
    }
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf('\r\n\r\n');
    const endLf = buffered.indexOf('\n\n');
    const cut = end >= 0 ? end : endLf;
    if (cut < 0) return;
    const sepLen = end >= 0 ? 4 : 2;
    const head = buffered.subarray(0, cut).toString('latin1');
    let status = 200;
    for (const line of head.split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i < 0) continue;
      const name = line.slice(0, i).trim();
      const value = line.slice(i + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
      else res.setHeader(name, value);
    }
    res.statusCode = status;
    headerDone = true;
    res.write(buffered.subarray(cut + sepLen));
  });
  let stderr = '';
  cgi.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  cgi.on('close', (code) => {
    if (!headerDone) {
      res.statusCode = 500;
      res.end(`git http-backend failed (${code}): ${stderr}`);
      return;
    }
    res.end();
  });
}

/** Starts a git server; see {@link GitServerOptions}. */
export async function startGitServer(options: GitServerOptions): Promise<GitServer> {
  const username = options.username ?? 'flotilla';
  const password = options.password ?? `pw-${Math.random().toString(36).slice(2)}`;
  const rootDir = options.rootDir;
  await mkdir(rootDir, { recursive: true });
  const counts = new Map<string, number>();

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://git.local');
    const repo = url.pathname.split('/')[1] ?? '';
    counts.set(repo, (counts.get(repo) ?? 0) + 1);
    const ok = authorized(req, username, password);
    if (!ok && (!options.anonymousRead || isPush(req, url))) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="flotilla-git"' });
      res.end('authentication required\n');
      return;
    }
    serveCgi(req, res, cgiEnv(req, url, rootDir, ok ? username : undefined));
  };

  let server: Server | undefined;
  let port = options.port ?? 0;
  const listen = async (): Promise<void> => {
    server = options.tls ? createTlsServer({ cert: options.tls.certPem, key: options.tls.keyPem }, handler) : createServer(handler);
    const s = server;
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    const address = s.address();
    if (address && typeof address === 'object') port = address.port;
  };
  await listen();
  const scheme = options.tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;

  const authedUrl = (repo: string): string => `${scheme}://${encodeURIComponent(username)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${repo}.git`;

  const gitEnv = {
    ...process.env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Flotilla Test',
    GIT_AUTHOR_EMAIL: 'test@flotilla.dev',
    GIT_COMMITTER_NAME: 'Flotilla Test',
    GIT_COMMITTER_EMAIL: 'test@flotilla.dev',
    ...(options.tls ? { GIT_SSL_NO_VERIFY: '1' } : {}),
  };

  return {
    url,
    username,
    password,
    rootDir,
    requestCount: (repo?: string) => (repo === undefined ? [...counts.values()].reduce((a, b) => a + b, 0) : (counts.get(`${repo}.git`) ?? 0)),
    async createRepo(name: string): Promise<string> {
      const dir = join(rootDir, `${name}.git`);
      await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', dir]);
      await run('git', ['-C', dir, 'config', 'http.receivepack', 'true']);
      return `${url}/${name}.git`;
    },
    async commit(repo, files, message, branch = 'main'): Promise<string> {
      const work = await mkdtemp(join(tmpdir(), 'flotilla-git-'));
      try {
        const git = (...args: string[]) => run('git', ['-C', work, ...args], { env: gitEnv, maxBuffer: 64 << 20 });
        await run('git', ['init', '--quiet', `--initial-branch=${branch}`, work]);
        await git('remote', 'add', 'origin', authedUrl(repo));
        const remoteHas = await git('ls-remote', 'origin', `refs/heads/${branch}`);
        if (remoteHas.stdout.trim() !== '') {
          await git('fetch', '--quiet', '--depth=1', 'origin', branch);
          await git('checkout', '--quiet', '-B', branch, 'FETCH_HEAD');
        }
        for (const [path, content] of Object.entries(files)) {
          const target = join(work, path);
          if (content === null) {
            await rm(target, { recursive: true, force: true });
          } else {
            await mkdir(dirname(target), { recursive: true });
            await writeFile(target, content);
          }
        }
        await git('add', '-A');
        await git('commit', '--quiet', '--allow-empty', '-m', message);
        await git('push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`);
        return (await git('rev-parse', 'HEAD')).stdout.trim();
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
    async stop(): Promise<void> {
      const s = server;
      if (!s) return;
      server = undefined;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async start(): Promise<void> {
      if (server) return;
      await listen();
    },
  };
}
