import { expect } from 'chai';
import { DEFAULT_BUNDLE_LIMITS } from '../lib/bundle/index.js';
import { bundleLimitsOf, parseControllerConfig } from './config.js';

describe('controller configuration', () => {
  const cases: { name: string; argv: string[]; env?: Record<string, string>; want: Record<string, number> }[] = [
    { name: 'reads lib/bundle\'s limits by default', argv: [],
      want: { maxFiles: DEFAULT_BUNDLE_LIMITS.maxFiles, maxFileBytes: DEFAULT_BUNDLE_LIMITS.maxFileBytes, maxTotalBytes: DEFAULT_BUNDLE_LIMITS.maxTotalBytes } },
    { name: 'takes the bundle limits from flags and the environment', argv: ['--max-file-bytes=2048', '--max-bundle-files', '7'],
      env: { FLOTILLA_MAX_BUNDLE_BYTES: '9000' }, want: { maxFiles: 7, maxFileBytes: 2048, maxTotalBytes: 9000 } },
  ];
  for (const c of cases) it(c.name, () => expect(bundleLimitsOf(parseControllerConfig(c.argv, c.env ?? {}))).to.deep.equal(c.want));

  it('refuses a limit that is not a positive integer', () => {
    expect(() => parseControllerConfig(['--max-file-bytes=0'], {})).to.throw(/maxFileBytes/);
  });
});
