import { expect } from 'chai';
import { z } from 'zod';
import { envName, parseConfig } from './config.js';

const Schema = z.strictObject({
  cacheDir: z.string().default('/cache'),
  apiServerUrl: z.string().optional(),
  workers: z.coerce.number().int().min(1).default(2),
});

describe('parseConfig', () => {
  const cases: { name: string; argv: string[]; env: Record<string, string>; expected: z.output<typeof Schema> }[] = [
    { name: 'uses defaults with no flags and no environment', argv: [], env: {}, expected: { cacheDir: '/cache', workers: 2 } },
    { name: 'reads --flag=value and --flag value', argv: ['--cache-dir=/a', '--workers', '3'], env: {}, expected: { cacheDir: '/a', workers: 3 } },
    {
      name: 'reads FLOTILLA_ environment variables',
      argv: [],
      env: { FLOTILLA_CACHE_DIR: '/e', FLOTILLA_API_SERVER_URL: 'https://x' },
      expected: { cacheDir: '/e', apiServerUrl: 'https://x', workers: 2 },
    },
    { name: 'lets flags win over the environment', argv: ['--cache-dir', '/f'], env: { FLOTILLA_CACHE_DIR: '/e' }, expected: { cacheDir: '/f', workers: 2 } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(parseConfig(Schema, c.argv, c.env, 'test')).to.deep.equal(c.expected);
    });
  }

  it('names every problem: unknown flags and invalid values', () => {
    expect(() => parseConfig(Schema, ['--no-such-flag=1', '--workers=0'], {}, 'test')).to.throw(/invalid test configuration: .*noSuchFlag.*workers/s);
  });

  it('refuses a positional argument', () => {
    expect(() => parseConfig(Schema, ['oops'], {}, 'test')).to.throw('unexpected argument oops');
  });

  it('maps keys to upper snake case environment names', () => {
    expect(envName('apiServerUrl')).to.equal('FLOTILLA_API_SERVER_URL');
  });
});
