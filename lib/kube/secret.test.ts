import { expect } from 'chai';
import { decodeSecretData, encodeSecretData } from './secret.js';

describe('Secret data', () => {
  const cases: { name: string; data: unknown; want: Record<string, string> }[] = [
    { name: 'decodes every base64 value as UTF-8', data: { username: 'dXNlcg==', password: 'cMOkc3M=' }, want: { username: 'user', password: 'päss' } },
    { name: 'reads an empty value as an empty string', data: { token: '' }, want: { token: '' } },
    { name: 'leaves out values that are not strings', data: { a: 'YQ==', b: 3, c: null }, want: { a: 'a' } },
    { name: 'reads a Secret without data as empty', data: undefined, want: {} },
    { name: 'reads data that is not an object as empty', data: 'dXNlcg==', want: {} },
  ];
  for (const c of cases) it(c.name, () => expect(decodeSecretData(c.data)).to.deep.equal(c.want));

  it('encodes values so that decoding gives them back, and leaves out undefined ones', () => {
    const values = { '.dockerconfigjson': '{"auths":{}}', key: 'line1\nline2 ✓', skipped: undefined };
    const data = encodeSecretData(values);
    expect(data).to.have.keys('.dockerconfigjson', 'key');
    expect(data.key).to.equal(Buffer.from('line1\nline2 ✓').toString('base64'));
    expect(decodeSecretData(data)).to.deep.equal({ '.dockerconfigjson': '{"auths":{}}', key: 'line1\nline2 ✓' });
  });
});
