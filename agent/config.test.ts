import { expect } from 'chai';
import { contentLimitsOf, parseAgentConfig } from './config.js';
import { DEFAULT_CONTENT_LIMITS } from '../lib/bundle/limits.js';
import { envName } from '../lib/config.js';

describe('agent configuration', () => {
  it('has defaults for everything', () => {
    const c = parseAgentConfig([], {});
    expect(c).to.include({ namespace: 'flotilla-system', resync: 30_000, heartbeat: 60_000, probePort: 8081, logLevel: 'info', workers: 2 });
    expect(c).to.include({ renderWorkers: 2, renderSpillAfter: 1000 });
    expect(c.kubeconfig).to.equal(undefined);
  });

  const cases: { name: string; argv: string[]; env?: Record<string, string>; want: Record<string, unknown> }[] = [
    { name: 'reads flags with =', argv: ['--resync=1m', '--cache-dir=/c'], want: { resync: 60_000, cacheDir: '/c' } },
    { name: 'reads flags with a separate value', argv: ['--heartbeat', '5s', '--log-level', 'debug'], want: { heartbeat: 5000, logLevel: 'debug' } },
    {
      name: 'reads the environment',
      argv: [],
      env: { FLOTILLA_NAMESPACE: 'agents', FLOTILLA_PROBE_PORT: '9000' },
      want: { namespace: 'agents', probePort: 9000 },
    },
    {
      name: 'reads the limits on pulled bundles',
      argv: ['--max-file-bytes=1024'],
      env: { FLOTILLA_MAX_BUNDLE_BYTES: '4096', FLOTILLA_MAX_BUNDLE_FILES: '3' },
      want: { maxFileBytes: 1024, maxBundleBytes: 4096, maxBundleFiles: 3 },
    },
    {
      name: 'reads the render slots and their spill delay',
      argv: ['--render-workers=3', '--render-spill-after=250ms'],
      want: { renderWorkers: 3, renderSpillAfter: 250 },
    },
    { name: 'lets flags win over the environment', argv: ['--namespace=flag'], env: { FLOTILLA_NAMESPACE: 'env' }, want: { namespace: 'flag' } },
  ];
  for (const c of cases) it(c.name, () => expect(parseAgentConfig(c.argv, c.env ?? {})).to.include(c.want));

  const bad: { name: string; argv: string[]; error: RegExp }[] = [
    { name: 'a duration that is not one', argv: ['--resync=soon'], error: /resync: not a positive duration/ },
    { name: 'an unknown flag', argv: ['--frobnicate=1'], error: /frobnicate/ },
    { name: 'a positional argument', argv: ['oops'], error: /unexpected argument oops/ },
    { name: 'an invalid namespace', argv: ['--namespace=Bad_NS'], error: /namespace/ },
  ];
  for (const c of bad) it(`refuses ${c.name}`, () => expect(() => parseAgentConfig(c.argv, {})).to.throw(c.error));

  it('names environment variables in upper snake case', () => {
    expect(envName('cacheDir')).to.equal('FLOTILLA_CACHE_DIR');
  });

  it('has the same content limits as the controller by default, each settable by flag', () => {
    expect(contentLimitsOf(parseAgentConfig([], {}))).to.deep.equal(DEFAULT_CONTENT_LIMITS);
    expect(contentLimitsOf(parseAgentConfig(['--max-nodes=1000', '--render-timeout', '500ms', '--max-objects', '7'], {}))).to.deep.include({
      maxNodes: 1000,
      renderTimeoutMs: 500,
      maxObjects: 7,
    });
  });

  it('limits each helm and kustomize run by flags, one minute and 32 MiB of output by default', () => {
    expect(parseAgentConfig([], {})).to.deep.include({ helmTimeout: 60_000, helmMaxOutputBytes: 32 * 1024 * 1024 });
    expect(parseAgentConfig(['--helm-timeout=90s', '--helm-max-output-bytes', '2048'], {})).to.deep.include({ helmTimeout: 90_000, helmMaxOutputBytes: 2048 });
    expect(() => parseAgentConfig(['--helm-max-output-bytes=10'], {})).to.throw(/helmMaxOutputBytes|helm-max-output-bytes/);
  });
});
