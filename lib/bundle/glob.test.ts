import { expect } from 'chai';
import { matchGlob, globToRegExp } from './glob.js';
import { IgnoreRules, parseIgnoreFile } from './ignore.js';
import { StallingError } from '../errors.js';

describe('glob matching', () => {
  const cases: [pattern: string, path: string, matches: boolean][] = [
    ['apps', 'apps', true],
    ['apps', 'apps/web', false],
    ['apps/*', 'apps/web', true],
    ['apps/*', 'apps/web/prod', false],
    ['apps/*', 'apps', false],
    ['apps/**', 'apps', true],
    ['apps/**', 'apps/web/prod', true],
    ['**/prod', 'prod', true],
    ['**/prod', 'a/b/prod', true],
    ['**/prod', 'a/b/production', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'ab', false],
    ['app?', 'app1', true],
    ['app?', 'app/', false],
    ['app[0-9]', 'app7', true],
    ['app[!0-9]', 'app7', false],
    ['app[!0-9]', 'appx', true],
    ['*.yaml', 'deploy.yaml', true],
    ['*.yaml', 'deploy.yml', false],
    ['a.b', 'axb', false],
    ['\\*', '*', true],
    ['\\*', 'x', false],
    ['(x)', '(x)', true],
  ];
  for (const [pattern, path, matches] of cases) {
    it(`"${pattern}" ${matches ? 'matches' : 'does not match'} "${path}"`, () => {
      expect(matchGlob(pattern, path)).to.equal(matches);
    });
  }

  it('rejects an unterminated character class', () => {
    expect(() => globToRegExp('app[0-9')).to.throw(/unterminated/);
  });
});

describe('.fleetignore rules', () => {
  const rules = IgnoreRules.none.extend(
    ['# a comment', '', 'secret.yaml', '*.tmp', 'build/*', 'trailing.yaml   ', '\\#hash.yaml', 'deep/path/leaf.yaml'].join('\n'),
    '.fleetignore',
  );
  const cases: [name: string, isDir: boolean, ignored: boolean][] = [
    ['secret.yaml', false, true],
    ['other.yaml', false, false],
    ['x.tmp', false, true],
    ['build', true, true],
    ['build', false, false],
    ['trailing.yaml', false, true],
    ['#hash.yaml', false, true],
    ['# a comment', false, false],
    ['leaf.yaml', false, true],
  ];
  for (const [name, isDir, ignored] of cases) {
    it(`${ignored ? 'ignores' : 'keeps'} ${isDir ? 'directory' : 'file'} "${name}"`, () => {
      expect(rules.ignores(name, isDir)).to.equal(ignored);
    });
  }

  it('adds the rules of nested files to those of their ancestors', () => {
    const nested = rules.extend('only-here.yaml', 'sub/.fleetignore');
    expect(nested.ignores('only-here.yaml', false)).to.equal(true);
    expect(nested.ignores('secret.yaml', false)).to.equal(true);
    expect(rules.ignores('only-here.yaml', false)).to.equal(false);
  });

  it('reports an invalid pattern with its file and line', () => {
    expect(() => parseIgnoreFile('ok.yaml\nbad[', 'apps/.fleetignore')).to.throw(StallingError, /^apps\/\.fleetignore:2: /);
  });
});
