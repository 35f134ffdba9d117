import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Reason } from '../lib/api/index.js';
import { contentsID, readGitRepoBundles } from '../lib/bundle/index.js';
import { dispositionOf } from '../lib/errors.js';
import { CliGitSource, translateGitError } from './git.js';

const run = promisify(execFile);

describe('git errors', () => {
  const repo = 'ssh://git@git.example:2222/apps.git';
  const generic = 'fatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n';
  const cases: { name: string; stderr: string; reason: string; stalls: boolean; says: RegExp }[] = [
    {
      name: "stalls on a refused SSH key, naming the Secret, not git's generic advice",
      stderr: `git@git.example: Permission denied (publickey).\r\n${generic}`,
      reason: Reason.AuthenticationFailed,
      stalls: true,
      says: /authentication failed: the server refused the SSH key of the clientSecretName Secret$/,
    },
    {
      name: 'stalls on a host missing from known_hosts and says how to add it',
      stderr: `No ED25519 host key is known for [git.example]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n${generic}`,
      reason: Reason.GitOperationFailed,
      stalls: true,
      says: /host key verification failed: no known_hosts entry for the server/,
    },
    {
      name: 'stalls on a host key that differs from known_hosts',
      stderr: `@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\nOffending ED25519 key in /w/.auth/git-x/known_hosts:1\r\nHost key verification failed.\r\n${generic}`,
      reason: Reason.GitOperationFailed,
      stalls: true,
      says: /host key differs from the one in known_hosts/,
    },
    {
      name: 'stalls on a private key ssh cannot load',
      stderr: `Load key "/w/.auth/git-x/id": invalid format\r\ngit@git.example: Permission denied (publickey).\r\n${generic}`,
      reason: Reason.AuthenticationFailed,
      stalls: true,
      says: /not a usable private key/,
    },
    {
      name: 'retries a refused HTTP connection even when the port contains 401 (not an authentication failure)',
      stderr: "fatal: unable to access 'http://127.0.0.1:40137/apps.git/': Failed to connect to 127.0.0.1 port 40137 after 0 ms: Couldn't connect to server\n",
      reason: Reason.GitOperationFailed,
      stalls: false,
      says: /Couldn't connect to server$/,
    },
    {
      name: 'stalls on an HTTP 403 from the git server',
      stderr: "fatal: unable to access 'http://127.0.0.1:8403/apps.git/': The requested URL returned error: 403\n",
      reason: Reason.AuthenticationFailed,
      stalls: true,
      says: /authentication failed/,
    },
    {
      name: 'retries a refused connection, saying what ssh said',
      stderr: `ssh: connect to host git.example port 2222: Connection refused\r\n${generic}`,
      reason: Reason.GitOperationFailed,
      stalls: false,
      says: /Connection refused$/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const err = translateGitError(repo, 'ls-remote', new Error(c.stderr));
      expect((err as { reason?: string }).reason).to.equal(c.reason);
      expect(dispositionOf(err) === 'stalling').to.equal(c.stalls);
      expect(err.message).to.match(c.says);
      expect(err.message).to.match(/^git ls-remote of ssh:\/\/git@git\.example:2222\/apps\.git: /);
      expect(err.message).not.to.include('/w/.auth');
    });
  }
});

