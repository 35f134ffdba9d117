import { expect } from 'chai';
import { bundlePathProblem, compareUtf8, pathConflict } from './paths.js';

describe('bundle paths', () => {
  const clean = ['deploy.yaml', 'overlays/prod/x_patch.yaml', 'a/b/c/d.yml', 'with space.yaml', 'ünïcode/ok.yaml', '.hidden/file', 'a..b.yaml', 'C.yaml'];
  for (const p of clean) {
    it(`accepts ${p}`, () => {
      expect(bundlePathProblem(p)).to.equal(undefined);
    });
  }

  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['/etc/passwd', /absolute/],
    ['../escape.yaml', /\.\./],
    ['a/../../escape.yaml', /\.\./],
    ['a/..', /\.\./],
    ['./a.yaml', /"\." segment/],
    ['a//b.yaml', /empty segment/],
    ['a/', /empty segment/],
    ['a\\..\\b', /backslash/],
    ['C:/windows', /drive letter/],
    ['a\u0000b', /control character/],
    ['a\nb', /control character/],
    [`${'x'.repeat(256)}/a`, /segment longer/],
    [`${'abc/'.repeat(1100)}a`, /longer than 4096/],
  ];
  for (const [p, problem] of bad) {
    it(`refuses ${JSON.stringify(p).slice(0, 40)} because it ${problem.source}`, () => {
      expect(bundlePathProblem(p)).to.match(problem);
    });
  }

  it('finds duplicates and file/directory clashes', () => {
    expect(pathConflict(['a.yaml', 'b.yaml'])).to.equal(undefined);
    expect(pathConflict(['a.yaml', 'b.yaml', 'a.yaml'])).to.deep.equal({ path: 'a.yaml', problem: 'appears twice' });
    expect(pathConflict(['a/b/c.yaml', 'a/b'])?.path).to.equal('a/b/c.yaml');
    expect(pathConflict(['ab/c', 'a'])).to.equal(undefined);
  });

  it('orders by UTF-8 bytes, not UTF-16 units', () => {
    // U+FF5E (3 UTF-8 bytes, 0xEF...) sorts before U+1F600 (4 bytes, 0xF0...) in UTF-8, after it in UTF-16.
    expect(compareUtf8('\uff5e', '\u{1f600}')).to.be.lessThan(0);
    expect(['b', 'a', 'B'].sort(compareUtf8)).to.deep.equal(['B', 'a', 'b']);
  });
});
