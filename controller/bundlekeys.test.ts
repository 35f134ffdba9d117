import { expect } from 'chai';
import { desiredKeyRing, keysSecretName } from './bundlekeys.js';

describe('bundle key rings in cluster namespaces', () => {
  const current = { id: 'new', value: 'NEW' };
  const copies = [{ 'key-old': 'OLD', 'key-new': 'NEW', unrelated: 'x' }];

  it('holds only the current key at first', () => {
    expect(desiredKeyRing(current, [], [{ keyID: 'new', settled: false }])).to.deep.equal({ 'key-new': 'NEW' });
  });

  it('keeps the old key while a deployment still pins a version under it', () => {
    const uses = [
      { keyID: 'new', settled: true },
      { keyID: 'old', settled: true },
    ];
    expect(desiredKeyRing(current, copies, uses)).to.deep.equal({ 'key-new': 'NEW', 'key-old': 'OLD' });
  });

  it('keeps the old key while any agent has not caught up, and drops it once every cluster runs the new one', () => {
    expect(
      desiredKeyRing(current, copies, [
        { keyID: 'new', settled: true },
        { keyID: 'new', settled: false },
      ]),
    ).to.have.property('key-old');
    expect(
      desiredKeyRing(current, copies, [
        { keyID: 'new', settled: true },
        { keyID: 'new', settled: true },
      ]),
    ).to.deep.equal({ 'key-new': 'NEW' });
  });

  it('names the Secret after the BundleDeployment within the name limit', () => {
    expect(keysSecretName('b')).to.equal('b-keys');
    expect(keysSecretName('x'.repeat(253)).length).to.be.at.most(253);
  });
});
