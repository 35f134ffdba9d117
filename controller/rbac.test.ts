import { expect } from 'chai';
import { agentRules, boundedName, importRules, secretObject, secretValue } from './rbac.js';

describe('boundedName', () => {
  it('keeps names that fit', () => expect(boundedName('import-t1', 253)).to.equal('import-t1'));
  it('truncates long names with a hash suffix, keeping them distinct', () => {
    const a = boundedName(`${'n'.repeat(300)}a`, 253);
    const b = boundedName(`${'n'.repeat(300)}b`, 253);
    expect(a)
      .to.have.length.at.most(253)
      .and.match(/-[0-9a-f]{8}$/);
    expect(a).to.not.equal(b);
  });
});

describe('registration RBAC rules', () => {
  const verbs = (rules: { resources: string[]; verbs: string[] }[], resource: string) =>
    rules
      .filter((r) => r.resources.includes(resource))
      .flatMap((r) => r.verbs)
      .sort();

  it('lets an import token only create and get registrations, and get (never list) secrets', () => {
    const rules = importRules();
    expect(rules.workspace.flatMap((r) => r.resources)).to.deep.equal(['clusterregistrations']);
    expect(verbs(rules.workspace, 'clusterregistrations')).to.deep.equal(['create', 'get']);
    expect(rules.registration.flatMap((r) => r.resources)).to.deep.equal(['secrets']);
    expect(verbs(rules.registration, 'secrets')).to.deep.equal(['get']);
  });

  it('lets an agent read its namespace and write only bundle deployment status and finalizers there', () => {
    const rules = agentRules('prod-eu').clusterNamespace;
    expect(verbs(rules, 'bundledeployments')).to.deep.equal(['get', 'list', 'patch', 'watch']);
    expect(verbs(rules, 'bundledeployments/status')).to.deep.equal(['get', 'patch', 'update']);
    expect(verbs(rules, 'secrets')).to.deep.equal(['get', 'list', 'watch']);
    expect(rules.find((r) => r.resources.includes('serviceaccounts/token')))
      .to.have.property('resourceNames')
      .that.deep.equals(['flotilla-agent']);
    expect(rules.flatMap((r) => r.resources).sort()).to.deep.equal([
      'bundledeployments',
      'bundledeployments/status',
      'events',
      'secrets',
      'serviceaccounts/token',
    ]);
  });

  it('limits an agent to its own Cluster in the workspace namespace', () => {
    const rules = agentRules('prod-eu').workspace;
    for (const rule of rules) expect(rule.resourceNames).to.deep.equal(['prod-eu']);
    expect(verbs(rules, 'clusters')).to.deep.equal(['get']);
    expect(verbs(rules, 'clusters/status')).to.deep.equal(['get', 'patch', 'update']);
  });
});

describe('secretObject', () => {
  it('stores values base64-encoded, and secretValue reads them back', () => {
    const secret = secretObject('ns', 's', { token: 'abc', ca: 'line1\nline2' }, { a: 'b' });
    expect((secret as unknown as { data: Record<string, string> }).data.token).to.equal(Buffer.from('abc').toString('base64'));
    expect(secretValue(secret, 'ca')).to.equal('line1\nline2');
    expect(secretValue(secret, 'missing')).to.equal(undefined);
  });
});
