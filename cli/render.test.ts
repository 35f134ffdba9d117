import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RENDER_USAGE, runRender, secretManifestData } from './render.js';

const testdata = fileURLToPath(new URL('../lib/bundle/testdata/', import.meta.url));
const webapp = `${testdata}webapp`;

/** Runs the command and captures its output. */
async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runRender(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  });
  return { code, stdout, stderr };
}

// The objects of lib/bundle/testdata/webapp, written out in full so that every rendered field is checked.
const configMap = (ns: string, data: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'web-config', namespace: ns },
  data,
});
const deployment = (ns: string, replicas: number, image: string, logLevel: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', labels: { app: 'web' }, namespace: ns },
  spec: {
    replicas,
    selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        containers: [
          {
            name: 'web',
            image,
            env: [
              { name: 'LOG_LEVEL', value: logLevel },
              { name: 'LISTEN', value: ':8080' },
            ],
          },
          { name: 'metrics', image: 'registry.example/metrics-sidecar:0.3' },
        ],
      },
    },
  },
});
const service = (ns: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: ns },
  spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
});
const hpa = (ns: string, maxReplicas: number) => ({
  apiVersion: 'autoscaling/v2',
  kind: 'HorizontalPodAutoscaler',
  metadata: { name: 'web', namespace: ns },
  spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: 3, maxReplicas },
});
const baseData = { mode: 'standard', greeting: 'hello' };

