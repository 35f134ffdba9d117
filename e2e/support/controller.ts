import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { createLogger } from '../../lib/log.js';
import { KubeClient } from '../../lib/kube/client.js';
import { parseControllerConfig, type ControllerConfig } from '../../controller/config.js';
import { startManager, type Manager } from '../../controller/manager.js';
import type { ControlPlane } from '../../stack/kube.js';
import { installCrds } from '../../stack/crds.js';

/** A controller manager running in the test process, with its log lines captured. */
export interface TestController {
  manager: Manager;
  kube: KubeClient;
  /** Every log line written so far, parsed. */
  logs: Record<string, unknown>[];
  /** The raw log text (for secret scans). */
  rawLogs(): string;
  stop(): Promise<void>;
}

/** Starts the controller's reconcilers in-process against `upstream` (no leader election). */
export async function startTestController(upstream: ControlPlane, overrides: Partial<ControllerConfig> = {}): Promise<TestController> {
  const workDir = await mkdtemp(join(tmpdir(), 'flotilla-controller-'));
  const kube = await KubeClient.fromKubeConfig(upstream.kubeConfig());
  await installCrds(kube);
  const logs: Record<string, unknown>[] = [];
  let raw = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const text = chunk.toString();
      raw += text;
      for (const line of text.split('\n').filter(Boolean)) {
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          /* partial line */
        }
      }
      done();
    },
  });
  const config = { ...parseControllerConfig([], {}), leaderElection: false, workDir, defaultPollingInterval: 2000, ...overrides };
  const manager = await startManager({
    config,
    kubeConfig: upstream.kubeConfig(),
    log: createLogger({ name: 'controller', level: 'info', destination: sink }),
  });
  return {
    manager,
    kube,
    logs,
    rawLogs: () => raw,
    async stop() {
      await manager.stop();
      await kube.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
