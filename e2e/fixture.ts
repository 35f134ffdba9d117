import { startStack, type Stack } from '../stack/stack.js';
import { liveProcesses } from '../stack/proc.js';
import { faultLog } from './support/faults.js';

/**
 * Mocha root hooks: the whole e2e run shares one stack, started once before the first test and
 * stopped after the last (and on failure, Ctrl-C or a crash: see stack/proc.ts).
 *
 * Tests call {@link stack} to reach it. Environment knobs:
 * - FLOTILLA_E2E_CLUSTERS: comma-separated cluster names (default upstream,downstream-1,downstream-2)
 */

let current: Stack | undefined;

/** The running stack; throws if called outside a test run with the fixture. */
export function stack(): Stack {
  if (!current) throw new Error('the e2e stack is not running: run tests with `npm run test:e2e` (mocha --config .mocharc.e2e.json)');
  return current;
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(45 * 60_000); // a cold build of kube-apiserver on 2 cores takes many minutes
    const clusters = process.env.FLOTILLA_E2E_CLUSTERS?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    current = await startStack({
      clusters,
      controllerManager: ['upstream', 'downstream-1'],
      registries: ['http', 'tls', 'tls-auth'],
    });
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    if (faultLog.outcomes.length > 0) process.stdout.write(`\nreliability summary (every fault and bad input of this run)\n${faultLog.summary()}\n`);
    await current?.stop();
    current = undefined;
    const left = liveProcesses();
    if (left.length > 0) throw new Error(`processes left running after the stack stopped: ${left.join(', ')}`);
  },
};
