import { expect } from 'chai';
import { DEFAULT_BUNDLE_LIMITS } from '../lib/bundle/index.js';
import { DEFAULT_CONTENT_LIMITS } from '../lib/bundle/limits.js';
import { bundleLimitsOf, contentLimitsOf, parseControllerConfig } from './config.js';

describe('controller configuration', () => {
  const cases: { name: string; argv: string[]; env?: Record<string, string>; want: Record<string, number> }[] = [
    {
      name: "reads lib/bundle's limits by default",
      argv: [],
      want: { maxFiles: DEFAULT_BUNDLE_LIMITS.maxFiles, maxFileBytes: DEFAULT_BUNDLE_LIMITS.maxFileBytes, maxTotalBytes: DEFAULT_BUNDLE_LIMITS.maxTotalBytes },
    },
    {
      name: 'takes the bundle limits from flags and the environment',
      argv: ['--max-file-bytes=2048', '--max-bundle-files', '7'],
      env: { FLOTILLA_MAX_BUNDLE_BYTES: '9000' },
      want: { maxFiles: 7, maxFileBytes: 2048, maxTotalBytes: 9000 },
    },
  ];
  for (const c of cases) it(c.name, () => expect(bundleLimitsOf(parseControllerConfig(c.argv, c.env ?? {}))).to.deep.equal(c.want));

  it('refuses a limit that is not a positive integer', () => {
    expect(() => parseControllerConfig(['--max-file-bytes=0'], {})).to.throw(/maxFileBytes/);
  });

  it('has the content limits of lib/bundle/limits.ts by default, and takes each from a flag or the environment', () => {
    expect(contentLimitsOf(parseControllerConfig([], {}))).to.deep.equal(DEFAULT_CONTENT_LIMITS);
    const c = contentLimitsOf(
      parseControllerConfig(['--max-depth', '64', '--render-timeout=3s', '--render-memory', '256', '--max-objects=9'], {
        FLOTILLA_MAX_ALIASES: '0',
        FLOTILLA_MAX_EXPANDED_BYTES: '65536',
      }),
    );
    expect(c).to.deep.include({ maxDepth: 64, renderTimeoutMs: 3000, renderMemoryMb: 256, maxObjects: 9, maxAliases: 0, maxExpandedBytes: 65536 });
  });

  it('refuses a content limit below its minimum, naming it', () => {
    expect(() => contentLimitsOf(parseControllerConfig(['--max-depth=2'], {}))).to.throw(/maxDepth/);
    expect(() => parseControllerConfig(['--render-timeout=soon'], {})).to.throw(/renderTimeout/);
  });

  it('takes the leader-election timing as durations, and refuses a renew deadline not shorter than the lease', () => {
    expect(parseControllerConfig([], {})).to.deep.include({ leaseDuration: 15_000, renewDeadline: 10_000, retryPeriod: 2_000 });
    expect(parseControllerConfig(['--lease-duration=4s', '--renew-deadline=3s', '--retry-period=300ms'], {})).to.deep.include({
      leaseDuration: 4000,
      renewDeadline: 3000,
      retryPeriod: 300,
    });
    expect(() => parseControllerConfig(['--lease-duration=10s', '--renew-deadline=10s'], {})).to.throw(/--renew-deadline < --lease-duration/);
    // Without leader election the timing is unused, and not checked.
    expect(parseControllerConfig(['--leader-election=false', '--lease-duration=1s'], {}).leaseDuration).to.equal(1000);
  });
});
