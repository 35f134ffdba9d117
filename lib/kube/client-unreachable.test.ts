import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { API_SERVER_RETRY_MS, KubeClient } from './client.js';
import { kubeAccessOf } from './kubeconfig.js';
import { TransientError } from '../errors.js';
import { Reason } from '../api/index.js';

/** An API server that is down: the error is transient and bounds its retry, so a long restart is noticed soon after it ends. */
describe('KubeClient against an unreachable API server', () => {
  it('fails with a transient ApiServerUnreachable error whose retry is at most API_SERVER_RETRY_MS', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const kube = await KubeClient.fromKubeConfig(kubeAccessOf({ server: `https://127.0.0.1:${port}`, skipTLSVerify: true }));
    try {
      const err = await kube.raw('GET', '/api/v1/namespaces/n/configmaps/c').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(TransientError);
      expect((err as TransientError).reason).to.equal(Reason.ApiServerUnreachable);
      expect((err as TransientError).message).to.include(`127.0.0.1:${port}`);
      expect((err as TransientError).retryAfterMs).to.equal(API_SERVER_RETRY_MS);
      expect(API_SERVER_RETRY_MS).to.be.at.most(30_000);
    } finally {
      await kube.close();
    }
  });
});
