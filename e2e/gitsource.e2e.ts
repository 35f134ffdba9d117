/**
 * Git sources on the real stack: the controller and an agent run as real processes (e2e/support/processes.ts),
 * git is served by `git http-backend` (push helpers) and by OpenSSH's sshd over the same repositories
 * (stack/git-ssh.ts). Covers SSH keys and host key checks, `revision` pinning (commit and tag),
 * `paused`, `disablePolling`, `forceSyncGeneration`, and convergence after a git outage.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { stack } from './fixture.js';
import { waitFor } from '../stack/net.js';
import { generateSshKey, knownHostsLine, type SshGitServer } from '../stack/git-ssh.js';
import { startFleet, fleetSuiteTeardown, type Fleet } from './support/processes.js';
import { API_VERSION, Annotation, Label, getCondition, type Bundle, type BundleDeployment, type Condition, type GitRepo } from '../lib/api/index.js';
import { KubeClient, type KubeObject } from '../lib/kube/client.js';
import { contentsID } from '../lib/bundle/index.js';
import { RegistryClient, pullBundle } from '../lib/oci/index.js';

const run = promisify(execFile);
type Obj<T> = T & KubeObject;
type ConfigMap = KubeObject & { data?: Record<string, string> };

const WS = 'gs-e2e';
const MANAGER = 'gs-e2e';
const TIMEOUT = 90_000;

const cmYaml = (name: string, version: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  version: "${version}"\n`;

/** One bundle `app` deploying ConfigMaps `names` (each carrying `version`) into namespace `ns`. */
function appFiles(ns: string, version: string, names: string[] = ['settings']): Record<string, string> {
  const files: Record<string, string> = { 'app/fleet.yaml': `defaultNamespace: ${ns}\n` };
  for (const n of names) files[`app/${n}.yaml`] = cmYaml(n, version);
  return files;
}

