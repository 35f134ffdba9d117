import { expect } from 'chai';
import { FLEET_SHARD_REF_LABEL, SHARD_ID, SHARD_REF_LABEL, inShard, shardFilter, shardLabelsOf, shardLeaseName, shardOf } from './shard.js';

const obj = (labels?: Record<string, string>) => ({ metadata: { name: 'r', namespace: 'ns', ...(labels ? { labels } : {}) } });

describe('shards', () => {
  const cases: { name: string; labels?: Record<string, string>; shard: string }[] = [
    { name: 'an unlabelled object belongs to the default shard', shard: '' },
    { name: "Fleet's label names the shard", labels: { [FLEET_SHARD_REF_LABEL]: 'a' }, shard: 'a' },
    { name: "Flotilla's label names the shard", labels: { [SHARD_REF_LABEL]: 'b' }, shard: 'b' },
    { name: "Flotilla's label wins over Fleet's", labels: { [SHARD_REF_LABEL]: 'b', [FLEET_SHARD_REF_LABEL]: 'a' }, shard: 'b' },
    { name: 'an empty label is the default shard', labels: { [SHARD_REF_LABEL]: '' }, shard: '' },
  ];
  for (const c of cases) {
    it(c.name, () => expect(shardOf(c.labels)).to.equal(c.shard));
  }

  it('gives each object to exactly one shard', () => {
    const labelled = obj({ [SHARD_REF_LABEL]: 'a' });
    expect([inShard(labelled, 'a'), inShard(labelled, undefined), inShard(labelled, 'b')]).to.deep.equal([true, false, false]);
    const plain = obj();
    expect([inShard(plain, undefined), inShard(plain, ''), inShard(plain, 'a')]).to.deep.equal([true, true, false]);
    expect(inShard(undefined, undefined)).to.equal(false);
  });

  it('carries only the shard labels to objects made from a labelled one', () => {
    expect(shardLabelsOf(obj({ [FLEET_SHARD_REF_LABEL]: 'a', team: 'x' }))).to.deep.equal({ [FLEET_SHARD_REF_LABEL]: 'a' });
    expect(shardLabelsOf(obj())).to.deep.equal({});
  });

  it('names one Lease per shard and keeps the default Lease name', () => {
    expect(shardLeaseName('flotilla-controller', undefined)).to.equal('flotilla-controller');
    expect(shardLeaseName('flotilla-controller', 'eu')).to.equal('flotilla-controller-shard-eu');
  });

  it('filters keys by the shard of the cached object', () => {
    const cache = new Map([
      ['ns/a', obj({ [SHARD_REF_LABEL]: 'a' })],
      ['ns/plain', obj()],
    ]);
    const filter = shardFilter(cache, 'a');
    expect(['ns/a', 'ns/plain', 'ns/gone'].filter(filter)).to.deep.equal(['ns/a']);
    expect(['ns/a', 'ns/plain', 'ns/gone'].filter(shardFilter(cache, undefined))).to.deep.equal(['ns/plain']);
  });

  it('accepts shard ids that fit a label value and refuses others', () => {
    expect(['a', 'eu-west-1', 'x'.repeat(40)].every((id) => SHARD_ID.test(id))).to.equal(true);
    expect(['', 'A', '-a', 'a-', 'a_b', 'x'.repeat(41)].some((id) => SHARD_ID.test(id))).to.equal(false);
  });
});