describe('CliGitSource on a real repository', function () {
  this.timeout(60_000);
  let base: string;
  let origin: string;
  let url: string;
  let source: CliGitSource;
  const key = 'ws/apps';
  const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@flotilla.dev', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@flotilla.dev' };

  /** Commits `files` (null deletes) on main of the origin; returns the commit. */
  async function commit(files: Record<string, string | null>): Promise<string> {
    const work = await mkdtemp(join(base, 'work-'));
    const g = (...args: string[]) => run('git', ['-C', work, ...args], { env: gitEnv });
    await run('git', ['clone', '--quiet', origin, work], { env: gitEnv });
    await g('checkout', '--quiet', '-B', 'main');
    for (const [path, content] of Object.entries(files)) {
      if (content === null) await rm(join(work, path));
      else {
        await mkdir(dirname(join(work, path)), { recursive: true });
        await writeFile(join(work, path), content);
      }
    }
    await g('add', '-A');
    await g('commit', '--quiet', '-m', 'change');
    await g('push', '--quiet', 'origin', 'HEAD:refs/heads/main');
    const sha = (await g('rev-parse', 'HEAD')).stdout.trim();
    await rm(work, { recursive: true, force: true });
    return sha;
  }
  const target = () => ({ repo: url, branch: 'main', auth: {} });
  /** The files of the checkout (relative paths, sorted) and the contents ID of its one bundle. */
  async function checkedOut(dir: string): Promise<{ files: string[]; id: string }> {
    const files = (await readdir(join(dir, 'app'))).sort();
    const [bundle] = await readGitRepoBundles(dir, { repoName: 'apps', paths: ['app'] });
    return { files, id: contentsID(bundle?.files ?? []) };
  }
  const cm = (name: string, v: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  v: "${v}"\n`;
  const outage = () => rename(origin, `${origin}.away`);
  const recover = () => rename(`${origin}.away`, origin);

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'flotilla-git-test-'));
    origin = join(base, 'origin.git');
    url = `file://${origin}`;
    await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', origin]);
    source = new CliGitSource(join(base, 'controller'));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  const four = { 'app/a.yaml': cm('a', '1'), 'app/b.yaml': cm('b', '1'), 'app/c.yaml': cm('c', '1'), 'app/d.yaml': cm('d', '1') };
  const removal = { 'app/a.yaml': cm('a', '2'), 'app/c.yaml': null, 'app/d.yaml': null };
  const expected = {
    files: ['a.yaml', 'b.yaml'],
    id: contentsID([
      { path: 'a.yaml', content: cm('a', '2') },
      { path: 'b.yaml', content: cm('b', '1') },
    ]),
  };

  it('checks out a commit that removed files once the remote is back after an outage', async () => {
    const c1 = await commit(four);
    expect(await source.resolve(target())).to.equal(c1);
    expect((await checkedOut(await source.checkout(key, target(), c1))).files).to.have.length(4);
    await outage();
    const c2Pending = commit(removal).catch((err: unknown) => err);
    expect(await c2Pending, 'the push fails during the outage too').to.be.instanceOf(Error);
    const refused = await source.resolve(target()).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(dispositionOf(refused), 'an unreachable remote is retried').to.equal('transient');
    expect((refused as Error).message).to.match(/^git ls-remote of file:/);
    await recover();
    const c2 = await commit(removal);
    expect(await source.resolve(target())).to.equal(c2);
    expect(await checkedOut(await source.checkout(key, target(), c2))).to.deep.equal(expected);
  });

  it('checks out the resolved commit when the remote went away between resolving and fetching', async () => {
    const c1 = await commit(four);
    await source.checkout(key, target(), c1);
    const c2 = await commit(removal);
    expect(await source.resolve(target())).to.equal(c2);
    await outage();
    let failed: unknown;
    await source.checkout(key, target(), c2).catch((err: unknown) => {
      failed = err;
    });
    expect(dispositionOf(failed), 'an unreachable remote is retried').to.equal('transient');
    await recover();
    expect(await checkedOut(await source.checkout(key, target(), c2))).to.deep.equal(expected);
  });

  it("gives the commit's files even when the folder at that HEAD was left changed", async () => {
    const c1 = await commit(four);
    const c2 = await commit(removal);
    const dir = await source.checkout(key, target(), c2);
    // What an interrupted run could leave behind: a file of the previous commit, a missing one.
    await writeFile(join(dir, 'app', 'c.yaml'), cm('c', '1'));
    await rm(join(dir, 'app', 'b.yaml'));
    expect(c1).to.not.equal(c2);
    expect(await checkedOut(await source.checkout(key, target(), c2))).to.deep.equal(expected);
  });

  it("fetches from the GitRepo's new URL when it changed between checkouts", async () => {
    const c1 = await commit(four);
    await source.checkout(key, target(), c1);
    // The same repository moved: a copy of it with one more commit, under another URL.
    const moved = join(base, 'moved.git');
    await rename(origin, moved);
    await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', origin]);
    await run('git', ['-C', moved, 'push', '--quiet', origin, 'main'], { env: gitEnv });
    const c2 = await commit(removal);
    await rename(origin, join(base, 'elsewhere.git'));
    await rename(moved, origin);
    const movedUrl = `file://${join(base, 'elsewhere.git')}`;
    expect(await source.resolve({ ...target(), repo: movedUrl })).to.equal(c2);
    expect(await checkedOut(await source.checkout(key, { ...target(), repo: movedUrl }, c2))).to.deep.equal(expected);
  });

  it('recovers a checkout that a killed git left locked', async () => {
    const c1 = await commit(four);
    const dir = await source.checkout(key, target(), c1);
    await writeFile(join(dir, '.git', 'index.lock'), '');
    const c2 = await commit(removal);
    expect(await checkedOut(await source.checkout(key, target(), c2))).to.deep.equal(expected);
  });
});