describe('git sources: SSH, revision pinning, paused, disablePolling, forceSyncGeneration, outages', function () {
  this.timeout(10 * 60_000);
  let fleet: Fleet;
  let up: KubeClient;
  let down: KubeClient;
  const git = () => stack().git!;
  const ssh = (): SshGitServer => {
    const s = stack().sshGit;
    if (!s) throw new Error('the stack runs no SSH git server (StackOptions.sshGit)');
    return s;
  };

  const getRepo = (name: string) => up.get<Obj<GitRepo>>({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name });
  const waitRepo = (name: string, what: string, ok: (r: Obj<GitRepo>) => boolean) => {
    let last: Obj<GitRepo> | undefined;
    return waitFor(
      async () => {
        last = await getRepo(name);
        return last && ok(last) ? last : undefined;
      },
      {
        what: `GitRepo ${name}: ${what}`,
        timeoutMs: TIMEOUT,
        context: () => `last status: ${JSON.stringify(last?.status?.conditions ?? [])}; logs in ${fleet.logDir}`,
      },
    );
  };
  const cond = (r: { status?: { conditions?: Condition[] } } | undefined, type: string) => getCondition(r?.status?.conditions, type);
  const applyRepo = (name: string, spec: Partial<GitRepo['spec']> & { repo: string }) =>
    up.apply(
      {
        apiVersion: API_VERSION,
        kind: 'GitRepo',
        metadata: { name, namespace: WS },
        spec: { branch: 'main', pollingInterval: '2s', paths: ['app'], targets: [{ clusterSelector: {} }], ...spec },
      },
      MANAGER,
    );
  const patchRepo = (name: string, spec: Record<string, unknown>) => up.mergePatch({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name }, { spec });
  const deleteRepo = async (name: string) => {
    await up.delete({ apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name });
    await waitFor(async () => (await getRepo(name)) === undefined, { what: `GitRepo ${name} to be deleted`, timeoutMs: TIMEOUT });
  };
  const bundleOf = async (repo: string) =>
    (await up.list<Obj<Bundle>>({ apiVersion: API_VERSION, kind: 'Bundle', namespace: WS }, `${Label.RepoName}=${repo}`)).items[0];
  const deploymentOf = async (repo: string) =>
    (await up.list<Obj<BundleDeployment>>({ apiVersion: API_VERSION, kind: 'BundleDeployment' }, `${Label.RepoName}=${repo}`)).items.find(
      (bd) => !bd.metadata.deletionTimestamp,
    );
  const configMap = (ns: string, name: string) => down.get<ConfigMap>({ apiVersion: 'v1', kind: 'ConfigMap', namespace: ns, name });
  const waitVersion = (ns: string, name: string, version: string) =>
    waitFor(async () => (await configMap(ns, name))?.data?.version === version || undefined, {
      what: `ConfigMap ${ns}/${name} at version ${version} downstream`,
      timeoutMs: TIMEOUT,
      context: () => `logs in ${fleet.logDir}`,
    });
  const sshSecret = (name: string, data: Record<string, string>) =>
    up.apply({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/ssh-auth', metadata: { name, namespace: WS }, stringData: data }, MANAGER);
  const namespaceDown = (name: string) => down.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, MANAGER);

  /** A new repository `name` holding `files`, and namespace `ns` downstream; returns the first commit. */
  async function newRepo(name: string, ns: string, files: Record<string, string>): Promise<string> {
    await namespaceDown(ns);
    await git().createRepo(name);
    return await git().commit(name, files, 'first');
  }

  /** Creates GitRepo `name` and waits until it is Ready at `commit` and ConfigMap `ns/cm` is at `version` downstream. */
  async function deployed(
    name: string,
    spec: Partial<GitRepo['spec']> & { repo: string },
    commit: string,
    ns: string,
    cm: string,
    version: string,
  ): Promise<void> {
    await applyRepo(name, { clientSecretName: 'http-auth', ...spec });
    await waitRepo(name, `Ready at ${commit.slice(0, 12)}`, (r) => r.status?.commit === commit && cond(r, 'Ready')?.status === 'True');
    await waitVersion(ns, cm, version);
  }

  /** The backoff (ms) of every failed reconcile of the GitRepo with `key` the controller has logged so far. */
  async function gitRetries(key: string): Promise<number[]> {
    return (await fleet.controller.logs())
      .split('\n')
      .filter((l) => l.includes('reconcile failed; retrying with backoff'))
      .map((l) => {
        try {
          return JSON.parse(l) as { key?: string; controller?: string; retryAfterMs?: number };
        } catch {
          return {};
        }
      })
      .filter((e) => e.controller === 'gitrepo' && e.key === key)
      .map((e) => e.retryAfterMs ?? -1);
  }

  /** Commits over SSH (git push through sshd's forced command), as a developer whose HTTP access is down would. */
  async function commitOverSsh(repo: string, files: Record<string, string | null>, message: string): Promise<string> {
    const work = await mkdtemp(join(tmpdir(), 'gs-e2e-push-'));
    const s = ssh();
    const known = join(work, '.known_hosts');
    await writeFile(known, s.knownHosts);
    const env = {
      ...process.env,
      GIT_TERMINAL_PROMPT: '0',
      GIT_SSH_COMMAND: `ssh -i '${s.clientKey.privateKeyFile}' -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile='${known}' -o StrictHostKeyChecking=yes`,
      GIT_AUTHOR_NAME: 'T',
      GIT_AUTHOR_EMAIL: 't@flotilla.dev',
      GIT_COMMITTER_NAME: 'T',
      GIT_COMMITTER_EMAIL: 't@flotilla.dev',
    };
    const g = (...args: string[]) => run('git', ['-C', join(work, 'c'), ...args], { env });
    try {
      await run('git', ['clone', '--quiet', '--depth=1', s.repoUrl(repo), join(work, 'c')], { env });
      for (const [path, content] of Object.entries(files)) {
        const target = join(work, 'c', path);
        if (content === null) await rm(target, { force: true });
        else {
          await mkdir(dirname(target), { recursive: true });
          await writeFile(target, content);
        }
      }
      await g('add', '-A');
      await g('commit', '--quiet', '-m', message);
      await g('push', '--quiet', 'origin', 'HEAD:refs/heads/main');
      return (await g('rev-parse', 'HEAD')).stdout.trim();
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  before(async function () {
    this.timeout(5 * 60_000);
    fleet = await startFleet(stack(), { workspace: WS, clusters: [{ name: 'downstream-1', labels: { env: 'gs' } }] });
    up = fleet.upstream;
    down = await KubeClient.fromKubeConfig(stack().cluster('downstream-1').kubeConfig());
    await up.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/basic-auth',
        metadata: { name: 'http-auth', namespace: WS },
        stringData: { username: git().username, password: git().password },
      },
      MANAGER,
    );
  });

  fleetSuiteTeardown(() => fleet, {
    afterStop: async () => {
      await down?.close();
    },
  });

  describe('over SSH', () => {
    const NS = 'gs-ssh';
    let sha = '';
    before(async () => {
      await namespaceDown(NS);
      await git().createRepo('gs-ssh');
      sha = await git().commit('gs-ssh', appFiles(NS, '1'), 'first');
    });

    it('fetches with the key and known_hosts of a kubernetes.io/ssh-auth Secret, deploys, and follows new commits', async () => {
      await sshSecret('ssh-good', { 'ssh-privatekey': ssh().clientKey.privateKey, known_hosts: ssh().knownHosts });
      const accepted = (await ssh().logs()).split('Accepted publickey').length;
      await applyRepo('ssh-good', { repo: ssh().repoUrl('gs-ssh'), clientSecretName: 'ssh-good' });
      await waitRepo('ssh-good', `Ready at ${sha.slice(0, 12)}`, (r) => r.status?.commit === sha && cond(r, 'Ready')?.status === 'True');
      await waitVersion(NS, 'settings', '1');
      // The fetch really went through sshd with the client key.
      expect((await ssh().logs()).split('Accepted publickey').length).to.be.greaterThan(accepted);
      const next = await git().commit('gs-ssh', appFiles(NS, '2'), 'second');
      await waitRepo('ssh-good', `at ${next.slice(0, 12)}`, (r) => r.status?.commit === next);
      await waitVersion(NS, 'settings', '2');
      await deleteRepo('ssh-good');
    });

    /** Every 16-character piece of the base64 body of a private key: none may appear anywhere. */
    const keyPieces = (pem: string) => {
      const body = pem
        .split('\n')
        .filter((l) => l && !l.startsWith('-----'))
        .join('');
      const pieces: string[] = [];
      for (let i = 0; i + 16 <= body.length; i += 16) pieces.push(body.slice(i, i + 16));
      return pieces;
    };

    it('refuses a key the server does not accept, with a condition that holds no key material', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'gs-e2e-key-'));
      try {
        const wrong = await generateSshKey(join(dir, 'id'), 'not-authorized');
        await sshSecret('ssh-wrong-key', { 'ssh-privatekey': wrong.privateKey, known_hosts: ssh().knownHosts });
        await applyRepo('ssh-wrong-key', { repo: ssh().repoUrl('gs-ssh'), clientSecretName: 'ssh-wrong-key' });
        const repo = await waitRepo('ssh-wrong-key', 'Stalled', (r) => cond(r, 'Stalled')?.status === 'True');
        const stalled = cond(repo, 'Stalled')!;
        expect(stalled.reason).to.equal('AuthenticationFailed');
        expect(stalled.message).to.include('the server refused the SSH key of the clientSecretName Secret');
        expect(cond(repo, 'Ready')?.status).to.equal('False');
        expect(repo.status?.commit, 'nothing was fetched').to.equal(undefined);
        const everything = [
          JSON.stringify(repo.status),
          await fleet.controller.logs(),
          JSON.stringify((await up.list({ apiVersion: 'v1', kind: 'Event', namespace: WS })).items),
        ].join('\n');
        expect(everything).to.not.include('PRIVATE KEY');
        for (const key of [wrong.privateKey, ssh().clientKey.privateKey]) {
          const leaked = keyPieces(key).filter((p) => everything.includes(p));
          expect(leaked, 'pieces of a private key in status, Events or logs').to.deep.equal([]);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
        await deleteRepo('ssh-wrong-key');
      }
    });

    it('refuses a server whose host key differs from known_hosts (host key verification)', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'gs-e2e-host-'));
      try {
        const impostor = await generateSshKey(join(dir, 'host'), 'other-host');
        await sshSecret('ssh-other-host', {
          'ssh-privatekey': ssh().clientKey.privateKey,
          known_hosts: knownHostsLine('127.0.0.1', ssh().port, impostor.publicKey),
        });
        await applyRepo('ssh-other-host', { repo: ssh().repoUrl('gs-ssh'), clientSecretName: 'ssh-other-host' });
        const repo = await waitRepo('ssh-other-host', 'Stalled', (r) => cond(r, 'Stalled')?.status === 'True');
        expect(cond(repo, 'Stalled')?.reason).to.equal('GitOperationFailed');
        expect(cond(repo, 'Stalled')?.message).to.include("host key verification failed: the server's host key differs from the one in known_hosts");
        expect(repo.status?.commit).to.equal(undefined);
      } finally {
        await rm(dir, { recursive: true, force: true });
        await deleteRepo('ssh-other-host');
      }
    });

    it('refuses a server it has no known_hosts entry for: host keys are never learned on first use', async () => {
      await sshSecret('ssh-no-known-hosts', { 'ssh-privatekey': ssh().clientKey.privateKey });
      await applyRepo('ssh-no-known-hosts', { repo: ssh().repoUrl('gs-ssh'), clientSecretName: 'ssh-no-known-hosts' });
      const repo = await waitRepo('ssh-no-known-hosts', 'Stalled', (r) => cond(r, 'Stalled')?.status === 'True');
      // The very first connection is refused: an unknown host key is not accepted (and remembered) on first use.
      expect(cond(repo, 'Stalled')?.message).to.include('host key verification failed: no known_hosts entry for the server');
      expect(cond(repo, 'Stalled')?.reason).to.equal('GitOperationFailed');
      expect(repo.status?.commit).to.equal(undefined);
      await deleteRepo('ssh-no-known-hosts');
    });
  });

  describe('revision pinning', () => {
    const NS = 'gs-pin';
    it('stays on a pinned commit, and on a tag, while the branch moves on; changing revision moves it', async () => {
      const c1 = await newRepo('gs-pin', NS, appFiles(NS, '1'));
      // An annotated tag on c1, created in the served repository (as a push of a tag would).
      await run('git', ['-C', join(git().rootDir, 'gs-pin.git'), 'tag', '-a', '-m', 'release 1', 'release-1', c1], {
        env: { ...process.env, GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@flotilla.dev' },
      });
      await deployed('pin', { repo: `${git().url}/gs-pin.git`, revision: c1 }, c1, NS, 'settings', '1');

      const c2 = await git().commit('gs-pin', appFiles(NS, '2'), 'v2');
      const pushedAt = Date.now();
      // Two polls after the push, the GitRepo is still on c1.
      const polled = await waitRepo(
        'pin',
        'polled twice after the branch moved',
        (r) => Date.parse(r.status?.lastPollingTime ?? '') >= Math.ceil(pushedAt / 1000) * 1000 + 4000,
      );
      expect(polled.status?.commit).to.equal(c1);
      expect((await configMap(NS, 'settings'))?.data?.version).to.equal('1');

      // A tag pins too: the annotated tag resolves to the commit it points at.
      await patchRepo('pin', { revision: 'release-1' });
      const byTag = await waitRepo(
        'pin',
        'observed the tag revision',
        (r) => r.status?.observedGeneration === r.metadata.generation && cond(r, 'GitFetched')?.status === 'True',
      );
      expect(byTag.status?.commit).to.equal(c1);
      expect((await bundleOf('pin'))?.metadata.annotations?.[Annotation.Commit]).to.equal(c1);

      // Changing the revision moves the GitRepo and what is deployed.
      await patchRepo('pin', { revision: c2 });
      await waitRepo('pin', `at ${c2.slice(0, 12)}`, (r) => r.status?.commit === c2);
      await waitVersion(NS, 'settings', '2');
      await deleteRepo('pin');
    });
  });

  describe('paused', () => {
    const NS = 'gs-pause';
    it('fetches and reports new commits but rolls out nothing until unpaused', async () => {
      const c1 = await newRepo('gs-pause', NS, appFiles(NS, '1'));
      await deployed('pause', { repo: `${git().url}/gs-pause.git` }, c1, NS, 'settings', '1');
      const applied = (await deploymentOf('pause'))!.spec.deploymentID;

      await patchRepo('pause', { paused: true });
      const c2 = await git().commit('gs-pause', appFiles(NS, '2'), 'v2');
      // The new commit is fetched and built: GitRepo and Bundle move on, the BundleDeployment only stages it.
      await waitRepo('pause', `reports ${c2.slice(0, 12)}`, (r) => r.status?.commit === c2);
      const bundle = (await bundleOf('pause'))!;
      expect(bundle.spec.paused).to.equal(true);
      const staged = await waitFor(
        async () => {
          const bd = await deploymentOf('pause');
          return bd?.spec.stagedDeploymentID?.startsWith(`s-${bundle.spec.contentsID}:`) && bd.status?.observedGeneration === bd.metadata.generation
            ? bd
            : undefined;
        },
        { what: 'the BundleDeployment to stage the new version and the agent to observe it', timeoutMs: TIMEOUT },
      );
      expect(staged.spec.paused).to.equal(true);
      expect(staged.spec.deploymentID).to.equal(applied);
      expect(staged.status?.appliedDeploymentID).to.equal(applied);
      expect((await configMap(NS, 'settings'))?.data?.version, 'nothing rolled out while paused').to.equal('1');
      // As in Fleet, what is applied but behind git shows as OutOfSync.
      await waitFor(async () => (await bundleOf('pause'))?.status?.display?.state === 'OutOfSync' || undefined, {
        what: 'the Bundle to show OutOfSync while paused',
        timeoutMs: TIMEOUT,
      });
      await waitRepo('pause', 'shows OutOfSync while paused', (r) => r.status?.display?.state === 'OutOfSync' && cond(r, 'Ready')?.status === 'False');

      await patchRepo('pause', { paused: false });
      await waitVersion(NS, 'settings', '2');
      const rolled = (await deploymentOf('pause'))!;
      expect(rolled.spec.deploymentID).to.equal(staged.spec.stagedDeploymentID);
      expect(rolled.spec.paused).to.equal(undefined);
      await deleteRepo('pause');
    });
  });

  describe('disablePolling and forceSyncGeneration', () => {
    const NS = 'gs-poll';
    it('does not poll git with disablePolling; a forceSyncGeneration bump fetches the new commit', async () => {
      const c1 = await newRepo('gs-poll', NS, appFiles(NS, '1'));
      await git().createRepo('gs-poll-control');
      await git().commit('gs-poll-control', appFiles('gs-poll-control', '1'), 'v1');
      await deployed('no-poll', { repo: `${git().url}/gs-poll.git`, disablePolling: true, pollingInterval: '1s' }, c1, NS, 'settings', '1');
      // A GitRepo that does poll, as the clock: it must poll several times while the other stays silent.
      await applyRepo('control', { repo: `${git().url}/gs-poll-control.git`, clientSecretName: 'http-auth', pollingInterval: '1s', targets: [] });
      const requests = git().requestCount('gs-poll');
      const c2 = await git().commit('gs-poll', appFiles(NS, '2'), 'v2');
      const afterPush = git().requestCount('gs-poll'); // the push itself talks to the server
      const controlStart = git().requestCount('gs-poll-control');
      await waitFor(async () => git().requestCount('gs-poll-control') >= controlStart + 6 || undefined, {
        what: 'the control GitRepo to poll three times',
        timeoutMs: TIMEOUT,
      });
      expect(afterPush).to.be.greaterThan(requests);
      expect(git().requestCount('gs-poll'), 'requests for the repository with disablePolling').to.equal(afterPush);
      expect((await getRepo('no-poll'))?.status?.commit).to.equal(c1);

      await patchRepo('no-poll', { forceSyncGeneration: 1 });
      await waitRepo('no-poll', `at ${c2.slice(0, 12)} after forceSyncGeneration`, (r) => r.status?.commit === c2);
      await waitVersion(NS, 'settings', '2');
      await deleteRepo('control');
      await deleteRepo('no-poll');
    });

    it('re-applies on a forceSyncGeneration bump: a deleted downstream object comes back, the deployment ID stays', async () => {
      const ns = 'gs-force';
      const c1 = await newRepo('gs-force', ns, appFiles(ns, '1', ['settings', 'extra']));
      await deployed('force', { repo: `${git().url}/gs-force.git` }, c1, ns, 'extra', '1');
      const before = (await waitFor(
        async () => {
          const bd = await deploymentOf('force');
          return bd?.status?.appliedDeploymentID === bd?.spec.deploymentID ? bd : undefined;
        },
        { what: 'the first deployment to be applied', timeoutMs: TIMEOUT },
      ))!;

      await down.delete({ apiVersion: 'v1', kind: 'ConfigMap', namespace: ns, name: 'extra' });
      // Without drift correction the agent reports the object missing and leaves it so.
      await waitFor(
        async () => {
          const bd = await deploymentOf('force');
          return (bd?.status?.modifiedStatus ?? []).some((m) => m.name === 'extra' && m.missing) || undefined;
        },
        { what: 'the agent to report ConfigMap extra missing', timeoutMs: TIMEOUT },
      );
      expect(await configMap(ns, 'extra')).to.equal(undefined);

      await patchRepo('force', { forceSyncGeneration: 7 });
      await waitVersion(ns, 'extra', '1');
      const after = await waitFor(
        async () => {
          const bd = await deploymentOf('force');
          return bd?.status?.syncGeneration === 7 ? bd : undefined;
        },
        { what: 'the agent to report syncGeneration 7', timeoutMs: TIMEOUT },
      );
      expect(after.spec.forceSyncGeneration).to.equal(7);
      expect((await bundleOf('force'))?.spec.forceSyncGeneration).to.equal(7);
      expect(after.spec.deploymentID, 'same content and options: same deployment ID').to.equal(before.spec.deploymentID);
      await deleteRepo('force');
    });
  });

  describe('git outage', () => {
    const NS = 'gs-outage';
    it('converges after an outage on a commit that removed files: Bundle, artifact and BundleDeployment agree', async () => {
      const c1 = await newRepo('gs-outage', NS, appFiles(NS, '1', ['cm-a', 'cm-b', 'cm-c', 'cm-d']));
      const reg = stack().registry('http');
      await deployed('outage', { repo: `${git().url}/gs-outage.git`, ociRegistry: { reference: `${reg.host}/gs-e2e`, basicHTTP: true } }, c1, NS, 'cm-d', '1');
      const digestBefore = (await bundleOf('outage'))!.spec.oci!.digest;

      await git().stop();
      let c2 = '';
      try {
        await waitRepo('outage', 'reports the git server down', (r) => cond(r, 'Ready')?.status === 'False');
        // A long outage means many failed attempts: make ten (each nudge of the GitRepo is one), so that an
        // unbounded exponential backoff would now wait minutes; it must stay within the polling interval.
        for (let i = 0; i < 10; i++) {
          const seen = (await gitRetries('gs-e2e/outage')).length;
          await up.mergePatch(
            { apiVersion: API_VERSION, kind: 'GitRepo', namespace: WS, name: 'outage' },
            { metadata: { annotations: { 'gs-e2e/nudge': String(i) } } },
          );
          await waitFor(async () => (await gitRetries('gs-e2e/outage')).length > seen || undefined, {
            what: `failed attempt ${i + 1} during the outage`,
            timeoutMs: 90_000,
          });
        }
        const retries = await gitRetries('gs-e2e/outage');
        // At least ten: the first failure's log line may land after the test read the count, and then it
        // is the one the first nudge's wait saw (the log is written asynchronously).
        expect(retries.length).to.be.at.least(10);
        expect(retries.at(-1), 'the next attempt after many failures').to.be.at.most(2000);
        // Meanwhile a commit removes two files and changes the others (pushed over SSH: HTTP is down).
        c2 = await commitOverSsh(
          'gs-outage',
          { 'app/cm-a.yaml': cmYaml('cm-a', '2'), 'app/cm-b.yaml': cmYaml('cm-b', '2'), 'app/cm-c.yaml': null, 'app/cm-d.yaml': null },
          'remove two',
        );
      } finally {
        await git().start();
      }
      await waitRepo('outage', `Ready at ${c2.slice(0, 12)}`, (r) => r.status?.commit === c2 && cond(r, 'Ready')?.status === 'True');
      await waitVersion(NS, 'cm-a', '2');
      await waitFor(async () => (await configMap(NS, 'cm-d')) === undefined || undefined, { what: 'cm-d to be pruned', timeoutMs: TIMEOUT });

      const bundle = (await bundleOf('outage'))!;
      expect(bundle.spec.oci!.digest).to.not.equal(digestBefore);
      const client = new RegistryClient({ registry: reg.host, basicHTTP: true });
      try {
        const pulled = await pullBundle(client, bundle.spec.oci!.reference);
        expect(pulled.files.map((f) => f.path)).to.deep.equal(['cm-a.yaml', 'cm-b.yaml']);
        expect(pulled.config.contentsID, "the artifact was built for the Bundle's contents ID").to.equal(bundle.spec.contentsID);
        expect(contentsID(pulled.files), "the Bundle's contents ID is that of the artifact's files").to.equal(bundle.spec.contentsID);
        expect(pulled.annotations['org.opencontainers.image.revision']).to.equal(c2);
      } finally {
        await client.close();
      }
      const bd = await waitFor(
        async () => {
          const d = await deploymentOf('outage');
          return d?.status?.appliedDeploymentID === d?.spec.deploymentID ? d : undefined;
        },
        { what: 'the BundleDeployment to be applied', timeoutMs: TIMEOUT },
      );
      expect(bd.spec.deploymentID.startsWith(`s-${bundle.spec.contentsID}:`)).to.equal(true);
      expect(bd.spec.oci?.digest).to.equal(bundle.spec.oci!.digest);
      await waitFor(async () => (await bundleOf('outage'))?.status?.observedContentsID === bundle.spec.contentsID || undefined, {
        what: 'the Bundle reconciler to observe the new contents ID',
        timeoutMs: TIMEOUT,
      });
      await deleteRepo('outage');
    });
  });
});