describe('flotilla render', () => {
  const cases: [what: string, args: string[], expected: unknown[], note: RegExp][] = [
    [
      'a cluster no customization matches gets the base resources in defaultNamespace',
      [],
      [configMap('webapp', baseData), deployment('webapp', 1, 'registry.example/web:1.0', 'debug'), service('webapp')],
      /no target customization matches/,
    ],
    [
      'a prod cluster gets the prod overlay: patched Deployment, added HorizontalPodAutoscaler',
      ['--label', 'env=prod'],
      [configMap('webapp', baseData), deployment('webapp', 3, 'registry.example/web:1.1', 'info'), hpa('webapp', 10), service('webapp')],
      /using targetCustomizations\[2\] "prod"; overlays: prod/,
    ],
    [
      'an edge cluster gets the prod then the edge overlay (which patches what prod added)',
      ['-l', 'env=prod', '--cluster-group', 'edge'],
      [configMap('webapp', baseData), deployment('webapp', 3, 'registry.example/web:1.1', 'info'), hpa('webapp', 4), service('webapp')],
      /using targetCustomizations\[1\] "edge"; overlays: prod, edge/,
    ],
    [
      'a test cluster gets the dev overlay (replaced Service, JSON-patched ConfigMap) in the forced namespace',
      ['--label=env=test'],
      [
        configMap('webapp-dev', { mode: 'dev' }),
        deployment('webapp-dev', 1, 'registry.example/web:1.0', 'debug'),
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'web', namespace: 'webapp-dev' },
          spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] },
        },
      ],
      /using targetCustomizations\[3\] "dev"; overlays: dev/,
    ],
    [
      '--namespace forces every namespaced resource, as GitRepo targetNamespace',
      ['-l', 'env=prod', '--namespace', 'team-a'],
      [configMap('team-a', baseData), deployment('team-a', 3, 'registry.example/web:1.1', 'info'), hpa('team-a', 10), service('team-a')],
      /"prod"/,
    ],
  ];
  for (const [what, args, expected, note] of cases) {
    it(`renders: ${what}`, async () => {
      const result = await run(webapp, ...args);
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stderr).to.match(note);
      expect(result.stdout.startsWith('---\n')).to.equal(true);
      expect(yaml.loadAll(result.stdout)).to.deep.equal(expected);
    });
  }

  it('prints nothing for a cluster that a doNotDeploy customization excludes', async () => {
    const result = await run(webapp, '-l', 'env=prod', '-l', 'lab=true');
    expect(result).to.deep.equal({
      code: 0,
      stdout: '',
      stderr: 'cluster excluded by targetCustomizations[0] "lab" (doNotDeploy): nothing is deployed\n',
    });
  });

  it('prints the usage for --help and exits 0', async () => {
    expect(await run('--help')).to.deep.equal({ code: 0, stdout: RENDER_USAGE, stderr: '' });
  });

  const usageErrors: [what: string, args: string[], message: RegExp][] = [
    ['no directory', [], /flotilla render: missing DIR/],
    ['two directories', [webapp, webapp], /expected one DIR, got 2/],
    ['a label without "="', [webapp, '--label', 'env'], /--label "env": expected KEY=VALUE/],
    ['an unknown option', [webapp, '--colour'], /Unknown option '--colour'/],
    ['a chart repository password on the command line', [webapp, '--helm-password', 'hunter2'], /Unknown option '--helm-password'/],
    ['--helm-secret-file with --helm-username', [webapp, '--helm-secret-file', 's.yaml', '--helm-username', 'u'], /give either it or --helm-username/],
    ['--helm-password-file without --helm-username', [webapp, '--helm-password-file', 'p'], /--helm-password-file: needs --helm-username/],
    ['a --helm-repo-url-regex that is not one', [webapp, '--helm-repo-url-regex', 'a(b'], /--helm-repo-url-regex: .*Unterminated group/],
  ];
  for (const [what, args, message] of usageErrors) {
    it(`exits 2 with the usage on ${what}`, async () => {
      const result = await run(...args);
      expect(result.code).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.match(message);
      expect(result.stderr).to.contain('Usage: flotilla render DIR');
    });
  }

  it('exits 1 naming the file and line of malformed YAML, and prints no resources', async () => {
    const result = await run(`${testdata}broken`);
    expect(result.code).to.equal(1);
    expect(result.stdout).to.equal('');
    expect(result.stderr).to.equal('flotilla render: bad.yaml:7: invalid YAML: unexpected end of the stream within a double quoted scalar\n');
  });

  it('exits 1 for a directory that does not exist', async () => {
    const result = await run(`${testdata}does-not-exist`);
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(/does-not-exist: not a directory/);
  });

  describe('remote charts', () => {
    let dir: string;
    let port: number;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'render-remote-'));
      // A loopback port nothing listens on: taken, then released.
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as { port: number }).port;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await writeFile(join(dir, 'fleet.yaml'), `helm:\n  chart: https://127.0.0.1:${port}/charts/web-1.0.0.tgz\n`);
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('fetches a remote chart as the controller does: an unreachable repository exits 1 naming the bundle and the URL', async () => {
      const result = await run(dir, '--bundle-name', 'web');
      expect(result.code).to.equal(1);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.match(
        new RegExp(`bundle web \\(fleet\\.yaml\\): chart https://127\\.0\\.0\\.1:${port}/charts/web-1\\.0\\.0\\.tgz: cannot be reached`),
      );
    });

    it('reads the --helm-secret-file when a chart is fetched, and says which file it cannot read', async () => {
      const result = await run(dir, '--helm-secret-file', join(dir, 'missing.yaml'));
      expect(result.code).to.equal(1);
      expect(result.stderr).to.match(/--helm-secret-file .*missing\.yaml: cannot be read \(ENOENT\)/);
    });
  });

  it('reads a Secret manifest as the API server would: data decoded, stringData over it', () => {
    const text = `kind: Secret\ndata:\n  username: ${Buffer.from('from-data').toString('base64')}\n  cacerts: ${Buffer.from('PEM').toString('base64')}\nstringData:\n  username: from-stringData\n  password: p\n`;
    expect(secretManifestData(text, 'f')).to.deep.equal({ username: 'from-stringData', cacerts: 'PEM', password: 'p' });
    expect(() => secretManifestData('kind: ConfigMap\n', 'f')).to.throw(/f: expected a Secret manifest/);
  });
});
