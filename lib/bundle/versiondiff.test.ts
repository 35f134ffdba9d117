import { expect } from 'chai';
import { MASK, maskSecret, objectDiff } from './versiondiff.js';

describe('version diffs never show Secret values (lib/bundle/versiondiff.ts)', () => {
  const secret = (data: Record<string, string>, stringData?: Record<string, string>) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'creds', namespace: 'ns' },
    type: 'Opaque',
    data,
    ...(stringData ? { stringData } : {}),
  });

  it('marks a changed value before and after, an unchanged one as ***, and never prints either value', () => {
    const lines = objectDiff([secret({ token: 'b2xkLXRva2Vu', user: 'YWRtaW4=' })], [secret({ token: 'bmV3LXRva2Vu', user: 'YWRtaW4=' })]);
    expect(lines).to.deep.equal(['~ v1/Secret ns/creds', `    -   token: '${MASK} (before)'`, `    +   token: '${MASK} (after)'`]);
    expect(lines.join('\n')).not.to.match(/b2xk|bmV3|YWRtaW4/);
  });

  it('masks every value of a Secret that is added or removed, data and stringData alike', () => {
    const lines = objectDiff([], [secret({ a: 'c2VjcmV0' }, { b: 'plain-secret' })]);
    expect(lines[0]).to.equal('+ v1/Secret ns/creds');
    expect(lines).to.include(`    +   a: '${MASK}'`).and.include(`    +   b: '${MASK}'`);
    expect(lines.join('\n')).not.to.match(/c2VjcmV0|plain-secret/);
    expect(objectDiff([secret({ a: 'c2VjcmV0' })], []).join('\n')).not.to.include('c2VjcmV0');
  });

  it('shows a key added to a Secret as a masked line, and leaves other kinds and other fields alone', () => {
    const lines = objectDiff([secret({ a: 'eA==' })], [secret({ a: 'eA==', b: 'eQ==' })]);
    expect(lines).to.deep.equal(['~ v1/Secret ns/creds', `    +   b: '${MASK}'`]);
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: 'visible' } };
    expect(maskSecret(cm, undefined, 'after')).to.equal(cm);
    expect(maskSecret(secret({ a: 'eA==' }), undefined, 'after').type).to.equal('Opaque');
  });
});
