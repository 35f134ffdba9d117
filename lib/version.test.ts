import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { flotillaVersion } from './version.js';

describe('flotillaVersion', () => {
  it("is the version of the repository's package.json, read from disk", () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(flotillaVersion()).to.equal(pkg.version);
    expect(flotillaVersion()).to.match(/^\d+\.\d+\.\d+/);
  });
});
