import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import yaml from 'js-yaml';
import { StallingError } from '../errors.js';
import { TOKEN_FILE_REREAD_MS, inClusterTarget, kubeAccessOf, loadKubeConfigFile, targetOfKubeconfig, tokenFromFile, type KubeAccess } from './kubeconfig.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function config(
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = { server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64('CA-PEM') },
) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'main',
    contexts: [
      { name: 'other', context: { cluster: 'nope', user: 'nope' } },
      { name: 'main', context: { cluster: 'c1', user: 'u1' } },
    ],
    clusters: [{ name: 'c1', cluster }],
    users: [{ name: 'u1', user }],
  };
}

async function optionsOf(kc: KubeAccess): Promise<Record<string, unknown>> {
  const opts: Record<string, unknown> = {};
  await kc.applyToHTTPSOptions(opts);
  return opts;
}

describe('kubeconfig without client-node', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-kubeconfig-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the same TLS material and headers as client-node for certificates and tokens', async () => {
    const cases = [
      config({ 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') }),
      config({ token: 'abc' }),
      config({ token: 'abc', as: 'someone' }, { server: 'https://h:1', 'insecure-skip-tls-verify': true }),
    ];
    for (const [i, doc] of cases.entries()) {
      const file = join(dir, `kc-${i}`);
      await writeFile(file, yaml.dump(doc));
      const ours = await loadKubeConfigFile(file);
      const theirs = new KubeConfig();
      theirs.loadFromFile(file);
      expect(ours).to.not.be.instanceOf(KubeConfig);
      const mine = await optionsOf(ours);
      const ref = await optionsOf(theirs);
      for (const key of ['ca', 'cert', 'key', 'headers', 'rejectUnauthorized']) expect(mine[key], `case ${i}: ${key}`).to.deep.equal(ref[key]);
      expect(ours.getCurrentCluster()).to.deep.include({
        server: theirs.getCurrentCluster()?.server,
        skipTLSVerify: theirs.getCurrentCluster()?.skipTLSVerify,
      });
    }
  });

  it('reads certificate, key and token files relative to the kubeconfig', async () => {
    await writeFile(join(dir, 'ca.crt'), 'CA-FILE');
    await writeFile(join(dir, 'tls.crt'), 'CERT-FILE');
    await writeFile(join(dir, 'tls.key'), 'KEY-FILE');
    await writeFile(join(dir, 'token'), 'from-file\n');
    const doc = config(
      { 'client-certificate': 'tls.crt', 'client-key': join(dir, 'tls.key'), tokenFile: 'token' },
      { server: 'https://h:1', 'certificate-authority': 'ca.crt' },
    );
    const target = targetOfKubeconfig(doc, join(dir, 'config'));
    const opts = await optionsOf(kubeAccessOf(target ?? { server: '' }));
    expect(String(opts.ca)).to.equal('CA-FILE');
    expect(String(opts.cert)).to.equal('CERT-FILE');
    expect(String(opts.key)).to.equal('KEY-FILE');
    expect(opts.headers).to.deep.equal({ Authorization: 'Bearer from-file' });
  });

  it('hands users of exec plugins and auth providers to client-node, imported then', async () => {
    expect(targetOfKubeconfig(config({ exec: { command: 'x', apiVersion: 'client.authentication.k8s.io/v1' } }), 'f')).to.equal(undefined);
    expect(targetOfKubeconfig(config({ 'auth-provider': { name: 'oidc', config: {} } }), 'f')).to.equal(undefined);
    const file = join(dir, 'exec');
    await writeFile(file, yaml.dump(config({ exec: { command: 'true', apiVersion: 'client.authentication.k8s.io/v1' } })));
    let imported = 0;
    const clientNode = async () => {
      imported++;
      return { KubeConfig };
    };
    expect(await loadKubeConfigFile(file, clientNode)).to.be.instanceOf(KubeConfig);
    expect(imported).to.equal(1);
    await writeFile(file, yaml.dump(config({ token: 't' })));
    expect(await loadKubeConfigFile(file, clientNode)).to.not.be.instanceOf(KubeConfig);
    expect(imported, 'client-node is not imported for a token user').to.equal(1);
  });

  it('says which part of the file is missing', () => {
    expect(() => targetOfKubeconfig({ ...config({}), 'current-context': 'other' }, '/k')).to.throw(StallingError, /needs cluster "nope"/);
    expect(() => targetOfKubeconfig({ ...config({}), 'current-context': undefined }, '/k')).to.throw(StallingError, /no current-context/);
    expect(() => targetOfKubeconfig(config({}, { 'certificate-authority-data': 'x' }), '/k')).to.throw(StallingError, /has no server/);
  });

  it('reads a token file again only after the re-read interval (rotated ServiceAccount tokens)', async () => {
    const file = join(dir, 'token');
    await writeFile(file, 'one');
    let now = 1000;
    const token = tokenFromFile(file, () => now);
    expect(token()).to.equal('one');
    await writeFile(file, 'two');
    now += TOKEN_FILE_REREAD_MS - 1;
    expect(token()).to.equal('one');
    now += 1;
    expect(token()).to.equal('two');
  });

  it('builds the in-cluster server like client-node (IPv6 in brackets, http on 80/8080/8001)', async () => {
    await writeFile(join(dir, 'ca.crt'), 'CA');
    await writeFile(join(dir, 'token'), 'sa-token');
    const v6 = inClusterTarget({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, dir);
    expect(v6.server).to.equal('https://[fd00::1]:443');
    expect(v6.token?.()).to.equal('sa-token');
    expect(inClusterTarget({ KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '8080' }, dir).server).to.equal('http://10.0.0.1:8080');
    expect(() => inClusterTarget({}, dir)).to.throw(StallingError, /pass --kubeconfig/);
  });
});
